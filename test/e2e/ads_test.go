package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/wire"
	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/peers"
)

// The shared stack feeds the data path over ADS, as production does: a
// granted call is routed by its grant's scope, which exists exactly while
// the grant is live. These tests follow a grant's route through its life.

// upstreamGrantHeader is the x-airlock-grant value the Go server saw on the
// tools/call that carried repo ("" when none): the base scope strips the
// header, so only a call routed by its grant's scope arrives with it.
func upstreamGrantHeader(srv *peers.GoServer, repo string) (string, bool) {
	for _, r := range srv.Requests() {
		if r.JSONRPCMethod() == "tools/call" && strings.Contains(string(r.Body), `"`+repo+`"`) {
			return r.Header.Get(wire.HeaderGrant), true
		}
	}
	return "", false
}

// Hold → approve → the held call, still inside its Check, is routed by the
// scope pushed while it was held (Envoy updates SRDS scopes in place on
// each worker, scoped_rds.cc): it reaches the server through the grant's
// route, not the base route.
func TestADSHeldCallRoutedByItsGrantScope(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	cs := session(t, ctx, "00u-ads-hold", "github")
	done := make(chan error, 1)
	go func() { done <- deleteRepo(ctx, cs, "acme/ads-held") }()
	r := pendingFor(t, ctx, "00u-ads-hold", "github")
	req, err := stack.Gateway.Grants.Decide(ctx, r.ID, approver, grants.VerdictApprove, "ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the held call failed after approval: %v", err)
	}
	got, ok := upstreamGrantHeader(stack.GoServer, "acme/ads-held")
	if !ok {
		t.Fatal("the approved call never reached the server")
	}
	if got != req.GrantID {
		t.Fatalf("the held call reached the server with %s=%q, want its grant %q (routed by the grant's scope)", wire.HeaderGrant, got, req.GrantID)
	}
}

// A grant that expires takes its route with it: the route is withdrawn
// from the data path and the next call is held for a new approval.
func TestADSGrantExpiryWithdrawsRoute(t *testing.T) {
	ctx := ctxT(t, 40*time.Second)
	cs := session(t, ctx, "00u-ads-exp", "github")
	done := make(chan error, 1)
	go func() { done <- deleteRepo(ctx, cs, "acme/ads-exp") }()
	r := pendingFor(t, ctx, "00u-ads-exp", "github")
	ch := stack.Gateway.Grants.Subscribe(ctx)
	short := &grants.Scope{Kind: grants.ScopeToolArgs, Duration: grants.Duration(2 * time.Second)}
	req, err := stack.Gateway.Grants.DecideScoped(ctx, r.ID, approver, grants.VerdictApprove, "two seconds", short)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the call approved for 2s failed: %v", err)
	}
	waitGrantEvent(t, ctx, ch, req.GrantID, grants.EventGrantExpired)
	if c := stack.ADSResponses; c != nil { // the stand-in says what it was told
		scope := envoy.ScopeName(req.GrantID)
		waitFor(t, ctx, "the expired grant's scope to be removed from the data path", func() bool { return c.Removed(scope) > 0 })
	}
	if err := deleteRepo(ctx, cs, "acme/ads-exp"); !approvalRequiredByCLI(err) {
		t.Fatalf("after expiry: %v, want the call held again", err)
	}
}

// Revoking during a session removes the route at once; the session goes
// on, and the next call needs a new approval.
func TestADSRevokeDuringSession(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	cs := session(t, ctx, "00u-ads-rev", "github")
	done := make(chan error, 1)
	go func() { done <- deleteRepo(ctx, cs, "acme/ads-rev") }()
	r := pendingFor(t, ctx, "00u-ads-rev", "github")
	req, err := stack.Gateway.Grants.Decide(ctx, r.ID, approver, grants.VerdictApprove, "ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Gateway.Grants.Revoke(ctx, req.GrantID, approver, "incident"); err != nil {
		t.Fatal(err)
	}
	if c := stack.ADSResponses; c != nil {
		scope := envoy.ScopeName(req.GrantID)
		waitFor(t, ctx, "the revoked grant's scope to be removed", func() bool { return c.Removed(scope) > 0 })
	}
	if err := deleteRepo(ctx, cs, "acme/ads-rev"); !approvalRequiredByCLI(err) {
		t.Fatalf("after revoke: %v, want the call held again", err)
	}
	// The session itself is intact: a call that needs no approval passes.
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatalf("the session broke on revoke: %v", err)
	}
}

