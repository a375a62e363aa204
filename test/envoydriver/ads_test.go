package envoydriver

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
)

// xdsServer is a go-control-plane ADS server over a snapshot cache that
// records the error_detail of every request it gets.
type xdsServer struct {
	cache cache.SnapshotCache
	addr  string
	stop  func()
	mu    sync.Mutex
	nacks []string // "type code message"
	nodes []*corev3.Node
	// watch names a resource; acked is closed when a request ACKs the
	// first response that carried it (the moment the control plane
	// learns the client has it).
	watch  string
	acked  chan struct{}
	nonces map[string]bool // responses that carried watch
}

// watchACK arms acked for a resource name.
func (x *xdsServer) watchACK(name string) <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.watch, x.acked, x.nonces = name, make(chan struct{}), map[string]bool{}
	return x.acked
}

func (x *xdsServer) sent(nonce string, names []string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, n := range names {
		if x.watch != "" && n == x.watch {
			x.nonces[nonce] = true
		}
	}
}

func (x *xdsServer) request(node *corev3.Node, nonce string, nack bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if node != nil {
		x.nodes = append(x.nodes, node)
	}
	if !nack && x.nonces[nonce] && x.acked != nil {
		close(x.acked)
		x.acked, x.nonces = nil, nil
	}
}

func (x *xdsServer) firstNode() *corev3.Node {
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.nodes) == 0 {
		return nil
	}
	return x.nodes[0]
}

func resourceName(a *anypb.Any) string {
	m, ok := newResource(a.GetTypeUrl())
	if !ok || a.UnmarshalTo(m) != nil {
		return ""
	}
	return m.(namedResource).GetName()
}

func startXDS(t *testing.T, addr string, c cache.SnapshotCache, rec *xdsServer) *xdsServer {
	t.Helper()
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if rec == nil {
		rec = &xdsServer{}
	}
	rec.cache, rec.addr = c, ln.Addr().String()
	note := func(typeURL string, d interface {
		GetCode() int32
		GetMessage() string
	}) {
		if d == nil || (d.GetCode() == 0 && d.GetMessage() == "") {
			return
		}
		rec.mu.Lock()
		rec.nacks = append(rec.nacks, fmt.Sprintf("%s %d %s", typeURL, d.GetCode(), d.GetMessage()))
		rec.mu.Unlock()
	}
	cb := server.CallbackFuncs{
		StreamRequestFunc: func(_ int64, r *discoveryv3.DiscoveryRequest) error {
			if r.GetErrorDetail() != nil {
				note(r.GetTypeUrl(), r.GetErrorDetail())
			}
			rec.request(r.GetNode(), r.GetResponseNonce(), r.GetErrorDetail() != nil)
			return nil
		},
		StreamDeltaRequestFunc: func(_ int64, r *discoveryv3.DeltaDiscoveryRequest) error {
			if r.GetErrorDetail() != nil {
				note(r.GetTypeUrl(), r.GetErrorDetail())
			}
			rec.request(r.GetNode(), r.GetResponseNonce(), r.GetErrorDetail() != nil)
			return nil
		},
		StreamResponseFunc: func(_ context.Context, _ int64, _ *discoveryv3.DiscoveryRequest, r *discoveryv3.DiscoveryResponse) {
			var names []string
			for _, a := range r.GetResources() {
				names = append(names, resourceName(a))
			}
			rec.sent(r.GetNonce(), names)
		},
		StreamDeltaResponseFunc: func(_ int64, _ *discoveryv3.DeltaDiscoveryRequest, r *discoveryv3.DeltaDiscoveryResponse) {
			var names []string
			for _, res := range r.GetResources() {
				names = append(names, res.GetName())
			}
			rec.sent(r.GetNonce(), names)
		},
	}
	g := grpc.NewServer()
	discoveryv3.RegisterAggregatedDiscoveryServiceServer(g, server.NewServer(context.Background(), c, cb))
	go func() { _ = g.Serve(ln) }()
	rec.stop = g.Stop
	t.Cleanup(g.Stop)
	return rec
}

func (x *xdsServer) nackList() []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	return append([]string(nil), x.nacks...)
}

func setSnapshot(t *testing.T, c cache.SnapshotCache, version string, res map[resource.Type][]types.Resource) {
	t.Helper()
	snap, err := cache.NewSnapshot(version, res)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetSnapshot(context.Background(), "node-1", snap); err != nil {
		t.Fatal(err)
	}
}

// recorder collects ADSResponses.
type recorder struct{ ch chan ADSResponse }

