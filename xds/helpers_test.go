package xds

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/syncbuf"
	"github.com/airlock-mcp/airlock/internal/wire"
	"github.com/airlock-mcp/airlock/test/envoydriver"
)

// testTimeout bounds every wait.
const testTimeout = 10 * time.Second

// fakeAuthz answers Check like airlock's ext_authz does for what routing
// cares about: it allows, sets x-airlock-decision-id, sets x-airlock-grant
// when the test says a grant allowed the call (header x-test-grant), and
// removes every x-airlock-* header it was shown.
type fakeAuthz struct {
	authv3.UnimplementedAuthorizationServer
	mu   sync.Mutex
	seen []map[string]string
}

func (f *fakeAuthz) Check(_ context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := r.GetAttributes().GetRequest().GetHttp().GetHeaders()
	f.mu.Lock()
	f.seen = append(f.seen, h)
	f.mu.Unlock()
	ok := &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{
		{Header: &corev3.HeaderValue{Key: wire.HeaderDecisionID, Value: "d-1"}},
	}}
	if g := h["x-test-grant"]; g != "" {
		ok.Headers = append(ok.Headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: wire.HeaderGrant, Value: g}})
	}
	for k := range h {
		if strings.HasPrefix(k, wire.HeaderPrefix) {
			ok.HeadersToRemove = append(ok.HeadersToRemove, k)
		}
	}
	return &authv3.CheckResponse{Status: &status.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}, nil
}

// count is how many Check requests the fake has answered.
func (f *fakeAuthz) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.seen)
}

func (f *fakeAuthz) last() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.seen) == 0 {
		return nil
	}
	return f.seen[len(f.seen)-1]
}

func serveGRPC(t testing.TB, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	return ln.Addr().String()
}

// upstream records the x-airlock-grant header of each request it gets.
type upstream struct {
	srv    *httptest.Server
	mu     sync.Mutex
	grants []string
}

func newUpstream(t testing.TB) *upstream {
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.grants = append(u.grants, r.Header.Get(wire.HeaderGrant))
		u.mu.Unlock()
		io.WriteString(w, "upstream "+r.URL.Path)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) lastGrant() string {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.grants) == 0 {
		return "<none>"
	}
	return u.grants[len(u.grants)-1]
}

// testConfig is a gateway with targets github and everything on up, and
// ext_authz at authz.
func testConfig(t testing.TB, authz, up string) *config.Config {
	t.Helper()
	src := fmt.Sprintf(`
public_url: http://127.0.0.1:10000
listen: {authz: %q, http: "", proc: "", xds: "127.0.0.1:0"}
issuers: [{name: test, url: "https://issuer.test"}]
targets:
  - name: github
    upstream: http://%s/mcp
  - name: everything
    upstream: http://%s/everything
policy: {dir: %q}
`, authz, up, up, t.TempDir())
	cfg, err := config.Parse(strings.NewReader(src), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// gateway is an xds Server on loopback gRPC with a driver fed over ADS.
type gateway struct {
	srv   *Server
	reg   *prometheus.Registry
	logs  *syncbuf.Buffer
	ads   *envoydriver.ADS
	d     *envoydriver.Driver
	authz *fakeAuthz
	up    *upstream
	xds   string
	resps chan envoydriver.ADSResponse
}

func startGateway(t *testing.T, delta bool) *gateway {
	t.Helper()
	return startGatewayWith(t, func(addr string, opts envoydriver.ADSOptions) (*envoydriver.ADS, error) {
		opts.Node, opts.Delta = &corev3.Node{Id: "gw-1", Cluster: "airlock"}, delta
		return envoydriver.ConnectADS(addr, opts)
	})
}

// testModel is cfg's model with Envoy listening on a free port.
func testModel(t testing.TB, cfg *config.Config) *envoy.Model {
	t.Helper()
	m, err := envoy.NewModel(cfg, envoy.Bound{ListenAddress: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// startGatewayWith starts the gateway with the ADS client connect makes
// (given the xds address and options reporting responses to g.resps).
func startGatewayWith(t *testing.T, connect func(string, envoydriver.ADSOptions) (*envoydriver.ADS, error)) *gateway {
	t.Helper()
	g := &gateway{authz: &fakeAuthz{}, up: newUpstream(t), reg: prometheus.NewRegistry(), logs: &syncbuf.Buffer{},
		resps: make(chan envoydriver.ADSResponse, 1024)}
	authzAddr := serveGRPC(t, func(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, g.authz) })
	cfg := testConfig(t, authzAddr, g.up.srv.Listener.Addr().String())
	srv, err := New(testModel(t, cfg), Options{
		Logger:     slog.New(slog.NewTextHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: g.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	g.srv = srv
	g.xds = serveGRPC(t, srv.Register)
	g.ads, err = connect(g.xds, envoydriver.ADSOptions{
		OnResponse: func(r envoydriver.ADSResponse) {
			select {
			case g.resps <- r:
			default: // a test that stopped reading must not wedge the client
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.ads.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if g.d, err = g.ads.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	return g
}

// call sends a POST to path with extra headers, returning status and body.
func (g *gateway) call(t *testing.T, path string, hdr map[string]string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("POST", "http://"+g.d.Addr()+path, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := (&http.Client{Timeout: testTimeout}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitResponse waits until the ADS client has handled a response for
// which match is true, and returns it.
func (g *gateway) waitResponse(t *testing.T, what string, match func(envoydriver.ADSResponse) bool) envoydriver.ADSResponse {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case r := <-g.resps:
			if match(r) {
				return r
			}
		case <-timeout:
			t.Fatalf("no ADS response: %s", what)
		}
	}
}

// scopeChange matches a scoped-routes response that updated or removed name.
func scopeChange(name string, removed bool) func(envoydriver.ADSResponse) bool {
	return func(r envoydriver.ADSResponse) bool {
		if r.TypeURL != "type.googleapis.com/envoy.config.route.v3.ScopedRouteConfiguration" {
			return false
		}
		list := r.Updated
		if removed {
			list = r.Removed
		}
		for _, n := range list {
			if n == name {
				return true
			}
		}
		return false
	}
}
