package xds

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// fakeSource hands out one event channel per subscription and the grants
// ListGrants returns.
type fakeSource struct {
	mu     sync.Mutex
	subs   chan chan grants.Event
	active []*grants.Grant
	lists  int
}

func (f *fakeSource) Subscribe(context.Context) <-chan grants.Event {
	ch := make(chan grants.Event, 16)
	f.subs <- ch
	return ch
}

func (f *fakeSource) ListGrants(_ context.Context, filter grants.GrantFilter) ([]*grants.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if len(filter.States) != 1 || filter.States[0] != grants.GrantActive {
		return nil, errors.New("routes must list active grants only")
	}
	return f.active, nil
}

// routeLog records what Follow asked of the routes.
type routeLog struct {
	mu  sync.Mutex
	ops []string
	ch  chan string
}

func (r *routeLog) add(op string) error {
	r.mu.Lock()
	r.ops = append(r.ops, op)
	r.mu.Unlock()
	r.ch <- op
	return nil
}

func (r *routeLog) UpsertGrant(g Grant) error {
	return r.add(fmt.Sprintf("upsert %s %s %s %s", g.ID, g.Target, g.Tool, g.Expiry.Format(time.RFC3339)))
}
func (r *routeLog) RemoveGrant(id string) error { return r.add("remove " + id) }
func (r *routeLog) SetGrants(gs []Grant) error {
	var ids []string
	for _, g := range gs {
		ids = append(ids, g.ID)
	}
	return r.add("set " + strings.Join(ids, ","))
}

func (r *routeLog) next(t *testing.T) string {
	t.Helper()
	select {
	case op := <-r.ch:
		return op
	case <-time.After(testTimeout):
		t.Fatal("Follow did nothing")
		return ""
	}
}

func TestFollow(t *testing.T) {
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	src := &fakeSource{subs: make(chan chan grants.Event, 4), active: []*grants.Grant{{ID: "g0", Target: "github", Expiry: exp}}}
	routes := &routeLog{ch: make(chan string, 16)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		Follow(ctx, src, routes, FollowOptions{ConsumedGrace: 50 * time.Millisecond})
		close(done)
	}()
	events := <-src.subs
	var got []string
	got = append(got, routes.next(t))
	send := func(typ grants.EventType, g *grants.Grant) { events <- grants.Event{Type: typ, Grant: g} }
	send(grants.EventGrantIssued, &grants.Grant{ID: "g1", Target: "github", Tool: "delete_repo", Expiry: exp})
	send(grants.EventGrantUsed, &grants.Grant{ID: "g1"}) // not a change
	send(grants.EventRequestOpened, nil)                 // not about a grant
	send(grants.EventGrantIssued, &grants.Grant{ID: "g2", Target: "everything", Resource: "file:///x", Expiry: exp})
	send(grants.EventGrantRevoked, &grants.Grant{ID: "g1"})
	send(grants.EventGrantExpired, &grants.Grant{ID: "g0"})
	send(grants.EventGrantConsumed, &grants.Grant{ID: "g2", Expiry: exp}) // after the grace
	for i := 0; i < 5; i++ {
		got = append(got, routes.next(t))
	}
	// A subscriber that fell behind is dropped; Follow subscribes and reloads.
	close(events)
	<-src.subs
	got = append(got, routes.next(t))
	want := []string{
		"set g0",
		"upsert g1 github delete_repo 2030-01-01T00:00:00Z",
		"upsert g2 everything file:///x 2030-01-01T00:00:00Z",
		"remove g1",
		"remove g0",
		"remove g2",
		"set g0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("routes (-want +got):\n%s", diff)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(testTimeout):
		t.Fatal("Follow did not return when its context ended")
	}
}