func (r recorder) on(resp ADSResponse) {
	select {
	case r.ch <- resp:
	default:
	}
}

func (r recorder) wait(t *testing.T, what string, match func(ADSResponse) bool) ADSResponse {
	t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case resp := <-r.ch:
			if match(resp) {
				return resp
			}
		case <-timeout:
			t.Fatalf("no ADS response: %s", what)
		}
	}
}

func connect(t *testing.T, addr string, delta bool, rec recorder) (*ADS, *Driver) {
	t.Helper()
	return connectWith(t, addr, ADSOptions{Delta: delta}, rec)
}

func connectWith(t *testing.T, addr string, opts ADSOptions, rec recorder) (*ADS, *Driver) {
	t.Helper()
	if opts.Node == nil {
		opts.Node = &corev3.Node{Id: "node-1"}
	}
	opts.Logger, opts.OnResponse = testLogger(t), rec.on
	a, err := ConnectADS(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	d, err := a.WaitReady(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return a, d
}

// TestADSScopedRoutes: the client takes clusters and the listener, then
// the scoped routes the listener names, starts the driver only then, and
// follows later scope changes; a scope missing from a SotW response is
// removed (Envoy's SRDS treats a SotW response as the full set).
func TestADSScopedRoutes(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			a := newUpstream(t, nil)
			b := newUpstream(t, nil)
			_, authzAddr := scopeAuthz(t)
			clusters := []types.Resource{staticCluster("a", a.addr()), staticCluster("b", b.addr()), staticCluster("authz", authzAddr)}
			lis := scopedListener(t, scopedRDS(), "authz")
			base := scope("base", "base", namedRC("rc-a", prefixRoute("/", "a")))
			s1 := scope("s1", "s1", namedRC("rc-b", prefixRoute("/", "b")))
			c := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
			setSnapshot(t, c, "1", map[resource.Type][]types.Resource{
				resource.ClusterType: clusters, resource.ListenerType: {lis}, resource.ScopedRouteType: {base, s1},
			})
			x := startXDS(t, "", c, nil)
			rec := recorder{make(chan ADSResponse, 64)}
			_, d := connect(t, x.addr, delta, rec)

			if got := do(t, d, "GET", "/", "", map[string]string{"x-want": "s1"}); got.Status != 200 || len(b.requests()) != 1 {
				t.Fatalf("scope s1: %d", got.Status)
			}
			setSnapshot(t, c, "2", map[resource.Type][]types.Resource{
				resource.ClusterType: clusters, resource.ListenerType: {lis}, resource.ScopedRouteType: {base},
			})
			r := rec.wait(t, "s1 removed", func(r ADSResponse) bool { return r.TypeURL == resource.ScopedRouteType && len(r.Removed) > 0 })
			if r.Err != nil || strings.Join(r.Removed, ",") != "s1" {
				t.Fatalf("removal: %+v", r)
			}
			if got := do(t, d, "GET", "/", "", map[string]string{"x-want": "s1"}); got.Status != 403 {
				t.Fatalf("removed scope: %d, want the mapped 403", got.Status)
			}
			if got := do(t, d, "GET", "/", "", nil); got.Status != 200 {
				t.Fatalf("base scope after removal: %d", got.Status)
			}
		})
	}
}

