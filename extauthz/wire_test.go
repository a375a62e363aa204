package extauthz

import (
	"context"
	"net"
	"slices"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/testing/protocmp"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/grpcwire"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/wire"
)

// What ext_authz writes on an allowed call is what ext_proc reads: the
// dynamic metadata, after the trip through structpb that Envoy's gRPC
// answer takes, reads back through wire.ReadDecision field for field.
func TestAllowMetadataReadsBackThroughWire(t *testing.T) {
	c := newCore(t)
	c.approvals.grants = []policy.GrantInput{{ID: "grt_7", Target: "demo", Tool: "danger", SingleUse: true, Principal: "alice"}}
	base := wire.Decision{
		Target: "demo", Principal: "alice", ClientID: "agent", Issuer: testIssuer,
		MaskingProfile: "default", Record: true, PolicyVersion: "v1", Protocol: "2025-03-26",
	}
	for _, tc := range []struct {
		name string
		req  *Request
		want func(d wire.Decision) wire.Decision
	}{
		{"granted call", post("alice", call(3, "danger"), "mcp-session-id", "sess-1"), func(d wire.Decision) wire.Decision {
			d.SessionID, d.Grant, d.Method, d.Tool = "sess-1", "grt_7", "tools/call", "danger"
			return d
		}},
		{"batch", post("alice", batch(ping, call("b", "read"), initialized)), func(d wire.Decision) wire.Decision {
			d.Method, d.Batch = "ping", true
			d.Methods = []string{"ping", "tools/call", "notifications/initialized"}
			d.Tools = []string{"", "read", ""}
			d.IDs = []string{"1", `"b"`, ""}
			return d
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.a.Check(context.Background(), tc.req)
			if r.Outcome != OutcomeAllow {
				t.Fatalf("outcome %s: %s", r.Outcome, r.Body)
			}
			md := toCheckResponse(r).GetDynamicMetadata()
			if md == nil {
				t.Fatal("no dynamic metadata")
			}
			want := tc.want(base)
			want.DecisionID = r.DecisionID
			if diff := cmp.Diff(want, wire.ReadDecision(md.GetFields())); diff != "" {
				t.Errorf("decision read back (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHeaderOptions: the headers allocated together are headerOption's,
// one by one, in order.
func TestHeaderOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hs    []Header
		extra int
	}{
		{"none", nil, 0},
		{"none, room for one", nil, 1},
		{"one", []Header{{"a", "1"}}, 0},
		{"several, room for one", []Header{{"a", "1"}, {"b", ""}, {"x-airlock-principal", "alice"}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := headerOptions(tc.hs, tc.extra)
			if len(got) != len(tc.hs) || cap(got) < len(tc.hs)+tc.extra {
				t.Fatalf("len %d cap %d for %d headers and %d extra", len(got), cap(got), len(tc.hs), tc.extra)
			}
			for i, h := range tc.hs {
				if !proto.Equal(got[i], headerOption(h)) {
					t.Errorf("header %d: %v, want %v", i, got[i], headerOption(h))
				}
			}
		})
	}
}

// checkRequestOf is the CheckRequest Envoy sends for req.
func checkRequestOf(req *Request) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: req.Method, Path: req.Path, Host: req.Host, Scheme: req.Scheme, Headers: req.Headers, RawBody: req.Body,
		}},
		ContextExtensions: req.ContextExtensions,
	}}
}

