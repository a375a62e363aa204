package envoydriver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
)

// ADSOptions configures an ADS client.
type ADSOptions struct {
	// Node identifies the client; Node.Id is required, as Envoy requires it.
	Node *corev3.Node
	// Delta selects incremental xDS (DeltaAggregatedResources, Envoy's
	// api_type DELTA_GRPC) instead of state-of-the-world (GRPC).
	Delta bool
	// Logger receives the client's (and its driver's) logs.
	Logger *slog.Logger
	// NoListener holds and validates resources, ACKing and NACKing like
	// Envoy, without running a listener (benchmarks of the control plane).
	NoListener bool
	// OnResponse, if set, is called after each response was ACKed and its
	// update became visible to requests (after ApplyLag), or was rejected
	// and NACKed. Calls come in order, from one goroutine of the client.
	OnResponse func(ADSResponse)
	// EnvoyVersion is the Envoy release the client plays, "1.37.0" when
	// empty (DefaultEnvoyVersion). It is sent as node.user_agent_build_version
	// (with user_agent_name "envoy") unless Node sets them, and selects the
	// driver's version-dependent behaviour (Options.EnvoyVersion).
	EnvoyVersion string
	// ApplyLag is how long after ACKing an update the driver's requests
	// see it; 0 means DefaultApplyLag, a negative value no lag. Envoy
	// ACKs on the main thread and posts the update to its workers
	// (source/common/router/scoped_rds.cc applyConfigUpdate →
	// ThreadLocal::TypedSlot::runOnAllThreads,
	// source/common/thread_local/thread_local_impl.cc), so a worker
	// applies it a moment after the control plane saw the ACK. The lag
	// holds for every update the driver takes (clusters and listeners
	// reach workers the same way); the first configuration serves at once
	// (Envoy warms the listener before it accepts connections), and with
	// NoListener there is nothing to lag.
	ApplyLag time.Duration

	// tls is the ADS cluster's TLS transport socket (ConnectBootstrap).
	tls *upstreamTLS
	// clock drives the apply lag; nil is the real clock (tests set one).
	clock applyClock
}

// DefaultApplyLag is ADSOptions.ApplyLag when unset: a few milliseconds,
// as a worker's event loop takes to run a posted update.
const DefaultApplyLag = 5 * time.Millisecond

// ADSResponse reports one xDS response as the client handled it.
type ADSResponse struct {
	TypeURL string
	// Version is version_info (SotW) or system_version_info (delta).
	Version string
	Nonce   string
	// Updated names the resources the response carried; Removed the ones
	// it removed (delta removed_resources, or absent from a SotW full state).
	Updated, Removed []string
	// Bytes is the encoded size of the response message.
	Bytes int
	// Err is the error_detail the client NACKed with; nil for an ACK.
	Err error
}

// ADS is an xDS client that behaves like Envoy's ADS client for what
// airlock serves: it subscribes to clusters and listeners (wildcard), then
// to what the listener's connection manager names — scoped routes (SRDS,
// wildcard) and route configurations (RDS, by name) — and applies each
// complete configuration to a Driver, starting it on the first one. A
// response that fails validation or uses something the driver cannot do is
// NACKed with the error (xds_protocol.rst "ACK/NACK and resource type
// instance version"), and the previous configuration stays in force.
type ADS struct {
	opts  ADSOptions
	log   *slog.Logger
	addr  string
	conn  *grpc.ClientConn
	stop  context.CancelFunc
	done  chan struct{}
	ready chan struct{}

	mu     sync.Mutex
	driver *Driver
	err    error
	stats  map[string]*ADSTypeStats

	version envoyVersion
	lag     time.Duration
	applier applier
	staged  *compiled // the update apply prepared, installed after the ACK

	// Owned by the run goroutine.
	types    map[string]*typeState
	check    scopeCache        // compiled scopes when NoListener
	scopeRDS map[string]string // scope name → route configuration it names
}

// typeState is the client's view of one resource type.
type typeState struct {
	typeURL   string
	wildcard  bool
	names     map[string]bool // subscribed names when not wildcard
	sent      bool            // a subscription was sent on the current stream
	received  bool            // a response was accepted
	version   string          // last accepted version
	nonce     string          // last response nonce
	resources map[string]proto.Message
	versions  map[string]string // per-resource versions (delta)
	bodies    map[string]string // name → encoded resource
	byBody    map[string]string // encoded resource → name
}

// Type URLs of the resources the client understands.
var (
	typeListenerURL = resource.ListenerType
	typeClusterURL  = resource.ClusterType
	typeRouteURL    = resource.RouteType
	typeScopedURL   = resource.ScopedRouteType
)

// newResource makes an empty message for a type URL the client handles.
func newResource(typeURL string) (proto.Message, bool) {
	switch typeURL {
	case typeListenerURL:
		return &listenerv3.Listener{}, true
	case typeClusterURL:
		return &clusterv3.Cluster{}, true
	case typeRouteURL:
		return &routev3.RouteConfiguration{}, true
	case typeScopedURL:
		return &routev3.ScopedRouteConfiguration{}, true
	}
	return nil, false
}

