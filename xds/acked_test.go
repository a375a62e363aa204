package xds

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/envoy"
)

// WaitGrantRoute returns once the connected Envoy acknowledged the grant's
// scope — after which a call with the grant header routes — and fails for
// a grant whose scope never arrives. Both ADS modes.
func TestWaitGrantRoute(t *testing.T) {
	for _, delta := range []bool{true, false} {
		t.Run(mode(delta), func(t *testing.T) {
			g := startGateway(t, delta)
			if err := g.srv.UpsertGrant(Grant{ID: "gr_wait", Target: "github", Expiry: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
			defer cancel()
			if err := g.srv.WaitGrantRoute(ctx, "gr_wait"); err != nil {
				t.Fatal(err)
			}
			// Acknowledged means applied: the granted call routes now, with no retry.
			status, body := g.call(t, "/mcp/github", map[string]string{"x-test-grant": "gr_wait"})
			if status != 200 {
				t.Errorf("a call under an acknowledged grant got %d: %s", status, body)
			}
			short, cancel2 := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel2()
			if err := g.srv.WaitGrantRoute(short, "gr_never"); err == nil || !strings.Contains(err.Error(), "not yet in 1 Envoy") {
				t.Errorf("waiting for a grant that has no route: %v", err)
			}
		})
	}
}

// An Envoy that subscribed to scoped routes before any grant existed has
// been sent no scoped-route response yet; a first grant must still wait
// for it rather than go before its route exists.
func TestWaitGrantRouteCountsEnvoysWithoutScopes(t *testing.T) {
	for _, delta := range []bool{true, false} {
		t.Run(mode(delta), func(t *testing.T) {
			g := startGateway(t, delta)
			short, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			if err := g.srv.WaitGrantRoute(short, "gr_first"); err == nil || !strings.Contains(err.Error(), "not yet in 1 Envoy") {
				t.Fatalf("a first grant's wait with no scope sent yet: %v", err)
			}
			if err := g.srv.UpsertGrant(Grant{ID: "gr_first", Target: "github", Expiry: time.Now().Add(time.Hour)}); err != nil {
				t.Fatal(err)
			}
			ctx, cancel2 := context.WithTimeout(context.Background(), testTimeout)
			defer cancel2()
			if err := g.srv.WaitGrantRoute(ctx, "gr_first"); err != nil {
				t.Fatal(err)
			}
			// Envoy's workers apply a scope a moment after the ACK: the
			// wait lasts the settle (DefaultApplySettle) past it.
			g.srv.streamsMu.Lock()
			for id, st := range g.srv.streams {
				if at, ok := st.acks.has[envoy.ScopeName("gr_first")]; !ok || time.Since(at) < g.srv.settle {
					t.Errorf("stream %d: WaitGrantRoute returned %v after the ACK (acknowledged: %v), want at least %v", id, time.Since(at), ok, g.srv.settle)
				}
			}
			g.srv.streamsMu.Unlock()
			if status, body := g.call(t, "/mcp/github", map[string]string{"x-test-grant": "gr_first"}); status != 200 {
				t.Errorf("the first grant's call got %d: %s", status, body)
			}
		})
	}
}
