package grants

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options are a Service's collaborators; all are optional.
type Options struct {
	Auditor  Auditor  // every event; default none
	Notifier Notifier // every event, for webhooks; default none
	Logger   *slog.Logger
	Now      func() time.Time // the clock; default time.Now
	// Mask gives a target's masking profile, used on arguments and
	// reasons as they enter (see redact.go); default, and for a target it
	// returns nil for, mask.Default().
	Mask ProfileFunc
	// FeedPoll is how often a Service on a SharedStore reads the feed
	// when no wake came; default DefaultFeedPoll.
	FeedPoll time.Duration
	// Metrics counts requests, holds and grants (NewMetrics); nil: none.
	Metrics *Metrics

	// manualExpiry leaves the expiry loop off: tests with a fake clock
	// call sweep themselves.
	manualExpiry bool
}

// Service is just-in-time access: what ext_authz, the HTTP API, the CLI
// and the inbox call. All methods are safe for concurrent use.
//
// Writes (Open, Decide, Cancel, Revoke, consuming a single-use grant,
// expiry) are serialised and stored durably before they take effect and
// before anyone is told. Reads (Active, Get, List, Wait) never wait for a
// write to reach the disk.
type Service struct {
	cfg      Config
	store    Store
	log      *slog.Logger
	now      func() time.Time
	auditor  Auditor
	notifier Notifier
	metrics  *Metrics
	mask     ProfileFunc
	hub      hub
	seq      atomic.Uint64

	wmu sync.Mutex // serialises writes: store.Apply, install, events in order

	// On a SharedStore: the store, this replica's writer id in its feed,
	// and the last change applied (guarded by wmu).
	shared   SharedStore
	instance string
	feedSeq  uint64
	feedDone chan struct{}

	mu        sync.RWMutex // guards the maps below; records in them are never changed in place
	requests  map[string]*Request
	grants    map[string]grantEntry    // id → the current record and its use count
	pending   map[string]string        // call key → id of the pending request
	pendingBy map[string]int           // subject → pending requests
	active    map[string][]*Grant      // subject "\x00" target → active grants
	done      map[string]chan struct{} // pending request id → closed when it leaves pending

	timers    timerQueue
	closed    chan struct{}
	closeOnce sync.Once
	loopDone  chan struct{}
}

// grantEntry is a grant's current record and, while it is an active
// time-bound grant, the count of its uses (kept in memory: see
// Grant.Uses). One map holds both: with 10,000 live grants a second map
// by id was 0.4 MB.
type grantEntry struct {
	g    *Grant
	uses *atomic.Int64
}

// New loads the store's records and starts the expirer. The Service owns
// store from then on: Close closes it.
func New(store Store, cfg Config, opts Options) (*Service, error) {
	if store == nil {
		return nil, fmt.Errorf("grants: no store: %w", ErrInvalid)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("grants config: %w", err)
	}
	s := &Service{
		cfg: cfg, store: store, log: opts.Logger, now: opts.Now, auditor: opts.Auditor, notifier: opts.Notifier, metrics: opts.Metrics, mask: opts.Mask,
		requests: make(map[string]*Request), grants: make(map[string]grantEntry), pending: make(map[string]string),
		pendingBy: make(map[string]int), active: make(map[string][]*Grant), done: make(map[string]chan struct{}),
		closed: make(chan struct{}), loopDone: make(chan struct{}),
		feedDone: make(chan struct{}),
	}
	s.shared, _ = store.(SharedStore)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.auditor == nil {
		s.auditor = nopAuditor{}
	}
	if s.notifier == nil {
		s.notifier = nopNotifier{}
	}
	s.timers.init()
	if s.shared != nil {
		s.instance = newID("rep_")
	}
	snap, err := s.load(context.Background())
	if err != nil {
		return nil, err
	}
	tx := &txn{}
	ln, _ := store.(lender)
	for i := range snap.Requests {
		tx.reqs = append(tx.reqs, keepRequest(ln, &snap.Requests[i]))
	}
	for i := range snap.Grants {
		tx.grants = append(tx.grants, keepGrant(ln, &snap.Grants[i]))
	}
	s.install(tx)
	s.log.Info("grant store loaded", "requests", len(snap.Requests), "grants", len(snap.Grants))
	if s.metrics != nil {
		s.metrics.svc.Store(s)
	}
	if opts.manualExpiry {
		close(s.loopDone)
	} else {
		go s.expireLoop()
	}
	if s.shared != nil {
		poll := opts.FeedPoll
		if poll <= 0 {
			poll = DefaultFeedPoll
		}
		go s.feedLoop(poll)
	} else {
		close(s.feedDone)
	}
	return s, nil
}

