package xds

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/airlock-mcp/airlock/internal/syncbuf"
	"log/slog"
)

// TestVersionFloorOnStreams: an Envoy below the floor is refused with a
// message naming its version and the floor, logged, counted and listed
// in the status; one at or above it and a client sending no version are
// served (the latter as "unknown", with a warning).
func TestVersionFloorOnStreams(t *testing.T) {
	for _, tc := range []struct {
		name    string
		node    *corev3.Node
		refused string // reason label, "" = served
		version string
	}{
		{"Envoy 1.32.3", envoyNode("old", 1, 32, 3), refusedBelowFloor, "1.32.3"},
		{"Envoy 1.33.0", envoyNode("old-33", 1, 33, 0), refusedBelowFloor, "1.33.0"},
		{"no node id", &corev3.Node{}, refusedNoNodeID, ""},
		{"Envoy 1.34.0", envoyNode("floor", 1, 34, 0), "", "1.34.0"},
		{"no build version", &corev3.Node{Id: "grpcurl"}, "", VersionUnknown},
	} {
		for _, delta := range []bool{false, true} {
			t.Run(tc.name+"/"+mode(delta), func(t *testing.T) {
				logs := &syncbuf.Buffer{}
				reg := prometheus.NewRegistry()
				srv, addr := startServer(t, Options{Registerer: reg, Logger: slog.New(slog.NewTextHandler(logs, nil))})
				c := dialRaw(t, addr, tc.node, delta)
				c.subscribe(t)
				var err error
				if delta {
					_, err = c.delta.Recv()
				} else {
					_, err = c.sotw.Recv()
				}
				if tc.refused == "" {
					if err != nil {
						t.Fatalf("served node refused: %v", err)
					}
					st := srv.Status()
					if len(st.Streams) != 1 || st.Streams[0].EnvoyVersion != tc.version || st.Streams[0].Mode != mode(delta) {
						t.Fatalf("status streams = %+v, want one %s stream of version %s", st.Streams, mode(delta), tc.version)
					}
					if tc.version == VersionUnknown && !strings.Contains(logs.String(), "no user_agent_build_version") {
						t.Errorf("no warning for a client without a version:\n%s", logs)
					}
					return
				}
				if grpcstatus.Code(err) != codes.FailedPrecondition {
					t.Fatalf("refusal = %v, want FailedPrecondition", err)
				}
				msg := grpcstatus.Convert(err).Message()
				if tc.version != "" && (!strings.Contains(msg, "Envoy "+tc.version+" is below airlock's floor "+MinEnvoyVersion) || !strings.Contains(msg, "ext_proc protocol_config needs 1.34")) {
					t.Errorf("refusal %q does not name the version found, the floor and why", msg)
				}
				if got := value(srv.metrics.refused.WithLabelValues(tc.refused)); got != 1 {
					t.Errorf("airlock_xds_refused_total{reason=%s} = %v, want 1", tc.refused, got)
				}
				if !strings.Contains(logs.String(), "xDS stream refused") {
					t.Errorf("refusal not logged:\n%s", logs)
				}
				st := srv.Status()
				if tc.node.GetId() != "" {
					if len(st.Refused) != 1 || st.Refused[0].Node != tc.node.GetId() || st.Refused[0].EnvoyVersion != tc.version || st.Refused[0].Reason != msg {
						t.Errorf("status refused = %+v, want the node, its version and the reason", st.Refused)
					}
				}
			})
		}
	}
}

