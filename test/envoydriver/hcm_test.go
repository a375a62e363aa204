package envoydriver

import (
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// withHCM edits the listener's HttpConnectionManager.
func withHCM(t *testing.T, l *listenerv3.Listener, edit func(*hcmv3.HttpConnectionManager)) *listenerv3.Listener {
	t.Helper()
	f := l.FilterChains[0].Filters[0]
	hcm := &hcmv3.HttpConnectionManager{}
	if err := f.GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	edit(hcm)
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}
	return l
}

func TestConnectionManagerRequestHeaders(t *testing.T) {
	keys := []string{"X-Request-Id", "X-Envoy-Retry-On", "X-Envoy-Internal", "X-Forwarded-For", "X-Forwarded-Proto", "Keep-Alive", "X-Envoy-External-Address"}
	for _, tc := range []struct {
		name string
		edit func(*hcmv3.HttpConnectionManager)
		send map[string]string
		want map[string]string
	}{
		{"defaults: not internal, envoy control headers stripped", nil, map[string]string{"X-Request-Id": "client-id", "X-Envoy-Retry-On": "5xx", "X-Envoy-Internal": "true", "Keep-Alive": "timeout=5"},
			map[string]string{"X-Request-Id": "client-id", "X-Forwarded-Proto": "http"}},
		{"use_remote_address from loopback is internal", func(h *hcmv3.HttpConnectionManager) { h.UseRemoteAddress = wrapperspb.Bool(true) },
			map[string]string{"X-Request-Id": "client-id", "X-Envoy-Retry-On": "5xx"},
			map[string]string{"X-Request-Id": "client-id", "X-Envoy-Retry-On": "5xx", "X-Envoy-Internal": "true", "X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "http"}},
		{"use_remote_address with a prior XFF is an edge request", func(h *hcmv3.HttpConnectionManager) { h.UseRemoteAddress = wrapperspb.Bool(true) },
			map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Envoy-Retry-On": "5xx"},
			map[string]string{"X-Forwarded-For": "203.0.113.9,127.0.0.1", "X-Forwarded-Proto": "http", "X-Envoy-External-Address": "127.0.0.1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t, nil)
			l := listener(t, routeConfig(prefixRoute("/", "up")))
			if tc.edit != nil {
				l = withHCM(t, l, tc.edit)
			}
			d := startDriver(t, Config{Listener: l, Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr())}})
			do(t, d, "GET", "/", "", tc.send)
			r := up.last(t)
			got := map[string]string{}
			for _, k := range keys {
				if v := r.Header.Get(k); v != "" {
					got[k] = v
				}
			}
			if len(r.Header.Get("X-Request-Id")) == 36 {
				got["X-Request-Id"] = "generated"
			}
			want := tc.want
			if _, ok := want["X-Request-Id"]; !ok {
				want["X-Request-Id"] = "generated"
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("upstream headers (-want +got):\n%s", diff)
			}
		})
	}
}
