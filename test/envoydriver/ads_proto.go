package envoydriver

import (
	"context"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
)

// adsResponse is a SotW or delta response in one shape.
type adsResponse struct {
	typeURL, version, nonce string
	resources               []namedAny
	removed                 []string
	size                    int
}

type namedAny struct {
	name, version string // delta only
	any           *anypb.Any
}

// adsProto is one ADS stream: SotW or delta.
type adsProto interface {
	subscribe(ts *typeState) error
	recv() (*adsResponse, error)
	ack(ts *typeState, r *adsResponse) error
	nack(ts *typeState, r *adsResponse, err error) error
}

func openProto(ctx context.Context, conn *grpc.ClientConn, opts ADSOptions) (adsProto, error) {
	c := discoveryv3.NewAggregatedDiscoveryServiceClient(conn)
	if opts.Delta {
		s, err := c.DeltaAggregatedResources(ctx)
		if err != nil {
			return nil, err
		}
		return &deltaProto{s: s, node: opts.Node}, nil
	}
	s, err := c.StreamAggregatedResources(ctx)
	if err != nil {
		return nil, err
	}
	return &sotwProto{s: s, node: opts.Node}, nil
}

// errorDetail is what Envoy puts in a NACK: GrpcMuxImpl sets code
// Internal and the (truncated) exception message.
func errorDetail(err error) *status.Status {
	return &status.Status{Code: int32(codes.Internal), Message: err.Error()}
}

// sotwProto is StreamAggregatedResources (xds_protocol.rst, "ACK/NACK and
// resource type instance version"): an ACK repeats the response's
// version_info and nonce; a NACK sends the last accepted version_info with
// the rejected nonce and error_detail.
type sotwProto struct {
	s        discoveryv3.AggregatedDiscoveryService_StreamAggregatedResourcesClient
	node     *corev3.Node
	nodeSent bool
}

func (p *sotwProto) send(req *discoveryv3.DiscoveryRequest) error {
	// Bootstrap set_node_on_first_message_only: the node goes in the
	// first request of the stream only.
	if !p.nodeSent {
		req.Node = p.node
		p.nodeSent = true
	}
	return p.s.Send(req)
}

func (p *sotwProto) subscribe(ts *typeState) error {
	req := &discoveryv3.DiscoveryRequest{TypeUrl: ts.typeURL, VersionInfo: ts.version, ResponseNonce: ts.nonce}
	if !ts.wildcard {
		req.ResourceNames = sortedNames(ts.names)
	}
	return p.send(req)
}

func (p *sotwProto) recv() (*adsResponse, error) {
	m, err := p.s.Recv()
	if err != nil {
		return nil, err
	}
	r := &adsResponse{typeURL: m.GetTypeUrl(), version: m.GetVersionInfo(), nonce: m.GetNonce(), size: proto.Size(m)}
	for _, a := range m.GetResources() {
		r.resources = append(r.resources, namedAny{any: a})
	}
	return r, nil
}

func (p *sotwProto) ack(ts *typeState, r *adsResponse) error {
	req := &discoveryv3.DiscoveryRequest{TypeUrl: r.typeURL, VersionInfo: r.version, ResponseNonce: r.nonce}
	if !ts.wildcard {
		req.ResourceNames = sortedNames(ts.names)
	}
	return p.send(req)
}

func (p *sotwProto) nack(ts *typeState, r *adsResponse, err error) error {
	req := &discoveryv3.DiscoveryRequest{TypeUrl: r.typeURL, VersionInfo: ts.version, ResponseNonce: r.nonce, ErrorDetail: errorDetail(err)}
	if !ts.wildcard {
		req.ResourceNames = sortedNames(ts.names)
	}
	return p.send(req)
}

// deltaProto is DeltaAggregatedResources (xds_protocol.rst, "Incremental
// xDS"): subscriptions change by resource_names_subscribe/unsubscribe, a
// response is ACKed by its nonce and NACKed with error_detail, and a new
// stream announces what the client holds in initial_resource_versions.
type deltaProto struct {
	s        discoveryv3.AggregatedDiscoveryService_DeltaAggregatedResourcesClient
	node     *corev3.Node
	nodeSent bool
	subs     map[string]map[string]bool // names subscribed on this stream, by type
}

func (p *deltaProto) send(req *discoveryv3.DeltaDiscoveryRequest) error {
	if !p.nodeSent {
		req.Node = p.node
		p.nodeSent = true
	}
	return p.s.Send(req)
}

func (p *deltaProto) subscribe(ts *typeState) error {
	if p.subs == nil {
		p.subs = map[string]map[string]bool{}
	}
	cur, known := p.subs[ts.typeURL]
	req := &discoveryv3.DeltaDiscoveryRequest{TypeUrl: ts.typeURL}
	if !known {
		// The first request of a type on this stream: legacy wildcard when
		// no names are given, and the versions already held.
		if len(ts.versions) > 0 {
			req.InitialResourceVersions = ts.versions
		}
		cur = map[string]bool{}
	}
	if !ts.wildcard {
		for n := range ts.names {
			if !cur[n] {
				req.ResourceNamesSubscribe = append(req.ResourceNamesSubscribe, n)
			}
		}
		for n := range cur {
			if !ts.names[n] {
				req.ResourceNamesUnsubscribe = append(req.ResourceNamesUnsubscribe, n)
			}
		}
		cur = map[string]bool{}
		for n := range ts.names {
			cur[n] = true
		}
	}
	p.subs[ts.typeURL] = cur
	return p.send(req)
}

func (p *deltaProto) recv() (*adsResponse, error) {
	m, err := p.s.Recv()
	if err != nil {
		return nil, err
	}
	r := &adsResponse{typeURL: m.GetTypeUrl(), version: m.GetSystemVersionInfo(), nonce: m.GetNonce(),
		removed: m.GetRemovedResources(), size: proto.Size(m)}
	for _, res := range m.GetResources() {
		r.resources = append(r.resources, namedAny{name: res.GetName(), version: res.GetVersion(), any: res.GetResource()})
	}
	return r, nil
}

func (p *deltaProto) ack(_ *typeState, r *adsResponse) error {
	return p.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.typeURL, ResponseNonce: r.nonce})
}

func (p *deltaProto) nack(_ *typeState, r *adsResponse, err error) error {
	return p.send(&discoveryv3.DeltaDiscoveryRequest{TypeUrl: r.typeURL, ResponseNonce: r.nonce, ErrorDetail: errorDetail(err)})
}