// The restart stack: its own airlock, restarted mid-session by the test.
var (
	restartOnce sync.Once
	restartS    *harness.Stack
	restartErr  error
)

func restartStack(t *testing.T) *harness.Stack {
	t.Helper()
	restartOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		restartS, restartErr = harness.Start(ctx, harness.Options{ADS: true, HoldWindow: 3 * time.Second, PendingTTL: time.Minute})
		if restartErr == nil {
			fmt.Fprintf(os.Stderr, "e2e: restart data path is %s at %s\n", restartS.DataPath.Kind(), restartS.BaseURL)
		}
	})
	if restartErr != nil {
		t.Fatalf("cannot start the restart stack: %v", restartErr)
	}
	return restartS
}

func closeRestartStack() {
	if restartS != nil {
		restartS.Close()
	}
}

// An airlock restart mid-session keeps every live grant's route: the data
// path is never told to remove it (no window of refused granted calls),
// and the session's granted calls go on through the grant's scope.
func TestADSRestartKeepsGrantRoutes(t *testing.T) {
	s := restartStack(t)
	c := s.ADSResponses // nil with a real Envoy: then only the calls are checked
	ctx := ctxT(t, 60*time.Second)
	tok, err := s.Token("00u-ads-restart", "github")
	if err != nil {
		t.Fatal(err)
	}
	cs, err := peers.ConnectGoClientWith(ctx, s.TargetURL("github"), tok,
		peers.GoClientOptions{ProtocolVersion: "2025-11-25", MaxRetries: 5, Header: map[string][]string{"X-Airlock-Reason": {"ticket OPS-7"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	done := make(chan error, 1)
	go func() { done <- deleteRepo(ctx, cs, "acme/restart-1") }()
	r := pendingOn(t, ctx, s, "00u-ads-restart", "github")
	req, err := s.Gateway.Grants.Decide(ctx, r.ID, approver, grants.VerdictApprove, "ok")
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("granted call before the restart: %v", err)
	}
	scope := envoy.ScopeName(req.GrantID)
	acked := 0
	if c != nil {
		acked = c.ACKs()
	}
	if err := s.RestartAirlock(ctx); err != nil {
		t.Fatal(err)
	}
	if c != nil {
		// The data path reconnects and is answered for listeners, clusters
		// and scoped routes (one response each at least); the grant's
		// scope must not have been removed on the way.
		waitFor(t, ctx, "the data path to be served by the restarted airlock", func() bool { return c.ACKs() >= acked+3 })
		if n := c.Removed(scope); n != 0 {
			t.Fatalf("the restart removed the live grant's scope %s %d time(s): granted calls in that window are refused", scope, n)
		}
	}
	// The grant covers these arguments for 15m: the same call, after the
	// restart, goes through the grant's scope without a new approval.
	s.GoServer.Reset()
	if err := deleteRepo(ctx, cs, "acme/restart-1"); err != nil {
		t.Fatalf("granted call after the restart: %v", err)
	}
	if got, ok := upstreamGrantHeader(s.GoServer, "acme/restart-1"); !ok || got != req.GrantID {
		t.Fatalf("after the restart the call reached the server with grant %q (seen %v), want %q", got, ok, req.GrantID)
	}
	if c != nil && c.Removed(scope) != 0 {
		t.Fatalf("scope %s was removed %d time(s) around the restart", scope, c.Removed(scope))
	}
}

func waitGrantEvent(t *testing.T, ctx context.Context, ch <-chan grants.Event, grantID string, typ grants.EventType) {
	t.Helper()
	for {
		select {
		case e, ok := <-ch:
			if !ok {
				t.Fatalf("grant events ended before %s of %s", typ, grantID)
			}
			if e.Type == typ && e.Grant != nil && e.Grant.ID == grantID {
				return
			}
		case <-ctx.Done():
			t.Fatalf("no %s event for grant %s", typ, grantID)
		}
	}
}

func waitFor(t *testing.T, ctx context.Context, what string, ok func() bool) {
	t.Helper()
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
