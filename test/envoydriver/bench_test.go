package envoydriver

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// grantRoutes builds n per-grant routes keyed by x-airlock-grant, then a
// base route — the shape airlock's xDS produces.
func grantRoutes(n int) *routev3.RouteConfiguration {
	var routes []*routev3.Route
	for i := 0; i < n; i++ {
		r := prefixRoute("/mcp/github", "up")
		r.Name = fmt.Sprintf("grant-%d", i)
		r.Match.Headers = []*routev3.HeaderMatcher{{Name: "x-airlock-grant", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{
			StringMatch: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: fmt.Sprintf("g%d", i)}}}}}
		routes = append(routes, r)
	}
	routes = append(routes, prefixRoute("/", "up"))
	return routeConfig(routes...)
}

func BenchmarkRouteMatch(b *testing.B) {
	tbl, err := compileRouteTable(grantRoutes(1000), nil)
	if err != nil {
		b.Fatal(err)
	}
	h := hdr(":authority", "gw", ":path", "/mcp/github", ":method", "POST", "x-airlock-grant", "g999")
	b.ReportAllocs()
	for b.Loop() {
		if r := tbl.match(h); r == nil || r.name != "grant-999" {
			b.Fatalf("matched %v", r)
		}
	}
}

func BenchmarkCheckRequest(b *testing.B) {
	s := &stream{cfg: &compiled{}, dynMeta: map[string]*structpb.Struct{}}
	f := &extAuthz{cfg: &authzConfig{}, s: s}
	h := hdr(":authority", "gw", ":path", "/mcp/github?x=1", ":method", "POST", ":scheme", "http",
		"authorization", "Bearer x", "content-type", "application/json", "mcp-protocol-version", "2025-06-18", "x-request-id", "id")
	rt := &route{metadata: &corev3.Metadata{}}
	body := []byte(strings.Repeat(`{"jsonrpc":"2.0"}`, 20))
	b.ReportAllocs()
	for b.Loop() {
		req := f.checkRequest(h, rt, nil, true, body, 8192)
		if req.GetAttributes().GetRequest().GetHttp().GetBody() == "" {
			b.Fatal("no body")
		}
	}
}

func BenchmarkProxy(b *testing.B) {
	up := httptestServer(b)
	d, err := New(Config{Listener: listener(b, grantRoutes(100)), Clusters: []*clusterv3.Cluster{staticCluster("up", up)}}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	url := "http://" + d.Addr() + "/mcp/github"
	b.ReportAllocs()
	for b.Loop() {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("status %d", resp.StatusCode)
		}
	}
}

func FuzzMutateQuery(f *testing.F) {
	for _, s := range []string{"/p?a=1&drop=2", "/p", "/p?", "/p?a&a=&=x&&", "/p?%zz=1#frag", "?b=2"} {
		f.Add(s)
	}
	ok := &authv3.OkHttpResponse{
		QueryParametersToSet:    []*corev3.QueryParameter{{Key: "b", Value: "3"}},
		QueryParametersToRemove: []string{"drop"},
	}
	f.Fuzz(func(t *testing.T, path string) {
		out := mutateQuery(path, ok)
		base, _, _ := strings.Cut(path, "?")
		if !strings.HasPrefix(out, base) {
			t.Fatalf("mutateQuery(%q) = %q changed the path part", path, out)
		}
		_, q, _ := strings.Cut(out, "?")
		if !strings.Contains("&"+q+"&", "&b=3&") {
			t.Fatalf("mutateQuery(%q) = %q lacks b=3", path, out)
		}
		for _, kv := range strings.Split(q, "&") {
			if k, _, _ := strings.Cut(kv, "="); k == "drop" {
				t.Fatalf("mutateQuery(%q) = %q kept drop", path, out)
			}
		}
		if again := mutateQuery(out, ok); again != out {
			t.Fatalf("mutateQuery is not idempotent: %q then %q", out, again)
		}
	})
}

// httptestServer is a minimal upstream for benchmarks.
func httptestServer(b *testing.B) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	b.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}
