package grants

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// hookStore is a SharedMemStore that runs a hook (once) before a Publish
// lands, or reports a lost answer after it has landed.
type hookStore struct {
	*SharedMemStore
	mu       sync.Mutex
	before   func()
	loseNext bool
	down     bool
}

func (h *hookStore) Changes(ctx context.Context, after uint64, limit int) ([]Change, error) {
	h.mu.Lock()
	down := h.down
	h.mu.Unlock()
	if down {
		return nil, errors.New("connection refused")
	}
	return h.SharedMemStore.Changes(ctx, after, limit)
}

func (h *hookStore) Publish(ctx context.Context, c Change) (uint64, error) {
	h.mu.Lock()
	before, lose := h.before, h.loseNext
	h.before, h.loseNext = nil, false
	h.mu.Unlock()
	if before != nil {
		before()
	}
	seq, err := h.SharedMemStore.Publish(ctx, c)
	if err == nil && lose {
		return 0, errors.New("connection reset while committing (the commit landed)")
	}
	return seq, err
}

// replicaPair is two Services on one shared store with one clock.
func replicaPair(t *testing.T, store SharedStore) (a, b *fixture) {
	t.Helper()
	clk := newClock()
	mk := func() *fixture {
		rec := &recorder{}
		s, err := New(store, testConfig(), Options{Auditor: rec, Now: clk.Now, manualExpiry: true, FeedPoll: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return &fixture{t: t, s: s, clk: clk, rec: rec, ctx: context.Background()}
	}
	return mk(), mk()
}

func count(rec *recorder, typ EventType) int {
	n := 0
	for _, x := range rec.types() {
		if x == typ {
			n++
		}
	}
	return n
}

// Both replicas sweep the same overdue request: the one that loses the
// conditional write catches up, finds it expired, and writes nothing.
func TestSweepOnTwoReplicasExpiresOnce(t *testing.T) {
	hs := &hookStore{SharedMemStore: NewSharedMemStore()}
	a, b := replicaPair(t, hs)
	r := a.open(openParams("delete_repo", `{"repo":"x"}`, approval(nil)))
	if err := b.s.Sync(b.ctx); err != nil {
		t.Fatal(err)
	}
	a.clk.Add(testConfig().PendingTTL + time.Second)
	// b decides on what it read; a's sweep lands first.
	hs.mu.Lock()
	hs.before = func() { a.s.sweep() }
	hs.mu.Unlock()
	b.s.sweep()
	for _, f := range []*fixture{a, b} {
		got, err := f.s.Get(f.ctx, r.ID)
		if err != nil || got.State != RequestExpired || got.Version != 2 {
			t.Fatalf("request on a replica: %+v, %v; want expired at version 2", got, err)
		}
	}
	if n := count(a.rec, EventRequestExpired) + count(b.rec, EventRequestExpired); n != 1 {
		t.Fatalf("request.expired audited %d times across the replicas, want once", n)
	}
}

// A decision on stale state loses to the other replica's decision and is
// decided again: the request is no longer pending.
func TestConflictRedecides(t *testing.T) {
	hs := &hookStore{SharedMemStore: NewSharedMemStore()}
	a, b := replicaPair(t, hs)
	r := a.open(openParams("delete_repo", `{"repo":"y"}`, approval(nil)))
	if err := b.s.Sync(b.ctx); err != nil {
		t.Fatal(err)
	}
	hs.mu.Lock()
	hs.before = func() { a.decide(r.ID, bob, VerdictDeny, "no") }
	hs.mu.Unlock()
	_, err := b.s.Decide(b.ctx, r.ID, carol, VerdictApprove, "yes")
	if !errors.Is(err, ErrNotPending) {
		t.Fatalf("the losing decision = %v, want ErrNotPending (decided again on the stored request)", err)
	}
	got, _ := b.s.Get(b.ctx, r.ID)
	if got.State != RequestDenied {
		t.Fatalf("b reads %s, want denied", got.State)
	}
}

// A write whose commit answer was lost is found in the feed: installed
// and audited once, by its writer.
func TestLostAnswerIsALateSuccess(t *testing.T) {
	hs := &hookStore{SharedMemStore: NewSharedMemStore()}
	a, b := replicaPair(t, hs)
	r := a.open(openParams("delete_repo", `{"repo":"z"}`, approval(nil)))
	hs.mu.Lock()
	hs.loseNext = true
	hs.mu.Unlock()
	if _, err := a.s.Decide(a.ctx, r.ID, bob, VerdictApprove, "ok"); err == nil {
		t.Fatal("Decide reported success though the store's answer was lost")
	}
	if n := count(a.rec, EventRequestApproved); n != 0 {
		t.Fatalf("approval audited %d times before it was known to have landed", n)
	}
	if err := a.s.Sync(a.ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.s.Sync(b.ctx); err != nil {
		t.Fatal(err)
	}
	for _, f := range []*fixture{a, b} {
		if got, _ := f.s.Get(f.ctx, r.ID); got.State != RequestApproved {
			t.Fatalf("a replica reads %s, want approved", got.State)
		}
	}
	if na, nb := count(a.rec, EventRequestApproved), count(b.rec, EventRequestApproved); na != 1 || nb != 0 {
		t.Fatalf("approval audited %d times by its writer and %d by the other replica, want 1 and 0", na, nb)
	}
}

// A replica that fell behind a pruned feed reloads every record: newer
// versions are installed, records gone from the store are dropped.
func TestResyncAfterPrunedFeed(t *testing.T) {
	hs := NewSharedMemStore()
	a, b := replicaPair(t, hs)
	gone := a.open(openParams("delete_repo", `{"repo":"gone"}`, approval(nil)))
	kept := a.open(openParams("delete_repo", `{"repo":"kept"}`, approval(nil)))
	if err := b.s.Sync(b.ctx); err != nil {
		t.Fatal(err)
	}
	a.decide(kept.ID, bob, VerdictApprove, "ok")
	if err := hs.Apply(a.ctx, Mutation{DropRequests: []string{gone.ID}}); err != nil {
		t.Fatal(err)
	}
	_, head, _ := hs.LoadAt(a.ctx)
	hs.PruneFeed(head - 1)
	if err := b.s.Sync(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got, err := b.s.Get(b.ctx, kept.ID); err != nil || got.State != RequestApproved {
		t.Fatalf("after the reload b reads %v, %v; want approved", got, err)
	}
	if _, err := b.s.Get(b.ctx, gone.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a request dropped from the store is still on b: %v", err)
	}
	// b writes on from the reloaded state.
	g, err := b.s.ConsumeFor(b.ctx, mustGet(t, b, kept.ID).GrantID, alice)
	if err != nil || g.State != GrantConsumed {
		t.Fatalf("consume on b after the reload: %v, %v", g, err)
	}
}

func mustGet(t *testing.T, f *fixture, id string) *Request {
	t.Helper()
	r, err := f.s.Get(f.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The store being down fails writes closed (no hold, no approval), while
// reads of what is in memory keep answering: a call a grant allows flows.
func TestSharedStoreDownFailsWritesClosed(t *testing.T) {
	hs := &hookStore{SharedMemStore: NewSharedMemStore()}
	a, _ := replicaPair(t, hs)
	r := a.open(openParams("list_repos", `{}`, approval(func(ap *policy.Approval) { ap.GrantDuration = time.Hour; ap.SingleUse = false })))
	a.decide(r.ID, bob, VerdictApprove, "ok")
	hs.mu.Lock()
	hs.down = true // the database goes away
	hs.mu.Unlock()
	if _, _, err := a.s.Open(a.ctx, openParams("delete_repo", `{"repo":"q"}`, approval(nil))); err == nil {
		t.Fatal("Open succeeded with the store down: a hold must fail closed")
	}
	gs, err := a.s.ActiveForPrincipal(a.ctx, alice, "github", a.clk.Now())
	if err != nil || len(gs) != 1 {
		t.Fatalf("active grants with the store down: %v, %v; want the one time-bound grant", gs, err)
	}
}
