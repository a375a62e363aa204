package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// ErrSpoolFull is returned by Record under full_policy fail_closed when
// the spool (or the embedded store's write queue) has no room: the caller
// must deny or fail the message rather than let it pass unrecorded.
var ErrSpoolFull = errors.New("audit: spool full, message not recorded")

// ErrClosed is returned by Record after Close.
var ErrClosed = errors.New("audit: recorder closed")

// spool is the durable local buffer in front of a destination. Record
// encodes a row into memory under a mutex and returns; the writer
// goroutine appends those bytes to the open segment, fsyncs it on the
// configured interval and seals it when it is large or old enough; the
// shipper goroutine (shipper.go) sends sealed segments and deletes them
// once every row in them was acknowledged.
type spool struct {
	dir        string
	maxBytes   int64
	segBytes   int64
	fsyncEvery time.Duration // 0: after every write
	sealEvery  time.Duration
	policy     FullPolicy
	log        *slog.Logger
	m          *metrics
	prep       *preparer
	lock       *os.File // flock on dir/LOCK: one process per spool

	mu        sync.Mutex
	pend      [][]byte // framed rows not yet written, in chunks of about chunkSize
	free      [][]byte // written chunks kept for reuse
	used      int64    // segment bytes on disk + bytes in pend
	full      bool     // refusing rows until used falls under 90% of maxBytes
	fullDrop  int64    // rows dropped or refused since full was set
	closed    bool
	sealReq   bool          // Drain asked to seal the open segment now
	drains    int           // Drains waiting
	drainWake chan struct{} // wakes the shipper when a Drain starts; cap 1
	sealed    []segmentInfo // sealed, not yet taken by the shipper, oldest first
	nsegs     int           // sealed segments not yet deleted
	changed   chan struct{} // closed and replaced whenever used falls
	wake      chan struct{} // wakes the writer; cap 1
	shipWake  chan struct{} // wakes the shipper; cap 1

	// Writer goroutine only.
	f        *os.File
	fseq     uint64
	fsize    int64
	fopened  time.Time
	lastSync time.Time
	dirty    bool
	nextSeq  uint64

	writerDone chan struct{}
}

func openSpool(cfg SpoolConfig, sealEvery time.Duration, prep *preparer, m *metrics, log *slog.Logger) (*spool, error) {
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit spool: creating %s: %w", cfg.Dir, err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit spool: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("audit spool: %s is in use by another process: %w", cfg.Dir, err)
	}
	s := &spool{
		dir: cfg.Dir, maxBytes: cfg.MaxBytes, segBytes: cfg.SegmentBytes,
		fsyncEvery: cfg.FsyncInterval, sealEvery: sealEvery, policy: cfg.FullPolicy,
		log: log, m: m, prep: prep, lock: lock,
		changed:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		shipWake:   make(chan struct{}, 1),
		drainWake:  make(chan struct{}, 1),
		writerDone: make(chan struct{}),
		nextSeq:    1,
	}
	segs, err := listSegments(cfg.Dir)
	if err != nil {
		s.unlock()
		return nil, err
	}
	for _, seg := range segs {
		if seg.open {
			// Left open by a run that stopped without sealing it: seal it
			// now; a torn last record is skipped when it is read.
			sealedPath := segmentFile(cfg.Dir, seg.seq, sealedExt)
			if err := os.Rename(seg.path, sealedPath); err != nil {
				s.unlock()
				return nil, fmt.Errorf("audit spool: sealing %s left by an earlier run: %w", seg.path, err)
			}
			seg.path, seg.open = sealedPath, false
		}
		s.sealed = append(s.sealed, seg)
		s.nsegs++
		s.used += seg.size
		s.nextSeq = seg.seq + 1
	}
	if len(segs) > 0 {
		log.Info("audit spool: shipping segments left by an earlier run", "segments", len(segs), "bytes", s.used)
	}
	s.m.bytes.Set(float64(s.used))
	s.m.segments.Set(float64(s.nsegs))
	go s.writeLoop()
	return s, nil
}

func (s *spool) unlock() {
	_ = syscall.Flock(int(s.lock.Fd()), syscall.LOCK_UN)
	_ = s.lock.Close()
}

