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
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// embeddedIndex knows, per session, its summary and where each of its
// messages and decisions is (day file, offset, length); and where the
// rows of each access request and grant are, for replay's joins.
type embeddedIndex struct {
	mu       sync.RWMutex
	sessions map[string]*sessionIndex
	// orphans are the decisions recorded without a session id, by decision
	// id (a batch message's "<id>.<i>" under <id>): a session's messages
	// name them (the initialize call's).
	orphans  map[string][]lineRef
	requests map[string][]lineRef // request events by request id
	grants   map[string][]lineRef // grant events by grant id
}

type sessionIndex struct {
	sum                          SessionSummary
	firstNS, lastNS              int64
	principalNS, clientNS, tgtNS int64 // time of the row the value came from (argMin)
	refs                         []lineRef
	decisionIDs                  map[string]bool // decision ids its messages carry
	// tools and outcomes are those of its messages and decisions, for
	// SessionFilter.Tool and Outcome.
	tools, outcomes map[string]bool
}

type lineRef struct {
	k   kind
	day int32
	off int64
	n   int32
}

// rowMeta is what the index needs of a row.
type rowMeta struct {
	k                                                                kind
	id, session, principal, client, target, direction, outcome, tool string
	decision, request, grant                                         string
	ns                                                               int64
	masked                                                           int64
}

// metaOf describes r for the index.
func metaOf(r Record) *rowMeta {
	switch v := r.(type) {
	case *Event:
		var masked int64
		for _, n := range v.Masked {
			masked += int64(max(n, 0))
		}
		return &rowMeta{k: kindEvent, id: v.EventID, session: v.SessionID, principal: v.Principal, client: v.ClientID, target: v.Target,
			direction: string(v.Direction), outcome: v.Outcome, tool: v.Tool, decision: v.DecisionID, ns: v.Time.UnixNano(), masked: masked}
	case *Decision:
		return &rowMeta{k: kindDecision, id: v.DecisionID, session: v.SessionID, principal: v.Principal, client: v.ClientID, target: v.Target,
			outcome: v.Outcome, tool: v.Tool, request: v.RequestID, ns: v.Time.UnixNano()}
	case *RequestEvent:
		return &rowMeta{k: kindRequest, id: v.EventID, request: v.RequestID, ns: v.Time.UnixNano()}
	case *GrantEvent:
		return &rowMeta{k: kindGrant, id: v.EventID, grant: v.GrantID, ns: v.Time.UnixNano()}
	}
	return nil
}

func newIndex() *embeddedIndex {
	return &embeddedIndex{sessions: map[string]*sessionIndex{}, orphans: map[string][]lineRef{},
		requests: map[string][]lineRef{}, grants: map[string][]lineRef{}}
}

// baseDecisionID is the decision id a message records for a decision row:
// a batch's message i > 0 is decided under "<id>.<i>".
func baseDecisionID(id string) string {
	if i := strings.IndexByte(id, '.'); i >= 0 {
		return id[:i]
	}
	return id
}

// add indexes one row; it keeps the same summary semantics as the
// ClickHouse query (first non-empty principal/client/target by time, over
// messages and decisions).
func (x *embeddedIndex) add(m *rowMeta, ref lineRef) {
	x.mu.Lock()
	defer x.mu.Unlock()
	switch m.k {
	case kindRequest:
		if m.request != "" {
			x.requests[m.request] = append(x.requests[m.request], ref)
		}
		return
	case kindGrant:
		if m.grant != "" {
			x.grants[m.grant] = append(x.grants[m.grant], ref)
		}
		return
	case kindDecision:
		if m.session == "" {
			id := baseDecisionID(m.id)
			x.orphans[id] = append(x.orphans[id], ref)
			return
		}
	}
	if m.session == "" {
		return
	}
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
	s.tools = addKey(s.tools, m.tool)
	s.outcomes = addKey(s.outcomes, m.outcome)
	if m.k == kindDecision {
		s.sum.Decisions++
		if slices.Contains(DeniedOutcomes, m.outcome) {
			s.sum.Denied++
		}
		if m.request != "" {
			s.sum.Held++
			if m.outcome == "allow" {
				s.sum.Approved++
			}
		}
		if slices.Contains(ErrorOutcomes, m.outcome) {
			s.sum.Errors++
		}
		return
	}
	s.sum.Events++
	if m.direction == string(DirRequest) {
		s.sum.Requests++
	}
	if m.direction == string(DirError) && m.outcome == "allow" {
		s.sum.Errors++
	}
	s.sum.Masked += m.masked
	if m.decision != "" {
		if s.decisionIDs == nil {
			s.decisionIDs = map[string]bool{}
		}
		s.decisionIDs[m.decision] = true
	}
}

