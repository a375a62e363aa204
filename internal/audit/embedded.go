package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// Embedded is the audit store used when no ClickHouse is configured: one
// JSON-lines file per table and UTC day in a directory
// (events-20260131.jsonl, decisions-…, requests-…, grants-…), appended by
// one writer goroutine, with an in-memory index of sessions (built by
// reading the events files at open) for Sessions and Replay. Record
// encodes the row and returns; the write and the fsync (spool.
// fsync_interval) happen behind it. Day files older than retention_days
// are deleted. It suits one machine and modest volumes; use ClickHouse
// beyond that.
type Embedded struct {
	dir           string
	prep          *preparer
	policy        FullPolicy
	maxPending    int64
	fsyncEvery    time.Duration
	retentionDays int
	log           *slog.Logger
	m             *metrics
	lock          *os.File
	idx           *embeddedIndex

	mu        sync.Mutex
	pend      []pendingLine
	pendBytes int64
	full      bool
	fullDrop  int64
	closed    bool
	accepted  int64         // rows accepted so far
	written   int64         // rows written and indexed so far
	changed   chan struct{} // closed and replaced when written grows
	wake      chan struct{}

	// Writer goroutine only.
	files    map[dayKey]*os.File
	sizes    map[*os.File]int64 // bytes in each open file
	dirty    map[*os.File]bool
	lastSync time.Time
	lastRet  time.Time
	done     chan struct{}

	retentionEvery time.Duration
}

type dayKey struct {
	k   kind
	day int32 // yyyymmdd
}

type pendingLine struct {
	key  dayKey
	line []byte   // JSON and '\n'
	ev   *rowMeta // for the index
}

var filePrefix = [numKinds]string{kindEvent: "events", kindDecision: "decisions", kindRequest: "requests", kindGrant: "grants"}

func dayFileName(k dayKey) string {
	return fmt.Sprintf("%s-%08d.jsonl", filePrefix[k.k], k.day)
}

func dayOf(t time.Time) int32 {
	t = t.UTC()
	return int32(t.Year()*10000 + int(t.Month())*100 + t.Day())
}

// OpenEmbedded opens (creating if needed) the embedded store in
// cfg.Embedded.Dir for writing; one process at a time.
func OpenEmbedded(cfg Config, opts Options) (*Embedded, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.logger().With("component", "audit")
	dir := cfg.Embedded.Dir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: creating %s: %w", dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit: %s is in use by another process: %w", dir, err)
	}
	e := &Embedded{
		dir: dir, prep: newPreparer(cfg.PayloadMaxBytes, opts.Now), policy: cfg.Spool.FullPolicy,
		maxPending: cfg.Embedded.MaxPendingBytes, fsyncEvery: cfg.Spool.FsyncInterval,
		retentionDays: cfg.Embedded.RetentionDays, log: log, m: newMetrics(opts.Registerer), lock: lock,
		changed: make(chan struct{}), wake: make(chan struct{}, 1),
		files: map[dayKey]*os.File{}, sizes: map[*os.File]int64{}, dirty: map[*os.File]bool{}, done: make(chan struct{}),
		retentionEvery: opts.retentionEvery,
	}
	switch {
	case e.retentionEvery == 0:
		e.retentionEvery = time.Hour
	case e.retentionEvery < 0: // never (tests)
		e.retentionEvery = 1 << 62
	}
	e.dropExpired(time.Now())
	if e.idx, err = loadIndex(dir, true, log); err != nil {
		e.unlock()
		return nil, err
	}
	e.lastRet = time.Now()
	go e.writeLoop()
	return e, nil
}

func (e *Embedded) unlock() {
	_ = syscall.Flock(int(e.lock.Fd()), syscall.LOCK_UN)
	_ = e.lock.Close()
}