// load reads every record and masks what a store written before masking
// holds. On a shared store another replica starting at the same time may
// store the same masking first: the conflict means reading again.
func (s *Service) load(ctx context.Context) (Snapshot, error) {
	for try := 0; ; try++ {
		var snap Snapshot
		var err error
		if s.shared != nil {
			snap, s.feedSeq, err = s.shared.LoadAt(ctx)
		} else {
			snap, err = s.store.Load(ctx)
		}
		if err != nil {
			return Snapshot{}, fmt.Errorf("grants: loading the store: %w", err)
		}
		legacyGrantIssuers(&snap)
		err = s.redactLoaded(ctx, &snap)
		if s.shared != nil && errors.Is(err, ErrConflict) && try < maxConflictRetries {
			continue
		}
		return snap, err
	}
}

// Close stops the expirer, ends every subscription, wakes every Wait with
// ErrClosed, and closes the store. Later calls fail with ErrClosed.
func (s *Service) Close() error {
	var err error
	s.closeOnce.Do(func() {
		s.wmu.Lock()
		close(s.closed)
		s.wmu.Unlock()
		<-s.loopDone
		<-s.feedDone
		s.hub.closeAll()
		err = s.store.Close()
	})
	return err
}

// HoldWindow is how long ext_authz holds a call for approval.
func (s *Service) HoldWindow() time.Duration { return s.cfg.HoldWindow }

// ApprovalURL is the approval page of request id.
func (s *Service) ApprovalURL(id string) string { return s.cfg.RequestURL(id) }

// Subscribe returns every event from now on, until ctx ends. A subscriber
// that falls more than 256 events behind is dropped: its channel is
// closed, and it should subscribe again and reload with List and
// ListGrants. The channel is also closed when ctx ends or the Service
// closes.
func (s *Service) Subscribe(ctx context.Context) <-chan Event {
	s.wmu.Lock() // no event is sent while subscribing: none is missed or doubled
	defer s.wmu.Unlock()
	select {
	case <-s.closed:
		ch := make(chan Event)
		close(ch)
		return ch
	default:
	}
	return s.hub.subscribe(ctx)
}

// txn is one write being prepared: new versions of records, drops, and
// the events to send once stored.
type txn struct {
	now        time.Time
	reqs       []*Request
	grants     []*Grant
	dropReqs   []string
	dropGrants []string
	events     []Event
	// notes are audit-only events sent even when the write is refused
	// (a refused decision).
	notes []Event
	// after is returned once the write is stored (a decision that found
	// its request expired stores the expiry, then fails).
	after error
}

// putRequest stages r as the next version of its record.
func (tx *txn) putRequest(r *Request) {
	for i, staged := range tx.reqs {
		if staged.ID == r.ID {
			r.Version = staged.Version
			tx.reqs[i] = r
			return
		}
	}
	r.Version++
	tx.reqs = append(tx.reqs, r)
}

// putGrant stages g as the next version of its record.
func (tx *txn) putGrant(g *Grant) {
	for i, staged := range tx.grants {
		if staged.ID == g.ID {
			g.Version = staged.Version
			tx.grants[i] = g
			return
		}
	}
	g.Version++
	tx.grants = append(tx.grants, g)
}

// emit queues an event with a copy of its records as they are now.
func (tx *txn) emit(e Event) {
	e.At = tx.now
	e.Request = e.Request.Clone()
	e.Grant = e.Grant.Clone()
	tx.events = append(tx.events, e)
}

func (tx *txn) mutation() Mutation {
	m := Mutation{DropRequests: tx.dropReqs, DropGrants: tx.dropGrants}
	for _, r := range tx.reqs {
		m.Requests = append(m.Requests, *r)
	}
	for _, g := range tx.grants {
		m.Grants = append(m.Grants, *g)
	}
	return m
}

// update runs fn to prepare a write, stores it, makes it visible, and
// sends its events, all under the write lock so events leave in order.
func (s *Service) update(ctx context.Context, fn func(tx *txn) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.closed:
		return ErrClosed
	default:
	}
	if s.shared != nil {
		return s.updateShared(ctx, fn)
	}
	tx := &txn{now: s.now()}
	if err := fn(tx); err != nil {
		s.send(tx.notes)
		return err
	}
	m := tx.mutation()
	if !m.empty() {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.store.Apply(ctx, m); err != nil {
			return fmt.Errorf("grant store: %w", err)
		}
		s.borrow(tx)
		s.install(tx)
	}
	s.send(tx.notes)
	s.send(tx.events)
	return tx.after
}

