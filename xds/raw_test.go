package xds

import (
	"context"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	discoverygrpc "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// rawADS is an xDS client the test drives by hand (go-control-plane's
// protos over real gRPC): it sends exactly the requests a test writes,
// ACKs and NACKs included, and reads the responses one by one.
type rawADS struct {
	conn  *grpc.ClientConn
	sotw  discoverygrpc.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	delta discoverygrpc.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	node  *corev3.Node
}

func dialRaw(t *testing.T, addr string, node *corev3.Node, delta bool) *rawADS {
	t.Helper()
	return dialRawFor(t, addr, node, delta, testTimeout)
}

// dialRawFor is dialRaw with the stream bounded by timeout.
func dialRawFor(t *testing.T, addr string, node *corev3.Node, delta bool, timeout time.Duration) *rawADS {
	t.Helper()
	// Envoy's own gRPC client takes responses of any size (10,000 scopes are ~7 MB).
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(func() { cancel(); _ = conn.Close() })
	c := &rawADS{conn: conn, node: node}
	ads := discoverygrpc.NewAggregatedDiscoveryServiceClient(conn)
	if delta {
		c.delta, err = ads.DeltaAggregatedResources(ctx)
	} else {
		c.sotw, err = ads.StreamAggregatedResources(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sendDelta sends a scoped-routes delta request (the node on every one).
func (c *rawADS) sendDelta(t *testing.T, req *discovery.DeltaDiscoveryRequest) {
	t.Helper()
	req.Node, req.TypeUrl = c.node, resource.ScopedRouteType
	if err := c.delta.Send(req); err != nil {
		t.Fatal(err)
	}
}

func (c *rawADS) recvDelta(t *testing.T) *discovery.DeltaDiscoveryResponse {
	t.Helper()
	r, err := c.delta.Recv()
	if err != nil {
		t.Fatalf("delta recv: %v", err)
	}
	return r
}

// sendSotW sends a scoped-routes SotW request.
func (c *rawADS) sendSotW(t *testing.T, req *discovery.DiscoveryRequest) {
	t.Helper()
	req.Node, req.TypeUrl = c.node, resource.ScopedRouteType
	if err := c.sotw.Send(req); err != nil {
		t.Fatal(err)
	}
}

func (c *rawADS) recvSotW(t *testing.T) *discovery.DiscoveryResponse {
	t.Helper()
	r, err := c.sotw.Recv()
	if err != nil {
		t.Fatalf("sotw recv: %v", err)
	}
	return r
}

// ack answers a response: ACK when nack is "", else NACK with that error.
func (c *rawADS) ack(t *testing.T, nonce, version string, nack string) {
	t.Helper()
	var detail *rpcstatus.Status
	if nack != "" {
		detail = &rpcstatus.Status{Code: 3, Message: nack}
	}
	if c.delta != nil {
		c.sendDelta(t, &discovery.DeltaDiscoveryRequest{ResponseNonce: nonce, ErrorDetail: detail})
		return
	}
	c.sendSotW(t, &discovery.DiscoveryRequest{ResponseNonce: nonce, VersionInfo: version, ErrorDetail: detail})
}

// next reads the next response as scope names (updated, removed) with its
// nonce and version.
func (c *rawADS) next(t *testing.T) (updated, removed []string, nonce, version string) {
	t.Helper()
	if c.delta != nil {
		r := c.recvDelta(t)
		for _, res := range r.GetResources() {
			updated = append(updated, res.GetName())
		}
		return updated, r.GetRemovedResources(), r.GetNonce(), r.GetSystemVersionInfo()
	}
	r := c.recvSotW(t)
	for _, a := range r.GetResources() {
		var s routev3.ScopedRouteConfiguration
		if err := a.UnmarshalTo(&s); err != nil {
			t.Fatal(err)
		}
		updated = append(updated, s.GetName())
	}
	return updated, nil, r.GetNonce(), r.GetVersionInfo()
}

// subscribe opens the scoped-routes subscription (wildcard).
func (c *rawADS) subscribe(t *testing.T) {
	t.Helper()
	if c.delta != nil {
		c.sendDelta(t, &discovery.DeltaDiscoveryRequest{})
		return
	}
	c.sendSotW(t, &discovery.DiscoveryRequest{})
}