// Record encodes r and queues it for the writer; see Sink.
func (e *Embedded) Record(r Record) error {
	if err := e.prep.prepare(r); err != nil {
		return err
	}
	k := r.kind()
	var (
		line []byte
		err  error
		t    time.Time
		ev   = metaOf(r)
	)
	switch v := r.(type) {
	case *Event:
		t = v.Time
		var ok bool
		if line, ok = appendEventJSON(make([]byte, 0, v.jsonSizeHint()), v); !ok {
			line, err = json.Marshal(v)
		}
	case *Decision:
		t = v.Time
		var ok bool
		if line, ok = appendDecisionJSON(make([]byte, 0, v.jsonSizeHint()), v); !ok {
			line, err = json.Marshal(v)
		}
	case *RequestEvent:
		t = v.Time
		line, err = json.Marshal(v)
	case *GrantEvent:
		t = v.Time
		line, err = json.Marshal(v)
	}
	if err != nil {
		return fmt.Errorf("audit: encoding %s: %w", k, err)
	}
	line = append(line, '\n')
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	if !e.full && e.pendBytes+int64(len(line)) <= e.maxPending {
		e.pend = append(e.pend, pendingLine{key: dayKey{k, dayOf(t)}, line: line, ev: ev})
		e.pendBytes += int64(len(line))
		e.accepted++
		e.mu.Unlock()
		e.m.record(k)
		select {
		case e.wake <- struct{}{}:
		default:
		}
		return nil
	}
	if !e.full {
		e.full = true
		e.m.full.Set(1)
		e.log.Error("audit store write queue full: new rows are "+map[FullPolicy]string{DropNewest: "dropped", FailClosed: "refused (fail_closed)"}[e.policy],
			"dir", e.dir, "max_pending_bytes", e.maxPending)
	}
	e.fullDrop++
	e.mu.Unlock()
	if e.policy == FailClosed {
		e.m.reject(k)
		return ErrSpoolFull
	}
	e.m.drop(k)
	return nil
}

func (e *Embedded) writeLoop() {
	defer close(e.done)
	tick := time.NewTicker(max(e.fsyncEvery/2, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-e.wake:
		case <-tick.C:
		}
		e.mu.Lock()
		batch := e.pend
		e.pend = nil
		closing := e.closed
		e.mu.Unlock()

		written, failed := e.writeBatch(batch)
		now := time.Now()
		if len(e.dirty) > 0 && (e.fsyncEvery == 0 || now.Sub(e.lastSync) >= e.fsyncEvery || closing) {
			for f := range e.dirty {
				if err := f.Sync(); err != nil {
					e.log.Error("audit store: fsync failed", "file", f.Name(), "err", err)
				}
			}
			clear(e.dirty)
			e.lastSync = now
		}
		e.mu.Lock()
		if len(failed) > 0 && !closing {
			e.pend = append(failed, e.pend...)
		}
		e.written += int64(written)
		e.pendBytes -= bytesOf(batch) - bytesOf(failed)
		var recovered int64 = -1
		if e.full && e.pendBytes <= e.maxPending-e.maxPending/10 {
			e.full = false
			recovered, e.fullDrop = e.fullDrop, 0
		}
		close(e.changed)
		e.changed = make(chan struct{})
		e.mu.Unlock()
		if recovered >= 0 {
			e.m.full.Set(0)
			e.log.Warn("audit store has room again", "dir", e.dir, "rows_lost_while_full", recovered)
		}
		if now.Sub(e.lastRet) >= e.retentionEvery {
			e.lastRet = now
			e.retention(now)
		}
		if closing {
			for _, f := range e.files {
				f.Close()
			}
			return
		}
	}
}

func bytesOf(ls []pendingLine) int64 {
	var n int64
	for _, l := range ls {
		n += int64(len(l.line))
	}
	return n
}

// writeBatch appends the lines to their day files — one write per file —
// and indexes the events written; it returns how many lines were written
// and those that could not be (to retry).
func (e *Embedded) writeBatch(batch []pendingLine) (int, []pendingLine) {
	type fileBatch struct {
		key   dayKey
		buf   []byte
		lines []pendingLine
		offs  []int64
	}
	var (
		order  []dayKey
		byFile = map[dayKey]*fileBatch{}
		failed []pendingLine
	)
	for _, l := range batch {
		fb := byFile[l.key]
		if fb == nil {
			fb = &fileBatch{key: l.key}
			byFile[l.key] = fb
			order = append(order, l.key)
		}
		fb.offs = append(fb.offs, int64(len(fb.buf)))
		fb.buf = append(fb.buf, l.line...)
		fb.lines = append(fb.lines, l)
	}
	written := 0
	for _, k := range order {
		fb := byFile[k]
		f, size, err := e.file(k)
		if err == nil {
			if _, err = f.Write(fb.buf); err != nil {
				_ = f.Truncate(size)
				_, _ = f.Seek(size, 0)
			}
		}
		if err != nil {
			e.log.Error("audit store: write failed; will retry", "file", dayFileName(k), "err", err)
			failed = append(failed, fb.lines...)
			continue
		}
		e.sizes[f] = size + int64(len(fb.buf))
		e.dirty[f] = true
		for i, l := range fb.lines {
			if l.ev != nil {
				e.idx.add(l.ev, lineRef{k: k.k, day: k.day, off: size + fb.offs[i], n: int32(len(l.line))})
			}
		}
		e.m.ship(shipLabel[k.k], len(fb.lines))
		e.m.wrote(time.Time{}, time.Now()) // the ship lag is ClickHouse's: here rows wait only for the writer's next pass
		written += len(fb.lines)
	}
	return written, failed
}