// serveLoopback serves srv's Authorizer on loopback: through Register
// with the grpcwire codec (wire), or as the generated service with
// grpc-go's codec; interceptor, if any, runs on every call.
func serveLoopback(t *testing.T, srv *Server, wire bool, interceptor grpc.UnaryServerInterceptor) authv3.AuthorizationClient {
	t.Helper()
	var opts []grpc.ServerOption
	if wire {
		opts = append(opts, grpcwire.ServerOption())
	}
	if interceptor != nil {
		opts = append(opts, grpc.ChainUnaryInterceptor(interceptor))
	}
	s := grpc.NewServer(opts...)
	if wire {
		Register(s, srv)
	} else {
		authv3.RegisterAuthorizationServer(s, srv)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(s.Stop)
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return authv3.NewAuthorizationClient(cc)
}

// withoutDecisionID blanks what differs between two answers to the same
// call: the decision id, in the headers, the body and the metadata.
func withoutDecisionID(resp *authv3.CheckResponse) *authv3.CheckResponse {
	resp = proto.Clone(resp).(*authv3.CheckResponse)
	for _, hs := range [][]*corev3.HeaderValueOption{resp.GetOkResponse().GetHeaders(), resp.GetDeniedResponse().GetHeaders()} {
		for _, h := range hs {
			if h.GetHeader().GetKey() == wire.HeaderDecisionID {
				if d := resp.GetDeniedResponse(); d != nil && h.Header.Value != "" {
					d.Body = strings.ReplaceAll(d.Body, h.Header.Value, "-")
				}
				h.Header.Value = "-"
			}
		}
	}
	if f := resp.GetDynamicMetadata().GetFields(); f != nil {
		f[wire.KeyDecisionID] = structpb.NewStringValue("-")
	}
	return resp
}

// TestRegisterAnswersAsTheGeneratedService: over gRPC, the service
// Register serves answers every kind of call as the generated service
// does, and its interceptors see the generated method's name.
func TestRegisterAnswersAsTheGeneratedService(t *testing.T) {
	c := newCore(t)
	srv := &Server{A: c.a}
	var methods []string
	wireClient := serveLoopback(t, srv, true, func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		methods = append(methods, info.FullMethod)
		return h(ctx, req)
	})
	protoClient := serveLoopback(t, srv, false, nil)
	for _, tc := range []struct {
		name string
		req  *Request
	}{
		{"allow", post("alice", call(1, "search"), "mcp-session-id", "sess-1")},
		{"allow a batch", post("alice", batch(ping, call("b", "read"), initialized))},
		{"deny", post("alice", call(2, "nuke"))},
		{"no token", post("", call(3, "search"))},
		{"approval", post("alice", call(4, "danger"))},
		{"malformed", post("alice", `{"jsonrpc":`)},
		{"wrong path", func() *Request { r := post("alice", ping); r.Path = "/elsewhere"; return r }()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := checkRequestOf(tc.req)
			got, err := wireClient.Check(context.Background(), cr)
			if err != nil {
				t.Fatal(err)
			}
			want, err := protoClient.Check(context.Background(), cr)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(withoutDecisionID(want), withoutDecisionID(got), protocmp.Transform()); diff != "" {
				t.Errorf("answers differ (-generated +wire):\n%s", diff)
			}
		})
	}
	if len(methods) == 0 || slices.ContainsFunc(methods, func(m string) bool { return m != authv3.Authorization_Check_FullMethodName }) {
		t.Fatalf("the interceptor saw %v", methods)
	}
}

// TestRegisterNeedsTheWireCodec: under grpc-go's own codec the service
// fails every call (closed) rather than answering.
func TestRegisterNeedsTheWireCodec(t *testing.T) {
	c := newCore(t)
	s := grpc.NewServer()
	Register(s, &Server{A: c.a})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	defer s.Stop()
	cc, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	resp, err := authv3.NewAuthorizationClient(cc).Check(context.Background(), checkRequestOf(post("alice", call(1, "search"))))
	if status.Code(err) != codes.Internal || resp != nil {
		t.Fatalf("Check = %v, %v; want codes.Internal", resp, err)
	}
}

// TestRegisterServiceInfo: the service is the generated one by name, file
// and method, which reflection and the gRPC metrics read.
func TestRegisterServiceInfo(t *testing.T) {
	gen := authv3.Authorization_ServiceDesc
	if authorizationWire.ServiceName != gen.ServiceName || authorizationWire.Metadata != gen.Metadata ||
		len(authorizationWire.Methods) != len(gen.Methods) || authorizationWire.Methods[0].MethodName != gen.Methods[0].MethodName || len(gen.Streams) != 0 {
		t.Fatalf("authorizationWire is not the generated service's shape: %+v", authorizationWire)
	}
	s := grpc.NewServer(grpcwire.ServerOption())
	Register(s, &Server{})
	info, ok := s.GetServiceInfo()[gen.ServiceName]
	if !ok || len(info.Methods) != 1 || info.Methods[0].Name != "Check" || info.Metadata != gen.Metadata {
		t.Fatalf("service info %+v", s.GetServiceInfo())
	}
}
