package audit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"sync"
)

// embeddedIndex knows, per session, its summary and where each of its
// events is (day file, offset, length).
type embeddedIndex struct {
	mu       sync.RWMutex
	sessions map[string]*sessionIndex
}

type sessionIndex struct {
	sum                          SessionSummary
	firstNS, lastNS              int64
	principalNS, clientNS, tgtNS int64 // time of the event the value came from (argMin)
	refs                         []lineRef
}

type lineRef struct {
	day int32
	off int64
	n   int32
}

// evMeta is what the index needs of an event.
type evMeta struct {
	id, session, principal, client, target, direction, outcome string
	ns                                                         int64
	masked                                                     int64
}

func metaOf(e *Event) *evMeta {
	var masked int64
	for _, n := range e.Masked {
		masked += int64(max(n, 0))
	}
	return &evMeta{id: e.EventID, session: e.SessionID, principal: e.Principal, client: e.ClientID, target: e.Target,
		direction: string(e.Direction), outcome: e.Outcome, ns: e.Time.UnixNano(), masked: masked}
}

func newIndex() *embeddedIndex { return &embeddedIndex{sessions: map[string]*sessionIndex{}} }

// add indexes one event; it keeps the same summary semantics as the
// ClickHouse query (first non-empty principal/client/target by time).
func (x *embeddedIndex) add(m *evMeta, ref lineRef) {
	if m.session == "" {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	s := x.sessions[m.session]
	if s == nil {
		s = &sessionIndex{sum: SessionSummary{SessionID: m.session}, firstNS: m.ns, lastNS: m.ns}
		x.sessions[m.session] = s
	}
	s.refs = append(s.refs, ref)
	s.firstNS, s.lastNS = min(s.firstNS, m.ns), max(s.lastNS, m.ns)
	pick := func(v string, cur *string, at *int64) {
		if v != "" && (*cur == "" || m.ns < *at) {
			*cur, *at = v, m.ns
		}
	}
	pick(m.principal, &s.sum.Principal, &s.principalNS)
	pick(m.client, &s.sum.ClientID, &s.clientNS)
	pick(m.target, &s.sum.Target, &s.tgtNS)
	s.sum.Events++
	if m.direction == string(DirRequest) {
		s.sum.Requests++
	}
	if m.outcome == "deny" {
		s.sum.Denied++
	}
	if m.direction == string(DirError) {
		s.sum.Errors++
	}
	s.sum.Masked += m.masked
}

func (x *embeddedIndex) replace(y *embeddedIndex) {
	y.mu.Lock()
	m := y.sessions
	y.mu.Unlock()
	x.mu.Lock()
	x.sessions = m
	x.mu.Unlock()
}

func (x *embeddedIndex) list(f SessionFilter) []SessionSummary {
	x.mu.RLock()
	var out []SessionSummary
	for _, s := range x.sessions {
		if f.Principal != "" && s.sum.Principal != f.Principal ||
			f.Target != "" && s.sum.Target != f.Target ||
			!f.Since.IsZero() && s.lastNS < f.Since.UnixNano() ||
			!f.Until.IsZero() && s.firstNS >= f.Until.UnixNano() {
			continue
		}
		sum := s.sum
		sum.Start, sum.End = nsTime(uint64(max(s.firstNS, 0))), nsTime(uint64(max(s.lastNS, 0)))
		out = append(out, sum)
	}
	x.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool {
		if !out[i].End.Equal(out[j].End) {
			return out[i].End.After(out[j].End)
		}
		return out[i].SessionID < out[j].SessionID
	})
	if len(out) > f.limit() {
		out = out[:f.limit()]
	}
	return out
}

func (x *embeddedIndex) replay(ctx context.Context, dir, session string) ([]Event, error) {
	x.mu.RLock()
	var refs []lineRef
	if s := x.sessions[session]; s != nil {
		refs = append(refs, s.refs...)
	}
	x.mu.RUnlock()
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].day != refs[j].day {
			return refs[i].day < refs[j].day
		}
		return refs[i].off < refs[j].off
	})
	var (
		out  []Event
		seen = map[string]bool{}
		f    *os.File
		day  int32 = -1
		buf  []byte
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for _, r := range refs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if r.day != day {
			if f != nil {
				f.Close()
			}
			var err error
			name := dayFileName(dayKey{kindEvent, r.day})
			if f, err = os.Open(filepath.Join(dir, name)); err != nil {
				return nil, fmt.Errorf("audit: replaying session: %w", err)
			}
			day = r.day
		}
		if cap(buf) < int(r.n) {
			buf = make([]byte, r.n)
		}
		buf = buf[:r.n]
		if _, err := f.ReadAt(buf, r.off); err != nil {
			return nil, fmt.Errorf("audit: replaying session: reading %s at %d: %w", f.Name(), r.off, err)
		}
		var e Event
		if err := json.Unmarshal(buf, &e); err != nil {
			return nil, fmt.Errorf("audit: replaying session: %s at %d: %w", f.Name(), r.off, err)
		}
		if seen[e.EventID] {
			continue
		}
		seen[e.EventID] = true
		out = append(out, normalizeEvent(e))
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Time.Equal(out[j].Time) {
			return out[i].Time.Before(out[j].Time)
		}
		return out[i].EventID < out[j].EventID
	})
	return out, nil
}

