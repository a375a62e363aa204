package xds

import (
	"context"
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
// dropped it subscribes and reloads.
func Follow(ctx context.Context, src GrantSource, routes GrantRoutes, opts FollowOptions) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	grace := opts.ConsumedGrace
	if grace <= 0 {
		grace = DefaultConsumedGrace
	}
	for ctx.Err() == nil {
		events := src.Subscribe(ctx)
		// Subscribed first, listed second: nothing happening in between is
		// missed, and replaying it over the list is harmless.
		list, err := src.ListGrants(ctx, grants.GrantFilter{States: []grants.GrantState{grants.GrantActive}})
		if err != nil {
			log.Error("xds: listing grants; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		live := make([]Grant, 0, len(list))
		for _, g := range list {
			live = append(live, routeGrant(g))
		}
		if err := routes.SetGrants(live); err != nil {
			log.Warn("xds: some grants have no route", "err", err)
		}
		if !drain(ctx, events, routes, grace, log) {
			return
		}
		log.Warn("xds: grant events fell behind; reloading every grant")
	}
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
