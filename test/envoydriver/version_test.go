package envoydriver

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// TestLocalReplyToExtProcByVersion: a local reply (here the router's 404
// for a request no route matches) reaches ext_proc as response_headers on
// Envoy 1.37 and not on 1.34–1.36 (envoyproxy/envoy#41769); an upstream
// response reaches it on every release.
func TestLocalReplyToExtProcByVersion(t *testing.T) {
	for _, tc := range []struct {
		version   string
		wantLocal bool
	}{
		{"1.34.0", false},
		{"1.36.4", false},
		{"1.37.0", true},
		{"", true}, // DefaultEnvoyVersion (1.37.0)
		{"1.38.1", true},
	} {
		t.Run("envoy "+tc.version, func(t *testing.T) {
			up := newUpstream(t, nil)
			proc, procAddr := newProc(t, serveEach(one(echoResponse)))
			route := &routev3.Route{Match: &routev3.RouteMatch{PathSpecifier: &routev3.RouteMatch_Path{Path: "/up"}},
				Action: &routev3.Route_Route{Route: &routev3.RouteAction{ClusterSpecifier: &routev3.RouteAction_Cluster{Cluster: "up"}}}}
			d, err := New(Config{Listener: listener(t, routeConfig(route), procFilter(t, procConfigFor("proc", nil))),
				Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), staticCluster("proc", procAddr)}},
				Options{Logger: testLogger(t), EnvoyVersion: tc.version})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })

			if got := do(t, d, "GET", "/nowhere", "", nil); got.Status != 404 {
				t.Fatalf("no route: %d", got.Status)
			}
			if got := do(t, d, "GET", "/up", "", nil); got.Status != 200 {
				t.Fatalf("routed: %d", got.Status)
			}
			streams := proc.received()
			if len(streams) != 2 {
				t.Fatalf("%d ext_proc streams, want 2", len(streams))
			}
			local := strings.Join(kinds(streams[0]), ",")
			wantLocal := "request_headers(eos)"
			if tc.wantLocal {
				wantLocal += ",response_headers(eos)"
			}
			if local != wantLocal {
				t.Errorf("local reply stream: %s, want %s", local, wantLocal)
			}
			if got := strings.Join(kinds(streams[1]), ","); !strings.Contains(got, "response_headers") {
				t.Errorf("upstream response stream: %s, want response_headers", got)
			}
		})
	}
	if _, err := New(Config{}, Options{EnvoyVersion: "1.37"}); err == nil || !strings.Contains(err.Error(), "major.minor.patch") {
		t.Errorf("a bad EnvoyVersion: err = %v", err)
	}
}