// normalizeEvent makes an event read back compare equal whichever store
// it came from: UTC time, nil for no masks.
func normalizeEvent(e Event) Event {
	e.Time = e.Time.UTC()
	if len(e.Masked) == 0 {
		e.Masked = nil
	}
	return e
}

type dayFile struct {
	key  dayKey
	path string
}

var dayFileRE = regexp.MustCompile(`^(events|decisions|requests|grants)-(\d{8})\.jsonl$`)

// listDayFiles lists the store's day files, sorted by name.
func listDayFiles(dir string) ([]dayFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audit: listing %s: %w", dir, err)
	}
	var out []dayFile
	for _, e := range ents {
		m := dayFileRE.FindStringSubmatch(e.Name())
		if m == nil || e.IsDir() {
			continue
		}
		day, _ := strconv.Atoi(m[2])
		var k kind
		for i, p := range filePrefix {
			if p == m[1] {
				k = kind(i)
			}
		}
		out = append(out, dayFile{key: dayKey{k, int32(day)}, path: filepath.Join(dir, e.Name())})
	}
	return out, nil
}

// loadIndex reads every events file in dir. With repair set it also cuts
// a torn last line (a crash mid-write) off every day file, so appends
// start on a fresh line; without, such a line is just skipped.
func loadIndex(dir string, repair bool, log *slog.Logger) (*embeddedIndex, error) {
	files, err := listDayFiles(dir)
	if err != nil {
		return nil, err
	}
	x := newIndex()
	for _, df := range files {
		if repair {
			if err := repairTail(df.path, log); err != nil {
				return nil, err
			}
		}
		if df.key.k != kindEvent {
			continue
		}
		if err := indexFile(x, df, log); err != nil {
			return nil, err
		}
	}
	return x, nil
}

func indexFile(x *embeddedIndex, df dayFile, log *slog.Logger) error {
	f, err := os.Open(df.path)
	if err != nil {
		return fmt.Errorf("audit: indexing: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	var off int64
	bad := 0
	for {
		line, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer: gather it.
			full := append([]byte(nil), line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = r.ReadSlice('\n')
				full = append(full, line...)
			}
			line = full
		}
		if err == io.EOF {
			break // a line without '\n' is torn (or still being written)
		}
		if err != nil {
			return fmt.Errorf("audit: indexing %s: %w", df.path, err)
		}
		var e Event
		if json.Unmarshal(bytes.TrimSpace(line), &e) != nil || e.EventID == "" {
			bad++
		} else {
			x.add(metaOf(&e), lineRef{day: df.key.day, off: off, n: int32(len(line))})
		}
		off += int64(len(line))
	}
	if bad > 0 {
		log.Warn("audit store: skipped unreadable lines", "file", df.path, "lines", bad)
	}
	return nil
}

// repairTail truncates path after its last '\n'.
func repairTail(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	size := fi.Size()
	buf := make([]byte, 64<<10)
	end := size
	for end > 0 {
		n := int64(len(buf))
		if n > end {
			n = end
		}
		if _, err := f.ReadAt(buf[:n], end-n); err != nil {
			return fmt.Errorf("audit: reading %s: %w", path, err)
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			end = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	if end == size {
		return nil
	}
	log.Warn("audit store: cut a torn last line (left by a crash)", "file", path, "bytes", size-end)
	return f.Truncate(end)
}

// EmbeddedReader reads an embedded store's directory without writing it.
type EmbeddedReader struct {
	dir string
	idx *embeddedIndex
}

// OpenEmbeddedReader indexes the store in dir as it is now.
func OpenEmbeddedReader(dir string) (*EmbeddedReader, error) {
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("audit: embedded store: %w", err)
	}
	idx, err := loadIndex(dir, false, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	return &EmbeddedReader{dir: dir, idx: idx}, nil
}

// Sessions lists sessions.
func (r *EmbeddedReader) Sessions(ctx context.Context, f SessionFilter) ([]SessionSummary, error) {
	return r.idx.list(f), nil
}

// Replay returns one session's events in order.
func (r *EmbeddedReader) Replay(ctx context.Context, sessionID string) ([]Event, error) {
	return r.idx.replay(ctx, r.dir, sessionID)
}

// Close does nothing; the reader holds no open files.
func (r *EmbeddedReader) Close() error { return nil }
