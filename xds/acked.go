package xds

import (
	"context"
	"fmt"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/airlock-mcp/airlock/envoy"
)

// What each connected Envoy has applied.
//
// A grant's route reaches Envoy asynchronously, so a call allowed under a
// grant issued a moment ago could reach Envoy's route layer before the
// grant's scope does, and get the "no live grant route" 403. ext_authz
// therefore waits (WaitGrantRoute) until every connected Envoy has
// acknowledged the grant's scope before it lets the call go with the
// grant header. An ACK is a request that answers a response's nonce
// without error_detail: Envoy accepted that response.

// ackState is one stream's scoped-route knowledge.
type ackState struct {
	seen    bool                 // the stream subscribed to scoped routes
	has     map[string]time.Time // scope names it has acknowledged, and when
	pending map[string]ackDelta  // nonce → what that response changes
}

type ackDelta struct {
	add, remove []string
	full        bool // SotW: the response is the whole set
}

func (st *streamState) ack() *ackState {
	if st.acks == nil {
		st.acks = &ackState{has: map[string]time.Time{}, pending: map[string]ackDelta{}}
	}
	return st.acks
}

// sentScopes notes the scopes a response carries, until Envoy answers it.
func (c *callbacks) sentScopes(id int64, nonce string, d ackDelta) {
	c.streamsMu.Lock()
	defer c.streamsMu.Unlock()
	if st := c.streams[id]; st != nil {
		a := st.ack()
		a.seen = true
		a.pending[nonce] = d
	}
}

// ackedScopes applies the response a request answered, when it is an ACK.
// A stream counts as subscribed to scoped routes from its first request
// for them: until then no response may have been sent (with no grant live
// there is nothing to send), and a grant issued then must still wait for
// that Envoy.
func (c *callbacks) ackedScopes(id int64, typeURL, nonce string, nack bool) {
	if typeURL != resource.ScopedRouteType {
		return
	}
	c.streamsMu.Lock()
	st := c.streams[id]
	if st == nil {
		c.streamsMu.Unlock()
		return
	}
	a := st.ack()
	a.seen = true
	if nonce == "" {
		c.streamsMu.Unlock()
		return
	}
	d, ok := a.pending[nonce]
	delete(a.pending, nonce)
	if ok && !nack {
		now := time.Now()
		if d.full {
			prev := a.has
			a.has = make(map[string]time.Time, len(d.add))
			for _, n := range d.add {
				if at, kept := prev[n]; kept {
					a.has[n] = at
				}
			}
		}
		for _, n := range d.remove {
			delete(a.has, n)
		}
		for _, n := range d.add {
			if _, known := a.has[n]; !known {
				a.has[n] = now
			}
		}
	}
	ch := c.ackCh
	c.ackCh = make(chan struct{})
	c.streamsMu.Unlock()
	close(ch)
}

func deltaScopes(resp *discovery.DeltaDiscoveryResponse) ackDelta {
	var d ackDelta
	for _, r := range resp.GetResources() {
		d.add = append(d.add, r.GetName())
	}
	d.remove = resp.GetRemovedResources()
	return d
}

func sotwScopes(resp *discovery.DiscoveryResponse) ackDelta {
	d := ackDelta{full: true}
	for _, a := range resp.GetResources() {
		if m, err := a.UnmarshalNew(); err == nil {
			d.add = append(d.add, cache.GetResourceName(m))
		}
	}
	return d
}

// DefaultApplySettle is how long after an Envoy acknowledged a scope its
// workers are taken to route with it (Options.ApplySettle). Envoy ACKs an
// SRDS update once its main thread accepted it
// (source/common/router/scoped_rds.cc, ScopedRdsConfigSubscription::
// onConfigUpdate → addOrUpdateScopes) and then posts the new scopes to
// every worker (ScopedConfigImpl updates run through tls_.runOnAllThreads,
// source/common/thread_local/thread_local_impl.cc, which queues a callback
// on each worker's dispatcher), so a call let go the instant the ACK
// arrives can still meet a worker that has not run that callback yet.
// Envoy reports no "applied on every worker" event; a worker runs the
// posted callback as soon as its event loop turns, well within this
// margin unless a worker is blocked.
const DefaultApplySettle = 25 * time.Millisecond

// WaitGrantRoute returns when every connected Envoy that takes scoped
// routes has acknowledged the grant's scope at least Options.ApplySettle
// ago, or
// with an error when ctx ends first. With no Envoy connected it returns at
// once.
func (s *Server) WaitGrantRoute(ctx context.Context, grantID string) error {
	name := envoy.ScopeName(grantID)
	c := (*callbacks)(s)
	for {
		s.streamsMu.Lock()
		missing := 0
		var last time.Time
		for _, st := range s.streams {
			if st.acks == nil || !st.acks.seen {
				continue
			}
			at, ok := st.acks.has[name]
			if !ok {
				missing++
			} else if at.After(last) {
				last = at
			}
		}
		ch := c.ackCh
		s.streamsMu.Unlock()
		if missing == 0 {
			wait := time.Until(last.Add(s.settle))
			if wait <= 0 {
				return nil
			}
			select {
			case <-time.After(wait):
				return nil
			case <-ctx.Done():
				return fmt.Errorf("the route of grant %s was just acknowledged and may not be applied yet: %w", grantID, ctx.Err())
			}
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("the route of grant %s is not yet in %d Envoy(s): %w", grantID, missing, ctx.Err())
		}
	}
}
