package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/extauthz"
	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/grants/pgtest"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/internal/wire"
	"github.com/airlock-mcp/airlock/test/envoydriver"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

// TestReplicasShareGrants runs two gateways (airlock serve) on one
// PostgreSQL grant store: a call held on A is released by an approval
// through B's API; the same call retried through B joins A's request (one
// prompt); a replica stopped mid-hold fails its call closed and the
// request survives on the other, which can still decide it.
func TestReplicasShareGrants(t *testing.T) {
	iss, err := oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default"})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	t.Setenv("AIRLOCK_TEST_REPLICAS_DSN", pgtest.DSN(t))

	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := approvalstest.WritePolicy(pol); err != nil {
		t.Fatal(err)
	}
	start := func(name string) (*serve.Gateway, *config.Config) {
		t.Helper()
		src := fmt.Sprintf(`
listen: {authz: "127.0.0.1:0", http: "127.0.0.1:0", proc: "", xds: "127.0.0.1:0"}
public_url: "http://gateway.test"
issuers: [{name: okta, url: %q}]
targets: [{name: github, upstream: "http://127.0.0.1:1/mcp"}]
policy: {dir: %s, reload_interval: 0s}
grants: {store: postgres, postgres: {dsn_env: AIRLOCK_TEST_REPLICAS_DSN}, hold_window: 2m}
audit: {embedded: {dir: %s}, spool: {dir: %s}}
`, iss.URL(), pol, filepath.Join(dir, name, "audit"), filepath.Join(dir, name, "spool"))
		cfg, err := config.Parse(strings.NewReader(src), filepath.Join(dir, "airlock.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		g, err := serve.Start(context.Background(), cfg, serve.Options{})
		if err != nil {
			t.Fatal(err)
		}
		return g, cfg
	}
	a, cfg := start("a")
	stopped := false
	defer func() {
		if !stopped {
			stopGateway(a)
		}
	}()
	b, _ := start("b")
	defer stopGateway(b)
	// An Envoy on ADS to A only: grants issued through B must reach it.
	scopesOnA := watchScopes(t, a)

	agent, err := iss.Mint(oidcissuer.Token{Subject: "alice@example.com", User: "00u-alice", ClientID: "0oa-agent",
		Groups: []string{"engineering"}, Audience: []string{cfg.Targets[0].Resource}})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := iss.Mint(oidcissuer.Token{Subject: "bob@example.com", User: "00u-bob", ClientID: "airlock-cli",
		Groups: []string{"airlock-approvers"}, Audience: []string{cfg.API.AudienceFor(cfg.PublicURL)}})
	if err != nil {
		t.Fatal(err)
	}
	api := func(g *serve.Gateway, method, path string, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+g.HTTPAddr.String()+approvals.APIPrefix+path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+bob)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, body)
		}
		if out != nil {
			if err := json.Unmarshal(body, out); err != nil {
				t.Fatal(err)
			}
		}
	}
	pending := func(g *serve.Gateway) []grants.Request {
		var list struct {
			Requests []grants.Request `json:"requests"`
		}
		api(g, "GET", "requests?state=pending", &list)
		return list.Requests
	}
	// waitPending waits until g lists n pending requests (it learns of
	// other replicas' writes from the store's feed).
	waitPending := func(g *serve.Gateway, n int, joined int) []grants.Request {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			rs := pending(g)
			if len(rs) == n && (n == 0 || rs[0].Joined == joined) {
				return rs
			}
			if time.Now().After(deadline) {
				t.Fatalf("the replica lists %d pending requests, want %d (joined %d)", len(rs), n, joined)
			}
		}
	}
	call := func(g *serve.Gateway, repo string) <-chan *extauthz.Result {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo","arguments":{"repo":%q}}}`, repo)
		req := &extauthz.Request{Method: "POST", Path: cfg.Targets[0].PathPrefix, Host: "gateway.test", Scheme: "http",
			Headers: map[string]string{"authorization": "Bearer " + agent, "content-type": "application/json",
				"mcp-protocol-version": "2025-03-26", "mcp-session-id": "sess-replicas"},
			Body: []byte(body), ContextExtensions: map[string]string{wire.ContextTarget: "github"}}
		done := make(chan *extauthz.Result, 1)
		go func() { done <- g.Authorizer.Check(context.Background(), req) }()
		return done
	}
	result := func(ch <-chan *extauthz.Result, what string) *extauthz.Result {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-time.After(60 * time.Second):
			t.Fatalf("%s: the held call never ended", what)
			return nil
		}
	}

	// Held on A; the retry through B joins it; approved through B.
	onA := call(a, "acme/one")
	id := waitPending(b, 1, 0)[0].ID
	onB := call(b, "acme/one")
	if got := waitPending(a, 1, 1)[0].ID; got != id {
		t.Fatalf("the retry through B opened %s; want it to join %s", got, id)
	}
	api(b, "POST", "requests/"+id+"/approve", nil)
	ra, rb := result(onA, "call on A"), result(onB, "retry on B")
	if allowed := btoi(ra.Outcome == extauthz.OutcomeAllow) + btoi(rb.Outcome == extauthz.OutcomeAllow); allowed != 1 {
		t.Fatalf("outcomes %s on A and %s on B: want the single-use grant to let exactly one through", ra.Outcome, rb.Outcome)
	}
	var all struct {
		Requests []grants.Request `json:"requests"`
	}
	api(a, "GET", "requests?state=approved", &all)
	if len(all.Requests) != 1 || all.Requests[0].ID != id || len(pending(a)) != 0 {
		t.Fatalf("A lists %d approved requests (%v) and %d pending; want only %s: one prompt per call", len(all.Requests), all.Requests, len(pending(a)), id)
	}

	// The grant was issued through B; the Envoy connected to A has its
	// route (A follows the shared store's feed and serves it over ADS).
	if g := all.Requests[0].GrantID; g == "" {
		t.Fatal("the approved request names no grant")
	} else {
		scopesOnA.wait(t, envoy.ScopeName(g))
	}

	// A stops mid-hold: its call fails closed; the request lives on in
	// the store, and B decides it.
	onA = call(a, "acme/two")
	id = waitPending(b, 1, 0)[0].ID
	stopped = true
	stopGateway(a)
	if r := result(onA, "call on the stopped replica"); r.Outcome == extauthz.OutcomeAllow {
		t.Fatalf("a call held on a replica that stopped was allowed")
	}
	if rs := pending(b); len(rs) != 1 || rs[0].ID != id {
		t.Fatalf("after A stopped, B lists %v pending; want %s", rs, id)
	}
	api(b, "POST", "requests/"+id+"/deny", nil)
	waitPending(b, 0, 0)
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func stopGateway(g *serve.Gateway) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g.Stop(ctx)
}

