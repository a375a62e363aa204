package xds

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// GrantSource is the grant store as routes follow it; internal/grants'
// Service implements it.
type GrantSource interface {
	// Subscribe returns every event from now on; the channel is closed
	// when the subscriber falls behind (then subscribe and reload) or ctx ends.
	Subscribe(ctx context.Context) <-chan grants.Event
	ListGrants(ctx context.Context, f grants.GrantFilter) ([]*grants.Grant, error)
}

// DefaultConsumedGrace is how long a single-use grant's route outlives
// its use. The grant is consumed while ext_authz checks the very call it
// allows, and that call is routed by the grant's route right after:
// removing the route at once would race the call it was issued for. The
// grant cannot be used again (consumption is exactly once); its route goes
// at the grace's end, or at expiry if that is sooner.
const DefaultConsumedGrace = 30 * time.Second

// FollowOptions tune Follow.
type FollowOptions struct {
	Logger        *slog.Logger
	ConsumedGrace time.Duration // default DefaultConsumedGrace
}

// Follow keeps routes in step with the grant store until ctx ends: it
// subscribes, loads every active grant (SetGrants), and applies each
// grant event — issued: the route appears; revoked or expired: it goes;
// consumed: it goes after the consumed grace. When the subscription is
// dropped it subscribes and reloads. StartFollow does the first load
// before it returns.
func Follow(ctx context.Context, src GrantSource, routes GrantRoutes, opts FollowOptions) {
	log, grace := opts.defaults()
	for ctx.Err() == nil {
		events := src.Subscribe(ctx)
		if err := load(ctx, src, routes, log); err != nil {
			log.Error("xds: listing grants; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		if !drain(ctx, events, routes, grace, log) {
			return
		}
		log.Warn("xds: grant events fell behind; reloading every grant")
	}
}

// StartFollow loads every active grant into routes and returns once they
// are loaded, then follows the store (as Follow) in the background until
// ctx ends; done is closed when it stopped. Serve xDS only after it
// returned: an Envoy that reconnects to a server without the live grants
// (delta: with initial_resource_versions naming their scopes) is told to
// remove every grant's route, and each granted call is refused until they
// come back.
func StartFollow(ctx context.Context, src GrantSource, routes GrantRoutes, opts FollowOptions) (done <-chan struct{}, err error) {
	log, grace := opts.defaults()
	events := src.Subscribe(ctx) // first, as in Follow: nothing is missed between list and events
	if err := load(ctx, src, routes, log); err != nil {
		return nil, fmt.Errorf("loading the live grants for Envoy's routes: %w", err)
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		if drain(ctx, events, routes, grace, log) {
			log.Warn("xds: grant events fell behind; reloading every grant")
			Follow(ctx, src, routes, opts)
		}
	}()
	return ch, nil
}

func (o FollowOptions) defaults() (*slog.Logger, time.Duration) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := o.ConsumedGrace
	if grace <= 0 {
		grace = DefaultConsumedGrace
	}
	return log, grace
}

// load makes routes' grants the store's active grants. A grant that cannot
// be routed (its target gone, say) is logged, not an error.
func load(ctx context.Context, src GrantSource, routes GrantRoutes, log *slog.Logger) error {
	list, err := src.ListGrants(ctx, grants.GrantFilter{States: []grants.GrantState{grants.GrantActive}})
	if err != nil {
		return err
	}
	live := make([]Grant, 0, len(list))
	for _, g := range list {
		live = append(live, routeGrant(g))
	}
	if err := routes.SetGrants(live); err != nil {
		log.Warn("xds: some grants have no route", "err", err)
	}
	return nil
}

// drain applies events until the subscription ends (true: resubscribe)
// or ctx does (false).
func drain(ctx context.Context, events <-chan grants.Event, routes GrantRoutes, grace time.Duration, log *slog.Logger) bool {
	for {
		select {
		case <-ctx.Done():
			return false
		case e, ok := <-events:
			if !ok {
				return ctx.Err() == nil
			}
			apply(e, routes, grace, log)
		}
	}
}

func apply(e grants.Event, routes GrantRoutes, grace time.Duration, log *slog.Logger) {
	g := e.Grant
	if g == nil || !e.Type.IsGrant() {
		return
	}
	var err error
	switch e.Type {
	case grants.EventGrantIssued:
		err = routes.UpsertGrant(routeGrant(g))
	case grants.EventGrantRevoked, grants.EventGrantExpired:
		err = routes.RemoveGrant(g.ID)
	case grants.EventGrantConsumed:
		// (The route also goes at expiry on its own; removing it twice is harmless.)
		id := g.ID
		time.AfterFunc(max(min(grace, time.Until(g.Expiry)), 0), func() {
			if err := routes.RemoveGrant(id); err != nil {
				log.Warn("xds: withdrawing a consumed grant's route", "grant", id, "err", err)
			}
		})
	}
	if err != nil {
		log.Warn("xds: grant event not applied to routes", "event", e.Type, "grant", g.ID, "err", err)
	}
}

// routeGrant is what routing needs of a grant.
func routeGrant(g *grants.Grant) Grant {
	tool := g.Tool
	if tool == "" {
		tool = g.Resource
	}
	return Grant{ID: g.ID, Target: g.Target, Tool: tool, Expiry: g.Expiry}
}