// Record prepares r, encodes it into the spool's memory buffer and
// returns without waiting for the disk or ClickHouse.
func (s *spool) Record(r Record) error {
	if err := s.prep.prepare(r); err != nil {
		return err
	}
	k := r.kind()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if !s.full {
		if len(s.pend) == 0 || len(s.pend[len(s.pend)-1]) >= chunkSize {
			s.pend = append(s.pend, s.chunk())
		}
		c := &s.pend[len(s.pend)-1]
		start := len(*c)
		*c = appendFrame(*c, r)
		n := int64(len(*c) - start)
		// Room for the row and for the header of the segment it may open.
		if s.used+n+int64(len(segMagic)) <= s.maxBytes {
			s.used += n
			s.mu.Unlock()
			s.m.record(k)
			select {
			case s.wake <- struct{}{}:
			default:
			}
			return nil
		}
		*c = (*c)[:start]
		s.full = true
		s.m.full.Set(1)
		s.log.Error("audit spool full: new rows are "+map[FullPolicy]string{DropNewest: "dropped", FailClosed: "refused (fail_closed)"}[s.policy]+
			" until ClickHouse catches up", "dir", s.dir, "max_bytes", s.maxBytes, "policy", string(s.policy))
	}
	s.fullDrop++
	s.mu.Unlock()
	if s.policy == FailClosed {
		s.m.reject(k)
		return ErrSpoolFull
	}
	s.m.drop(k)
	return nil
}

// chunkSize is the size of the memory chunks rows are encoded into: the
// writer writes whole chunks, and a segment is sealed between chunks, so
// segments stay near segment_bytes however far the writer falls behind.
const chunkSize = 256 << 10

// chunk returns an empty chunk (s.mu held).
func (s *spool) chunk() []byte {
	if n := len(s.free); n > 0 {
		c := s.free[n-1]
		s.free = s.free[:n-1]
		return c[:0]
	}
	return make([]byte, 0, chunkSize+chunkSize/4)
}

// freed accounts for segs segments of n bytes in all, deleted after
// shipping.
func (s *spool) freed(n int64, segs int) {
	s.mu.Lock()
	s.used -= n
	s.nsegs -= segs
	used, nsegs := s.used, s.nsegs
	var recovered int64 = -1
	if s.full && used <= s.maxBytes-s.maxBytes/10 {
		s.full = false
		recovered, s.fullDrop = s.fullDrop, 0
	}
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	s.m.bytes.Set(float64(used))
	s.m.segments.Set(float64(nsegs))
	if recovered >= 0 {
		s.m.full.Set(0)
		s.log.Warn("audit spool has room again", "dir", s.dir, "rows_lost_while_full", recovered, "policy", string(s.policy))
	}
}

func (s *spool) writeLoop() {
	defer close(s.writerDone)
	tick := s.sealEvery / 2
	if s.fsyncEvery > 0 && s.fsyncEvery/2 < tick {
		tick = s.fsyncEvery / 2
	}
	tick = max(tick, 5*time.Millisecond)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.wake:
			// Let a burst gather: the rows of the next moment go out in
			// one write instead of a write per row (rows arrive one per
			// MCP message). A Drain or Close does not wait.
			if !s.urgent() {
				time.Sleep(writeCoalesce)
				select {
				case <-s.wake:
				default:
				}
			}
		case <-t.C:
		}
		s.mu.Lock()
		chunks := s.pend
		s.pend = nil
		closing, sealReq := s.closed, s.sealReq
		s.sealReq = false
		used := s.used
		s.mu.Unlock()

		for i, c := range chunks {
			if err := s.write(c); err != nil {
				s.log.Error("audit spool: writing segment failed; will retry", "dir", s.dir, "err", err)
				if closing {
					// Nothing more can be done: keep what reached the disk.
					s.log.Error("audit spool: rows lost at close", "bytes", len(c))
					if s.f != nil {
						_ = s.seal()
					}
					return
				}
				s.requeue(chunks[i:])
				chunks = chunks[:i]
				break
			}
			if s.fsize >= s.segBytes {
				if err := s.seal(); err != nil {
					s.log.Error("audit spool: sealing segment failed; will retry", "file", s.f.Name(), "err", err)
				}
			}
		}
		s.recycle(chunks)
		now := time.Now()
		if s.dirty && (s.fsyncEvery == 0 || now.Sub(s.lastSync) >= s.fsyncEvery) {
			if err := s.f.Sync(); err != nil {
				s.log.Error("audit spool: fsync failed", "file", s.f.Name(), "err", err)
			}
			s.dirty, s.lastSync = false, now
		}
		if s.f != nil && (s.fsize >= s.segBytes || now.Sub(s.fopened) >= s.sealEvery || sealReq || closing) {
			if err := s.seal(); err != nil {
				s.log.Error("audit spool: sealing segment failed; will retry", "file", s.f.Name(), "err", err)
			}
		}
		s.m.bytes.Set(float64(used))
		if closing {
			s.mu.Lock()
			done := len(s.pend) == 0
			s.mu.Unlock()
			if done && s.f == nil {
				return
			}
		}
	}
}

