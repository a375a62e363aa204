package envoydriver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// defaultBreakerLimit is the max_connections, max_pending_requests and
// max_requests threshold Envoy applies when the cluster sets none
// (source/common/upstream/upstream_impl.cc
// ClusterInfoImpl::ResourceManagers::load, which builds the
// ResourceManagerImpl of source/common/upstream/resource_manager_impl.h:
// 1024 each, max_retries 3).
const defaultBreakerLimit = 1024

// defaultMaxRetries is ResourceManagers::load's max_retries default.
const defaultMaxRetries = 3

// thresholds is the DEFAULT priority's circuit_breakers.thresholds entry.
type thresholds struct {
	maxConnections, maxPending, maxRequests, maxRetries int
}

// breaker is one cluster's circuit breaker: its configured thresholds and
// the counters it shares, by cluster name, across configuration updates
// (the driver keeps them; a request holds what it acquired from the
// generation it started with).
type breaker struct {
	limits   thresholds
	counters *breakerCounters
}

// compileBreakers reads cluster.proto circuit_breakers as
// ResourceManagers::load does: the first thresholds entry of the DEFAULT
// routing priority (std::find_if; the stand-in routes nothing at HIGH
// priority). track_remaining only adds Envoy's remaining_* gauges, which
// ClusterStats always reports. max_retries is read but unused: the
// stand-in's router does not retry. retry_budget, max_connection_pools and
// per_host_thresholds are not implemented and are refused by name.
func compileBreakers(c *clusterv3.Cluster) (thresholds, error) {
	t := thresholds{defaultBreakerLimit, defaultBreakerLimit, defaultBreakerLimit, defaultMaxRetries}
	cb := c.GetCircuitBreakers()
	if len(cb.GetPerHostThresholds()) > 0 {
		return t, errors.New("circuit_breakers.per_host_thresholds is not supported")
	}
	found := false
	for i, th := range cb.GetThresholds() {
		where := fmt.Sprintf("circuit_breakers.thresholds[%d]", i)
		if th.GetRetryBudget() != nil {
			return t, fmt.Errorf("%s: retry_budget is not supported", where)
		}
		if th.GetMaxConnectionPools() != nil {
			return t, fmt.Errorf("%s: max_connection_pools is not supported", where)
		}
		if th.GetPriority() != corev3.RoutingPriority_DEFAULT || found {
			continue
		}
		found = true
		if v := th.GetMaxConnections(); v != nil {
			t.maxConnections = int(v.GetValue())
		}
		if v := th.GetMaxPendingRequests(); v != nil {
			t.maxPending = int(v.GetValue())
		}
		if v := th.GetMaxRequests(); v != nil {
			t.maxRequests = int(v.GetValue())
		}
		if v := th.GetMaxRetries(); v != nil {
			t.maxRetries = int(v.GetValue())
		}
	}
	return t, nil
}

// ClusterStats are a cluster's circuit breaker counters, named after
// Envoy's cluster statistics (cluster_manager/cluster_stats docs).
type ClusterStats struct {
	// RqActive is upstream_rq_active: requests (router) and gRPC calls or
	// streams (ext_authz Check, ext_proc stream) in flight.
	RqActive int
	// RqPendingActive is upstream_rq_pending_active: requests waiting for
	// an upstream connection (the max_connections breaker is open).
	RqPendingActive int
	// RqTotal is upstream_rq_total: requests and calls that got through.
	RqTotal uint64
	// RqPendingOverflow is upstream_rq_pending_overflow, which Envoy's
	// connection pool counts for both breakers that fail a request
	// (source/common/conn_pool/conn_pool_base.cc: "max streams overflow",
	// the max_requests breaker, and "max pending streams overflow").
	RqPendingOverflow uint64
	// RqOverflow counts the max_requests breaker's trips alone, and
	// PendingOverflow the max_pending_requests breaker's.
	RqOverflow, PendingOverflow uint64
	// CxOverflow is upstream_cx_overflow: a request found the
	// max_connections breaker open (it then waits as pending, or
	// overflows).
	CxOverflow uint64
	// RemainingRq is circuit_breakers.default.remaining_rq
	// (track_remaining): max_requests minus RqActive.
	RemainingRq int
}

// ClusterStats returns the circuit breaker counters of a cluster of the
// current configuration; ok is false for an unknown cluster.
func (d *Driver) ClusterStats(name string) (ClusterStats, bool) {
	cl, ok := d.cur.Load().clusters[name]
	if !ok {
		return ClusterStats{}, false
	}
	c := cl.breaker.counters
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.stats
	st.RqActive, st.RqPendingActive = c.active, len(c.waiters)
	st.RemainingRq = max(cl.breaker.limits.maxRequests-c.active, 0)
	return st, true
}

