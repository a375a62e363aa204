package xds

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	clusterservice "github.com/envoyproxy/go-control-plane/envoy/service/cluster/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	listenerservice "github.com/envoyproxy/go-control-plane/envoy/service/listener/v3"
	routeservice "github.com/envoyproxy/go-control-plane/envoy/service/route/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/tracing"
)

// Options are the Server's collaborators.
type Options struct {
	Logger *slog.Logger
	// Registerer receives the airlock_xds_* metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock (tests); default time.Now.
	Now func() time.Time
	// ApplySettle is how long after an Envoy acknowledged a grant's scope
	// WaitGrantRoute takes its workers to route with it (acked.go);
	// default DefaultApplySettle, negative for none.
	ApplySettle time.Duration
	// NACKRetry is the first delay before a rejected response is sent
	// again, doubling per consecutive rejection up to NACKRetryMax
	// (retry.go); defaults DefaultNACKRetry and DefaultNACKRetryMax.
	NACKRetry, NACKRetryMax time.Duration
	// Tracing traces each push (a change of scoped routes, a new
	// snapshot of listener and clusters); nil: off.
	Tracing *tracing.Tracing
}

// Server is airlock's ADS server. Its caches (docs/xds.md):
//   - nodes: listener and clusters, one snapshot per Envoy node id;
//   - scopes: every scope (the base routes and one per grant), encoded
//     once per change; for incremental (delta) subscribers one grant
//     change is one resource on the wire and work proportional to the
//     change; state-of-the-world subscribers get the complete set, as
//     Envoy requires of SotW scoped routes (scopecache.go).
type Server struct {
	log      *slog.Logger
	tracing  *tracing.Tracing
	metrics  *metrics
	now      func() time.Time
	instance string

	nodes  cache.SnapshotCache
	scopes *scopeCache
	xds    server.Server
	cancel context.CancelFunc
	done   chan struct{}
	wake   chan struct{}

	// mu orders every change of configuration and grants.
	mu       sync.Mutex
	model    *envoy.Model
	grants   map[string]Grant
	expiries expiryHeap
	baseGen  uint64

	// nodesMu guards which nodes hold a snapshot, and base.
	nodesMu  sync.Mutex
	base     atomic.Pointer[cache.Snapshot]
	nodeRefs map[string]int

	streamsMu sync.Mutex
	streams   map[int64]*streamState
	ackCh     chan struct{}          // closed and replaced on every scoped-route ACK
	refused   map[string]RefusedNode // by node id, the latest refusal
	changed   chan struct{}          // closed and replaced on every configuration change
	holds     sync.Map               // NACK request → hold, from the callbacks to the cache (retry.go)
	settle    time.Duration          // Options.ApplySettle
	retryBase time.Duration
	retryMax  time.Duration
}

// New serves m's data path (rendered by package envoy) and starts the
// grant expiry timer. Call Register to serve it on a gRPC server, and
// Close when done.
func New(m *envoy.Model, opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var id [4]byte
	_, _ = rand.Read(id[:])
	s := &Server{
		log:       log,
		tracing:   opts.Tracing,
		metrics:   newMetrics(opts.Registerer),
		now:       now,
		model:     m,
		instance:  hex.EncodeToString(id[:]),
		grants:    map[string]Grant{},
		nodeRefs:  map[string]int{},
		streams:   map[int64]*streamState{},
		refused:   map[string]RefusedNode{},
		ackCh:     make(chan struct{}),
		changed:   make(chan struct{}),
		settle:    DefaultApplySettle,
		retryBase: DefaultNACKRetry,
		retryMax:  DefaultNACKRetryMax,
		done:      make(chan struct{}),
		wake:      make(chan struct{}, 1),
	}
	switch {
	case opts.ApplySettle < 0:
		s.settle = 0
	case opts.ApplySettle > 0:
		s.settle = opts.ApplySettle
	}
	if opts.NACKRetry > 0 {
		s.retryBase = opts.NACKRetry
	}
	if opts.NACKRetryMax > 0 {
		s.retryMax = opts.NACKRetryMax
	}
	s.retryMax = max(s.retryMax, s.retryBase)
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(nodeCollector{s})
	}
	cl := cpLogger{log}
	base, err := m.Dynamic()
	if err != nil {
		return nil, err
	}
	s.nodes = cache.NewSnapshotCache(false, cache.IDHash{}, cl)
	s.scopes = newScopeCache(resource.ScopedRouteType, s.instance+"-")
	if err := s.scopes.update(map[string]types.Resource{envoy.BaseScopeName: base.BaseScope}, nil); err != nil {
		return nil, err
	}
	if err := s.setBase(base); err != nil {
		return nil, err
	}
	classify := func(typeURL string) string {
		if typeURL == resource.ScopedRouteType {
			return "scopes"
		}
		return "nodes"
	}
	mux := &cache.MuxCache{
		Classify:      func(r *cache.Request) string { return classify(r.GetTypeUrl()) },
		ClassifyDelta: func(r *cache.DeltaRequest) string { return classify(r.GetTypeUrl()) },
		Caches:        map[string]cache.Cache{"nodes": s.nodes, "scopes": s.scopes},
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	s.xds = server.NewServer(ctx, &retryCache{inner: mux, s: s}, (*callbacks)(s))
	go s.expireLoop(ctx)
	return s, nil
}

