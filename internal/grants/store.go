package grants

import (
	"context"
	"fmt"
	"sync"
)

// Store keeps requests and grants. The Service holds the working set in
// memory and writes every change through Apply; Load is called once, at
// start. A store for several replicas (a shared database) implements the
// same contract: Apply is atomic and conditional on versions.
type Store interface {
	// Load returns every stored record.
	Load(ctx context.Context) (Snapshot, error)
	// Apply stores m atomically: all of it or nothing. When it returns nil
	// the change is durable (it survives a crash of the process or the
	// machine, as far as the store's medium allows). Each record's Version
	// must be one more than the stored one (1 for a new record), else
	// Apply fails with ErrConflict and changes nothing.
	Apply(ctx context.Context, m Mutation) error
	// Close releases the store.
	Close() error
}

// Snapshot is everything a store holds.
type Snapshot struct {
	Requests []Request `json:"requests"`
	Grants   []Grant   `json:"grants"`
}

// Mutation is one atomic change: whole records to write (insert or
// replace), and ids of records to drop.
type Mutation struct {
	Requests     []Request `json:"requests,omitempty"`
	Grants       []Grant   `json:"grants,omitempty"`
	DropRequests []string  `json:"drop_requests,omitempty"`
	DropGrants   []string  `json:"drop_grants,omitempty"`
}

func (m *Mutation) empty() bool {
	return len(m.Requests) == 0 && len(m.Grants) == 0 && len(m.DropRequests) == 0 && len(m.DropGrants) == 0
}

// records is a store's working copy, shared by MemStore and FileStore.
// Each record is one value that is never changed in place: apply stores
// a new value for a new version. That is what lets a store lend its
// records to the Service (lender) instead of both keeping a copy.
type records struct {
	requests map[string]*Request
	grants   map[string]*Grant
}

func newRecords() records {
	return records{requests: make(map[string]*Request), grants: make(map[string]*Grant)}
}

// lender is a Store that keeps each record as one value never changed in
// place (records) and lends it out. The Service never changes a record in
// place either, so where its record equals the store's it keeps the
// store's: each record is then held once in memory, not once by the store
// and once by the Service (10,000 live grants were two copies of each).
type lender interface {
	// lentRequest and lentGrant return the stored record id at version, or
	// nil. The caller must not change it.
	lentRequest(id string, version uint64) *Request
	lentGrant(id string, version uint64) *Grant
}

func (rs *records) lentRequest(id string, version uint64) *Request {
	if r := rs.requests[id]; r != nil && r.Version == version {
		return r
	}
	return nil
}

func (rs *records) lentGrant(id string, version uint64) *Grant {
	if g := rs.grants[id]; g != nil && g.Version == version {
		return g
	}
	return nil
}

// check verifies the versions of m against the stored records.
func (rs *records) check(m *Mutation) error {
	for i := range m.Requests {
		r := &m.Requests[i]
		var stored uint64
		if old := rs.requests[r.ID]; old != nil {
			stored = old.Version
		}
		if err := checkVersion("request", r.ID, r.Version, stored); err != nil {
			return err
		}
	}
	for i := range m.Grants {
		g := &m.Grants[i]
		var stored uint64
		if old := rs.grants[g.ID]; old != nil {
			stored = old.Version
		}
		if err := checkVersion("grant", g.ID, g.Version, stored); err != nil {
			return err
		}
	}
	return nil
}

func checkVersion(what, id string, next, stored uint64) error {
	if id == "" {
		return fmt.Errorf("%s with no id: %w", what, ErrInvalid)
	}
	if next != stored+1 {
		return fmt.Errorf("%s %s: writing version %d over stored version %d: %w", what, id, next, stored, ErrConflict)
	}
	return nil
}

// apply writes m into the records, without checks (replay). Each record
// becomes a value of its own (not a pointer into m's slices, which would
// keep all of m alive for as long as one of its records is); m must not
// share anything with a caller's records (callers pass a clone, or a
// decoded log record).
func (rs *records) apply(m *Mutation) {
	for _, r := range m.Requests {
		rs.requests[r.ID] = &r
	}
	for _, g := range m.Grants {
		rs.grants[g.ID] = &g
	}
	for _, id := range m.DropRequests {
		delete(rs.requests, id)
	}
	for _, id := range m.DropGrants {
		delete(rs.grants, id)
	}
}

// snapshot copies the records out.
func (rs *records) snapshot() Snapshot {
	s := Snapshot{Requests: make([]Request, 0, len(rs.requests)), Grants: make([]Grant, 0, len(rs.grants))}
	for _, r := range rs.requests {
		s.Requests = append(s.Requests, *r.Clone())
	}
	for _, g := range rs.grants {
		s.Grants = append(s.Grants, *g.Clone())
	}
	return s
}

// MemStore keeps records in memory only: for tests and for running without
// a disk. Nothing survives the process.
type MemStore struct {
	mu sync.Mutex
	rs records
}

var (
	_ Store  = (*MemStore)(nil)
	_ lender = (*MemStore)(nil)
)

// NewMemStore returns an empty MemStore.
func NewMemStore() *MemStore { return &MemStore{rs: newRecords()} }

func (s *MemStore) lentRequest(id string, version uint64) *Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rs.lentRequest(id, version)
}

func (s *MemStore) lentGrant(id string, version uint64) *Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rs.lentGrant(id, version)
}

// Load returns a copy of every record.
func (s *MemStore) Load(context.Context) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rs.snapshot(), nil
}

// Apply stores m after checking versions.
func (s *MemStore) Apply(_ context.Context, m Mutation) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.rs.check(&m); err != nil {
		return err
	}
	c := cloneMutation(&m)
	s.rs.apply(&c)
	return nil
}

// Close does nothing.
func (s *MemStore) Close() error { return nil }

// rewrite replaces every record (see rewriter).
func (s *MemStore) rewrite(_ context.Context, snap Snapshot) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rs = recordsOf(snap)
	return nil
}

// recordsOf is a working copy holding exactly snap's records.
func recordsOf(snap Snapshot) records {
	rs := newRecords()
	for _, r := range snap.Requests {
		rs.requests[r.ID] = r.Clone()
	}
	for _, g := range snap.Grants {
		rs.grants[g.ID] = g.Clone()
	}
	return rs
}

func cloneMutation(m *Mutation) Mutation {
	c := Mutation{DropRequests: append([]string(nil), m.DropRequests...), DropGrants: append([]string(nil), m.DropGrants...)}
	for i := range m.Requests {
		c.Requests = append(c.Requests, *m.Requests[i].Clone())
	}
	for i := range m.Grants {
		c.Grants = append(c.Grants, *m.Grants[i].Clone())
	}
	return c
}
