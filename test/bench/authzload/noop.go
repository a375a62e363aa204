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

// newNoopGRPC is a gRPC server with the no-op Check and a health service,
// registered as airlock registers its own.
func newNoopGRPC() *grpc.Server {
	s := grpc.NewServer(serverOptions()...)
	authv3.RegisterAuthorizationServer(s, noopServer{})
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