// Register serves ADS, and LDS, CDS and SRDS for Envoys configured per
// type (airlock serves no RDS: every scope carries its routes inline).
func (s *Server) Register(g *grpc.Server) {
	discoverygrpc.RegisterAggregatedDiscoveryServiceServer(g, s.xds)
	listenerservice.RegisterListenerDiscoveryServiceServer(g, s.xds)
	clusterservice.RegisterClusterDiscoveryServiceServer(g, s.xds)
	routeservice.RegisterScopedRoutesDiscoveryServiceServer(g, s.xds)
}

// Close stops the expiry timer and every open xDS stream.
func (s *Server) Close() {
	s.cancel()
	<-s.done
}

// setBase makes base's listener and clusters the snapshot of every node.
func (s *Server) setBase(base *envoy.Dynamic) error {
	_, span := s.tracing.Start(context.Background(), "airlock.xds.push", trace.SpanKindInternal, attribute.String("airlock.xds.kind", "snapshot"))
	defer span.End()
	s.baseGen++
	res := map[resource.Type][]types.Resource{resource.ListenerType: {base.Listener}}
	for _, c := range base.Clusters {
		res[resource.ClusterType] = append(res[resource.ClusterType], c)
	}
	snap, err := cache.NewSnapshot(fmt.Sprintf("%s-%d", s.instance, s.baseGen), res)
	if err != nil {
		return fmt.Errorf("xds snapshot: %w", err)
	}
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	s.base.Store(snap)
	var errs []error
	for node := range s.nodeRefs {
		if err := s.nodes.SetSnapshot(context.Background(), node, snap); err != nil {
			errs = append(errs, fmt.Errorf("node %s: %w", node, err))
		}
	}
	return errors.Join(errs...)
}

// SetModel serves a new model: listener, clusters and base routes for
// every node, and every grant's route again. Grants of targets that are
// gone lose their routes.
func (s *Server) SetModel(m *envoy.Model) error {
	base, err := m.Dynamic()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.model = m
	now := s.now()
	update := map[string]types.Resource{envoy.BaseScopeName: base.BaseScope}
	var remove []string
	for id, g := range s.grants {
		scope, err := m.GrantScope(g, now)
		if err != nil {
			s.log.Warn("grant route withdrawn on configuration change", "grant", id, "target", g.Target, "err", err)
			delete(s.grants, id)
			remove = append(remove, envoy.ScopeName(id))
			continue
		}
		update[envoy.ScopeName(id)] = scope
	}
	if err := s.setBase(base); err != nil {
		return err
	}
	s.publish(update, remove)
	s.configChange()
	return nil
}

// configChange wakes every held NACK: what a rejected resource lacked
// (a cluster, say) may have arrived.
func (s *Server) configChange() {
	s.streamsMu.Lock()
	ch := s.changed
	s.changed = make(chan struct{})
	s.streamsMu.Unlock()
	close(ch)
}

// configChanged is closed at the next configuration change.
func (s *Server) configChanged() <-chan struct{} {
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	return s.changed
}

