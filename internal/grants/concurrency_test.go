package grants

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/policy"
)

func TestConsumeSingleUseExactlyOnce(t *testing.T) {
	store := NewMemStore()
	f := newFixture(t, store, testConfig())
	r := f.decide(f.open(openParams("delete_repository", `{"repo":"x"}`, approval(nil))).ID, bob, VerdictApprove, "")
	const n = 50
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			_, errs[i] = f.s.Consume(f.ctx, r.GrantID, "alice")
		})
	}
	close(start)
	wg.Wait()
	ok, used := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrGrantUsed):
			used++
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if ok != 1 || used != n-1 {
		t.Fatalf("successes = %d, ErrGrantUsed = %d; want 1 and %d", ok, used, n-1)
	}
	snap, _ := store.Load(f.ctx)
	if len(snap.Grants) != 1 || snap.Grants[0].State != GrantConsumed || snap.Grants[0].Uses != 1 {
		t.Fatalf("stored grant = %+v, want consumed with 1 use", snap.Grants)
	}
	consumed := 0
	for _, typ := range f.rec.types() {
		if typ == EventGrantConsumed {
			consumed++
		}
	}
	if consumed != 1 {
		t.Errorf("%d grant.consumed events, want 1", consumed)
	}
	if in, _ := f.s.Active(f.ctx, "alice", "github", f.clk.Now()); len(in) != 0 {
		t.Errorf("a consumed grant is still active: %+v", in)
	}
}