// file returns the open day file for k and its size.
func (e *Embedded) file(k dayKey) (*os.File, int64, error) {
	if f := e.files[k]; f != nil {
		return f, e.sizes[f], nil
	}
	f, err := os.OpenFile(filepath.Join(e.dir, dayFileName(k)), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	e.files[k] = f
	e.sizes[f] = fi.Size()
	return f, fi.Size(), nil
}

// retention deletes expired day files (closing their handles) and
// rebuilds the index when events files went.
func (e *Embedded) retention(now time.Time) {
	if e.retentionDays <= 0 {
		return
	}
	cutoff := int32(RetentionCutoff(now, e.retentionDays))
	for k, f := range e.files {
		if k.day < cutoff {
			f.Close()
			delete(e.dirty, f)
			delete(e.sizes, f)
			delete(e.files, k)
		}
	}
	if e.dropExpired(now) {
		idx, err := loadIndex(e.dir, true, e.log)
		if err != nil {
			e.log.Error("audit store: rebuilding the index after retention failed", "err", err)
			return
		}
		e.idx.replace(idx)
	}
}

// dropExpired deletes day files older than the retention and says whether
// an events file was among them.
func (e *Embedded) dropExpired(now time.Time) bool {
	if e.retentionDays <= 0 {
		return false
	}
	cutoff := int32(RetentionCutoff(now, e.retentionDays))
	files, err := listDayFiles(e.dir)
	if err != nil {
		e.log.Error("audit store: retention", "err", err)
		return false
	}
	events := false
	for _, df := range files {
		if df.key.day >= cutoff {
			continue
		}
		if err := os.Remove(df.path); err != nil {
			e.log.Error("audit store: retention: deleting failed", "file", df.path, "err", err)
			continue
		}
		e.log.Info("audit store: retention deleted a day file", "file", filepath.Base(df.path), "retention_days", e.retentionDays)
		events = events || df.key.k == kindEvent
	}
	return events
}

// Drain waits until every row recorded so far is written and indexed.
func (e *Embedded) Drain(ctx context.Context) error {
	e.mu.Lock()
	target := e.accepted
	e.mu.Unlock()
	for {
		e.mu.Lock()
		done, ch := e.written >= target, e.changed
		e.mu.Unlock()
		if done {
			return nil
		}
		select {
		case e.wake <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("audit: draining the store: %w", ctx.Err())
		}
	}
}

// Stats returns the store's counters.
func (e *Embedded) Stats() Stats {
	st := e.m.stats()
	e.mu.Lock()
	st.SpoolBytes, st.Full = e.pendBytes, e.full
	e.mu.Unlock()
	return st
}

// Close writes what is queued, fsyncs and stops.
func (e *Embedded) Close(ctx context.Context) error {
	e.mu.Lock()
	already := e.closed
	e.closed = true
	e.mu.Unlock()
	if already {
		return nil
	}
	select {
	case e.wake <- struct{}{}:
	default:
	}
	select {
	case <-e.done:
	case <-ctx.Done():
		return fmt.Errorf("audit: closing the store: %w", ctx.Err())
	}
	e.unlock()
	return nil
}

// Sessions lists sessions from the index.
func (e *Embedded) Sessions(ctx context.Context, f SessionFilter) ([]SessionSummary, error) {
	return e.idx.list(f), nil
}

// Replay reads what was recorded about one session from the day files;
// see Store.
func (e *Embedded) Replay(ctx context.Context, sessionID string) (*Trail, error) {
	return e.idx.replay(ctx, e.dir, sessionID)
}