// scopeWatch records the scopes an ADS client was sent.
type scopeWatch struct {
	mu   sync.Mutex
	seen map[string]bool
	ch   chan struct{}
}

// watchScopes connects the stand-in's ADS client (no listener) to g's
// xDS server as an Envoy would, and records every scope it accepts.
func watchScopes(t *testing.T, g *serve.Gateway) *scopeWatch {
	t.Helper()
	w := &scopeWatch{seen: map[string]bool{}, ch: make(chan struct{}, 1)}
	b, err := envoy.ADSBootstrap(envoy.Node{ID: "envoy-on-a", Cluster: "airlock"}, g.XDSAddr.String(), envoy.ADSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := envoydriver.ConnectBootstrap(b, envoydriver.ADSOptions{NoListener: true, OnResponse: func(r envoydriver.ADSResponse) {
		if r.Err != nil {
			return
		}
		w.mu.Lock()
		for _, n := range r.Updated {
			w.seen[n] = true
		}
		w.mu.Unlock()
		select {
		case w.ch <- struct{}{}:
		default:
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return w
}

func (w *scopeWatch) wait(t *testing.T, name string) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		w.mu.Lock()
		ok := w.seen[name]
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-w.ch:
		case <-deadline:
			t.Fatalf("the ADS client on the other replica never got scope %s", name)
		}
	}
}
