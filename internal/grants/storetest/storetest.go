// Package storetest is the conformance suite every grant store passes
// (modelled on Teleport's backend suite): conditional writes and
// conflicts, atomic mutations, load after restart, and for a
// grants.SharedStore the change feed's order and wakes, one pending
// request per call, and Services on one store acting as replicas — a
// single-use grant raced from two replicas is used exactly once, a hold
// on one replica is released by an approval on another, a retry through
// another replica joins the pending request.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// Backend makes fresh, empty storage for one test and returns how to open
// a handle on it. Opening again gives another handle on the same data:
// after the first is closed (a restart), or at the same time for a
// grants.SharedStore (another replica).
type Backend func(t *testing.T) (open func(t *testing.T) grants.Store)

// Run runs the whole suite against backend.
func Run(t *testing.T, backend Backend) {
	t.Run("ConditionalWrites", func(t *testing.T) { testConditionalWrites(t, backend) })
	t.Run("AtomicMutation", func(t *testing.T) { testAtomicMutation(t, backend) })
	t.Run("LoadAfterRestart", func(t *testing.T) { testLoadAfterRestart(t, backend) })
	t.Run("Shared", func(t *testing.T) {
		open := backend(t)
		s := open(t)
		_, shared := s.(grants.SharedStore)
		_ = s.Close()
		if !shared {
			return // the file store serves one process: nothing more to hold it to
		}
		t.Run("FeedOrder", func(t *testing.T) { testFeedOrder(t, backend) })
		t.Run("OnePendingPerCall", func(t *testing.T) { testOnePendingPerCall(t, backend) })
		t.Run("ReplicasSingleUseOnce", func(t *testing.T) { testReplicasSingleUse(t, backend) })
		t.Run("ReplicasHoldReleasedElsewhere", func(t *testing.T) { testHoldReleasedElsewhere(t, backend) })
		t.Run("ReplicasRetryJoins", func(t *testing.T) { testRetryJoins(t, backend) })
		t.Run("ReplicasEventsOnce", func(t *testing.T) { testEventsOnce(t, backend) })
	})
}

var t0 = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func req(id string, version uint64, state grants.RequestState, key string) grants.Request {
	return grants.Request{
		ID: id, Version: version, State: state, CallKey: key, Target: "github", Kind: grants.KindTool, Tool: "delete_repo",
		Principal: grants.Principal{Issuer: "https://idp.example", Subject: "alice"}, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour),
		Reason: "a reason with a \x00 and ünïcode",
	}
}

func grant(id string, version uint64, state grants.GrantState) grants.Grant {
	return grants.Grant{ID: id, Version: version, State: state, Subject: "alice", Target: "github", Kind: grants.KindTool,
		Tool: "delete_repo", NotBefore: t0, Expiry: t0.Add(time.Hour), CreatedAt: t0, MaxUses: 1}
}

