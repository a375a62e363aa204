package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/wire"
	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/peers"
)

// TestStaticBootstrap runs the smaller suite on the static bootstrap
// (`airlock envoy bootstrap`, no ADS): one route per target, no grant
// scopes, for operators who add airlock's filters to an Envoy they
// configure themselves. The shared stack covers the same flows over ADS.
func TestStaticBootstrap(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := harness.Start(ctx, harness.Options{HoldWindow: 3 * time.Second, PendingTTL: time.Minute})
	if err != nil {
		t.Fatalf("cannot start the static stack: %v", err)
	}
	defer s.Close()
	if s.XDSAddr != "" || s.ADSResponses != nil {
		t.Fatalf("the static stack serves ADS at %q", s.XDSAddr)
	}
	connect := func(t *testing.T, sub string) *mcp.ClientSession {
		t.Helper()
		tok, err := s.Token(sub, "github")
		if err != nil {
			t.Fatal(err)
		}
		cs, err := peers.ConnectGoClientWith(ctx, s.TargetURL("github"), tok,
			peers.GoClientOptions{ProtocolVersion: "2025-11-25", Header: map[string][]string{"X-Airlock-Reason": {"ticket OPS-9"}}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}

	t.Run("allowed call carries the server's credential", func(t *testing.T) {
		s.GoServer.Reset()
		cs := connect(t, "00u-static-a")
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: peers.ToolEcho, Arguments: map[string]any{"text": "static"}})
		if err != nil || res.IsError {
			t.Fatalf("echo: %v %+v", err, res)
		}
		for _, r := range s.GoServer.Requests() {
			if r.Authorization() != "Bearer "+harness.UpstreamSecret {
				t.Errorf("upstream %s got Authorization %q", r.JSONRPCMethod(), redact(r.Authorization()))
			}
		}
	})

	t.Run("held call approved within the window", func(t *testing.T) {
		s.GoServer.Reset()
		cs := connect(t, "00u-static-b")
		done := make(chan error, 1)
		go func() { done <- deleteRepo(ctx, cs, "acme/static-held") }()
		r := pendingOn(t, ctx, s, "00u-static-b", "github")
		req, err := s.Gateway.Grants.Decide(ctx, r.ID, approver, grants.VerdictApprove, "ok")
		if err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("the approved call failed: %v", err)
		}
		// No scopes here: the call takes the target's one route, with the
		// grant named for the upstream's logs.
		if got, ok := upstreamGrantHeader(s.GoServer, "acme/static-held"); !ok || got != req.GrantID {
			t.Fatalf("upstream saw the call %v with %s=%q, want %q", ok, wire.HeaderGrant, got, req.GrantID)
		}
	})

	t.Run("denied call never reaches the server", func(t *testing.T) {
		s.GoServer.Reset()
		cs := connect(t, "00u-static-c")
		done := make(chan error, 1)
		go func() { done <- deleteRepo(ctx, cs, "acme/static-denied") }()
		r := pendingOn(t, ctx, s, "00u-static-c", "github")
		if _, err := s.Gateway.Grants.Decide(ctx, r.ID, approver, grants.VerdictDeny, "no"); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err == nil || !strings.Contains(err.Error(), "denied") {
			t.Fatalf("denied call: %v", err)
		}
		if _, ok := upstreamGrantHeader(s.GoServer, "acme/static-denied"); ok {
			t.Fatal("a denied call reached the server")
		}
	})

	t.Run("body over the limit is 413", func(t *testing.T) {
		tok, err := s.Token("00u-static-d", "github")
		if err != nil {
			t.Fatal(err)
		}
		big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 2<<20) + `"}}}`
		if resp, _ := post(t, s.TargetURL("github"), tok, nil, big); resp.StatusCode != 413 {
			t.Fatalf("status %d, want 413", resp.StatusCode)
		}
	})
}
