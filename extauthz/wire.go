package extauthz

import (
	"context"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
)

// Register serves envoy.service.auth.v3.Authorization on s with srv,
// reading each CheckRequest straight from its bytes into a Request and
// writing each CheckResponse straight from the Result (wire_decode.go,
// wire_encode.go): the same service and method names, so the server's
// interceptors, metrics, health and reflection see the generated
// service, and the same protobuf on the wire. s must use the grpcwire
// codec (grpcwire.ServerOption); under any other codec every Check fails
// (with codes.Internal, which Envoy treats as a denial).
func Register(s grpc.ServiceRegistrar, srv *Server) {
	s.RegisterService(&authorizationWire, srv)
}

// wireServer is the handler type of authorizationWire.
type wireServer interface {
	checkWire(ctx context.Context, req *Request) checkResponse
}

var _ wireServer = (*Server)(nil)

// authorizationWire is authv3.Authorization_ServiceDesc with its Check
// reading a checkRequest and answering a checkResponse.
var authorizationWire = grpc.ServiceDesc{
	ServiceName: "envoy.service.auth.v3.Authorization",
	HandlerType: (*wireServer)(nil),
	Methods: []grpc.MethodDesc{{
		MethodName: "Check",
		Handler:    checkWireHandler,
	}},
	Streams:  []grpc.StreamDesc{},
	Metadata: "envoy/service/auth/v3/external_auth.proto",
}

func checkWireHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(checkRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	if interceptor == nil {
		return srv.(wireServer).checkWire(ctx, &in.Request), nil
	}
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: authv3.Authorization_Check_FullMethodName}
	handler := func(ctx context.Context, req any) (any, error) {
		return srv.(wireServer).checkWire(ctx, &req.(*checkRequest).Request), nil
	}
	return interceptor(ctx, in, info, handler)
}

// checkWire is Check on a Request read by decodeCheckRequest.
func (s *Server) checkWire(ctx context.Context, req *Request) checkResponse {
	defer s.A.enter()()
	ctx = s.A.tracing.Incoming(ctx, req.Headers)
	return checkResponse{s.A.Check(ctx, req)}
}

// checkRequest is a CheckRequest that the grpcwire codec hands its bytes
// to (grpcwire.Unmarshaler), read into the Request it holds.
type checkRequest struct{ Request }

// UnmarshalWire reads the CheckRequest's bytes; the Request keeps
// nothing aliasing b.
func (c *checkRequest) UnmarshalWire(b []byte) error {
	c.Request = Request{}
	return decodeCheckRequest(b, &c.Request)
}

// checkResponse is the CheckResponse for a Result, which the grpcwire
// codec asks to write itself (grpcwire.Marshaler). One pointer: it is an
// interface value without an allocation.
type checkResponse struct{ r *Result }

// AppendWire appends the CheckResponse toCheckResponse(r) is (to nil,
// as the grpcwire codec asks: in one allocation of its exact size).
func (c checkResponse) AppendWire(b []byte) ([]byte, error) {
	if b == nil {
		return encodeCheckResponse(c.r)
	}
	return appendCheckResponse(b, c.r)
}