// sotwFullState says which types a SotW response carries completely, so
// that a resource missing from it is removed: listeners and clusters
// (xds_protocol.rst "Grouping Resources into Responses"), and scoped
// routes, which Envoy's ScopedRdsConfigSubscription::onConfigUpdate (SotW)
// also treats as the complete set of scopes.
func sotwFullState(typeURL string) bool {
	return typeURL == typeListenerURL || typeURL == typeClusterURL || typeURL == typeScopedURL
}

// ConnectADS dials the ADS server at addr (host:port, loopback in tests;
// plaintext, or the bootstrap ADS cluster's TLS transport socket when
// ConnectBootstrap calls it) and runs the client until Close. It returns
// at once; use WaitReady for the driver.
func ConnectADS(addr string, opts ADSOptions) (*ADS, error) {
	if opts.Node.GetId() == "" {
		return nil, errors.New("envoydriver ADS: node id is required")
	}
	v, err := parseEnvoyVersion(opts.EnvoyVersion)
	if err != nil {
		return nil, fmt.Errorf("envoydriver ADS: %w", err)
	}
	opts.Node = envoyNode(opts.Node, v)
	lag := opts.ApplyLag
	switch {
	case opts.NoListener || lag < 0:
		lag = 0
	case lag == 0:
		lag = DefaultApplyLag
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	creds := insecure.NewCredentials()
	if opts.tls != nil {
		creds = opts.tls.credentials()
	}
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1<<30)))
	if err != nil {
		return nil, fmt.Errorf("envoydriver ADS: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	a := &ADS{
		opts: opts, log: log.With("component", "envoydriver-ads"), addr: addr, conn: conn,
		stop: stop, done: make(chan struct{}), ready: make(chan struct{}),
		types: map[string]*typeState{}, scopeRDS: map[string]string{},
		stats: map[string]*ADSTypeStats{}, version: v, lag: lag,
	}
	a.applier.init(opts.clock, opts.OnResponse)
	a.want(typeClusterURL, true, nil)
	a.want(typeListenerURL, true, nil)
	go a.applier.run(ctx)
	go a.run(ctx)
	return a, nil
}

// want registers interest in a type (wildcard, or the given names).
func (a *ADS) want(typeURL string, wildcard bool, names map[string]bool) *typeState {
	ts, ok := a.types[typeURL]
	if !ok {
		ts = &typeState{typeURL: typeURL, resources: map[string]proto.Message{}, versions: map[string]string{},
			bodies: map[string]string{}, byBody: map[string]string{}}
		a.types[typeURL] = ts
	}
	ts.wildcard = wildcard
	ts.names = names
	return ts
}

// WaitReady waits for the first complete configuration and returns the
// driver serving it (nil with NoListener).
func (a *ADS) WaitReady(ctx context.Context) (*Driver, error) {
	select {
	case <-a.ready:
		a.mu.Lock()
		defer a.mu.Unlock()
		return a.driver, nil
	case <-a.done:
		return nil, fmt.Errorf("envoydriver ADS: stopped before a complete configuration: %w", a.Err())
	case <-ctx.Done():
		return nil, fmt.Errorf("envoydriver ADS: no complete configuration yet: %w", ctx.Err())
	}
}

// Driver is the running driver, nil before the first complete configuration.
func (a *ADS) Driver() *Driver {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.driver
}

// Err is the last stream error, if any.
func (a *ADS) Err() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.err
}

// Close ends the ADS stream and stops the driver.
func (a *ADS) Close() error {
	a.stop()
	<-a.done
	<-a.applier.done
	a.conn.Close()
	if d := a.Driver(); d != nil {
		return d.Close()
	}
	return nil
}

