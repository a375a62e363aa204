package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
)

// listeningPrefix starts the line the noop server prints once it accepts
// connections; the driver reads the address from it.
const listeningPrefix = "authzload noop listening on "

// serverOptions are the grpc-go server options internal/serve gives
// airlock's ext_authz server, so the no-op limit is measured on the same
// footing.
func serverOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
	}
}

// noopServer answers every Check with OK and an empty OkHttpResponse: the
// cost of gRPC and protobuf alone.
type noopServer struct {
	authv3.UnimplementedAuthorizationServer
}

var okResponse = &authv3.CheckResponse{
	Status:       &rpcstatus.Status{Code: int32(code.Code_OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

func (noopServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

// noopProcessor answers every ext_proc message with an empty response of
// the matching type: the cost of gRPC and protobuf alone for an exchange.
type noopProcessor struct {
	extprocv3.UnimplementedExternalProcessorServer
}

var (
	noopRequestHeaders  = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
	noopRequestBody     = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
	noopRequestTrailers = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}}
	noopResponseHeaders = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
	noopResponseBody    = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
	noopResponseTrailer = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}
)

func (noopProcessor) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	req := &extprocv3.ProcessingRequest{}
	for {
		if err := s.RecvMsg(req); err != nil {
			return nil // the end of the stream (or of the connection)
		}
		var r *extprocv3.ProcessingResponse
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			r = noopRequestHeaders
		case *extprocv3.ProcessingRequest_RequestBody:
			r = noopRequestBody
		case *extprocv3.ProcessingRequest_RequestTrailers:
			r = noopRequestTrailers
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			r = noopResponseHeaders
		case *extprocv3.ProcessingRequest_ResponseTrailers:
			r = noopResponseTrailer
		default:
			r = noopResponseBody
		}
		if err := s.Send(r); err != nil {
			return err
		}
	}
}

// newNoopGRPC is a gRPC server with the no-op Check, the no-op ext_proc
// processor and a health service, registered as airlock registers its
// own (airlock serves ext_proc on its own listener; one process and port
// here is the same floor).
func newNoopGRPC() *grpc.Server {
	s := grpc.NewServer(serverOptions()...)
	authv3.RegisterAuthorizationServer(s, noopServer{})
	extprocv3.RegisterExternalProcessorServer(s, noopProcessor{})
	healthpb.RegisterHealthServer(s, health.NewServer())
	return s
}

func cmdNoop(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("noop", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:9191", "address to serve the no-op Check on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *listen, err)
	}
	s := newNoopGRPC()
	errc := make(chan error, 1)
	go func() { errc <- s.Serve(l) }()
	fmt.Fprintf(stdout, "%s%s\n", listeningPrefix, l.Addr())
	if f, ok := stdout.(*os.File); ok {
		_ = f.Sync()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
		s.GracefulStop()
		return nil
	case err := <-errc:
		return fmt.Errorf("serve on %s: %w", l.Addr(), err)
	}
}
