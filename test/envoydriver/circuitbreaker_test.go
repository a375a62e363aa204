package envoydriver

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// withBreakers sets a cluster's DEFAULT priority thresholds; a negative
// value leaves the threshold unset.
func withBreakers(c *clusterv3.Cluster, maxConn, maxPending, maxReq int) *clusterv3.Cluster {
	th := &clusterv3.CircuitBreakers_Thresholds{TrackRemaining: true}
	set := func(v int) *wrapperspb.UInt32Value {
		if v < 0 {
			return nil
		}
		return wrapperspb.UInt32(uint32(v))
	}
	th.MaxConnections, th.MaxPendingRequests, th.MaxRequests = set(maxConn), set(maxPending), set(maxReq)
	c.CircuitBreakers = &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{th}}
	return c
}

// blockingUpstream answers once release is closed; started receives one
// value per request it holds.
func blockingUpstream(t *testing.T) (*upstream, chan struct{}, chan struct{}) {
	started, release := make(chan struct{}, 16), make(chan struct{})
	u := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-release
		_, _ = w.Write([]byte("upstream ok"))
	})
	return u, started, release
}

func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func stats(t *testing.T, d *Driver, cluster string) ClusterStats {
	t.Helper()
	st, ok := d.ClusterStats(cluster)
	if !ok {
		t.Fatalf("no cluster %q", cluster)
	}
	return st
}

// waitStats polls until cond holds for the cluster's stats.
func waitStats(t *testing.T, d *Driver, cluster string, cond func(ClusterStats) bool) ClusterStats {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		st := stats(t, d, cluster)
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster %q stats %+v never reached the expected state", cluster, st)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestRouterCircuitBreakers: the router's HTTP/1 upstream holds one
// request slot per request; over max_requests the request fails at once,
// with max_connections open it waits as pending unless
// max_pending_requests wait already — each overflow is the router's 503
// with x-envoy-overloaded (router.cc onUpstreamAbort) and response flag
// UO, counted as upstream_rq_pending_overflow (conn_pool_base.cc).
func TestRouterCircuitBreakers(t *testing.T) {
	for _, tc := range []struct {
		name                 string
		maxConn, maxPend     int
		maxReq               int
		suppressEnvoyHeaders bool
		wantRq, wantPend     uint64
	}{
		{"max_requests 1", -1, -1, 1, false, 1, 0},
		{"max_requests 1, suppress_envoy_headers", -1, -1, 1, true, 1, 0},
		{"max_connections 1, max_pending_requests 0", 1, 0, -1, false, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up, started, release := blockingUpstream(t)
			l := listener(t, routeConfig(prefixRoute("/", "up")))
			if tc.suppressEnvoyHeaders {
				l = listenerWithRouter(t, l, &routerv3.Router{SuppressEnvoyHeaders: true})
			}
			d := startDriver(t, Config{Listener: l, Clusters: []*clusterv3.Cluster{withBreakers(staticCluster("up", up.addr()), tc.maxConn, tc.maxPend, tc.maxReq)}})
			first := make(chan result, 1)
			go func() { first <- do(t, d, "GET", "/1", "", nil) }()
			wait(t, started, "the first request upstream")

			got := do(t, d, "GET", "/2", "", nil)
			wantHdr := "true"
			if tc.suppressEnvoyHeaders {
				wantHdr = ""
			}
			if got.Status != 503 || got.Header.Get("x-envoy-overloaded") != wantHdr || !strings.Contains(got.Body, "overflow") {
				t.Fatalf("second request: %d %q x-envoy-overloaded=%q; want 503 overflow, header %q", got.Status, got.Body, got.Header.Get("x-envoy-overloaded"), wantHdr)
			}
			st := stats(t, d, "up")
			if st.RqOverflow != tc.wantRq || st.PendingOverflow != tc.wantPend || st.RqPendingOverflow != tc.wantRq+tc.wantPend || st.RqActive != 1 {
				t.Fatalf("stats %+v", st)
			}
			close(release)
			if r := <-first; r.Status != 200 {
				t.Fatalf("first request: %d", r.Status)
			}
			waitStats(t, d, "up", func(s ClusterStats) bool { return s.RqActive == 0 })
			if r := do(t, d, "GET", "/3", "", nil); r.Status != 200 || len(up.requests()) != 2 {
				t.Fatalf("after the release: %d, upstream saw %d", r.Status, len(up.requests()))
			}
		})
	}
}

