package xds

import (
	"fmt"
	"sort"
	"testing"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/stream/v3"
	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/envoy"
)

func testScope(name, key string) types.Resource {
	return &routev3.ScopedRouteConfiguration{Name: name, Key: envoy.ScopeKey(key), RouteConfiguration: &routev3.RouteConfiguration{Name: name}}
}

// deltaSub plays go-control-plane's delta server for one subscription:
// it keeps the subscription, asks for a watch, and applies each response's
// version map as the server does.
type deltaSub struct {
	c     *scopeCache
	sub   stream.Subscription
	ch    chan cache.DeltaResponse
	nonce string
}

func newDeltaSub(c *scopeCache, initial map[string]string) *deltaSub {
	return &deltaSub{c: c, sub: stream.NewDeltaSubscription(nil, nil, initial, true), ch: make(chan cache.DeltaResponse, 1)}
}

// next requests (ACKing the last response) and returns the response, or
// nil when the cache has nothing for it and holds the watch.
func (d *deltaSub) next(t *testing.T) (*discovery.DeltaDiscoveryResponse, func()) {
	t.Helper()
	cancel, err := d.c.CreateDeltaWatch(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ScopedRouteType, ResponseNonce: d.nonce}, d.sub, d.ch)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-d.ch:
		return d.apply(t, r), cancel
	default:
		return nil, cancel
	}
}

func (d *deltaSub) apply(t *testing.T, r cache.DeltaResponse) *discovery.DeltaDiscoveryResponse {
	t.Helper()
	out, err := r.GetDeltaDiscoveryResponse()
	if err != nil {
		t.Fatal(err)
	}
	d.nonce = out.GetSystemVersionInfo()
	d.sub.SetReturnedResources(r.GetNextVersionMap())
	return out
}

func names(r *discovery.DeltaDiscoveryResponse) (updated, removed []string) {
	for _, res := range r.GetResources() {
		updated = append(updated, res.GetName())
	}
	sort.Strings(updated)
	removed = append(removed, r.GetRemovedResources()...)
	sort.Strings(removed)
	return updated, removed
}

func TestScopeCacheDelta(t *testing.T) {
	c := newScopeCache(resource.ScopedRouteType, "v-")
	if err := c.update(map[string]types.Resource{"a": testScope("a", "a"), "b": testScope("b", "b")}, nil); err != nil {
		t.Fatal(err)
	}
	d := newDeltaSub(c, nil)
	r, _ := d.next(t)
	if up, _ := names(r); !cmp.Equal(up, []string{"a", "b"}) {
		t.Fatalf("initial state: %v", up)
	}
	// Up to date: the watch waits, and a change answers it with just that change.
	if r, _ := d.next(t); r != nil {
		t.Fatalf("answered with nothing new: %v", r)
	}
	if err := c.update(map[string]types.Resource{"c": testScope("c", "c")}, []string{"a"}); err != nil {
		t.Fatal(err)
	}
	up, rm := names(d.apply(t, <-d.ch))
	if !cmp.Equal(up, []string{"c"}) || !cmp.Equal(rm, []string{"a"}) {
		t.Fatalf("change: updated %v removed %v", up, rm)
	}
	// Re-setting identical content is not a change.
	if err := c.update(map[string]types.Resource{"b": testScope("b", "b")}, []string{"never-there"}); err != nil {
		t.Fatal(err)
	}
	if r, cancel := d.next(t); r != nil {
		t.Fatalf("identical content was sent again: %v", r)
	} else {
		cancel()
	}
	if len(c.watches) != 0 {
		t.Error("a cancelled watch is still held")
	}

	// A client reconnecting with what it holds gets only what differs.
	held := map[string]string{}
	for k, v := range d.sub.ReturnedResources() {
		if k != cursorKey {
			held[k] = v
		}
	}
	held["gone"] = "x"
	if err := c.update(map[string]types.Resource{"b": testScope("b", "b2")}, nil); err != nil {
		t.Fatal(err)
	}
	re := newDeltaSub(c, held)
	up, rm = names(func() *discovery.DeltaDiscoveryResponse { r, _ := re.next(t); return r }())
	if !cmp.Equal(up, []string{"b"}) || !cmp.Equal(rm, []string{"gone"}) {
		t.Errorf("reconnect: updated %v removed %v, want [b] [gone]", up, rm)
	}
}

// TestScopeCacheLaggingSubscriber: a subscriber whose position fell off
// the change log is brought up to date by a full comparison.
func TestScopeCacheLaggingSubscriber(t *testing.T) {
	c := newScopeCache(resource.ScopedRouteType, "v-")
	d := newDeltaSub(c, nil)
	d.next(t)
	// Far more changes than the log keeps, while the subscriber has no
	// watch open (its ACK is in flight).
	for i := 0; i < 3*minLog; i++ {
		n := fmt.Sprintf("s%d", i%10)
		if err := c.update(map[string]types.Resource{n: testScope(n, fmt.Sprint(i))}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if len(c.log) > 2*minLog {
		t.Errorf("the log grew to %d entries", len(c.log))
	}
	r, _ := d.next(t)
	up, _ := names(r)
	if len(up) != 10 {
		t.Fatalf("lagging subscriber got %v, want all 10 scopes", up)
	}
	for _, res := range r.GetResources() {
		if res.GetVersion() != c.resources[res.GetName()].version {
			t.Errorf("%s: sent version %s, current %s", res.GetName(), res.GetVersion(), c.resources[res.GetName()].version)
		}
	}
}

func TestScopeCacheSotW(t *testing.T) {
	c := newScopeCache(resource.ScopedRouteType, "v-")
	if err := c.update(map[string]types.Resource{"a": testScope("a", "a")}, nil); err != nil {
		t.Fatal(err)
	}
	sub := stream.NewSotwSubscription(nil, true)
	ch := make(chan cache.Response, 1)
	ask := func(version string) *discovery.DiscoveryResponse {
		t.Helper()
		if _, err := c.CreateWatch(&discovery.DiscoveryRequest{TypeUrl: resource.ScopedRouteType, VersionInfo: version}, sub, ch); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-ch:
			out, _ := r.GetDiscoveryResponse()
			return out
		default:
			return nil
		}
	}
	first := ask("")
	if len(first.GetResources()) != 1 {
		t.Fatalf("initial: %v", first)
	}
	if r := ask(first.GetVersionInfo()); r != nil {
		t.Fatalf("current version answered again: %v", r)
	}
	// Setting identical content is not a change: the waiting watch stays.
	if err := c.update(map[string]types.Resource{"a": testScope("a", "a")}, nil); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-ch:
		t.Fatalf("an unchanged state was sent: %v", r)
	default:
	}
	// Every change sends the whole set.
	if err := c.update(map[string]types.Resource{"b": testScope("b", "b")}, nil); err != nil {
		t.Fatal(err)
	}
	r := <-ch
	out, _ := r.GetDiscoveryResponse()
	if len(out.GetResources()) != 2 || out.GetVersionInfo() == first.GetVersionInfo() {
		t.Fatalf("after a change: %d resources, version %s", len(out.GetResources()), out.GetVersionInfo())
	}
}
