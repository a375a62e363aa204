package grants

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
)

// SharedMemStore is a SharedStore in memory: several Services in one
// process share it as replicas share PostgreSQL. For tests, and as the
// reference the store conformance suite holds PostgreSQL to. It keeps
// every change (nothing is pruned) unless PruneFeed is called.
type SharedMemStore struct {
	mu      sync.Mutex
	rs      records
	changes []Change // in order; changes[i].Seq == first+i
	first   uint64   // sequence of changes[0]
	seq     uint64
	watch   []chan struct{}
}

var _ SharedStore = (*SharedMemStore)(nil)

// NewSharedMemStore returns an empty SharedMemStore.
func NewSharedMemStore() *SharedMemStore {
	return &SharedMemStore{rs: newRecords(), first: 1}
}

// Load returns a copy of every record.
func (s *SharedMemStore) Load(ctx context.Context) (Snapshot, error) {
	snap, _, err := s.LoadAt(ctx)
	return snap, err
}

// LoadAt returns a copy of every record and the last sequence.
func (s *SharedMemStore) LoadAt(context.Context) (Snapshot, uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rs.snapshot(), s.seq, nil
}

// Apply is Publish with no writer and no events.
func (s *SharedMemStore) Apply(ctx context.Context, m Mutation) error {
	_, err := s.Publish(ctx, Change{Mutation: m})
	return err
}

// Publish checks versions and pending call keys, stores c.Mutation and
// appends c to the feed.
func (s *SharedMemStore) Publish(_ context.Context, c Change) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rs.check(&c.Mutation); err != nil {
		return 0, err
	}
	if err := s.rs.checkPendingKeys(&c.Mutation); err != nil {
		return 0, err
	}
	// A deep copy through JSON, as a database would hand it back.
	b, err := json.Marshal(c)
	if err != nil {
		return 0, fmt.Errorf("grant store: encoding a change: %w", err)
	}
	var stored Change
	if err := json.Unmarshal(b, &stored); err != nil {
		return 0, fmt.Errorf("grant store: decoding a change: %w", err)
	}
	s.seq++
	stored.Seq = s.seq
	m := cloneMutation(&stored.Mutation)
	s.rs.apply(&m)
	s.changes = append(s.changes, stored)
	for _, w := range s.watch {
		select {
		case w <- struct{}{}:
		default:
		}
	}
	return s.seq, nil
}

// Changes returns at most limit changes after seq.
func (s *SharedMemStore) Changes(_ context.Context, after uint64, limit int) ([]Change, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if after >= s.seq {
		return nil, nil
	}
	if after+1 < s.first {
		return nil, fmt.Errorf("asked for changes after %d, the oldest kept is %d: %w", after, s.first, ErrFeedGap)
	}
	i := int(after + 1 - s.first)
	j := min(len(s.changes), i+limit)
	out := make([]Change, j-i)
	for k := range out {
		c := s.changes[i+k]
		out[k] = Change{Seq: c.Seq, Writer: c.Writer, Mutation: cloneMutation(&c.Mutation), Events: append([]Event(nil), c.Events...)}
	}
	return out, nil
}

// PruneFeed drops the changes up to and including seq (never the last).
func (s *SharedMemStore) PruneFeed(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seq = min(seq, s.seq-1)
	for len(s.changes) > 0 && s.first <= seq {
		s.changes = s.changes[1:]
		s.first++
	}
}

// Watch returns a channel woken on every Publish.
func (s *SharedMemStore) Watch() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := make(chan struct{}, 1)
	s.watch = append(s.watch, ch)
	return ch
}

// Close does nothing: replicas share the store, and each Service's Close
// calls it.
func (s *SharedMemStore) Close() error { return nil }

// checkPendingKeys refuses a mutation that would leave two pending
// requests for one call (one prompt per call, cluster-wide): the second
// writer gets ErrConflict, catches up and joins the first request.
func (rs *records) checkPendingKeys(m *Mutation) error {
	after := make(map[string]string) // call key → pending request id, among the records m writes
	written := make(map[string]bool, len(m.Requests))
	for i := range m.Requests {
		r := &m.Requests[i]
		written[r.ID] = true
		if r.State != RequestPending || r.CallKey == "" {
			continue
		}
		if other, dup := after[r.CallKey]; dup {
			return fmt.Errorf("requests %s and %s are both pending for one call: %w", other, r.ID, ErrConflict)
		}
		after[r.CallKey] = r.ID
	}
	if len(after) == 0 {
		return nil
	}
	dropped := make(map[string]bool, len(m.DropRequests))
	for _, id := range m.DropRequests {
		dropped[id] = true
	}
	for id, r := range rs.requests {
		if written[id] || dropped[id] || r.State != RequestPending {
			continue
		}
		if other, dup := after[r.CallKey]; dup {
			return fmt.Errorf("request %s is already pending for the call request %s is for: %w", id, other, ErrConflict)
		}
	}
	return nil
}
