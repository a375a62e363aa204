package envoydriver

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
)

// testTimeout bounds every wait in the tests.
const testTimeout = 10 * time.Second

func mustAny(t testing.TB, m proto.Message) *anypb.Any {
	t.Helper()
	a, err := anypb.New(m)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// ---- upstream ----

// upstreamRequest is what the test upstream saw.
type upstreamRequest struct {
	Method, Path, Host string
	Header             http.Header
	Body               string
	ContentLength      int64
	TransferEncoding   []string
}

// upstream is an httptest server that records requests and answers with
// handler (default: 200 "upstream ok").
type upstream struct {
	srv     *httptest.Server
	mu      sync.Mutex
	reqs    []upstreamRequest
	handler http.HandlerFunc
}

func newUpstream(t *testing.T, handler http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{handler: handler}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, upstreamRequest{Method: r.Method, Path: r.RequestURI, Host: r.Host, Header: r.Header.Clone(),
			Body: string(body), ContentLength: r.ContentLength, TransferEncoding: r.TransferEncoding})
		u.mu.Unlock()
		if u.handler != nil {
			u.handler(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "upstream ok")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) requests() []upstreamRequest {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]upstreamRequest(nil), u.reqs...)
}

func (u *upstream) last(t *testing.T) upstreamRequest {
	t.Helper()
	r := u.requests()
	if len(r) == 0 {
		t.Fatal("upstream saw no request")
	}
	return r[len(r)-1]
}

func (u *upstream) addr() string { return u.srv.Listener.Addr().String() }

// ---- gRPC servers ----

func serveGRPC(t *testing.T, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	register(s)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// authzServer records CheckRequests and answers with check.
type authzServer struct {
	authv3.UnimplementedAuthorizationServer
	mu    sync.Mutex
	reqs  []*authv3.CheckRequest
	check func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)
}

func (a *authzServer) Check(ctx context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	a.mu.Lock()
	a.reqs = append(a.reqs, r)
	a.mu.Unlock()
	return a.check(ctx, r)
}

func (a *authzServer) requests() []*authv3.CheckRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*authv3.CheckRequest(nil), a.reqs...)
}

func newAuthz(t *testing.T, check func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error)) (*authzServer, string) {
	a := &authzServer{check: check}
	addr := serveGRPC(t, func(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, a) })
	return a, addr
}

// procServer records the ProcessingRequests of every stream and answers
// with handle, which owns the stream.
type procServer struct {
	procsvc.UnimplementedExternalProcessorServer
	mu      sync.Mutex
	streams [][]*procsvc.ProcessingRequest
	ends    []error
	ended   []chan struct{}
	handle  func(s *procStream) error
}

// procStream wraps one server stream and records what it receives.
type procStream struct {
	srv *procServer
	idx int
	grpc.BidiStreamingServer[procsvc.ProcessingRequest, procsvc.ProcessingResponse]
}

func (p *procStream) Recv() (*procsvc.ProcessingRequest, error) {
	r, err := p.BidiStreamingServer.Recv()
	p.srv.mu.Lock()
	if err == nil {
		p.srv.streams[p.idx] = append(p.srv.streams[p.idx], r)
	} else if p.srv.ends[p.idx] == nil {
		p.srv.ends[p.idx] = err
		close(p.srv.ended[p.idx])
	}
	p.srv.mu.Unlock()
	return r, err
}

// endOf waits for stream i to end on the server side and returns the error
// its Recv saw (io.EOF for a half-close by the driver).
func (s *procServer) endOf(t *testing.T, i int) error {
	t.Helper()
	s.mu.Lock()
	ch := s.ended[i]
	s.mu.Unlock()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("ext_proc stream %d did not end", i)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ends[i]
}

func (s *procServer) Process(st grpc.BidiStreamingServer[procsvc.ProcessingRequest, procsvc.ProcessingResponse]) error {
	s.mu.Lock()
	s.streams = append(s.streams, nil)
	s.ends = append(s.ends, nil)
	s.ended = append(s.ended, make(chan struct{}))
	idx := len(s.streams) - 1
	s.mu.Unlock()
	return s.handle(&procStream{srv: s, idx: idx, BidiStreamingServer: st})
}

