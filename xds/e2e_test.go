package xds_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/extauthz"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/policy/rego"
	"github.com/airlock-mcp/airlock/internal/wire"
	"github.com/airlock-mcp/airlock/test/envoydriver"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
	"github.com/airlock-mcp/airlock/xds"
)

const e2eTimeout = 15 * time.Second

// staleApprovals is the grant service as ext_authz sees it, except that
// once frozen it keeps answering with the grants it had — a stale cache,
// or anything else upstream of Envoy gone wrong.
type staleApprovals struct {
	*grants.Service
	mu     sync.Mutex
	frozen []policy.GrantInput
}

func (s *staleApprovals) ActiveForPrincipal(ctx context.Context, p grants.Principal, target string, now time.Time) ([]policy.GrantInput, error) {
	s.mu.Lock()
	frozen := s.frozen
	s.mu.Unlock()
	if frozen != nil {
		return frozen, nil
	}
	return s.Service.ActiveForPrincipal(ctx, p, target, now)
}

func (s *staleApprovals) ConsumeFor(ctx context.Context, id string, p grants.Principal) (*grants.Grant, error) {
	s.mu.Lock()
	frozen := s.frozen
	s.mu.Unlock()
	for _, g := range frozen {
		if g.ID == id {
			return &grants.Grant{ID: id, Issuer: p.Issuer, Subject: p.Subject}, nil
		}
	}
	return s.Service.ConsumeFor(ctx, id, p)
}

func (s *staleApprovals) freeze(gs []policy.GrantInput) {
	s.mu.Lock()
	s.frozen = gs
	s.mu.Unlock()
}

// TestEndToEndGrantRoutes runs airlock's real ext_authz (OIDC token, MCP
// parsing, the shipped Rego policy), the real grant service, and the Envoy
// driver getting its whole configuration over ADS from the xds server,
// which follows the grant service's events: approve → the granted call
// routes; revoke → the grant's route is gone, and a call ext_authz still
// allows on it (fed a stale grant) gets the route layer's 403.
func TestEndToEndGrantRoutes(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) { runEndToEnd(t, delta) })
	}
}