// updateShared is update on a SharedStore: it first applies what other
// replicas wrote, so fn decides on the current records; a conditional
// write lost to another replica (ErrConflict) is not an error but a
// reason to catch up and decide again (a single-use grant raced from two
// replicas is then found used: ErrGrantUsed). Callers hold wmu.
func (s *Service) updateShared(ctx context.Context, fn func(tx *txn) error) error {
	for try := 0; ; try++ {
		if err := s.catchUp(ctx); err != nil {
			return err
		}
		tx := &txn{now: s.now()}
		if err := fn(tx); err != nil {
			s.send(tx.notes)
			return err
		}
		m := tx.mutation()
		if !m.empty() {
			if err := ctx.Err(); err != nil {
				return err
			}
			for i := range tx.events {
				tx.events[i].ID = newID(EventIDPrefix)
			}
			_, err := s.shared.Publish(ctx, Change{Writer: s.instance, Mutation: m, Events: tx.events})
			if errors.Is(err, ErrConflict) && try < maxConflictRetries {
				s.log.Debug("grants: another replica wrote first; deciding again", "error", err)
				continue
			}
			if err != nil {
				return fmt.Errorf("grant store: %w", err)
			}
			s.install(tx)
		}
		s.send(tx.notes)
		s.send(tx.events)
		return tx.after
	}
}

// keepRequest is the record the Service keeps for r, a record just
// loaded: the store's own when it lends one equal to r (load may have
// changed r: an issuer filled in), else a copy of r (not a pointer into
// the snapshot, which would keep the whole snapshot alive).
func keepRequest(ln lender, r *Request) *Request {
	if ln != nil {
		if lent := ln.lentRequest(r.ID, r.Version); lent != nil && reflect.DeepEqual(lent, r) {
			return lent
		}
	}
	c := *r
	return &c
}

// keepGrant is keepRequest for a grant.
func keepGrant(ln lender, g *Grant) *Grant {
	if ln != nil {
		if lent := ln.lentGrant(g.ID, g.Version); lent != nil && reflect.DeepEqual(lent, g) {
			return lent
		}
	}
	c := *g
	return &c
}

// borrow replaces the records of tx, just stored, by the store's own
// copies of them when it lends them (equal by construction: the store
// keeps a deep copy of what Apply was given), so that the Service does
// not keep a second copy of every record it writes. Callers hold wmu.
func (s *Service) borrow(tx *txn) {
	ln, ok := s.store.(lender)
	if !ok {
		return
	}
	for i, r := range tx.reqs {
		if lent := ln.lentRequest(r.ID, r.Version); lent != nil {
			tx.reqs[i] = lent
		}
	}
	for i, g := range tx.grants {
		if lent := ln.lentGrant(g.ID, g.Version); lent != nil {
			tx.grants[i] = lent
		}
	}
}

// send numbers events and hands them to the auditor, the notifier and
// subscribers.
func (s *Service) send(events []Event) {
	for _, e := range events {
		if e.ID == "" {
			e.ID = newID(EventIDPrefix)
		}
		e.Seq = s.seq.Add(1)
		s.auditor.Record(e)
		s.notifier.Notify(e)
		if s.metrics != nil {
			s.metrics.event(&e)
		}
		s.hub.publish(e)
	}
}

// install makes staged records current, keeps the indexes, wakes waiters
// of requests that left pending, and schedules deadlines (once per record
// and state: a new version in the same state keeps its deadline).
func (s *Service) install(tx *txn) {
	var sched []deadline
	s.mu.Lock()
	for _, r := range tx.reqs {
		old := s.requests[r.ID]
		s.requests[r.ID] = r
		wasPending := old != nil && old.State == RequestPending
		switch {
		case r.State == RequestPending && !wasPending:
			s.pending[r.CallKey] = r.ID
			s.pendingBy[principalKey(r.Principal.Issuer, r.Principal.Subject)]++
			s.done[r.ID] = make(chan struct{})
			sched = append(sched, deadline{r.ExpiresAt, r.ID, timerRequest})
		case r.State != RequestPending && (old == nil || wasPending):
			if wasPending {
				s.unpend(old)
			}
			sched = append(sched, deadline{r.EndedAt.Add(s.cfg.Retention), r.ID, timerPruneRequest})
		}
	}
	for _, g := range tx.grants {
		e := s.grants[g.ID] // a new version in the same state keeps its use count
		old := e.g
		e.g = g
		wasActive := old != nil && old.State == GrantActive
		switch {
		case g.State == GrantActive && !wasActive:
			if g.MaxUses == 0 {
				c := new(atomic.Int64)
				c.Store(int64(g.Uses))
				e.uses = c
			}
			sched = append(sched, deadline{g.Expiry, g.ID, timerGrant})
		case g.State != GrantActive && (old == nil || wasActive):
			e.uses = nil
			sched = append(sched, deadline{g.EndedAt.Add(s.cfg.Retention), g.ID, timerPruneGrant})
		}
		s.grants[g.ID] = e
	}
	s.reindex(tx.grants)
	for _, id := range tx.dropReqs {
		if old := s.requests[id]; old != nil && old.State == RequestPending {
			s.unpend(old)
		}
		delete(s.requests, id)
	}
	var dropped []*Grant
	for _, id := range tx.dropGrants {
		if g := s.grants[id].g; g != nil {
			delete(s.grants, id)
			dropped = append(dropped, &Grant{ID: id, Subject: g.Subject, Target: g.Target, State: GrantRevoked})
		}
	}
	s.reindex(dropped)
	s.mu.Unlock()
	for _, d := range sched {
		s.timers.add(d.at, d.id, d.kind)
	}
}