// breakerCounters are one cluster's live counts.
type breakerCounters struct {
	mu      sync.Mutex
	active  int
	waiters []chan struct{} // pending requests, oldest first
	stats   ClusterStats
}

// breakerRegistry keeps counters by cluster name for a driver.
type breakerRegistry struct {
	mu sync.Mutex
	m  map[string]*breakerCounters
}

func (r *breakerRegistry) get(name string) *breakerCounters {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]*breakerCounters{}
	}
	c, ok := r.m[name]
	if !ok {
		c = &breakerCounters{}
		r.m[name] = c
	}
	return c
}

// errOverflow is a request refused by a circuit breaker (Envoy's
// ConnectionPool::PoolFailureReason::Overflow).
var errOverflow = errors.New("upstream overflow: circuit breaker open")

// acquireStream takes one request slot for a gRPC call or stream on an
// HTTP/2 connection: the max_requests breaker applies
// (conn_pool_base.cc attachStreamToClient, "max streams overflow"). The
// release function must be called once, when the call or stream ends.
func (b *breaker) acquireStream() (func(), error) {
	c := b.counters
	if c == nil {
		return func() {}, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.active >= b.limits.maxRequests {
		c.stats.RqOverflow++
		c.stats.RqPendingOverflow++
		return nil, errOverflow
	}
	c.active++
	c.stats.RqTotal++
	return c.releaser(), nil
}

// acquireHTTP1 takes one request slot for the router's HTTP/1 upstream,
// where each request holds a connection of its own
// (source/common/conn_pool/conn_pool_base.cc newStreamImpl): with the
// max_connections breaker open (upstream_cx_overflow) the request waits
// as pending unless max_pending_requests are already waiting ("max
// pending streams overflow"); with a connection free, the max_requests
// breaker decides ("max streams overflow"). Both overflows fail the
// request.
func (b *breaker) acquireHTTP1(ctx context.Context) (func(), error) {
	c := b.counters
	if c == nil {
		return func() {}, nil
	}
	c.mu.Lock()
	for {
		if c.active < b.limits.maxConnections {
			if c.active >= b.limits.maxRequests {
				c.stats.RqOverflow++
				c.stats.RqPendingOverflow++
				c.mu.Unlock()
				return nil, errOverflow
			}
			c.active++
			c.stats.RqTotal++
			c.mu.Unlock()
			return c.releaser(), nil
		}
		c.stats.CxOverflow++
		if len(c.waiters) >= b.limits.maxPending {
			c.stats.PendingOverflow++
			c.stats.RqPendingOverflow++
			c.mu.Unlock()
			return nil, errOverflow
		}
		w := make(chan struct{})
		c.waiters = append(c.waiters, w)
		c.mu.Unlock()
		select {
		case <-w:
			c.mu.Lock()
		case <-ctx.Done():
			c.mu.Lock()
			select {
			case <-w:
				// Woken as it gave up: hand the free slot on.
				c.wakeOne()
			default:
				c.dropWaiter(w)
			}
			c.mu.Unlock()
			return nil, ctx.Err()
		}
	}
}

// releaser returns the release function of one slot: it frees the slot
// and wakes the oldest pending request.
func (c *breakerCounters) releaser() func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.active--
			c.wakeOne()
		})
	}
}

func (c *breakerCounters) wakeOne() {
	if len(c.waiters) > 0 {
		w := c.waiters[0]
		c.waiters = c.waiters[1:]
		close(w)
	}
}

func (c *breakerCounters) dropWaiter(w chan struct{}) {
	for i, x := range c.waiters {
		if x == w {
			c.waiters = append(c.waiters[:i], c.waiters[i+1:]...)
			return
		}
	}
}

// overflowReply is the router's answer to an overflow
// (source/common/router/router.cc onUpstreamAbort with dropped=true):
// 503, response flag UO, and x-envoy-overloaded: true unless the router
// suppresses Envoy headers.
func overflowReply(suppressEnvoyHeaders bool) *localReply {
	h := &headerMap{}
	if !suppressEnvoyHeaders {
		h.set("x-envoy-overloaded", "true")
	}
	return &localReply{
		status:  http.StatusServiceUnavailable,
		body:    "upstream connect error or disconnect/reset before headers. reset reason: overflow",
		headers: h,
		details: "upstream_reset_before_response_started{overflow}",
	}
}
