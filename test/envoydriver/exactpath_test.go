package envoydriver

import (
	"net/http"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestExactPathTarget drives the shape of airlock's target routes: an
// exact path match (route_components.proto RouteMatch.path: "the path must
// exactly match the :path header once the query string is removed"),
// prefix_rewrite swapping the whole matched path ("the matched prefix (or
// path) should be swapped with this value", query kept), accept-encoding
// forced with OVERWRITE_IF_EXISTS_OR_ADD (every value the client sent
// replaced, Router::HeaderParser::evaluateHeaders), and the HCM's path
// normalization with escaped slashes rejected (REJECT_REQUEST: 400). A path
// below the target matches nothing but the catch-all 404, or — without
// one — is Envoy's own "no route" 404; the upstream never sees it.
func TestExactPathTarget(t *testing.T) {
	target := &routev3.Route{
		Name:  "target",
		Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/mcp/github"}},
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{
			ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "up"},
			PrefixRewrite:    "/mcp/",
		}},
		RequestHeadersToAdd: []*corev3.HeaderValueOption{{
			Header:       &corev3.HeaderValue{Key: "accept-encoding", Value: "identity"},
			AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
		}},
	}
	notFound := &routev3.Route{
		Name:   "not-found",
		Match:  &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}},
		Action: &routev3.Route_DirectResponse{DirectResponse: &routev3.DirectResponseAction{Status: 404, Body: &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "no MCP target"}}}},
	}
	for _, withCatchAll := range []bool{true, false} {
		name := map[bool]string{true: "catch-all 404", false: "no route"}[withCatchAll]
		t.Run(name, func(t *testing.T) {
			up := newUpstream(t, nil)
			rc := routeConfig(target)
			if withCatchAll {
				rc = routeConfig(target, notFound)
			}
			l := listener(t, rc)
			hcm := &hcmv3.HttpConnectionManager{}
			if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
				t.Fatal(err)
			}
			hcm.NormalizePath = wrapperspb.Bool(true)
			hcm.MergeSlashes = true
			hcm.PathWithEscapedSlashesAction = hcmv3.HttpConnectionManager_REJECT_REQUEST
			l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}
			d := startDriver(t, Config{Listener: l, Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr())}})

			notFoundBody := ""
			if withCatchAll {
				notFoundBody = "no MCP target"
			}
			for _, tc := range []struct {
				path     string
				status   int
				body     string
				upstream string // the path the upstream saw; "" = none
			}{
				{"/mcp/github", 200, "upstream ok", "/mcp/"},
				{"/mcp/github?x=1", 200, "upstream ok", "/mcp/?x=1"},
				{"/mcp//github", 200, "upstream ok", "/mcp/"},
				{"/mcp/x/../github", 200, "upstream ok", "/mcp/"},
				{"/mcp/git%68ub", 200, "upstream ok", "/mcp/"},
				{"/mcp/github/", 404, notFoundBody, ""},
				{"/mcp/github/admin/secrets", 404, notFoundBody, ""},
				{"/mcp/github/../github/x", 404, notFoundBody, ""},
				{"/mcp/githubx", 404, notFoundBody, ""},
				{"/MCP/github", 404, notFoundBody, ""},
				{"/mcp/github%2Fadmin", 400, "", ""},
				{"/mcp%2fgithub", 400, "", ""},
			} {
				before := len(up.requests())
				req, err := http.NewRequest("POST", "http://"+d.Addr()+"/", nil)
				if err != nil {
					t.Fatal(err)
				}
				req.URL.Opaque = tc.path // sent as written, no client-side cleaning
				req.Header["Accept-Encoding"] = []string{"gzip, br", "zstd"}
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s: %v", tc.path, err)
				}
				body := readBody(t, resp)
				if resp.StatusCode != tc.status || (tc.body != "" && body != tc.body) {
					t.Errorf("%s: %d %q, want %d %q", tc.path, resp.StatusCode, body, tc.status, tc.body)
				}
				reqs := up.requests()
				if tc.upstream == "" {
					if len(reqs) != before {
						t.Errorf("%s reached the upstream as %s", tc.path, reqs[len(reqs)-1].Path)
					}
					continue
				}
				if len(reqs) != before+1 {
					t.Fatalf("%s: the upstream saw %d requests", tc.path, len(reqs)-before)
				}
				got := reqs[len(reqs)-1]
				if got.Path != tc.upstream {
					t.Errorf("%s: upstream path %q, want %q", tc.path, got.Path, tc.upstream)
				}
				if ae := got.Header.Values("Accept-Encoding"); len(ae) != 1 || ae[0] != "identity" {
					t.Errorf("%s: upstream accept-encoding %q, want only identity", tc.path, ae)
				}
			}
		})
	}
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	var b []byte
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		b = append(b, buf[:n]...)
		if err != nil {
			break
		}
	}
	return string(b)
}
