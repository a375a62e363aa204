package envoydriver

import (
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func named(name string, r *routev3.Route) *routev3.Route {
	r.Name = name
	return r
}

func match(m *routev3.RouteMatch, name string) *routev3.Route {
	return &routev3.Route{Name: name, Match: m,
		Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}}}}
}

func hdr(entries ...string) *headerMap {
	h := &headerMap{}
	for i := 0; i < len(entries); i += 2 {
		h.add(entries[i], entries[i+1])
	}
	return h
}

func TestVirtualHostSelection(t *testing.T) {
	vh := func(name string, domains ...string) *routev3.VirtualHost {
		return &routev3.VirtualHost{Name: name, Domains: domains, Routes: []*routev3.Route{named(name, prefixRoute("/", "c"))}}
	}
	rc := &routev3.RouteConfiguration{Name: "rc", VirtualHosts: []*routev3.VirtualHost{
		vh("exact", "www.foo.com", "www.foo.com:8080"),
		vh("suffix-short", "*.com"),
		vh("suffix-long", "*.foo.com"),
		vh("dash", "*-bar.example.org"),
		vh("prefix", "api.*"),
		vh("star", "*"),
	}}
	tbl, err := compileRouteTable(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ host, want string }{
		{"www.foo.com", "exact"},
		{"WWW.FOO.COM", "exact"},
		{"www.foo.com:8080", "exact"},
		{"www.foo.com:9090", "star"},  // ports are part of the host unless ignored
		{"a.foo.com", "suffix-long"},  // longest wildcard first
		{"a.bar.com", "suffix-short"}, // shorter suffix
		{"baz-bar.example.org", "dash"},
		{"-bar.example.org", "star"}, // the wildcard never matches the empty string
		{"api.internal", "prefix"},
		{"other", "star"},
	} {
		r := tbl.match(hdr(":authority", tc.host, ":path", "/x"))
		if r == nil || r.name != tc.want {
			t.Errorf("host %q: got %v, want virtual host %q", tc.host, r, tc.want)
		}
	}
	rc.IgnorePortInHostMatching = true
	tbl, err = compileRouteTable(rc, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := tbl.match(hdr(":authority", "www.foo.com:9090", ":path", "/")); r == nil || r.name != "exact" {
		t.Errorf("ignore_port_in_host_matching: got %v, want exact", r)
	}
}

func TestDuplicateDomainRejected(t *testing.T) {
	rc := &routev3.RouteConfiguration{VirtualHosts: []*routev3.VirtualHost{
		{Name: "a", Domains: []string{"x.com"}}, {Name: "b", Domains: []string{"X.com"}},
	}}
	if _, err := compileRouteTable(rc, nil); err == nil {
		t.Fatal("duplicate domain accepted; route.proto says it must fail to load")
	}
}

func TestRouteMatch(t *testing.T) {
	sm := func(s string) *matcherv3.StringMatcher {
		return &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: s}}
	}
	routes := []*routev3.Route{
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/exact"}}, "path"),
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/CI/"}, CaseSensitive: wrapperspb.Bool(false)}, "case-insensitive"),
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: `/re/\d+`}}}, "regex"),
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_PathSeparatedPrefix{PathSeparatedPrefix: "/sep"}}, "separated"),
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/h"}, Headers: []*routev3.HeaderMatcher{
			{Name: "x-grant", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm("g1")}},
		}}, "header-exact"),
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/h"}, Headers: []*routev3.HeaderMatcher{
			{Name: "x-present", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: true}},
		}}, "header-present"),
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/h"}, Headers: []*routev3.HeaderMatcher{
			{Name: "x-not", HeaderMatchSpecifier: &routev3.HeaderMatcher_StringMatch{StringMatch: sm("no")}, InvertMatch: true},
		}}, "header-invert"),
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/h"}, Headers: []*routev3.HeaderMatcher{
			{Name: "x-absent", HeaderMatchSpecifier: &routev3.HeaderMatcher_PresentMatch{PresentMatch: false}},
		}}, "header-absent"),
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/q"}, QueryParameters: []*routev3.QueryParameterMatcher{
			{Name: "v", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_StringMatch{StringMatch: sm("2")}},
		}}, "query"),
		match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}}, "fallback"),
	}
	tbl, err := compileRouteTable(routeConfig(routes...), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		h    *headerMap
		want string
	}{
		{"exact path", hdr(":path", "/exact?x=1"), "path"},
		{"exact path is not a prefix", hdr(":path", "/exact/more"), "fallback"},
		{"case-insensitive prefix", hdr(":path", "/ci/Thing"), "case-insensitive"},
		{"regex must match whole path", hdr(":path", "/re/123"), "regex"},
		{"regex partial is no match", hdr(":path", "/re/123x"), "fallback"},
		{"separated prefix exact", hdr(":path", "/sep"), "separated"},
		{"separated prefix with slash", hdr(":path", "/sep/a"), "separated"},
		{"separated prefix needs a separator", hdr(":path", "/separate"), "fallback"},
		{"header exact", hdr(":path", "/h", "x-grant", "g1", "x-absent", "1", "x-not", "no"), "header-exact"},
		{"duplicate headers join with a comma", hdr(":path", "/h", "x-grant", "g1", "x-grant", "g2", "x-present", "", "x-not", "no", "x-absent", "1"), "header-present"},
		{"invert matches a different value", hdr(":path", "/h", "x-not", "yes", "x-absent", "1"), "header-invert"},
		{"invert does not match a missing header", hdr(":path", "/h", "x-absent", "1"), "fallback"},
		{"present_match false means absent", hdr(":path", "/h", "x-not", "no"), "header-absent"},
		{"query parameter", hdr(":path", "/q?v=2"), "query"},
		{"query parameter mismatch", hdr(":path", "/q?v=3"), "fallback"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.h.add(":authority", "any")
			r := tbl.match(tc.h)
			if r == nil || r.name != tc.want {
				t.Errorf("got route %v, want %q", r, tc.want)
			}
		})
	}
}