// TestStatusHandler serves the status as JSON: a delta and a SotW client,
// one with a pending response, one in sync.
func TestStatusHandler(t *testing.T) {
	srv, addr := startServer(t, Options{})
	d := dialRaw(t, addr, envoyNode("gw-d", 1, 37, 0), true)
	d.subscribe(t)
	_, _, nonce, _ := d.next(t)
	d.sendDelta(t, &discovery.DeltaDiscoveryRequest{ResponseNonce: nonce})
	s := dialRaw(t, addr, envoyNode("gw-s", 1, 36, 2), false)
	s.subscribe(t)
	s.next(t) // not answered: pending
	waitFor(t, "both streams in the status", func() bool {
		st := srv.Status()
		return len(st.Streams) == 2 && st.Streams[0].Types[0].ACKs == 1 && st.Streams[1].Types[0].SentVersion != ""
	})
	rec := httptest.NewRecorder()
	srv.StatusHandler().ServeHTTP(rec, httptest.NewRequest("GET", StatusPath, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.MinEnvoyVersion != MinEnvoyVersion || len(st.Streams) != 2 {
		t.Fatalf("status = %+v", st)
	}
	for _, tc := range []struct {
		i               int
		node, ver, mode string
		state           string
		pending         bool
		acks            int
	}{
		{0, "gw-d", "1.37.0", "delta", StateSynced, false, 1},
		{1, "gw-s", "1.36.2", "sotw", StateStale, true, 0},
	} {
		ss := st.Streams[tc.i]
		if ss.Node != tc.node || ss.EnvoyVersion != tc.ver || ss.Mode != tc.mode || len(ss.Types) != 1 {
			t.Errorf("stream %d = %+v", tc.i, ss)
			continue
		}
		ts := ss.Types[0]
		if ts.TypeURL != resource.ScopedRouteType || ts.Type != "scoped_routes" || ts.State != tc.state || ts.Pending != tc.pending || ts.ACKs != tc.acks || ts.LastPush == nil {
			t.Errorf("stream %s scoped routes = %+v, want state %s pending %v acks %d", tc.node, ts, tc.state, tc.pending, tc.acks)
		}
	}
}

// TestStatusAfterModelChange: after a configuration change that a client
// acknowledged, every type is SYNCED — over delta too, where an unchanged
// listener is not resent and keeps its older version.
func TestStatusAfterModelChange(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(mode(delta), func(t *testing.T) {
			srv, addr := startServer(t, Options{})
			c := dialRaw(t, addr, envoyNode("gw-m", 1, 37, 0), delta)
			types := []string{resource.ClusterType, resource.ListenerType, resource.ScopedRouteType}
			// answer reads one response and ACKs it.
			answer := func() {
				if delta {
					r := c.recvDelta(t)
					if err := c.delta.Send(&discovery.DeltaDiscoveryRequest{Node: c.node, TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
						t.Fatal(err)
					}
					return
				}
				r := c.recvSotW(t)
				if err := c.sotw.Send(&discovery.DiscoveryRequest{Node: c.node, TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce(), VersionInfo: r.GetVersionInfo()}); err != nil {
					t.Fatal(err)
				}
			}
			for _, typ := range types {
				var err error
				if delta {
					err = c.delta.Send(&discovery.DeltaDiscoveryRequest{Node: c.node, TypeUrl: typ})
				} else {
					err = c.sotw.Send(&discovery.DiscoveryRequest{Node: c.node, TypeUrl: typ})
				}
				if err != nil {
					t.Fatal(err)
				}
				answer()
			}
			synced := func() bool {
				st := srv.Status()
				if len(st.Streams) != 1 || len(st.Streams[0].Types) != 3 {
					return false
				}
				for _, ts := range st.Streams[0].Types {
					if ts.State != StateSynced {
						return false
					}
				}
				return true
			}
			waitFor(t, "all three types in sync", synced)
			// A new target: new cluster and base scope.
			cfg := testConfig(t, "127.0.0.1:1", "127.0.0.1:2")
			cfg.Targets = append(cfg.Targets, cfg.Targets[0])
			cfg.Targets[2].Name = "third"
			cfg.Targets[2].PathPrefix = "/mcp/third"
			if err := srv.SetModel(testModel(t, cfg)); err != nil {
				t.Fatal(err)
			}
			n := 2 // delta: clusters and scoped routes changed
			if !delta {
				n = 3 // SotW: every type carries the new snapshot version
			}
			for range n {
				answer()
			}
			waitFor(t, "all three types in sync after the change", synced)
		})
	}
}
