package xds

import (
	"context"
	"net"
	"testing"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/grants/grantstest"
)

// airlockProcess is what one airlock process holds for xDS: the grant
// store opened on dir, the grant service, the xDS server loaded from it
// (StartFollow, as serve does) and serving on loopback.
type airlockProcess struct {
	svc  *grants.Service
	srv  *Server
	g    *grpc.Server
	addr string
	stop context.CancelFunc
	done <-chan struct{}
}

func startProcess(t *testing.T, dir string, m *envoy.Model) *airlockProcess {
	t.Helper()
	st, err := grants.OpenFileStore(dir, grants.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := grants.New(st, grants.Defaults(), grants.Options{})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(m, Options{Registerer: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, err := StartFollow(ctx, svc, srv, FollowOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	p := &airlockProcess{svc: svc, srv: srv, g: g, addr: ln.Addr().String(), stop: cancel, done: done}
	t.Cleanup(p.close)
	return p
}

func (p *airlockProcess) close() {
	p.stop()
	<-p.done
	p.srv.Close()
	p.g.Stop()
	_ = p.svc.Close()
}

// TestRestartKeepsRoutes: with 10,000 live grants in a file store, an
// airlock restart (a new store on the same directory, a new Server) and
// the reconnect of a delta client (with initial_resource_versions) and a
// SotW client remove no live grant's scope, and both clients hold every
// grant's scope after their first response.
// bigStream bounds a stream carrying 10,000 scopes (slow under -race).
const bigStream = 5 * time.Minute

func TestRestartKeepsRoutes(t *testing.T) {
	const n = 10000
	dir := t.TempDir()
	grantstest.WriteLive(t, dir, n, "github", "https://issuer.test")
	model := testModel(t, testConfig(t, "127.0.0.1:1", "127.0.0.1:2"))
	live := map[string]bool{envoy.BaseScopeName: true}
	for i := range n {
		live[envoy.ScopeName(grantstest.ID(i))] = true
	}

	first := startProcess(t, dir, model)
	// The delta client: its versions, as Envoy sends them back on reconnect.
	d := dialRawFor(t, first.addr, envoyNode("gw-delta", 1, 37, 0), true, bigStream)
	d.subscribe(t)
	r := d.recvDelta(t)
	versions := map[string]string{}
	for _, res := range r.GetResources() {
		versions[res.GetName()] = res.GetVersion()
	}
	if len(versions) != len(live) {
		t.Fatalf("delta client got %d scopes before the restart, want %d", len(versions), len(live))
	}
	d.ack(t, r.GetNonce(), "", "")
	s := dialRawFor(t, first.addr, envoyNode("gw-sotw", 1, 37, 0), false, bigStream)
	s.subscribe(t)
	up, _, nonce, ver := s.next(t)
	if len(up) != len(live) {
		t.Fatalf("SotW client got %d scopes before the restart, want %d", len(up), len(live))
	}
	s.ack(t, nonce, ver, "")

	first.close()
	second := startProcess(t, dir, model)
	if got := len(second.srv.Grants()); got != n {
		t.Fatalf("the restarted server routes %d grants before serving, want %d", got, n)
	}

	d2 := dialRawFor(t, second.addr, envoyNode("gw-delta", 1, 37, 0), true, bigStream)
	d2.sendDelta(t, &discovery.DeltaDiscoveryRequest{InitialResourceVersions: versions})
	r = d2.recvDelta(t)
	removedLive := 0
	for _, name := range r.GetRemovedResources() {
		if live[name] {
			removedLive++
		}
		delete(versions, name)
	}
	for _, res := range r.GetResources() {
		versions[res.GetName()] = res.GetVersion()
	}
	t.Logf("delta reconnect: %d scopes resent, %d removed", len(r.GetResources()), len(r.GetRemovedResources()))
	if removedLive != 0 {
		t.Errorf("delta reconnect: %d live grant scopes removed, want 0", removedLive)
	}
	for name := range live {
		if _, ok := versions[name]; !ok {
			t.Errorf("delta reconnect: %s missing", name)
			break
		}
	}
	if len(versions) != len(live) {
		t.Errorf("delta client holds %d scopes after the reconnect, want %d", len(versions), len(live))
	}

	s2 := dialRawFor(t, second.addr, envoyNode("gw-sotw", 1, 37, 0), false, bigStream)
	// Envoy resends the version it last accepted.
	s2.sendSotW(t, &discovery.DiscoveryRequest{VersionInfo: ver})
	up, _, _, _ = s2.next(t)
	got := map[string]bool{}
	for _, name := range up {
		got[name] = true
	}
	missing := 0
	for name := range live {
		if !got[name] {
			missing++ // SotW: a scope absent from the response is removed
		}
	}
	if missing != 0 || len(got) != len(live) {
		t.Errorf("SotW reconnect: %d live scopes missing (removed) of %d; response holds %d", missing, len(live), len(got))
	}
}