// TestADSNACK: a resource the driver cannot serve is NACKed with Envoy's
// error_detail (code Internal, the error text), the previous configuration
// stays, and the next good version is accepted.
func TestADSNACK(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			a := newUpstream(t, nil)
			clusters := []types.Resource{staticCluster("a", a.addr())}
			good := namedRC("routes", prefixRoute("/", "a"))
			c := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
			setSnapshot(t, c, "1", map[resource.Type][]types.Resource{
				resource.ClusterType: clusters, resource.ListenerType: {listener(t, nil)}, resource.RouteType: {good},
			})
			x := startXDS(t, "", c, nil)
			rec := recorder{make(chan ADSResponse, 64)}
			_, d := connect(t, x.addr, delta, rec)
			if got := do(t, d, "GET", "/", "", nil); got.Status != 200 {
				t.Fatalf("rds route: %d", got.Status)
			}

			bad := namedRC("routes", prefixRoute("/", "a"))
			bad.VirtualHosts[0].Routes[0].GetRoute().RetryPolicy = &routev3.RetryPolicy{RetryOn: "5xx"}
			setSnapshot(t, c, "2", map[resource.Type][]types.Resource{
				resource.ClusterType: clusters, resource.ListenerType: {listener(t, nil)}, resource.RouteType: {bad},
			})
			r := rec.wait(t, "the NACK", func(r ADSResponse) bool { return r.Err != nil })
			if r.TypeURL != resource.RouteType || !strings.Contains(r.Err.Error(), "retry_policy is not supported") {
				t.Fatalf("NACK: %+v", r)
			}
			want := fmt.Sprintf("%s %d ", resource.RouteType, codes.Internal)
			var seen []string
			deadline := time.Now().Add(testTimeout)
			for len(seen) == 0 && time.Now().Before(deadline) {
				seen = x.nackList()
				time.Sleep(2 * time.Millisecond)
			}
			// (A plain go-control-plane snapshot cache answers a SotW NACK by
			// sending the rejected version again, so it may see several.)
			for _, n := range seen {
				if !strings.HasPrefix(n, want) || !strings.Contains(n, "retry_policy") {
					t.Fatalf("server saw NACK %q, want %q… naming retry_policy", n, want)
				}
			}
			if len(seen) == 0 {
				t.Fatal("the server saw no NACK")
			}
			if got := do(t, d, "GET", "/", "", nil); got.Status != 200 {
				t.Fatalf("after NACK the previous routes must serve: %d", got.Status)
			}

			setSnapshot(t, c, "3", map[resource.Type][]types.Resource{
				resource.ClusterType: clusters, resource.ListenerType: {listener(t, nil)}, resource.RouteType: {namedRC("routes")},
			})
			r = rec.wait(t, "version 3", func(r ADSResponse) bool { return r.TypeURL == resource.RouteType && r.Err == nil })
			if got := do(t, d, "GET", "/", "", nil); got.Status != 404 {
				t.Fatalf("version 3 has no routes: %d, want 404", got.Status)
			}
		})
	}
}

// TestADSReconnects: when the control plane goes away the client keeps
// serving what it holds, reconnects, and takes the new state.
func TestADSReconnects(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			a := newUpstream(t, nil)
			clusters := []types.Resource{staticCluster("a", a.addr())}
			c := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
			setSnapshot(t, c, "1", map[resource.Type][]types.Resource{
				resource.ClusterType: clusters, resource.ListenerType: {listener(t, nil)}, resource.RouteType: {namedRC("routes", prefixRoute("/", "a"))},
			})
			x := startXDS(t, "", c, nil)
			rec := recorder{make(chan ADSResponse, 64)}
			_, d := connect(t, x.addr, delta, rec)
			x.stop()
			if got := do(t, d, "GET", "/", "", nil); got.Status != 200 {
				t.Fatalf("serving without a control plane: %d", got.Status)
			}
			setSnapshot(t, c, "2", map[resource.Type][]types.Resource{
				resource.ClusterType: clusters, resource.ListenerType: {listener(t, nil)}, resource.RouteType: {namedRC("routes")},
			})
			startXDS(t, x.addr, c, nil)
			rec.wait(t, "version 2 after reconnecting", func(r ADSResponse) bool {
				return r.TypeURL == resource.RouteType && r.Version == "2" && r.Err == nil
			})
			if got := do(t, d, "GET", "/", "", nil); got.Status != 404 {
				t.Fatalf("after reconnect: %d, want version 2's 404", got.Status)
			}
		})
	}
}

func TestConnectBootstrapRejects(t *testing.T) {
	ads := func(api corev3.ApiConfigSource_ApiType, cluster string) *bootstrapv3.Bootstrap {
		return &bootstrapv3.Bootstrap{
			Node: &corev3.Node{Id: "n"},
			DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{AdsConfig: &corev3.ApiConfigSource{
				ApiType: api, GrpcServices: []*corev3.GrpcService{grpcService(cluster, 0)}}},
			StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{staticCluster("xds", "127.0.0.1:1")}},
		}
	}
	for name, tc := range map[string]struct {
		b    *bootstrapv3.Bootstrap
		want string
	}{
		"no ads_config":   {&bootstrapv3.Bootstrap{}, "no dynamic_resources.ads_config"},
		"REST":            {ads(corev3.ApiConfigSource_REST, "xds"), "api_type REST"},
		"unknown cluster": {ads(corev3.ApiConfigSource_GRPC, "nope"), `cluster "nope" is not a static cluster`},
	} {
		t.Run(name, func(t *testing.T) {
			a, err := ConnectBootstrap(tc.b, ADSOptions{})
			if err == nil {
				a.Close()
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