// writeCoalesce is how long the writer lets rows gather after a wake:
// rows in memory for up to this much longer before they reach the file
// (what a process crash can lose grows by as much), for a write syscall
// per millisecond instead of one per row under load.
const writeCoalesce = time.Millisecond

// urgent reports whether a Drain or Close is waiting on the writer.
func (s *spool) urgent() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed || s.sealReq || s.drains > 0
}

// write appends framed rows to the open segment, opening one if needed.
// On error the segment is cut back to its last good size.
func (s *spool) write(buf []byte) error {
	if s.f == nil {
		path := segmentFile(s.dir, s.nextSeq, openExt)
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.WriteString(segMagic); err != nil {
			f.Close()
			os.Remove(path)
			return err
		}
		s.f, s.fseq, s.fsize, s.fopened = f, s.nextSeq, int64(len(segMagic)), time.Now()
		s.nextSeq++
		s.mu.Lock()
		s.used += int64(len(segMagic))
		s.mu.Unlock()
	}
	if _, err := s.f.Write(buf); err != nil {
		_ = s.f.Truncate(s.fsize)
		_, _ = s.f.Seek(s.fsize, 0)
		return err
	}
	s.fsize += int64(len(buf))
	s.dirty = true
	return nil
}

// requeue puts chunks that could not be written back in front.
func (s *spool) requeue(chunks [][]byte) {
	s.mu.Lock()
	s.pend = append(append([][]byte(nil), chunks...), s.pend...)
	s.mu.Unlock()
}

// recycle keeps written chunks for reuse, up to 16 MiB of them.
func (s *spool) recycle(chunks [][]byte) {
	s.mu.Lock()
	for _, c := range chunks {
		if len(s.free) < 64 && cap(c) <= 2*chunkSize {
			s.free = append(s.free, c)
		}
	}
	s.mu.Unlock()
}

// seal fsyncs and closes the open segment and hands it to the shipper.
func (s *spool) seal() error {
	if err := s.f.Sync(); err != nil {
		return err
	}
	if err := s.f.Close(); err != nil {
		return err
	}
	path := segmentFile(s.dir, s.fseq, sealedExt)
	if err := os.Rename(s.f.Name(), path); err != nil {
		return err
	}
	syncDir(s.dir)
	seg := segmentInfo{seq: s.fseq, path: path, size: s.fsize}
	s.f, s.dirty = nil, false
	s.mu.Lock()
	s.sealed = append(s.sealed, seg)
	s.nsegs++
	n := s.nsegs
	s.mu.Unlock()
	s.m.segments.Set(float64(n))
	select {
	case s.shipWake <- struct{}{}:
	default:
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// takeSealed returns the sealed segments not yet handed out, oldest first.
func (s *spool) takeSealed() []segmentInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	segs := s.sealed
	s.sealed = nil
	return segs
}

// pending reports whether rows are still waiting anywhere in the spool.
func (s *spool) pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used > 0
}

// drain seals the open segment and waits until every row recorded so far
// was shipped and its segment deleted, or ctx ends.
func (s *spool) drain(ctx context.Context) error {
	s.mu.Lock()
	s.drains++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.drains--
		s.mu.Unlock()
	}()
	select {
	case s.drainWake <- struct{}{}:
	default:
	}
	for {
		s.mu.Lock()
		if s.used == 0 {
			s.mu.Unlock()
			return nil
		}
		s.sealReq = true
		ch := s.changed
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-time.After(s.sealEvery):
		case <-ctx.Done():
			return fmt.Errorf("audit: draining the spool: %w", ctx.Err())
		}
	}
}

// draining reports whether a Drain is waiting (the shipper then sends
// partial batches at once).
func (s *spool) draining() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.drains > 0
}

// writerStopped reports whether the writer has stopped (Close).
func (s *spool) writerStopped() bool {
	select {
	case <-s.writerDone:
		return true
	default:
		return false
	}
}

// closeWriter stops accepting rows, writes and seals what is buffered,
// and waits for the writer to stop.
func (s *spool) closeWriter() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if already {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.writerDone
	select {
	case s.shipWake <- struct{}{}:
	default:
	}
}
