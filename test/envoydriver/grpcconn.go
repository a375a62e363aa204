package envoydriver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// grpcTarget is a resolved config.core.v3.GrpcService.
type grpcTarget struct {
	target    string // grpc-go dial target
	authority string
	timeout   time.Duration // GrpcService.timeout, 0 when unset
	metadata  []string      // initial_metadata as key/value pairs
	tls       *upstreamTLS  // the envoy_grpc cluster's TLS transport socket, nil for plaintext
	cluster   string        // the envoy_grpc cluster, "" for google_grpc
}

// acquire takes a circuit breaker slot on the target's cluster for one
// call or stream (google_grpc has no cluster and no breaker).
func (t grpcTarget) acquire(c *compiled) (func(), error) {
	cl, ok := c.clusters[t.cluster]
	if t.cluster == "" || !ok {
		return func() {}, nil
	}
	return cl.breaker.acquireStream()
}

// resolveGrpcService follows grpc_service.proto GrpcService: envoy_grpc
// names a cluster (its first endpoint is dialled over HTTP/2, through the
// cluster's TLS transport socket when it has one, plaintext otherwise);
// google_grpc.target_uri is dialled as given, plaintext.
func resolveGrpcService(gs *corev3.GrpcService, c *compiled) (grpcTarget, error) {
	var t grpcTarget
	switch s := gs.GetTargetSpecifier().(type) {
	case *corev3.GrpcService_EnvoyGrpc_:
		cl, ok := c.clusters[s.EnvoyGrpc.GetClusterName()]
		if !ok {
			return t, fmt.Errorf("grpc_service envoy_grpc cluster %q is not defined (clusters: %v)", s.EnvoyGrpc.GetClusterName(), c.clusterNames())
		}
		t.target = "passthrough:///" + cl.endpoints[0].addr
		t.tls = cl.tls
		t.cluster = cl.name
		t.authority = s.EnvoyGrpc.GetAuthority()
		if t.authority == "" {
			// grpc_service.proto EnvoyGrpc.authority: "If not set, the
			// cluster_name will be used".
			t.authority = s.EnvoyGrpc.GetClusterName()
		}
	case *corev3.GrpcService_GoogleGrpc_:
		if s.GoogleGrpc.GetChannelCredentials() != nil || len(s.GoogleGrpc.GetCallCredentials()) > 0 {
			return t, errors.New("grpc_service google_grpc credentials are not supported (plaintext only)")
		}
		t.target = s.GoogleGrpc.GetTargetUri()
		if !strings.Contains(t.target, ":///") {
			t.target = "passthrough:///" + t.target
		}
	default:
		return t, fmt.Errorf("grpc_service target %T is not supported", s)
	}
	if gs.GetTimeout() != nil {
		t.timeout = gs.GetTimeout().AsDuration()
	}
	for _, hv := range gs.GetInitialMetadata() {
		v := hv.GetValue()
		if hv.GetRawValue() != nil {
			v = string(hv.GetRawValue())
		}
		t.metadata = append(t.metadata, strings.ToLower(hv.GetKey()), v)
	}
	return t, nil
}

// outgoing adds the target's initial metadata to ctx.
func (t grpcTarget) outgoing(ctx context.Context) context.Context {
	if len(t.metadata) == 0 {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, t.metadata...)
}

// connPool shares gRPC client connections by target across configuration
// generations; in-flight requests keep working across Update.
type connPool struct {
	mu     sync.Mutex
	conns  map[string]*grpc.ClientConn
	closed bool
}

func (p *connPool) get(t grpcTarget) (*grpc.ClientConn, error) {
	key := t.target + "|" + t.authority
	creds := insecure.NewCredentials()
	if t.tls != nil {
		key += "|tls:" + t.tls.key
		creds = t.tls.credentials()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, errors.New("driver is closed")
	}
	if cc, ok := p.conns[key]; ok {
		return cc, nil
	}
	// Envoy's gRPC client takes messages of any size unless the cluster's
	// GrpcService.EnvoyGrpc sets max_receive_message_length ("Defaults to
	// 0, which means unlimited", api/envoy/config/core/v3/grpc_service.proto);
	// grpc-go's own default would be 4 MiB.
	opts := []grpc.DialOption{grpc.WithTransportCredentials(creds), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32))}
	if t.authority != "" {
		opts = append(opts, grpc.WithAuthority(t.authority))
	}
	cc, err := grpc.NewClient(t.target, opts...)
	if err != nil {
		return nil, fmt.Errorf("grpc client for %s: %w", t.target, err)
	}
	if p.conns == nil {
		p.conns = map[string]*grpc.ClientConn{}
	}
	p.conns[key] = cc
	return cc, nil
}

func (p *connPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, cc := range p.conns {
		_ = cc.Close()
	}
	p.conns = nil
}