func mustOpen(t *testing.T, open func(t *testing.T) grants.Store) grants.Store {
	t.Helper()
	s := open(t)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func testConditionalWrites(t *testing.T, backend Backend) {
	ctx := context.Background()
	s := mustOpen(t, backend(t))
	steps := []struct {
		name string
		m    grants.Mutation
		want error
	}{
		{"insert at version 1", grants.Mutation{Requests: []grants.Request{req("req_a", 1, grants.RequestPending, "k1")}, Grants: []grants.Grant{grant("gr_a", 1, grants.GrantActive)}}, nil},
		{"insert again", grants.Mutation{Requests: []grants.Request{req("req_a", 1, grants.RequestPending, "k1")}}, grants.ErrConflict},
		{"insert at version 2", grants.Mutation{Requests: []grants.Request{req("req_b", 2, grants.RequestPending, "k2")}}, grants.ErrConflict},
		{"version 0", grants.Mutation{Grants: []grants.Grant{grant("gr_z", 0, grants.GrantActive)}}, grants.ErrConflict},
		{"next version", grants.Mutation{Requests: []grants.Request{req("req_a", 2, grants.RequestApproved, "k1")}}, nil},
		{"stale version", grants.Mutation{Requests: []grants.Request{req("req_a", 2, grants.RequestDenied, "k1")}}, grants.ErrConflict},
		{"skipped version", grants.Mutation{Grants: []grants.Grant{grant("gr_a", 3, grants.GrantConsumed)}}, grants.ErrConflict},
		{"grant next version", grants.Mutation{Grants: []grants.Grant{grant("gr_a", 2, grants.GrantConsumed)}}, nil},
		{"no id", grants.Mutation{Grants: []grants.Grant{grant("", 1, grants.GrantActive)}}, grants.ErrInvalid},
		{"drop", grants.Mutation{DropGrants: []string{"gr_a"}}, nil},
		{"drop again (idempotent)", grants.Mutation{DropGrants: []string{"gr_a"}}, nil},
		{"re-insert after drop", grants.Mutation{Grants: []grants.Grant{grant("gr_a", 1, grants.GrantActive)}}, nil},
	}
	for _, st := range steps {
		err := s.Apply(ctx, st.m)
		if (st.want == nil) != (err == nil) || (st.want != nil && !errors.Is(err, st.want)) {
			t.Fatalf("%s: Apply = %v, want %v", st.name, err, st.want)
		}
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{"req_a": 2, "gr_a": 1}
	if got := versions(snap); !equalMaps(got, want) {
		t.Fatalf("stored versions %v, want %v", got, want)
	}
	if snap.Requests[0].State != grants.RequestApproved || snap.Requests[0].Reason != req("", 0, "", "").Reason {
		t.Fatalf("stored request %+v: not what was written", snap.Requests[0])
	}
}

func testAtomicMutation(t *testing.T, backend Backend) {
	ctx := context.Background()
	s := mustOpen(t, backend(t))
	if err := s.Apply(ctx, grants.Mutation{Grants: []grants.Grant{grant("gr_a", 1, grants.GrantActive)}}); err != nil {
		t.Fatal(err)
	}
	// A good new record, a drop and a stale one: nothing of it may land.
	err := s.Apply(ctx, grants.Mutation{
		Requests:   []grants.Request{req("req_new", 1, grants.RequestPending, "k")},
		Grants:     []grants.Grant{grant("gr_a", 1, grants.GrantRevoked)},
		DropGrants: []string{"gr_a"},
	})
	if !errors.Is(err, grants.ErrConflict) {
		t.Fatalf("Apply with a stale record = %v, want ErrConflict", err)
	}
	snap, err := s.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := versions(snap), map[string]uint64{"gr_a": 1}; !equalMaps(got, want) {
		t.Fatalf("after a refused mutation: %v, want %v", got, want)
	}
}

func testLoadAfterRestart(t *testing.T, backend Backend) {
	ctx := context.Background()
	open := backend(t)
	s := open(t)
	var want grants.Snapshot
	for i := range 20 {
		r := req(fmt.Sprintf("req_%02d", i), 1, grants.RequestPending, fmt.Sprintf("k%d", i))
		g := grant(fmt.Sprintf("gr_%02d", i), 1, grants.GrantActive)
		if err := s.Apply(ctx, grants.Mutation{Requests: []grants.Request{r}, Grants: []grants.Grant{g}}); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			r.Version, r.State, r.EndedAt = 2, grants.RequestApproved, t0.Add(time.Minute)
			if err := s.Apply(ctx, grants.Mutation{Requests: []grants.Request{r}}); err != nil {
				t.Fatal(err)
			}
		}
		want.Requests = append(want.Requests, r)
		want.Grants = append(want.Grants, g)
	}
	if err := s.Apply(ctx, grants.Mutation{DropRequests: []string{"req_19"}, DropGrants: []string{"gr_19"}}); err != nil {
		t.Fatal(err)
	}
	want.Requests, want.Grants = want.Requests[:19], want.Grants[:19]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := mustOpen(t, open)
	got, err := s2.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := canon(t, got), canon(t, want); a != b {
		t.Fatalf("after a restart the store holds\n%s\nwant\n%s", a, b)
	}
}

// canon is a snapshot as sorted JSON, to compare stores by content.
func canon(t *testing.T, s grants.Snapshot) string {
	slices.SortFunc(s.Requests, func(a, b grants.Request) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Grants, func(a, b grants.Grant) int { return strings.Compare(a.ID, b.ID) })
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func versions(s grants.Snapshot) map[string]uint64 {
	m := make(map[string]uint64)
	for _, r := range s.Requests {
		m[r.ID] = r.Version
	}
	for _, g := range s.Grants {
		m[g.ID] = g.Version
	}
	return m
}

func equalMaps(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func testFeedOrder(t *testing.T, backend Backend) {
	ctx := context.Background()
	open := backend(t)
	a := mustOpen(t, open).(grants.SharedStore)
	b := mustOpen(t, open).(grants.SharedStore)
	wake := b.Watch()
	// Two writers at once: the feed is one order without gaps, and each
	// record's versions appear in it in order.
	const perWriter = 25
	var wg sync.WaitGroup
	errs := make(chan error, 2*perWriter)
	for w, st := range []grants.SharedStore{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				g := grant(fmt.Sprintf("gr_w%d_%02d", w, i), 1, grants.GrantActive)
				if _, err := st.Publish(ctx, grants.Change{Writer: fmt.Sprintf("w%d", w), Mutation: grants.Mutation{Grants: []grants.Grant{g}},
					Events: []grants.Event{{ID: fmt.Sprintf("evt_w%d_%02d", w, i), Type: grants.EventGrantIssued, At: t0, Grant: &g}}}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	select {
	case <-wake: // a Publish on a woke b's watchers, via the store
	case <-time.After(30 * time.Second):
		t.Fatal("no wake on the other handle after 50 writes")
	}
	all, err := b.Changes(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2*perWriter {
		t.Fatalf("feed holds %d changes, want %d", len(all), 2*perWriter)
	}
	next := map[string]int{}
	for i, c := range all {
		if c.Seq != uint64(i+1) {
			t.Fatalf("change %d has sequence %d: want %d (no gaps, in order)", i, c.Seq, i+1)
		}
		if len(c.Events) != 1 || len(c.Mutation.Grants) != 1 || c.Events[0].Grant == nil || c.Events[0].Grant.ID != c.Mutation.Grants[0].ID {
			t.Fatalf("change %d does not carry its write and its event: %+v", c.Seq, c)
		}
		want := fmt.Sprintf("gr_%s_%02d", c.Writer, next[c.Writer])
		if c.Mutation.Grants[0].ID != want {
			t.Fatalf("change %d is %s, want %s next from writer %s", c.Seq, c.Mutation.Grants[0].ID, want, c.Writer)
		}
		next[c.Writer]++
	}
	page, err := a.Changes(ctx, 10, 5)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 5 || page[0].Seq != 11 || page[4].Seq != 15 {
		t.Fatalf("Changes(after 10, limit 5) = %d changes from %v", len(page), seqs(page))
	}
	if rest, err := a.Changes(ctx, 2*perWriter, 10); err != nil || len(rest) != 0 {
		t.Fatalf("Changes after the head = %v, %v: want none", seqs(rest), err)
	}
	snap, head, err := a.LoadAt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if head != 2*perWriter || len(snap.Grants) != 2*perWriter {
		t.Fatalf("LoadAt = %d grants at %d, want %d at %d", len(snap.Grants), head, 2*perWriter, 2*perWriter)
	}
}

func seqs(cs []grants.Change) []uint64 {
	out := make([]uint64, len(cs))
	for i, c := range cs {
		out[i] = c.Seq
	}
	return out
}

func testOnePendingPerCall(t *testing.T, backend Backend) {
	ctx := context.Background()
	s := mustOpen(t, backend(t))
	steps := []struct {
		name string
		m    grants.Mutation
		want error
	}{
		{"first pending", grants.Mutation{Requests: []grants.Request{req("req_a", 1, grants.RequestPending, "call")}}, nil},
		{"second pending, same call", grants.Mutation{Requests: []grants.Request{req("req_b", 1, grants.RequestPending, "call")}}, grants.ErrConflict},
		{"pending, another call", grants.Mutation{Requests: []grants.Request{req("req_c", 1, grants.RequestPending, "other")}}, nil},
		{"first ends", grants.Mutation{Requests: []grants.Request{req("req_a", 2, grants.RequestExpired, "call")}}, nil},
		{"now a new one may wait", grants.Mutation{Requests: []grants.Request{req("req_b", 1, grants.RequestPending, "call")}}, nil},
	}
	for _, st := range steps {
		if err := s.Apply(ctx, st.m); (st.want == nil) != (err == nil) || (st.want != nil && !errors.Is(err, st.want)) {
			t.Fatalf("%s: Apply = %v, want %v", st.name, err, st.want)
		}
	}
}

// replica is one Service on the shared store, with what it audited.
type replica struct {
	svc *grants.Service
	rec *recorder
}

type recorder struct {
	mu     sync.Mutex
	events []grants.Event
}

func (r *recorder) Record(e grants.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) ids(types ...grants.EventType) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if slices.Contains(types, e.Type) {
			out = append(out, e.ID)
		}
	}
	return out
}

func replicas(t *testing.T, backend Backend, n int) []replica {
	open := backend(t)
	cfg := grants.Defaults()
	cfg.Dir = "unused"
	cfg.HoldWindow = 5 * time.Minute // the hold ends by approval, never by the clock
	cfg.PendingTTL = 10 * time.Minute
	cfg.MaxPendingPerPrincipal = 1000
	out := make([]replica, n)
	for i := range out {
		rec := &recorder{}
		svc, err := grants.New(open(t), cfg, grants.Options{Auditor: rec, FeedPoll: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Close() })
		out[i] = replica{svc: svc, rec: rec}
	}
	return out
}

var (
	alice = grants.Principal{Issuer: "https://idp.example", Subject: "alice", ClientID: "agent-1", Groups: []string{"eng"}}
	bob   = grants.Actor{Issuer: "https://idp.example", Subject: "bob", ClientID: "airlock-cli", Groups: []string{"sre"}}
)

func params(tool, args string) grants.OpenParams {
	return grants.OpenParams{Principal: alice, Target: "github", Kind: grants.KindTool, Tool: tool,
		Arguments: json.RawMessage(args), Reason: "cleanup",
		Approval: policy.Approval{ApproverGroups: []string{"sre"}, Threshold: 1, SingleUse: true}}
}

func testReplicasSingleUse(t *testing.T, backend Backend) {
	ctx := context.Background()
	rs := replicas(t, backend, 2)
	a, b := rs[0].svc, rs[1].svc
	const rounds = 30
	for round := range rounds {
		r, _, err := a.Open(ctx, params("delete_repo", fmt.Sprintf(`{"round":%d}`, round)))
		if err != nil {
			t.Fatal(err)
		}
		r, err = a.Decide(ctx, r.ID, bob, grants.VerdictApprove, "ok")
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Sync(ctx); err != nil { // b knows the grant before the race
			t.Fatal(err)
		}
		start := make(chan struct{})
		results := make([]error, 2)
		var wg sync.WaitGroup
		for i, svc := range []*grants.Service{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, results[i] = svc.ConsumeFor(ctx, r.GrantID, alice)
			}()
		}
		close(start)
		wg.Wait()
		wins, used := 0, 0
		for _, err := range results {
			switch {
			case err == nil:
				wins++
			case errors.Is(err, grants.ErrGrantUsed):
				used++
			default:
				t.Fatalf("round %d: a replica's consume failed with %v; a lost race must read \"already used\"", round, err)
			}
		}
		if wins != 1 || used != 1 {
			t.Fatalf("round %d: %d winners and %d \"already used\", want exactly one of each", round, wins, used)
		}
	}
	// One grant.consumed per round, audited once, by the winner's replica.
	if got := len(rs[0].rec.ids(grants.EventGrantConsumed)) + len(rs[1].rec.ids(grants.EventGrantConsumed)); got != rounds {
		t.Fatalf("%d grant.consumed events audited over %d rounds, want one per round", got, rounds)
	}
}

func testHoldReleasedElsewhere(t *testing.T, backend Backend) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rs := replicas(t, backend, 2)
	a, b := rs[0].svc, rs[1].svc
	events := b.Subscribe(ctx)
	onA := a.Subscribe(ctx) // what a's xDS server follows
	type held struct {
		res *grants.HoldResult
		err error
	}
	done := make(chan held, 1)
	go func() {
		res, err := a.Hold(ctx, params("delete_repo", `{"repo":"acme/old"}`))
		done <- held{res, err}
	}()
	// b learns of the request from the feed (a's write, b's hub).
	var id string
	for id == "" {
		select {
		case e, ok := <-events:
			if !ok {
				t.Fatal("b's subscription ended")
			}
			if e.Type == grants.EventRequestOpened {
				id = e.Request.ID
			}
		case <-ctx.Done():
			t.Fatal("the request held on a never reached b")
		}
	}
	if _, err := b.Decide(ctx, id, bob, grants.VerdictApprove, "go ahead"); err != nil {
		t.Fatal(err)
	}
	var h held
	select {
	case h = <-done:
	case <-ctx.Done():
		t.Fatal("the hold on a was not released by the approval on b")
	}
	if h.err != nil {
		t.Fatal(h.err)
	}
	if h.res.Outcome != grants.HoldAllowed || h.res.Grant == nil || h.res.Request.ID != id {
		t.Fatalf("hold on a ended %s (request %s), want allowed under the grant approved on b for %s", h.res.Outcome, h.res.Request.ID, id)
	}
	// a's subscribers (its xDS server) saw the grant b issued.
	for issued := false; !issued; {
		select {
		case e, ok := <-onA:
			if !ok {
				t.Fatal("a's subscription ended")
			}
			issued = e.Type == grants.EventGrantIssued && e.Grant != nil && e.Grant.ID == h.res.Grant.ID
		case <-ctx.Done():
			t.Fatal("the grant issued on b never reached a's subscribers")
		}
	}
	// The approval was audited once, by b; the request's opening once, by a.
	if n := len(rs[0].rec.ids(grants.EventRequestApproved)); n != 0 {
		t.Fatalf("a audited the approval b wrote (%d times)", n)
	}
	if n := len(rs[1].rec.ids(grants.EventRequestApproved)); n != 1 {
		t.Fatalf("b audited its approval %d times, want once", n)
	}
}

func testRetryJoins(t *testing.T, backend Backend) {
	ctx := context.Background()
	rs := replicas(t, backend, 2)
	a, b := rs[0].svc, rs[1].svc
	// In turn: the retry through b joins a's request.
	first, joined, err := a.Open(ctx, params("delete_repo", `{"repo":"acme/x"}`))
	if err != nil || joined {
		t.Fatalf("Open on a = %v joined=%v", err, joined)
	}
	again, joined, err := b.Open(ctx, params("delete_repo", `{"repo":"acme/x"}`))
	if err != nil {
		t.Fatal(err)
	}
	if !joined || again.ID != first.ID {
		t.Fatalf("the retry through b opened %s (joined=%v), want to join %s", again.ID, joined, first.ID)
	}
	// At once, many rounds: one request per call, whichever replica wins.
	for round := range 20 {
		p := params("delete_repo", fmt.Sprintf(`{"repo":"acme/r%d"}`, round))
		ids := make([]string, 2)
		errs := make([]error, 2)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, svc := range []*grants.Service{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r, _, err := svc.Open(ctx, p)
				if err == nil {
					ids[i] = r.ID
				}
				errs[i] = err
			}()
		}
		close(start)
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ids[0] != ids[1] {
			t.Fatalf("round %d: the same call opened two requests, %s on a and %s on b", round, ids[0], ids[1])
		}
	}
	opened := len(rs[0].rec.ids(grants.EventRequestOpened)) + len(rs[1].rec.ids(grants.EventRequestOpened))
	if opened != 21 {
		t.Fatalf("%d request.opened audited for 21 calls, want one each (one prompt per call)", opened)
	}
}

func testEventsOnce(t *testing.T, backend Backend) {
	ctx := context.Background()
	rs := replicas(t, backend, 3)
	r, _, err := rs[0].svc.Open(ctx, params("delete_repo", `{"repo":"acme/once"}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rs[1].svc.Decide(ctx, r.ID, bob, grants.VerdictDeny, "no"); err != nil {
		t.Fatal(err)
	}
	for _, x := range rs {
		if err := x.svc.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := x.svc.Get(ctx, r.ID)
		if err != nil || got.State != grants.RequestDenied {
			t.Fatalf("a replica reads the request as %v, %v: want denied everywhere", got, err)
		}
	}
	var all []string
	for _, x := range rs {
		all = append(all, x.rec.ids(grants.EventRequestOpened, grants.EventRequestDecision, grants.EventRequestDenied)...)
	}
	if len(all) != 3 {
		t.Fatalf("%d events audited across 3 replicas for open, decision, deny: want each once", len(all))
	}
}