// UpsertGrant adds or updates a grant's route. An unchanged grant sends nothing.
func (s *Server) UpsertGrant(g Grant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.grants[g.ID]; ok && sameGrant(cur, g) {
		return nil
	}
	scope, err := s.model.GrantScope(g, s.now())
	if err != nil {
		if errors.Is(err, envoy.ErrExpired) {
			s.removeLocked([]string{g.ID})
		}
		return err
	}
	s.grants[g.ID] = g
	s.addExpiry(g.ID, g.Expiry)
	s.wakeExpiry()
	s.publish(map[string]types.Resource{envoy.ScopeName(g.ID): scope}, nil)
	return nil
}

// RemoveGrant withdraws a grant's route. Removing an unknown grant is not an error.
func (s *Server) RemoveGrant(id string) error {
	if err := envoy.ValidateGrantID(id); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.removeLocked([]string{id})
	return nil
}

func (s *Server) removeLocked(ids []string) {
	var names []string
	for _, id := range ids {
		if _, ok := s.grants[id]; ok {
			delete(s.grants, id)
			names = append(names, envoy.ScopeName(id))
		}
	}
	if len(names) > 0 {
		s.publish(nil, names)
	}
}

// SetGrants makes the live grants exactly gs, sending only the difference.
// Grants that cannot be routed (unknown target, expired, bad id) are left
// out and reported together; the others are applied.
func (s *Server) SetGrants(gs []Grant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	keep := make(map[string]bool, len(gs))
	update := map[string]types.Resource{}
	var errs []error
	for _, g := range gs {
		if keep[g.ID] {
			errs = append(errs, fmt.Errorf("grant %s is listed twice", g.ID))
			continue
		}
		if cur, ok := s.grants[g.ID]; ok && sameGrant(cur, g) {
			keep[g.ID] = true
			continue
		}
		scope, err := s.model.GrantScope(g, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		keep[g.ID] = true
		s.grants[g.ID] = g
		s.addExpiry(g.ID, g.Expiry)
		update[envoy.ScopeName(g.ID)] = scope
	}
	var remove []string
	for id := range s.grants {
		if !keep[id] {
			delete(s.grants, id)
			remove = append(remove, envoy.ScopeName(id))
		}
	}
	s.wakeExpiry()
	if len(update) > 0 || len(remove) > 0 {
		s.publish(update, remove)
	}
	return errors.Join(errs...)
}

// Grants returns the grants that have a route, sorted by id.
func (s *Server) Grants() []Grant {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Grant, 0, len(s.grants))
	for _, g := range s.grants {
		out = append(out, g)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// publish sends changed scopes to every subscriber. Called with mu held,
// so changes reach Envoy in the order they were made.
func (s *Server) publish(update map[string]types.Resource, remove []string) {
	_, span := s.tracing.Start(context.Background(), "airlock.xds.push", trace.SpanKindInternal, attribute.String("airlock.xds.kind", "scopes"),
		attribute.Int("airlock.xds.updated", len(update)), attribute.Int("airlock.xds.removed", len(remove)))
	defer span.End()
	s.metrics.grantRoutes.Set(float64(len(s.grants)))
	if err := s.scopes.update(update, remove); err != nil {
		span.SetStatus(codes.Error, "updating scoped routes failed")
		s.log.Error("xds: updating scoped routes", "err", err)
	}
}

// nodeJoined gives a node its snapshot when its first stream asks.
func (s *Server) nodeJoined(node string) {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	s.nodeRefs[node]++
	if s.nodeRefs[node] == 1 {
		if err := s.nodes.SetSnapshot(context.Background(), node, s.base.Load()); err != nil {
			s.log.Error("xds: node snapshot", "node", node, "err", err)
		}
	}
}

// nodeLeft drops a node's snapshot when its last stream closes.
func (s *Server) nodeLeft(node string) {
	s.nodesMu.Lock()
	defer s.nodesMu.Unlock()
	s.nodeRefs[node]--
	if s.nodeRefs[node] <= 0 {
		delete(s.nodeRefs, node)
		s.nodes.ClearSnapshot(node)
	}
}