// run keeps a stream open, reconnecting with backoff as Envoy does
// (resources are kept across reconnects and announced to the new stream).
func (a *ADS) run(ctx context.Context) {
	defer close(a.done)
	backoff := 50 * time.Millisecond
	for {
		err := a.session(ctx)
		if ctx.Err() != nil {
			return
		}
		a.mu.Lock()
		a.err = err
		a.mu.Unlock()
		a.log.Warn("ADS stream ended; reconnecting", "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}

// session runs one ADS stream until it fails.
func (a *ADS) session(ctx context.Context) error {
	p, err := openProto(ctx, a.conn, a.opts)
	if err != nil {
		return err
	}
	for _, ts := range a.types {
		ts.sent, ts.nonce = false, ""
	}
	if err := a.subscribeAll(p); err != nil {
		return err
	}
	for {
		r, err := p.recv()
		if err != nil {
			return err
		}
		ts, ok := a.types[r.typeURL]
		if !ok {
			ts = a.want(r.typeURL, false, map[string]bool{})
		}
		ts.nonce = r.nonce
		report := ADSResponse{TypeURL: r.typeURL, Version: r.version, Nonce: r.nonce, Bytes: r.size}
		a.staged = nil
		applyErr := a.apply(ts, r, &report)
		if applyErr != nil {
			a.log.Warn("NACK", "type_url", r.typeURL, "version", r.version, "err", applyErr)
			report.Err = applyErr
			err = p.nack(ts, r, applyErr)
		} else {
			if a.lag == 0 && a.staged != nil {
				// No lag: in force before the control plane sees the ACK.
				a.Driver().install(a.staged)
				a.staged = nil
			}
			err = p.ack(ts, r)
		}
		a.count(report)
		// The ACK is on its way: the update reaches requests ApplyLag
		// later, as on Envoy's workers; OnResponse follows it. (Queued
		// even when the send failed: the resources are held, and a new
		// stream announces them.)
		a.applier.push(a.applier.clock.now().Add(a.lag), a.Driver(), a.staged, report)
		a.staged = nil
		if applyErr == nil && r.typeURL == typeScopedURL {
			a.trackScopeRDS(ts, report)
		}
		if applyErr == nil && (r.typeURL == typeListenerURL || r.typeURL == typeScopedURL) {
			a.followListener()
		}
		if err != nil {
			return err
		}
		if err := a.subscribeAll(p); err != nil {
			return err
		}
	}
}

// subscribeAll sends the subscriptions not yet sent on this stream, in
// Envoy's order: clusters, listeners, then what listeners name.
func (a *ADS) subscribeAll(p adsProto) error {
	for _, typeURL := range []string{typeClusterURL, typeListenerURL, typeScopedURL, typeRouteURL} {
		ts, ok := a.types[typeURL]
		if !ok || ts.sent {
			continue
		}
		if err := p.subscribe(ts); err != nil {
			return err
		}
		ts.sent = true
	}
	return nil
}

// followListener subscribes to what the listener's connection manager
// needs: scoped routes (wildcard) for scoped_rds, route configurations by
// name for rds and for scopes that name theirs.
func (a *ADS) followListener() {
	needScoped := false
	names := map[string]bool{}
	for _, m := range a.types[typeListenerURL].resources {
		hcm, err := listenerHCM(m.(*listenerv3.Listener))
		if err != nil {
			continue
		}
		switch rs := hcm.GetRouteSpecifier().(type) {
		case *hcmv3.HttpConnectionManager_Rds:
			names[rs.Rds.GetRouteConfigName()] = true
		case *hcmv3.HttpConnectionManager_ScopedRoutes:
			needScoped = needScoped || rs.ScopedRoutes.GetScopedRds() != nil
		}
	}
	for _, n := range a.scopeRDS {
		names[n] = true
	}
	if needScoped {
		if _, ok := a.types[typeScopedURL]; !ok {
			a.want(typeScopedURL, true, nil)
		}
	}
	rs, ok := a.types[typeRouteURL]
	switch {
	case !ok && len(names) > 0:
		a.want(typeRouteURL, false, names)
	case ok && !sameSet(rs.names, names):
		rs.names = names
		rs.sent = false
	}
}

// trackScopeRDS notes which scopes name their route configuration, from
// what one response changed (so a change costs what it changed).
func (a *ADS) trackScopeRDS(ts *typeState, rep ADSResponse) {
	for _, n := range rep.Removed {
		delete(a.scopeRDS, n)
	}
	for _, n := range rep.Updated {
		if rc := ts.resources[n].(*routev3.ScopedRouteConfiguration).GetRouteConfigurationName(); rc != "" {
			a.scopeRDS[n] = rc
		} else {
			delete(a.scopeRDS, n)
		}
	}
}

func sameSet(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func sortedNames(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ConnectBootstrap starts an ADS client the way Envoy would from an ADS
// bootstrap (airlock's `envoy bootstrap --ads`): its node, the address of
// the static cluster ads_config names and that cluster's TLS transport
// socket, and DELTA_GRPC or GRPC.
func ConnectBootstrap(b *bootstrapv3.Bootstrap, opts ADSOptions) (*ADS, error) {
	ads := b.GetDynamicResources().GetAdsConfig()
	if ads == nil {
		return nil, errors.New("envoydriver ADS: the bootstrap has no dynamic_resources.ads_config")
	}
	switch ads.GetApiType() {
	case corev3.ApiConfigSource_DELTA_GRPC:
		opts.Delta = true
	case corev3.ApiConfigSource_GRPC:
		opts.Delta = false
	default:
		return nil, fmt.Errorf("envoydriver ADS: ads_config api_type %s is not supported", ads.GetApiType())
	}
	if len(ads.GetGrpcServices()) != 1 || ads.GetGrpcServices()[0].GetEnvoyGrpc() == nil {
		return nil, errors.New("envoydriver ADS: ads_config must name one envoy_grpc cluster")
	}
	name := ads.GetGrpcServices()[0].GetEnvoyGrpc().GetClusterName()
	var addr string
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() != name {
			continue
		}
		cl, err := compileCluster(c)
		if err != nil {
			return nil, err
		}
		addr = cl.endpoints[0].addr
		opts.tls = cl.tls
	}
	if addr == "" {
		return nil, fmt.Errorf("envoydriver ADS: ads_config cluster %q is not a static cluster of the bootstrap", name)
	}
	if opts.Node == nil {
		opts.Node = b.GetNode()
	}
	return ConnectADS(addr, opts)
}