// addKey adds a non-empty k to set, making the set on first use.
func addKey(set map[string]bool, k string) map[string]bool {
	if k == "" {
		return set
	}
	if set == nil {
		set = map[string]bool{}
	}
	set[k] = true
	return set
}

func (x *embeddedIndex) replace(y *embeddedIndex) {
	y.mu.Lock()
	sessions, orphans, requests, grants := y.sessions, y.orphans, y.requests, y.grants
	y.mu.Unlock()
	x.mu.Lock()
	x.sessions, x.orphans, x.requests, x.grants = sessions, orphans, requests, grants
	x.mu.Unlock()
}

func (x *embeddedIndex) list(f SessionFilter) []SessionSummary {
	x.mu.RLock()
	var out []SessionSummary
	for _, s := range x.sessions {
		if f.Principal != "" && s.sum.Principal != f.Principal ||
			f.ClientID != "" && s.sum.ClientID != f.ClientID ||
			f.Target != "" && s.sum.Target != f.Target ||
			f.Tool != "" && !s.tools[f.Tool] ||
			f.Outcome != "" && !s.outcomes[f.Outcome] ||
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

// replay reads the session's rows and the request and grant rows they
// name; see Trail.
func (x *embeddedIndex) replay(ctx context.Context, dir, session string) (*Trail, error) {
	x.mu.RLock()
	var refs []lineRef
	if s := x.sessions[session]; s != nil {
		refs = append(refs, s.refs...)
		for id := range s.decisionIDs {
			refs = append(refs, x.orphans[id]...)
		}
	}
	x.mu.RUnlock()
	t := &Trail{SessionID: session}
	rd := &lineReader{dir: dir}
	defer rd.close()
	seen := map[string]bool{}
	keep := func(k kind, id string) bool {
		key := k.String() + "/" + id
		if seen[key] {
			return false
		}
		seen[key] = true
		return true
	}
	err := rd.read(ctx, refs, func(k kind, line []byte) error {
		switch k {
		case kindEvent:
			var e Event
			if err := json.Unmarshal(line, &e); err != nil {
				return err
			}
			if keep(k, e.EventID) {
				t.Events = append(t.Events, normalizeEvent(e))
			}
		case kindDecision:
			var d Decision
			if err := json.Unmarshal(line, &d); err != nil {
				return err
			}
			if keep(k, d.DecisionID) {
				d.Time = d.Time.UTC()
				t.Decisions = append(t.Decisions, d)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(t.Events) == 0 && len(t.Decisions) == 0 {
		return nil, ErrNoSession
	}
	// The access requests the decisions were held on, then the grants the
	// decisions, messages and requests name.
	x.mu.RLock()
	refs = refs[:0]
	for _, id := range t.requestIDs() {
		refs = append(refs, x.requests[id]...)
	}
	x.mu.RUnlock()
	err = rd.read(ctx, refs, func(k kind, line []byte) error {
		var r RequestEvent
		if err := json.Unmarshal(line, &r); err != nil {
			return err
		}
		if keep(k, r.EventID) {
			r.Time = r.Time.UTC()
			t.Requests = append(t.Requests, r)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	x.mu.RLock()
	refs = refs[:0]
	for _, id := range t.grantIDs() {
		refs = append(refs, x.grants[id]...)
	}
	x.mu.RUnlock()
	err = rd.read(ctx, refs, func(k kind, line []byte) error {
		var g GrantEvent
		if err := json.Unmarshal(line, &g); err != nil {
			return err
		}
		if keep(k, g.EventID) {
			t.Grants = append(t.Grants, normalizeGrant(g))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	t.sort()
	return t, nil
}

// lineReader reads indexed lines, keeping one day file open at a time.
type lineReader struct {
	dir string
	f   *os.File
	key dayKey
	buf []byte
}

func (r *lineReader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

// read calls fn with each referenced line, in file order.
func (r *lineReader) read(ctx context.Context, refs []lineRef, fn func(k kind, line []byte) error) error {
	refs = slices.Clone(refs)
	sort.Slice(refs, func(i, j int) bool {
		if refs[i].k != refs[j].k {
			return refs[i].k < refs[j].k
		}
		if refs[i].day != refs[j].day {
			return refs[i].day < refs[j].day
		}
		return refs[i].off < refs[j].off
	})
	for _, ref := range refs {
		if err := ctx.Err(); err != nil {
			return err
		}
		key := dayKey{ref.k, ref.day}
		if r.f == nil || r.key != key {
			r.close()
			f, err := os.Open(filepath.Join(r.dir, dayFileName(key)))
			if err != nil {
				return fmt.Errorf("audit: replaying session: %w", err)
			}
			r.f, r.key = f, key
		}
		if cap(r.buf) < int(ref.n) {
			r.buf = make([]byte, ref.n)
		}
		r.buf = r.buf[:ref.n]
		if _, err := r.f.ReadAt(r.buf, ref.off); err != nil {
			return fmt.Errorf("audit: replaying session: reading %s at %d: %w", r.f.Name(), ref.off, err)
		}
		if err := fn(ref.k, r.buf); err != nil {
			return fmt.Errorf("audit: replaying session: %s at %d: %w", r.f.Name(), ref.off, err)
		}
	}
	return nil
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

// loadIndex reads every day file in dir. With repair set it also cuts
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
		if m := readMeta(df.key.k, bytes.TrimSpace(line)); m == nil {
			bad++
		} else {
			x.add(m, lineRef{k: df.key.k, day: df.key.day, off: off, n: int32(len(line))})
		}
		off += int64(len(line))
	}
	if bad > 0 {
		log.Warn("audit store: skipped unreadable lines", "file", df.path, "lines", bad)
	}
	return nil
}

// readMeta decodes one line of a k file for the index; nil when it is
// unreadable or has no id.
func readMeta(k kind, line []byte) *rowMeta {
	var r Record
	switch k {
	case kindEvent:
		r = &Event{}
	case kindDecision:
		r = &Decision{}
	case kindRequest:
		r = &RequestEvent{}
	case kindGrant:
		r = &GrantEvent{}
	default:
		return nil
	}
	if json.Unmarshal(line, r) != nil {
		return nil
	}
	m := metaOf(r)
	if m == nil || m.id == "" {
		return nil
	}
	return m
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

// Replay returns what was recorded about one session; see Store.
func (r *EmbeddedReader) Replay(ctx context.Context, sessionID string) (*Trail, error) {
	return r.idx.replay(ctx, r.dir, sessionID)
}

// Close does nothing; the reader holds no open files.
func (r *EmbeddedReader) Close() error { return nil }

// normalizeGrant makes a grant event read back compare equal whichever
// store it came from: UTC times, nil for no tools.
func normalizeGrant(g GrantEvent) GrantEvent {
	g.Time = g.Time.UTC()
	// ClickHouse keeps expires_at in whole seconds, and no expiry as 0.
	if g.ExpiresAt.Unix() <= 0 {
		g.ExpiresAt = time.Time{}
	} else {
		g.ExpiresAt = g.ExpiresAt.Truncate(time.Second).UTC()
	}
	if len(g.Tools) == 0 {
		g.Tools = nil
	}
	return g
}
