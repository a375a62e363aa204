package envoydriver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
)

// scopeFixture is a control plane serving a scoped listener whose base
// scope routes to upstream a, and whose scope s1 (routing to b) is pushed
// by add.
type scopeFixture struct {
	a, b     *upstream
	c        cache.SnapshotCache
	x        *xdsServer
	clusters []types.Resource
	authz    string
}

func newScopeFixture(t *testing.T, authzAddr string) *scopeFixture {
	f := &scopeFixture{a: newUpstream(t, nil), b: newUpstream(t, nil), authz: authzAddr}
	f.clusters = []types.Resource{staticCluster("a", f.a.addr()), staticCluster("b", f.b.addr()), staticCluster("authz", authzAddr)}
	f.c = cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	f.set(t, "1", false)
	f.x = startXDS(t, "", f.c, nil)
	return f
}

func (f *scopeFixture) set(t *testing.T, version string, withS1 bool) {
	t.Helper()
	scopes := []types.Resource{scope("base", "base", namedRC("rc-a", prefixRoute("/", "a")))}
	if withS1 {
		scopes = append(scopes, scope("s1", "s1", namedRC("rc-b", prefixRoute("/", "b"))))
	}
	setSnapshot(t, f.c, version, map[resource.Type][]types.Resource{
		resource.ClusterType: f.clusters, resource.ListenerType: {scopedListener(t, scopedRDS(), "authz")}, resource.ScopedRouteType: scopes,
	})
}

// heldAuthz holds each Check until release is closed, then moves the call
// to scope s1, as airlock moves a held call to its new grant's scope.
func heldAuthz(t *testing.T) (held chan struct{}, release chan struct{}, addr string) {
	held, release = make(chan struct{}, 8), make(chan struct{})
	_, addr = newAuthz(t, func(_ context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		held <- struct{}{}
		<-release
		ok := &authv3.OkHttpResponse{Headers: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-scope", Value: "s1"}}}}
		return &authv3.CheckResponse{Status: &status.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok}}, nil
	})
	return held, release, addr
}

func waitHeld(t *testing.T, held <-chan struct{}) {
	t.Helper()
	select {
	case <-held:
	case <-time.After(testTimeout):
		t.Fatal("ext_authz never saw the call")
	}
}

func waitACK(t *testing.T, acked <-chan struct{}) {
	t.Helper()
	select {
	case <-acked:
	case <-time.After(testTimeout):
		t.Fatal("the control plane saw no ACK of the pushed scope")
	}
}

// TestADSScopePushedWhileHeld: a call held in ext_authz while a scope is
// pushed over ADS is routed by that scope once released — Envoy mutates
// each worker's ScopedConfigImpl in place (scoped_rds.cc addOrUpdateScopes
// → applyConfigUpdate), and the call re-selects its scope after
// clear_route_cache. This is airlock's hold → approve → route flow.
func TestADSScopePushedWhileHeld(t *testing.T) {
	for _, delta := range []bool{false, true} {
		t.Run(fmt.Sprintf("delta=%v", delta), func(t *testing.T) {
			held, release, authzAddr := heldAuthz(t)
			f := newScopeFixture(t, authzAddr)
			rec := recorder{make(chan ADSResponse, 64)}
			_, d := connectWith(t, f.x.addr, ADSOptions{Delta: delta}, rec)

			done := make(chan result, 1)
			go func() { done <- do(t, d, "GET", "/x", "", nil) }()
			waitHeld(t, held)
			f.set(t, "2", true)
			rec.wait(t, "s1 applied", func(r ADSResponse) bool {
				return r.TypeURL == resource.ScopedRouteType && r.Err == nil && strings.Contains(strings.Join(r.Updated, ","), "s1")
			})
			close(release)
			if got := <-done; got.Status != 200 || len(f.b.requests()) != 1 || len(f.a.requests()) != 0 {
				t.Fatalf("the held call got %d %q; s1's upstream saw %d requests, base's %d", got.Status, got.Body, len(f.b.requests()), len(f.a.requests()))
			}
		})
	}
}

// fakeClock is an applyClock that moves only when the test advances it.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan struct{}
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) at(t time.Time) <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{})
	if !c.t.Before(t) {
		close(ch)
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{t, ch})
	return ch
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if c.t.Before(w.at) {
			kept = append(kept, w)
			continue
		}
		close(w.ch)
	}
	c.waiters = kept
}