// unpend removes a request that left pending from the pending indexes and
// wakes its waiters. Callers hold mu.
func (s *Service) unpend(old *Request) {
	if s.pending[old.CallKey] == old.ID {
		delete(s.pending, old.CallKey)
	}
	k := principalKey(old.Principal.Issuer, old.Principal.Subject)
	if n := s.pendingBy[k] - 1; n > 0 {
		s.pendingBy[k] = n
	} else {
		delete(s.pendingBy, k)
	}
	if ch := s.done[old.ID]; ch != nil {
		close(ch)
		delete(s.done, old.ID)
	}
}

func activeKey(subject, target string) string { return subject + "\x00" + target }

// reindex puts gs (new versions of grants; the last of one id wins) in
// the active index, kept sorted by id so Active is deterministic. Each
// (subject, target) list is rebuilt once however many of its grants
// changed (copy on write: readers may hold the old slice), so loading a
// store of n grants of one holder costs n log n, not n² copies. Callers
// hold mu.
func (s *Service) reindex(gs []*Grant) {
	switch len(gs) {
	case 0:
		return
	case 1:
		s.reindexKey(activeKey(gs[0].Subject, gs[0].Target), gs)
		return
	}
	byKey := make(map[string][]*Grant)
	for _, g := range gs {
		k := activeKey(g.Subject, g.Target)
		byKey[k] = append(byKey[k], g)
	}
	for k, changed := range byKey {
		s.reindexKey(k, changed)
	}
}

// reindexKey rebuilds the active list of key k with changed, grants of
// that key (the last of one id wins).
func (s *Service) reindexKey(k string, changed []*Grant) {
	last := make(map[string]*Grant, len(changed))
	for _, g := range changed {
		last[g.ID] = g
	}
	old := s.active[k]
	next := make([]*Grant, 0, len(old)+len(last))
	for _, x := range old {
		if last[x.ID] == nil {
			next = append(next, x)
		}
	}
	byID := func(a, b *Grant) int { return strings.Compare(a.ID, b.ID) }
	if len(last) == 1 {
		// One change, the usual case: an insertion, not a sort.
		if g := changed[len(changed)-1]; g.State == GrantActive {
			i, _ := slices.BinarySearchFunc(next, g, byID)
			next = slices.Insert(next, i, g)
		}
	} else {
		n := len(next)
		for _, g := range last {
			if g.State == GrantActive {
				next = append(next, g)
			}
		}
		if len(next) > n {
			slices.SortFunc(next, byID)
		}
	}
	if len(next) == 0 {
		delete(s.active, k)
	} else {
		s.active[k] = next
	}
}

// request returns the current record (shared: do not change it).
func (s *Service) request(id string) *Request {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.requests[id]
}

// grant returns the current record (shared) and, for an active
// time-bound grant, its use counter.
func (s *Service) grant(id string) (*Grant, *atomic.Int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	e := s.grants[id]
	return e.g, e.uses
}

// grantView is a copy of g for callers, with its current use count.
func (s *Service) grantView(g *Grant, uses *atomic.Int64) *Grant {
	c := g.Clone()
	if uses != nil {
		c.Uses = int(uses.Load())
	}
	return c
}

func notFound(what, id string) error {
	return fmt.Errorf("%s %q: %w", what, id, ErrNotFound)
}

// isRuleError reports whether err is a refusal by the approval rules
// (worth an audit note), not a lookup or storage failure.
func isRuleError(err error) bool {
	for _, target := range []error{ErrSelfApproval, ErrNotApprover, ErrAlreadyDecided, ErrReasonRequired, ErrNotAllowed, ErrInvalid} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}