func (s *procServer) received() [][]*procsvc.ProcessingRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]*procsvc.ProcessingRequest, len(s.streams))
	for i, st := range s.streams {
		out[i] = append([]*procsvc.ProcessingRequest(nil), st...)
	}
	return out
}

func newProc(t *testing.T, handle func(*procStream) error) (*procServer, string) {
	p := &procServer{handle: handle}
	addr := serveGRPC(t, func(s *grpc.Server) { procsvc.RegisterExternalProcessorServer(s, p) })
	return p, addr
}

// kind names a ProcessingRequest for phase-order assertions, e.g.
// "request_body(eos)".
func kind(r *procsvc.ProcessingRequest) string {
	switch m := r.GetRequest().(type) {
	case *procsvc.ProcessingRequest_RequestHeaders:
		return "request_headers" + eos(m.RequestHeaders.GetEndOfStream())
	case *procsvc.ProcessingRequest_ResponseHeaders:
		return "response_headers" + eos(m.ResponseHeaders.GetEndOfStream())
	case *procsvc.ProcessingRequest_RequestBody:
		return "request_body" + eos(m.RequestBody.GetEndOfStream())
	case *procsvc.ProcessingRequest_ResponseBody:
		return "response_body" + eos(m.ResponseBody.GetEndOfStream())
	case *procsvc.ProcessingRequest_RequestTrailers:
		return "request_trailers"
	case *procsvc.ProcessingRequest_ResponseTrailers:
		return "response_trailers"
	}
	return "unknown"
}

func eos(b bool) string {
	if b {
		return "(eos)"
	}
	return ""
}

// echoResponse answers a ProcessingRequest with the matching empty
// CONTINUE response — a well-behaved processor that changes nothing.
func echoResponse(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
	common := &procsvc.CommonResponse{}
	switch r.GetRequest().(type) {
	case *procsvc.ProcessingRequest_RequestHeaders:
		return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_RequestHeaders{RequestHeaders: &procsvc.HeadersResponse{Response: common}}}
	case *procsvc.ProcessingRequest_ResponseHeaders:
		return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_ResponseHeaders{ResponseHeaders: &procsvc.HeadersResponse{Response: common}}}
	case *procsvc.ProcessingRequest_RequestBody:
		return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_RequestBody{RequestBody: &procsvc.BodyResponse{Response: common}}}
	case *procsvc.ProcessingRequest_ResponseBody:
		return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_ResponseBody{ResponseBody: &procsvc.BodyResponse{Response: common}}}
	case *procsvc.ProcessingRequest_RequestTrailers:
		return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_RequestTrailers{RequestTrailers: &procsvc.TrailersResponse{}}}
	case *procsvc.ProcessingRequest_ResponseTrailers:
		return &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_ResponseTrailers{ResponseTrailers: &procsvc.TrailersResponse{}}}
	}
	return &procsvc.ProcessingResponse{}
}

// serveEach answers every message with respond(msg) until the stream ends.
func serveEach(respond func(*procsvc.ProcessingRequest) []*procsvc.ProcessingResponse) func(*procStream) error {
	return func(s *procStream) error {
		for {
			r, err := s.Recv()
			if err != nil {
				return nil
			}
			for _, resp := range respond(r) {
				if err := s.Send(resp); err != nil {
					return nil
				}
			}
		}
	}
}

func one(f func(*procsvc.ProcessingRequest) *procsvc.ProcessingResponse) func(*procsvc.ProcessingRequest) []*procsvc.ProcessingResponse {
	return func(r *procsvc.ProcessingRequest) []*procsvc.ProcessingResponse {
		return []*procsvc.ProcessingResponse{f(r)}
	}
}

// ---- configuration builders ----

