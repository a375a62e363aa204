package xds

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/airlock-mcp/airlock/envoy"
)

// startServer serves a Server with opts on loopback gRPC, no client.
func startServer(t *testing.T, opts Options) (*Server, string) {
	t.Helper()
	if opts.Registerer == nil {
		opts.Registerer = prometheus.NewRegistry()
	}
	srv, err := New(testModel(t, testConfig(t, "127.0.0.1:1", "127.0.0.1:2")), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, serveGRPC(t, srv.Register)
}

func TestRetryDelay(t *testing.T) {
	for _, tc := range []struct {
		streak int
		want   time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {7, time.Minute}, {60, time.Minute}} {
		if got := retryDelay(time.Second, time.Minute, tc.streak); got != tc.want {
			t.Errorf("retryDelay(streak %d) = %v, want %v", tc.streak, got, tc.want)
		}
	}
}

// TestNACKRetry: a client rejects the push of a grant's scope; the scope
// is sent again — after the backoff, at once on a configuration change,
// or (delta) with the response after the next change — and once the
// client ACKs, the stream is in sync and its status says so.
func TestNACKRetry(t *testing.T) {
	for _, trigger := range []string{"backoff", "model change", "next change"} {
		for _, delta := range []bool{false, true} {
			if trigger == "next change" && !delta {
				continue // SotW: every response is the whole state anyway
			}
			t.Run(fmt.Sprintf("%s/delta=%v", trigger, delta), func(t *testing.T) {
				opts := Options{NACKRetry: time.Hour} // only the trigger under test resends
				if trigger == "backoff" {
					opts.NACKRetry = 20 * time.Millisecond
				}
				srv, addr := startServer(t, opts)
				c := dialRaw(t, addr, envoyNode("gw-nack", 1, 37, 0), delta)
				c.subscribe(t)
				up, _, nonce, ver := c.next(t)
				if !slices.Contains(up, envoy.BaseScopeName) {
					t.Fatalf("first response %v lacks the base scope", up)
				}
				c.ack(t, nonce, ver, "")

				scope := envoy.ScopeName("g-1")
				if err := srv.UpsertGrant(Grant{ID: "g-1", Target: "github", Expiry: time.Now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				up, _, nonce, ver = c.next(t)
				if !slices.Contains(up, scope) {
					t.Fatalf("push %v lacks %s", up, scope)
				}
				c.ack(t, nonce, ver, "cluster mcp_github not found")
				waitFor(t, "the NACK in the status", func() bool {
					ts := scopeStatus(srv.Status(), "gw-nack")
					return ts != nil && ts.State == StateNACKed
				})
				ts := scopeStatus(srv.Status(), "gw-nack")
				if ts.NACKs != 1 || !strings.Contains(ts.LastNACK, "mcp_github") || ts.LastNACKAt == nil || ts.NextRetry == nil || ts.Behind != 1 {
					t.Errorf("status after the NACK = %+v, want 1 NACK with Envoy's error, its time, a retry time and 1 grant behind", ts)
				}

				switch trigger {
				case "model change":
					if err := srv.SetModel(srv.model); err != nil {
						t.Fatal(err)
					}
				case "next change":
					if err := srv.UpsertGrant(Grant{ID: "g-2", Target: "github", Expiry: time.Now().Add(time.Hour)}); err != nil {
						t.Fatal(err)
					}
					up, _, nonce, ver = c.next(t)
					if !slices.Contains(up, envoy.ScopeName("g-2")) {
						t.Fatalf("the change %v lacks g-2", up)
					}
					c.ack(t, nonce, ver, "")
				}
				up, _, nonce, ver = c.next(t)
				if !slices.Contains(up, scope) {
					t.Fatalf("the retry %v does not resend %s", up, scope)
				}
				c.ack(t, nonce, ver, "")
				waitFor(t, "the stream in sync", func() bool {
					ts := scopeStatus(srv.Status(), "gw-nack")
					return ts != nil && ts.State == StateSynced
				})
				ts = scopeStatus(srv.Status(), "gw-nack")
				if ts.NACKs != 1 || ts.Behind != 0 || ts.NextRetry != nil || ts.Pending {
					t.Errorf("status after the retry = %+v, want in sync with the one NACK counted", ts)
				}
				if got := value(srv.metrics.nacks.WithLabelValues(resource.ScopedRouteType)); got != 1 {
					t.Errorf("airlock_xds_nacks_total = %v, want 1", got)
				}
			})
		}
	}
}

// TestNACKRetryBacksOff: each consecutive NACK doubles the wait, and
// keeps the stream serving (the retry is not an immediate loop).
func TestNACKRetryBacksOff(t *testing.T) {
	srv, addr := startServer(t, Options{NACKRetry: 10 * time.Millisecond, NACKRetryMax: 40 * time.Millisecond})
	c := dialRaw(t, addr, envoyNode("gw-backoff", 1, 34, 0), true)
	c.subscribe(t)
	_, _, nonce, ver := c.next(t)
	c.ack(t, nonce, ver, "")
	bad := &routev3.ScopedRouteConfiguration{Name: envoy.ScopeName("bad"), RouteConfiguration: &routev3.RouteConfiguration{Name: "bad"}}
	srv.inject("bad", bad)
	for i := 1; i <= 4; i++ {
		up, _, nonce, ver := c.next(t)
		if !slices.Contains(up, envoy.ScopeName("bad")) {
			t.Fatalf("attempt %d: %v", i, up)
		}
		c.ack(t, nonce, ver, "Key: value is required")
		want := retryDelay(10*time.Millisecond, 40*time.Millisecond, i)
		waitFor(t, "the NACK counted", func() bool {
			ts := scopeStatus(srv.Status(), "gw-backoff")
			return ts != nil && ts.NACKs == i
		})
		ts := scopeStatus(srv.Status(), "gw-backoff")
		if got := ts.NextRetry.Sub(*ts.LastNACKAt); got != want {
			t.Errorf("NACK %d: retry %v after it, want %v", i, got, want)
		}
	}
}

func scopeStatus(st Status, node string) *TypeStatus {
	for _, s := range st.Streams {
		if s.Node != node {
			continue
		}
		for i := range s.Types {
			if s.Types[i].TypeURL == resource.ScopedRouteType {
				return &s.Types[i]
			}
		}
	}
	return nil
}

// TestNACKRetryClusters: the listener and clusters (go-control-plane's
// snapshot cache) are retried the same way as scopes.
func TestNACKRetryClusters(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(mode(delta), func(t *testing.T) {
			srv, addr := startServer(t, Options{NACKRetry: 20 * time.Millisecond})
			c := dialRaw(t, addr, envoyNode("gw-c", 1, 35, 0), delta)
			// recv returns the cluster names of the next response, its nonce and version.
			recv := func() ([]string, string, string) {
				if delta {
					r := c.recvDelta(t)
					var names []string
					for _, res := range r.GetResources() {
						names = append(names, res.GetName())
					}
					slices.Sort(names)
					return names, r.GetNonce(), ""
				}
				r := c.recvSotW(t)
				return []string{fmt.Sprint(len(r.GetResources()))}, r.GetNonce(), r.GetVersionInfo()
			}
			send := func(nonce, version, nack string) {
				var err error
				var detail *rpcstatus.Status
				if nack != "" {
					detail = &rpcstatus.Status{Code: 3, Message: nack}
				}
				if delta {
					err = c.delta.Send(&discovery.DeltaDiscoveryRequest{Node: c.node, TypeUrl: resource.ClusterType, ResponseNonce: nonce, ErrorDetail: detail})
				} else {
					err = c.sotw.Send(&discovery.DiscoveryRequest{Node: c.node, TypeUrl: resource.ClusterType, ResponseNonce: nonce, VersionInfo: version, ErrorDetail: detail})
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			send("", "", "")
			first, nonce, _ := recv()
			send(nonce, "", "cluster airlock_authz: bad TLS context") // the SotW NACK keeps the previous (no) version
			again, nonce, ver := recv()
			if !slices.Equal(first, again) {
				t.Errorf("retry sent %v, first push %v", again, first)
			}
			send(nonce, ver, "")
			waitFor(t, "the clusters in sync", func() bool {
				for _, s := range srv.Status().Streams {
					for _, ts := range s.Types {
						if ts.TypeURL == resource.ClusterType {
							return ts.State == StateSynced && ts.NACKs == 1 && ts.ACKs == 1
						}
					}
				}
				return false
			})
		})
	}
}