// TestRouterPendingRequest: with max_connections open a request waits as
// pending (upstream_rq_pending_active) and goes upstream when a
// connection frees; a request beyond max_pending_requests overflows.
func TestRouterPendingRequest(t *testing.T) {
	up, started, release := blockingUpstream(t)
	d := startDriver(t, Config{Listener: listener(t, routeConfig(prefixRoute("/", "up"))),
		Clusters: []*clusterv3.Cluster{withBreakers(staticCluster("up", up.addr()), 1, 1, -1)}})
	first, second := make(chan result, 1), make(chan result, 1)
	go func() { first <- do(t, d, "GET", "/1", "", nil) }()
	wait(t, started, "the first request upstream")
	go func() { second <- do(t, d, "GET", "/2", "", nil) }()
	waitStats(t, d, "up", func(s ClusterStats) bool { return s.RqPendingActive == 1 })
	if got := do(t, d, "GET", "/3", "", nil); got.Status != 503 || got.Header.Get("x-envoy-overloaded") != "true" {
		t.Fatalf("third request: %d, want the 503 overflow", got.Status)
	}
	close(release)
	if a, b := <-first, <-second; a.Status != 200 || b.Status != 200 {
		t.Fatalf("held and pending requests: %d, %d", a.Status, b.Status)
	}
	st := waitStats(t, d, "up", func(s ClusterStats) bool { return s.RqActive == 0 })
	if st.PendingOverflow != 1 || st.CxOverflow < 2 || st.RqTotal != 2 || st.RemainingRq != defaultBreakerLimit {
		t.Fatalf("stats %+v", st)
	}
}

// listenerWithRouter replaces the router filter's config.
func listenerWithRouter(t *testing.T, l *listenerv3.Listener, r *routerv3.Router) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{}
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	last := hcm.HttpFilters[len(hcm.HttpFilters)-1]
	last.ConfigType = &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, r)}
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}
	return l
}

// TestAuthzCircuitBreaker: a held Check holds a request slot of the
// authorization cluster; a Check over max_requests fails, which ext_authz
// treats as an error: status_on_error (403 by default), or the request
// passes under failure_mode_allow.
func TestAuthzCircuitBreaker(t *testing.T) {
	for _, tc := range []struct {
		name       string
		mod        func(*extauthzv3.ExtAuthz)
		wantStatus int
	}{
		{"status_on_error default 403", nil, 403},
		{"failure_mode_allow", func(c *extauthzv3.ExtAuthz) { c.FailureModeAllow = true }, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			held, release := make(chan struct{}, 4), make(chan struct{})
			authz, authzAddr := newAuthz(t, func(_ context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				held <- struct{}{}
				<-release
				return &authv3.CheckResponse{Status: &status.Status{}}, nil
			})
			c := &extauthzv3.ExtAuthz{Services: &extauthzv3.ExtAuthz_GrpcService{GrpcService: grpcService("authz", 0)}, TransportApiVersion: corev3.ApiVersion_V3}
			if tc.mod != nil {
				tc.mod(c)
			}
			d := startDriver(t, Config{Listener: listener(t, routeConfig(prefixRoute("/", "up")), authzFilter(t, c)),
				Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), withBreakers(staticCluster("authz", authzAddr), -1, -1, 1)}})
			first := make(chan result, 1)
			go func() { first <- do(t, d, "GET", "/held", "", nil) }()
			wait(t, held, "the held Check")
			if got := do(t, d, "GET", "/over", "", nil); got.Status != tc.wantStatus {
				t.Fatalf("second call: %d %q, want %d", got.Status, got.Body, tc.wantStatus)
			}
			if n := len(authz.requests()); n != 1 {
				t.Fatalf("the authorization server saw %d Checks, want 1 (the overflow never reaches it)", n)
			}
			if st := stats(t, d, "authz"); st.RqOverflow != 1 || st.RqActive != 1 || st.RemainingRq != 0 {
				t.Fatalf("authz stats %+v", st)
			}
			close(release)
			if r := <-first; r.Status != 200 {
				t.Fatalf("held call: %d", r.Status)
			}
			waitStats(t, d, "authz", func(s ClusterStats) bool { return s.RqActive == 0 })
		})
	}
}

// TestProcCircuitBreaker: an ext_proc stream holds a request slot of the
// processor's cluster for its life; a stream over max_requests fails to
// open, which is a stream error: 500, or the request passes under
// failure_mode_allow.
func TestProcCircuitBreaker(t *testing.T) {
	for _, tc := range []struct {
		name       string
		fma        bool
		wantStatus int
	}{
		{"failure_mode_allow false: 500", false, 500},
		{"failure_mode_allow", true, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			opened, release := make(chan struct{}, 4), make(chan struct{})
			proc, procAddr := newProc(t, func(s *procStream) error {
				r, err := s.Recv()
				if err != nil {
					return nil
				}
				opened <- struct{}{}
				<-release
				if err := s.Send(echoResponse(r)); err != nil {
					return nil
				}
				return serveEach(one(echoResponse))(s)
			})
			pc := procConfigFor("proc", nil)
			pc.FailureModeAllow = tc.fma
			d := startDriver(t, Config{Listener: listener(t, routeConfig(prefixRoute("/", "up")), procFilter(t, pc)),
				Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), withBreakers(staticCluster("proc", procAddr), -1, -1, 1)}})
			first := make(chan result, 1)
			go func() { first <- do(t, d, "GET", "/held", "", nil) }()
			wait(t, opened, "the first ext_proc stream")
			if got := do(t, d, "GET", "/over", "", nil); got.Status != tc.wantStatus {
				t.Fatalf("second call: %d %q, want %d", got.Status, got.Body, tc.wantStatus)
			}
			if n := len(proc.received()); n != 1 {
				t.Fatalf("the processor saw %d streams, want 1", n)
			}
			if st := stats(t, d, "proc"); st.RqOverflow != 1 || st.RqActive != 1 {
				t.Fatalf("proc stats %+v", st)
			}
			close(release)
			if r := <-first; r.Status != 200 {
				t.Fatalf("held call: %d", r.Status)
			}
			// The stream's slot is released when the stream ends.
			waitStats(t, d, "proc", func(s ClusterStats) bool { return s.RqActive == 0 })
		})
	}
}