func TestTimeBoundUsesCounted(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	a := approval(func(a *policy.Approval) { a.SingleUse = false; a.GrantDuration = time.Hour })
	r := f.decide(f.open(openParams("t", `{}`, a)).ID, bob, VerdictApprove, "")
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			if _, err := f.s.Consume(f.ctx, r.GrantID, "alice"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	g, _ := f.s.GetGrant(f.ctx, r.GrantID)
	if g.Uses != 40 || g.UsesLeft() != -1 {
		t.Fatalf("uses = %d, left = %d; want 40, -1", g.Uses, g.UsesLeft())
	}
	// The count is written with the grant's next change.
	g, err := f.s.Revoke(f.ctx, r.GrantID, carol, "")
	if err != nil || g.Uses != 40 {
		t.Fatalf("revoked grant uses = %d, err %v", g.Uses, err)
	}
	if _, err := f.s.Consume(f.ctx, r.GrantID, "zoe"); !errors.Is(err, ErrNotFound) {
		t.Errorf("another subject's consume: err = %v, want ErrNotFound", err)
	}
}

// TestApprovalRacesExpiry: an approval and the expiry of the same request
// race; exactly one wins, and the store, the waiters, the events and the
// callers all agree on which.
func TestApprovalRacesExpiry(t *testing.T) {
	outcomes := map[RequestState]int{}
	for range 200 {
		store := NewMemStore()
		f := newFixture(t, store, testConfig())
		r := f.open(openParams("delete_repository", `{"repo":"x"}`, approval(nil)))
		const waiters = 4
		seen := make(chan *Request, waiters)
		for range waiters {
			go func() {
				got, err := f.s.Wait(context.Background(), r.ID)
				if err != nil {
					t.Error(err)
				}
				seen <- got
			}()
		}
		var wg sync.WaitGroup
		var decideErr error
		start := make(chan struct{})
		wg.Go(func() {
			<-start
			_, decideErr = f.s.Decide(f.ctx, r.ID, bob, VerdictApprove, "")
		})
		wg.Go(func() {
			<-start
			f.clk.Add(10 * time.Minute)
			f.s.sweep()
		})
		close(start)
		wg.Wait()

		final, _ := f.s.Get(f.ctx, r.ID)
		outcomes[final.State]++
		switch final.State {
		case RequestApproved:
			if decideErr != nil {
				t.Fatalf("approved, but Decide said %v", decideErr)
			}
			if final.GrantID == "" {
				t.Fatal("approved without a grant")
			}
		case RequestExpired:
			if !errors.Is(decideErr, ErrNotPending) {
				t.Fatalf("expired, but Decide said %v", decideErr)
			}
			if final.GrantID != "" {
				t.Fatal("expired with a grant")
			}
		default:
			t.Fatalf("final state %s", final.State)
		}
		for range waiters {
			if w := <-seen; w.State != final.State || w.GrantID != final.GrantID {
				t.Fatalf("a waiter saw %s/%s, the service has %s/%s", w.State, w.GrantID, final.State, final.GrantID)
			}
		}
		snap, _ := store.Load(f.ctx)
		if len(snap.Requests) != 1 || snap.Requests[0].State != final.State {
			t.Fatalf("store has %+v, service has %s", snap.Requests, final.State)
		}
		if (final.State == RequestApproved) != (len(snap.Grants) == 1) {
			t.Fatalf("store has %d grants for a %s request", len(snap.Grants), final.State)
		}
		terminal := 0
		for _, typ := range f.rec.types() {
			if typ == EventRequestApproved || typ == EventRequestExpired {
				terminal++
			}
		}
		if terminal != 1 {
			t.Fatalf("%d terminal events: %v", terminal, f.rec.types())
		}
		_ = f.s.Close()
	}
	t.Logf("outcomes: %v", outcomes)
}

// TestApprovalRacesExpiryRealClock runs the same race on the real clock
// with the expiry loop (timers) rather than a hand-driven sweep.
func TestApprovalRacesExpiryRealClock(t *testing.T) {
	s, err := New(NewMemStore(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.cfg.PendingTTL = 5 * time.Millisecond
	ctx := context.Background()
	for i := range 30 {
		r, _, err := s.Open(ctx, openParams("t", `{"i":`+itoa(i)+`}`, approval(nil)))
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(i%10) * time.Millisecond)
		_, derr := s.Decide(ctx, r.ID, bob, VerdictApprove, "")
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		final, err := s.Wait(wctx, r.ID)
		cancel()
		if err != nil {
			t.Fatalf("the request never left pending: %v", err)
		}
		if (derr == nil) != (final.State == RequestApproved) || (derr != nil && final.State != RequestExpired) {
			t.Fatalf("Decide said %v, the request is %s", derr, final.State)
		}
	}
}

func TestExpiryLoopExpiresGrants(t *testing.T) {
	s, err := New(NewMemStore(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	events := s.Subscribe(ctx)
	r, _, err := s.Open(ctx, openParams("t", `{}`, approval(func(a *policy.Approval) { a.GrantDuration = 20 * time.Millisecond })))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decide(ctx, r.ID, bob, VerdictApprove, ""); err != nil {
		t.Fatal(err)
	}
	for e := range events {
		if e.Type == EventGrantExpired {
			g, _ := s.GetGrant(ctx, e.Grant.ID)
			if g.State != GrantExpired {
				t.Fatalf("event says expired, grant is %s", g.State)
			}
			return
		}
	}
	t.Fatal("no grant.expired event before the deadline")
}

func TestManyWaiters(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	r := f.open(openParams("t", `{}`, approval(nil)))
	const n = 20
	got := make(chan *Request, n)
	var ready sync.WaitGroup
	for range n {
		ready.Add(1)
		go func() {
			ready.Done()
			w, err := f.s.Wait(context.Background(), r.ID)
			if err != nil {
				t.Error(err)
			}
			got <- w
		}()
	}
	ready.Wait()
	approved := f.decide(r.ID, bob, VerdictApprove, "")
	for range n {
		if w := <-got; w.State != RequestApproved || w.GrantID != approved.GrantID {
			t.Fatalf("waiter saw %s %s", w.State, w.GrantID)
		}
	}
	// Wait on a decided request returns at once; on an unknown one fails.
	if w, err := f.s.Wait(f.ctx, r.ID); err != nil || w.State != RequestApproved {
		t.Fatalf("Wait after the decision: %v %v", w, err)
	}
	if _, err := f.s.Wait(f.ctx, "req_nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Wait on unknown: %v", err)
	}
	// A context that ends returns the request still pending.
	p := f.open(openParams("u", `{}`, approval(nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	defer cancel()
	w, err := f.s.Wait(ctx, p.ID)
	if !errors.Is(err, context.DeadlineExceeded) || w.State != RequestPending {
		t.Fatalf("Wait with an ending context: %s %v", w.State, err)
	}
}

func TestConcurrentDuplicatesJoin(t *testing.T) {
	f := newFixture(t, NewMemStore(), testConfig())
	const n = 20
	ids := make([]string, n)
	joined := make([]bool, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			r, j, err := f.s.Open(f.ctx, openParams("t", `{"a":[1,2],"b":"x"}`, approval(nil)))
			if err != nil {
				t.Error(err)
				return
			}
			ids[i], joined[i] = r.ID, j
		})
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if ids[i] != ids[0] {
			t.Fatalf("two requests for one call: %s and %s", ids[0], ids[i])
		}
		if !joined[i] {
			fresh++
		}
	}
	r, _ := f.s.Get(f.ctx, ids[0])
	if fresh != 1 || r.Joined != n-1 {
		t.Fatalf("%d opened, joined count %d; want 1 and %d", fresh, r.Joined, n-1)
	}
}

func TestHold(t *testing.T) {
	newSvc := func(t *testing.T, window time.Duration) *Service {
		s, err := New(NewMemStore(), testConfig(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		s.cfg.HoldWindow = window
		return s
	}
	// decideWhenOpened decides the first request opened, from another goroutine.
	decideWhenOpened := func(s *Service, v Verdict, opened int) {
		ctx, cancel := context.WithCancel(context.Background())
		events := s.Subscribe(ctx)
		go func() {
			defer cancel()
			n := 0
			for e := range events {
				if e.Type == EventRequestOpened || e.Type == EventRequestJoined {
					if n++; n == opened {
						if _, err := s.Decide(context.Background(), e.Request.ID, bob, v, "r"); err != nil {
							t.Error(err)
						}
						return
					}
				}
			}
		}()
	}
	ctx := context.Background()
	t.Run("approved in time", func(t *testing.T) {
		s := newSvc(t, time.Minute)
		decideWhenOpened(s, VerdictApprove, 1)
		res, err := s.Hold(ctx, openParams("t", `{"x":1}`, approval(nil)))
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != HoldAllowed || res.Grant == nil || res.Grant.State != GrantConsumed || res.Request.State != RequestApproved {
			t.Fatalf("result %+v", res)
		}
	})
	t.Run("denied in time", func(t *testing.T) {
		s := newSvc(t, time.Minute)
		decideWhenOpened(s, VerdictDeny, 1)
		res, err := s.Hold(ctx, openParams("t", `{}`, approval(nil)))
		if err != nil || res.Outcome != HoldDenied || res.Grant != nil {
			t.Fatalf("result %+v err %v", res, err)
		}
	})
	t.Run("window passes", func(t *testing.T) {
		s := newSvc(t, 10*time.Millisecond)
		res, err := s.Hold(ctx, openParams("t", `{}`, approval(nil)))
		if err != nil || res.Outcome != HoldPending || res.URL != "http://127.0.0.1:8080/requests/"+res.Request.ID {
			t.Fatalf("result %+v err %v", res, err)
		}
		// The retry joins the same request.
		again, err := s.Hold(ctx, openParams("t", `{}`, approval(nil)))
		if err != nil || !again.Joined || again.Request.ID != res.Request.ID {
			t.Fatalf("retry %+v err %v", again, err)
		}
	})
	t.Run("no window", func(t *testing.T) {
		s := newSvc(t, 0)
		res, err := s.Hold(ctx, openParams("t", `{}`, approval(nil)))
		if err != nil || res.Outcome != HoldPending {
			t.Fatalf("result %+v err %v", res, err)
		}
	})
	t.Run("twin calls share a single-use approval", func(t *testing.T) {
		s := newSvc(t, time.Minute)
		decideWhenOpened(s, VerdictApprove, 2)
		results := make(chan *HoldResult, 2)
		for range 2 {
			go func() {
				res, err := s.Hold(ctx, openParams("t", `{}`, approval(nil)))
				if err != nil {
					t.Error(err)
				}
				results <- res
			}()
		}
		got := map[HoldOutcome]int{}
		for range 2 {
			if r := <-results; r != nil {
				got[r.Outcome]++
			}
		}
		if got[HoldAllowed] != 1 || got[HoldGrantUsed] != 1 {
			t.Fatalf("outcomes %v, want one allowed and one grant_used", got)
		}
	})
	t.Run("caller gives up", func(t *testing.T) {
		s := newSvc(t, time.Minute)
		cctx, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
		defer cancel()
		if _, err := s.Hold(cctx, openParams("t", `{}`, approval(nil))); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the caller's deadline", err)
		}
	})
}

func TestCloseWakesWaiters(t *testing.T) {
	s, err := New(NewMemStore(), testConfig(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := s.Open(context.Background(), openParams("t", `{}`, approval(nil)))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := s.Wait(context.Background(), r.ID)
		done <- err
	}()
	time.Sleep(time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("Wait after Close: %v", err)
	}
	if _, _, err := s.Open(context.Background(), openParams("u", `{}`, approval(nil))); !errors.Is(err, ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
	if _, ok := <-s.Subscribe(context.Background()); ok {
		t.Fatal("Subscribe after Close gave an open channel")
	}
}