func staticCluster(name, addr string) *clusterv3.Cluster {
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	return &clusterv3.Cluster{
		Name:                 name,
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STATIC},
		ConnectTimeout:       durationpb.New(time.Second),
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{
					Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
						Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(p)},
					}}},
				}},
			}}}},
		},
	}
}

func grpcService(cluster string, timeout time.Duration) *corev3.GrpcService {
	gs := &corev3.GrpcService{TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: cluster}}}
	if timeout > 0 {
		gs.Timeout = durationpb.New(timeout)
	}
	return gs
}

func authzFilter(t testing.TB, c *extauthzv3.ExtAuthz) *hcmv3.HttpFilter {
	if c.TransportApiVersion == corev3.ApiVersion_AUTO {
		c.TransportApiVersion = corev3.ApiVersion_V3
	}
	return &hcmv3.HttpFilter{Name: "envoy.filters.http.ext_authz", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, c)}}
}

func procFilter(t testing.TB, c *extprocv3.ExternalProcessor) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: "envoy.filters.http.ext_proc", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, c)}}
}

func routerFilter(t testing.TB) *hcmv3.HttpFilter {
	return &hcmv3.HttpFilter{Name: "envoy.filters.http.router", ConfigType: &hcmv3.HttpFilter_TypedConfig{TypedConfig: mustAny(t, &routerv3.Router{})}}
}

// listener wraps an HCM (filters + router appended) with rds "routes" or
// the inline route configuration rc.
func listener(t testing.TB, rc *routev3.RouteConfiguration, filters ...*hcmv3.HttpFilter) *listenerv3.Listener {
	hcm := &hcmv3.HttpConnectionManager{StatPrefix: "ingress", HttpFilters: append(filters, routerFilter(t))}
	if rc != nil {
		hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: rc}
	} else {
		hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_Rds{Rds: &hcmv3.Rds{RouteConfigName: "routes",
			ConfigSource: &corev3.ConfigSource{ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}}}}}
	}
	return &listenerv3.Listener{
		Name: "ingress",
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 0},
		}}},
		FilterChains: []*listenerv3.FilterChain{{Filters: []*listenerv3.Filter{{
			Name:       "envoy.filters.network.http_connection_manager",
			ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)},
		}}}},
	}
}

func routeConfig(routes ...*routev3.Route) *routev3.RouteConfiguration {
	return &routev3.RouteConfiguration{Name: "routes", VirtualHosts: []*routev3.VirtualHost{{Name: "all", Domains: []string{"*"}, Routes: routes}}}
}

func prefixRoute(prefix, cluster string) *routev3.Route {
	return &routev3.Route{
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: prefix}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: cluster}}},
	}
}

func startDriver(t *testing.T, cfg Config) *Driver {
	t.Helper()
	d, err := New(cfg, Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

// testLogger logs through t at debug level when -v is given.
func testLogger(t *testing.T) *slog.Logger {
	if !testing.Verbose() {
		return nil
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// ---- client ----

type result struct {
	Status int
	Header http.Header
	Body   string
}

var client = &http.Client{Timeout: testTimeout, Transport: &http.Transport{DisableCompression: true}}

func do(t *testing.T, d *Driver, method, path, body string, hdr map[string]string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://"+d.Addr()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		if strings.EqualFold(k, "host") {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, path, err)
	}
	if resp.ContentLength < 0 {
		resp.Header.Set("X-Test-Chunked", strings.Join(resp.TransferEncoding, ","))
	}
	return result{Status: resp.StatusCode, Header: resp.Header, Body: string(b)}
}

// readEvents reads SSE events ("...\n\n") from r, sending each on out.
func readEvents(r io.Reader, out chan<- string) {
	defer close(out)
	br := bufio.NewReader(r)
	var ev strings.Builder
	for {
		line, err := br.ReadString('\n')
		ev.WriteString(line)
		if line == "\n" {
			out <- ev.String()
			ev.Reset()
		}
		if err != nil {
			return
		}
	}
}