// TestADSApplyLag: Envoy ACKs an SRDS update on its main thread and its
// workers apply it a moment later (scoped_rds.cc → runOnAllThreads), so a
// held call released the instant the control plane sees the ACK misses
// the scope, while one released after airlock's settle time (xds
// applySettle, 25 ms after the ACK) sees it, the default lag (5 ms) being
// shorter. The apply lag runs on a clock the test moves, so nothing here
// depends on scheduling.
func TestADSApplyLag(t *testing.T) {
	const settle = 25 * time.Millisecond // xds.applySettle
	for _, tc := range []struct {
		name      string
		lag       time.Duration
		advance   time.Duration // clock moved after the ACK, before the release
		wantScope bool
	}{
		{"released on the ACK: misses the scope", 0, 0, false},
		{"released before the lag ran out: misses the scope", 0, DefaultApplyLag - time.Millisecond, false},
		{"released after the settle: sees the scope", 0, settle, true},
		{"a lag longer than the settle: misses the scope", 2 * settle, settle, false},
		{"released on the ACK, no lag: sees the scope", -1, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			held, release, authzAddr := heldAuthz(t)
			f := newScopeFixture(t, authzAddr)
			clock := newFakeClock()
			rec := recorder{make(chan ADSResponse, 64)}
			_, d := connectWith(t, f.x.addr, ADSOptions{Delta: true, ApplyLag: tc.lag, clock: clock}, rec)

			done := make(chan result, 1)
			go func() { done <- do(t, d, "GET", "/x", "", nil) }()
			waitHeld(t, held)
			acked := f.x.watchACK("s1")
			f.set(t, "2", true)
			waitACK(t, acked)
			clock.advance(tc.advance)
			if tc.wantScope {
				// The clock passed the apply time: the update is (about
				// to be) in force; OnResponse follows the install.
				rec.wait(t, "s1 applied", func(r ADSResponse) bool {
					return r.TypeURL == resource.ScopedRouteType && strings.Contains(strings.Join(r.Updated, ","), "s1")
				})
			}
			close(release)
			got := <-done
			switch {
			case tc.wantScope && (got.Status != 200 || len(f.b.requests()) != 1):
				t.Fatalf("got %d %q, want the call routed by s1", got.Status, got.Body)
			case !tc.wantScope && (got.Status != 403 || got.Body != "no scope" || len(f.b.requests()) != 0):
				t.Fatalf("got %d %q, want the mapped 403: s1 not applied yet", got.Status, got.Body)
			}
		})
	}
}

// TestADSNode: the node carries user_agent_name "envoy" and the played
// release as user_agent_build_version unless the bootstrap node sets them
// (source/server/server.cc), and only in the first request of a stream.
func TestADSNode(t *testing.T) {
	sem := func(maj, min, patch uint32) *corev3.Node_UserAgentBuildVersion {
		return &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
			Version: &typev3.SemanticVersion{MajorNumber: maj, MinorNumber: min, Patch: patch}}}
	}
	for _, tc := range []struct {
		name      string
		node      *corev3.Node
		version   string
		wantAgent string
		want      string
	}{
		{"default release", &corev3.Node{Id: "n"}, "", "envoy", "1.37.0"},
		{"played release", &corev3.Node{Id: "n"}, "1.34.2", "envoy", "1.34.2"},
		{"below the floor", &corev3.Node{Id: "n"}, "v1.32.3", "envoy", "1.32.3"},
		{"bootstrap sets them", &corev3.Node{Id: "n", UserAgentName: "custom", UserAgentVersionType: sem(1, 35, 1)}, "1.37.0", "custom", "1.35.1"},
		{"a version string is replaced", &corev3.Node{Id: "n", UserAgentVersionType: &corev3.Node_UserAgentVersion{UserAgentVersion: "x"}}, "1.36.0", "envoy", "1.36.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := startXDS(t, "", cache.NewSnapshotCache(false, cache.IDHash{}, nil), nil)
			before := tc.node.GetUserAgentName()
			a, err := ConnectADS(x.addr, ADSOptions{Node: tc.node, EnvoyVersion: tc.version, NoListener: true, Logger: testLogger(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			deadline := time.Now().Add(testTimeout)
			for x.firstNode() == nil && time.Now().Before(deadline) {
				time.Sleep(2 * time.Millisecond)
			}
			n := x.firstNode()
			if n == nil {
				t.Fatal("no request carried the node")
			}
			v := n.GetUserAgentBuildVersion().GetVersion()
			got := fmt.Sprintf("%d.%d.%d", v.GetMajorNumber(), v.GetMinorNumber(), v.GetPatch())
			if n.GetId() != "n" || n.GetUserAgentName() != tc.wantAgent || got != tc.want {
				t.Fatalf("node %v, want user agent %s %s", n, tc.wantAgent, tc.want)
			}
			if tc.node.GetUserAgentName() != before {
				t.Fatal("the caller's node was modified")
			}
		})
	}
	for _, bad := range []string{"1.37", "one.two.three", "1.-1.0"} {
		if _, err := ConnectADS("127.0.0.1:1", ADSOptions{Node: &corev3.Node{Id: "n"}, EnvoyVersion: bad}); err == nil || !strings.Contains(err.Error(), "envoy version") {
			t.Errorf("EnvoyVersion %q: err = %v, want a version error", bad, err)
		}
	}
}

// TestADSStats: the client counts ACKs, NACKs and the scopes each
// accepted response updated and removed, so end-to-end tests can assert,
// e.g., that a restart removed no live scope.
func TestADSStats(t *testing.T) {
	_, authzAddr := scopeAuthz(t)
	f := newScopeFixture(t, authzAddr)
	rec := recorder{make(chan ADSResponse, 64)}
	a, _ := connectWith(t, f.x.addr, ADSOptions{Delta: true}, rec)
	f.set(t, "2", true)
	rec.wait(t, "s1 added", func(r ADSResponse) bool {
		return r.TypeURL == resource.ScopedRouteType && len(r.Updated) > 0 && r.Updated[0] == "s1"
	})
	f.set(t, "3", false)
	rec.wait(t, "s1 removed", func(r ADSResponse) bool { return r.TypeURL == resource.ScopedRouteType && len(r.Removed) > 0 })
	st := a.Stats()[resource.ScopedRouteType]
	// base, then s1, then the removal of s1.
	if st.ACKs != 3 || st.NACKs != 0 || st.Updated != 2 || st.Removed != 1 {
		t.Fatalf("scoped route stats %+v, want 3 ACKs, 2 updated, 1 removed", st)
	}
}