func TestRewritePath(t *testing.T) {
	for _, tc := range []struct {
		name, prefix, rewrite, in, want string
		regex, subst                    string
	}{
		{name: "prefix keeps query", prefix: "/mcp/github", rewrite: "/", in: "/mcp/github?x=1", want: "/?x=1"},
		{name: "prefix keeps rest", prefix: "/mcp/github", rewrite: "/v1", in: "/mcp/github/tools", want: "/v1/tools"},
		{name: "regex rewrite", prefix: "/", regex: `^/svc/([^/]+)/(.*)$`, subst: `/\2/\1`, in: "/svc/a/b/c?q", want: "/b/c/a?q"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ra := &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}, PrefixRewrite: tc.rewrite}
			if tc.regex != "" {
				ra.RegexRewrite = &matcherv3.RegexMatchAndSubstitute{Pattern: &matcherv3.RegexMatcher{Regex: tc.regex}, Substitution: tc.subst}
			}
			rt := &routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: tc.prefix}}, Action: &routev3.Route_Route{Route: ra}}
			tbl, err := compileRouteTable(routeConfig(rt), nil)
			if err != nil {
				t.Fatal(err)
			}
			r := tbl.match(hdr(":authority", "h", ":path", tc.in))
			got, _ := r.rewritePath(tc.in)
			if got != tc.want {
				t.Errorf("rewrite %q = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func FuzzRouteMatch(f *testing.F) {
	for _, s := range []string{"/", "/mcp/github?x=1", "/re/12", "//a/../b", "/%zz", "*", ""} {
		f.Add(s, "example.com:8080")
	}
	tbl, err := compileRouteTable(&routev3.RouteConfiguration{VirtualHosts: []*routev3.VirtualHost{
		{Name: "a", Domains: []string{"*.com", "api.*", "[::1]:80", "*"}, Routes: []*routev3.Route{
			match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: `/re/\d+`}}}, "regex"),
			{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/mcp/"}, CaseSensitive: wrapperspb.Bool(false)},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "c"}, PrefixRewrite: "/"}}},
			match(&routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Prefix{Prefix: "/"}, QueryParameters: []*routev3.QueryParameterMatcher{
				{Name: "x", QueryParameterMatchSpecifier: &routev3.QueryParameterMatcher_PresentMatch{PresentMatch: true}}}}, "query"),
		}},
	}}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, path, host string) {
		r := tbl.match(hdr(":authority", host, ":path", path))
		if r != nil {
			if _, ok := r.rewritePath(path); !ok && r.prefixRewrite != "" {
				t.Fatalf("prefix_rewrite route %q did not rewrite %q", r.name, path)
			}
		}
	})
}