func runEndToEnd(t *testing.T, delta bool) {
	iss, err := oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	var upMu sync.Mutex
	var upGrants []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upMu.Lock()
		upGrants = append(upGrants, r.Header.Get(wire.HeaderGrant))
		upMu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[]}}`)
	}))
	t.Cleanup(up.Close)

	authzLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := e2eConfig(t, iss.URL(), authzLn.Addr().String(), up.Listener.Addr().String())
	ctx := context.Background()
	ver, err := identity.New(ctx, cfg.Issuers, identity.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pol, err := rego.NewStore(cfg.Policy.Dir, cfg.Policy.Query, nil)
	if err != nil {
		t.Fatal(err)
	}
	gcfg := grants.Defaults()
	gcfg.Dir, gcfg.HoldWindow = t.TempDir(), 0 // no hold: an unapproved call is answered at once
	svc, err := grants.New(grants.NewMemStore(), gcfg, grants.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	approvals := &staleApprovals{Service: svc}
	authz, err := extauthz.New(cfg, extauthz.Options{Verifier: ver, Policy: pol, Approvals: approvals})
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	authv3.RegisterAuthorizationServer(gs, &extauthz.Server{A: authz})
	go func() { _ = gs.Serve(authzLn) }()
	t.Cleanup(gs.Stop)

	m, err := envoy.NewModel(cfg, envoy.Bound{ListenAddress: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := xds.New(m, xds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	fctx, stopFollow := context.WithCancel(ctx)
	t.Cleanup(stopFollow)
	go xds.Follow(fctx, svc, srv, xds.FollowOptions{})
	xdsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	xg := grpc.NewServer()
	srv.Register(xg)
	go func() { _ = xg.Serve(xdsLn) }()
	t.Cleanup(xg.Stop)

	applied := make(chan envoydriver.ADSResponse, 256)
	ads, err := envoydriver.ConnectADS(xdsLn.Addr().String(), envoydriver.ADSOptions{
		Node: &corev3.Node{Id: "gw-e2e", Cluster: "airlock"}, Delta: delta,
		OnResponse: func(r envoydriver.ADSResponse) {
			select {
			case applied <- r:
			default:
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ads.Close() })
	wctx, cancel := context.WithTimeout(ctx, e2eTimeout)
	defer cancel()
	d, err := ads.WaitReady(wctx)
	if err != nil {
		t.Fatal(err)
	}
	waitScope := func(name string, removed bool) {
		t.Helper()
		timeout := time.After(e2eTimeout)
		for {
			select {
			case r := <-applied:
				list := r.Updated
				if removed {
					list = r.Removed
				}
				if r.TypeURL == resource.ScopedRouteType && r.Err == nil && strings.Contains(","+strings.Join(list, ",")+",", ","+name+",") {
					return
				}
			case <-timeout:
				t.Fatalf("the driver never got scope %s (removed=%v)", name, removed)
			}
		}
	}

	tok, err := iss.Mint(oidcissuer.Token{Subject: "00u1alice", ClientID: "0oa-agent",
		Audience: []string{"https://gw.test/mcp/github"}, Scopes: []string{"mcp.github"}})
	if err != nil {
		t.Fatal(err)
	}
	call := func() (int, string) {
		t.Helper()
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo","arguments":{"repo":"x"}}}`
		req, _ := http.NewRequest("POST", "http://"+d.Addr()+"/mcp/github", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Protocol-Version", "2025-06-18")
		resp, err := (&http.Client{Timeout: e2eTimeout}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	approvalRequired := func(code int, body string) bool {
		return code == 200 && strings.Contains(body, "-32014") && strings.Contains(body, "approval required")
	}
	// No grant: the policy wants a human; ext_authz opens a request.
	if code, body := call(); !approvalRequired(code, body) {
		t.Fatalf("before approval: %d %s", code, body)
	}
	reqs, err := svc.List(ctx, grants.RequestFilter{})
	if err != nil || len(reqs) != 1 {
		t.Fatalf("pending requests: %v %v", reqs, err)
	}

	// Approve: the service issues a grant, and its route appears.
	if _, err := svc.Decide(ctx, reqs[0].ID, grants.Actor{Subject: "00u1bob", Groups: []string{"sre"}}, grants.VerdictApprove, "looks fine"); err != nil {
		t.Fatal(err)
	}
	issued, err := svc.ListGrants(ctx, grants.GrantFilter{})
	if err != nil || len(issued) != 1 {
		t.Fatalf("grants: %v %v", issued, err)
	}
	id := issued[0].ID
	waitScope(envoy.ScopeName(id), false)
	if code, body := call(); code != 200 || !strings.Contains(body, `"result"`) {
		t.Fatalf("after approval: %d %s", code, body)
	}
	upMu.Lock()
	last := upGrants[len(upGrants)-1]
	upMu.Unlock()
	if last != id {
		t.Errorf("the call did not take the grant's route: upstream saw x-airlock-grant %q, want %q", last, id)
	}

	// Revoke: the route goes. A call that ext_authz still allows on the
	// grant (a stale view) is refused by Envoy itself.
	active, err := svc.ActiveForClient(ctx, "00u1alice", "0oa-agent", "github", time.Now())
	if err != nil || len(active) != 1 {
		t.Fatalf("active grants before revoke: %v %v", active, err)
	}
	approvals.freeze(active)
	if _, err := svc.Revoke(ctx, id, grants.Actor{Subject: "00u1bob", Groups: []string{"sre"}}, "done"); err != nil {
		t.Fatal(err)
	}
	waitScope(envoy.ScopeName(id), true)
	if code, body := call(); code != 403 || body != envoy.NoGrantRouteBody {
		t.Fatalf("after revoke, with a stale grant in ext_authz: %d %s", code, body)
	}
	// And with ext_authz up to date, the call needs approval again.
	approvals.freeze(nil)
	if code, body := call(); !approvalRequired(code, body) {
		t.Fatalf("after revoke: %d %s", code, body)
	}
}

func e2eConfig(t *testing.T, issuer, authz, up string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	rego, err := os.ReadFile("../policies/airlock/decision.rego")
	if err != nil {
		t.Fatal(err)
	}
	data := `airlock:
  rules:
    "*":
      tools:
        allow: ["*"]
        require_approval: ["delete_*"]
      approval:
        approver_groups: ["sre"]
        # A time-bound grant (the shipped default is this exact call,
        # once): the test calls on it, then revokes it while it is live.
        single_use: false
        grant_duration: "10m"
`
	for name, b := range map[string][]byte{"decision.rego": rego, "data.yaml": []byte(data)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	src := fmt.Sprintf(`
public_url: https://gw.test
listen: {authz: %q, http: "", proc: "", xds: "127.0.0.1:0"}
issuers:
  - name: test
    url: %s
targets:
  - name: github
    upstream: http://%s/mcp
    scopes_required: [mcp.github]
policy: {dir: %s, reload_interval: 0s}
`, authz, issuer, up, dir)
	cfg, err := config.Parse(strings.NewReader(src), "e2e.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
