package serve

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// TestLifecycleClosesInReverse: last started, first stopped; a failing
// stop does not keep the others running, and says which one failed.
func TestLifecycleClosesInReverse(t *testing.T) {
	var l lifecycle
	var order []string
	for _, name := range []string{"audit", "http", "grants", "ext_authz"} {
		l.add(name, func(context.Context) error {
			order = append(order, name)
			if name == "http" {
				return errors.New("boom")
			}
			return nil
		})
	}
	err := l.close(context.Background())
	if want := []string{"ext_authz", "grants", "http", "audit"}; !slices.Equal(order, want) {
		t.Fatalf("stopped in order %v, want %v", order, want)
	}
	if err == nil || !strings.Contains(err.Error(), "stopping http: boom") {
		t.Fatalf("close error = %v, want it to name the http component", err)
	}
	order = nil
	if err := l.close(context.Background()); err != nil || len(order) != 0 {
		t.Fatalf("a second close stopped %v (err %v): each component stops once", order, err)
	}
}

// TestStartOrder holds the order Start documents (and Stop reverses):
// the HTTP server outlives the grant service, which ends its event
// streams; the audit recorder outlives everything that records.
func TestStartOrder(t *testing.T) {
	cfg := testConfig(t, `  {authz: "127.0.0.1:0", proc: "127.0.0.1:0", xds: "127.0.0.1:0", http: "127.0.0.1:0"}`, "")
	cfg.Policy.ReloadInterval = 0
	g := start(t, cfg)
	want := []string{"audit", "http", "notify", "grants", "ext_authz", "ext_proc", "xds", "workers"}
	if got := g.life.names(); !slices.Equal(got, want) {
		t.Fatalf("components started in order %v, want %v", got, want)
	}
}

// TestFailedStartReleasesEverything: when a late component cannot start
// (here ext_proc's port is taken), everything started before it is
// stopped — the grant store's and the audit store's locks are released
// and the ports closed — so the next start on the same directories works.
func TestFailedStartReleasesEverything(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, `  {authz: "127.0.0.1:0", proc: "`+taken.Addr().String()+`", xds: "", http: "127.0.0.1:0"}`, "")
	if _, err := Start(context.Background(), cfg, Options{}); err == nil || !strings.Contains(err.Error(), "listen.proc") {
		t.Fatalf("Start with ext_proc's port taken: %v, want a listen.proc error", err)
	}
	// The grant store's lock is free: opening it again would fail
	// while any airlock holds it.
	st, err := grants.OpenFileStore(cfg.Grants.Dir, grants.FileStoreOptions{})
	if err != nil {
		t.Fatalf("the failed start left the grant store locked: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	taken.Close()
	g := start(t, cfg) // audit store, grant store and ports all free again
	if g.ProcAddr == nil || g.ProcAddr.String() != taken.Addr().String() {
		t.Fatalf("ext_proc listens on %v, want %s", g.ProcAddr, taken.Addr())
	}
}