// TestCircuitBreakerConfig: Envoy's defaults (1024 each, max_retries 3)
// apply without circuit_breakers; a HIGH priority entry does not change
// the DEFAULT thresholds, and of two DEFAULT entries the first counts
// (upstream_impl.cc ResourceManagers::load uses std::find_if); what the
// stand-in does not implement is refused by name.
func TestCircuitBreakerConfig(t *testing.T) {
	c := staticCluster("c", "127.0.0.1:1")
	th, err := compileBreakers(c)
	if err != nil || th != (thresholds{1024, 1024, 1024, 3}) {
		t.Fatalf("defaults %+v, %v", th, err)
	}
	withBreakers(c, 7, 8, 9)
	c.CircuitBreakers.Thresholds = append(c.CircuitBreakers.Thresholds, &clusterv3.CircuitBreakers_Thresholds{
		Priority: corev3.RoutingPriority_HIGH, MaxRequests: wrapperspb.UInt32(1)})
	c.CircuitBreakers.Thresholds = append(c.CircuitBreakers.Thresholds, &clusterv3.CircuitBreakers_Thresholds{MaxRequests: wrapperspb.UInt32(2)})
	if th, err = compileBreakers(c); err != nil || th != (thresholds{7, 8, 9, 3}) {
		t.Fatalf("configured %+v, %v", th, err)
	}
	for name, mod := range map[string]func(*clusterv3.CircuitBreakers){
		"per_host_thresholds": func(cb *clusterv3.CircuitBreakers) { cb.PerHostThresholds = cb.Thresholds },
		"retry_budget": func(cb *clusterv3.CircuitBreakers) {
			cb.Thresholds[0].RetryBudget = &clusterv3.CircuitBreakers_Thresholds_RetryBudget{}
		},
		"max_connection_pools": func(cb *clusterv3.CircuitBreakers) { cb.Thresholds[0].MaxConnectionPools = wrapperspb.UInt32(1) },
	} {
		t.Run(name, func(t *testing.T) {
			c := withBreakers(staticCluster("c", "127.0.0.1:1"), 1, 1, 1)
			mod(c.CircuitBreakers)
			if _, err := compileCluster(c); err == nil || !strings.Contains(err.Error(), name) {
				t.Fatalf("err = %v, want one naming %s", err, name)
			}
		})
	}
}

// TestRouterPendingClientGone: a pending request whose client goes away
// leaves the pending queue, and the slot it never got stays free for the
// next request.
func TestRouterPendingClientGone(t *testing.T) {
	up, started, release := blockingUpstream(t)
	d := startDriver(t, Config{Listener: listener(t, routeConfig(prefixRoute("/", "up"))),
		Clusters: []*clusterv3.Cluster{withBreakers(staticCluster("up", up.addr()), 1, 1, -1)}})
	first := make(chan result, 1)
	go func() { first <- do(t, d, "GET", "/1", "", nil) }()
	wait(t, started, "the first request upstream")

	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+d.Addr()+"/2", nil)
	if err != nil {
		t.Fatal(err)
	}
	gone := make(chan error, 1)
	go func() {
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		gone <- err
	}()
	waitStats(t, d, "up", func(s ClusterStats) bool { return s.RqPendingActive == 1 })
	cancel()
	if err := <-gone; err == nil {
		t.Fatal("the cancelled request got a response")
	}
	waitStats(t, d, "up", func(s ClusterStats) bool { return s.RqPendingActive == 0 })
	close(release)
	if r := <-first; r.Status != 200 {
		t.Fatalf("first request: %d", r.Status)
	}
	if r := do(t, d, "GET", "/3", "", nil); r.Status != 200 {
		t.Fatalf("after the pending request left: %d", r.Status)
	}
	if st := waitStats(t, d, "up", func(s ClusterStats) bool { return s.RqActive == 0 }); st.RqTotal != 2 {
		t.Fatalf("stats %+v, want 2 requests through", st)
	}
}
