package serve

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// fakeStream is a server stream that receives n messages, then the end
// (io.EOF, or recvErr), and sends without error unless sendErr.
type fakeStream struct {
	grpc.ServerStream
	n       int
	recvErr error
	sendErr error
}

func (s *fakeStream) Context() context.Context { return context.Background() }
func (s *fakeStream) SendMsg(any) error        { return s.sendErr }
func (s *fakeStream) RecvMsg(any) error {
	if s.n == 0 {
		if s.recvErr == nil {
			return io.EOF
		}
		return s.recvErr
	}
	s.n--
	return nil
}

// TestGRPCMetricsMatchTheProvider: airlock's gRPC metrics give the same
// series, values and help as go-grpc-middleware's Prometheus provider (the
// dashboards' and alerts' contract) for the same calls: unary answers
// and errors, streams with messages, failed sends, a cancelled context,
// and every registered method's series at 0 before its first call.
func TestGRPCMetricsMatchTheProvider(t *testing.T) {
	ours, theirs := newGRPCMetrics(), grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(grpcHandlingBuckets)))
	regOurs, regTheirs := prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
	regOurs.MustRegister(ours)
	regTheirs.MustRegister(theirs)

	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, health.NewServer())
	authv3.RegisterAuthorizationServer(s, authv3.UnimplementedAuthorizationServer{})
	extprocv3.RegisterExternalProcessorServer(s, extprocv3.UnimplementedExternalProcessorServer{})
	ours.InitializeMetrics(s)
	theirs.InitializeMetrics(s)

	unary := []struct {
		method string
		err    error
	}{
		{"/grpc.health.v1.Health/Check", nil},
		{"/grpc.health.v1.Health/Check", nil},
		{"/grpc.health.v1.Health/Check", status.Error(codes.PermissionDenied, "no")},
		{"/envoy.service.auth.v3.Authorization/Check", context.Canceled},
		{"/envoy.service.auth.v3.Authorization/Check", errors.New("plain")},
		{"noslash", nil},
	}
	streams := []struct {
		method         string
		client, server bool
		msgs           int
		recvErr        error
		sendErr        error
		err            error
	}{
		{"/envoy.service.ext_proc.v3.ExternalProcessor/Process", true, true, 4, nil, nil, nil},
		{"/envoy.service.ext_proc.v3.ExternalProcessor/Process", true, true, 2, errors.New("reset"), nil, status.Error(codes.Unavailable, "gone")},
		{"/grpc.health.v1.Health/Watch", false, true, 1, nil, errors.New("send failed"), nil},
		{"/envoy.service.ext_proc.v3.ExternalProcessor/Process", true, true, 3, nil, nil, status.Error(codes.Code(42), "odd code")},
		{"/x.Up/Load", true, false, 3, nil, nil, nil}, // not registered
	}
	for _, m := range []struct {
		u grpc.UnaryServerInterceptor
		s grpc.StreamServerInterceptor
	}{{ours.UnaryServerInterceptor(), ours.StreamServerInterceptor()}, {theirs.UnaryServerInterceptor(), theirs.StreamServerInterceptor()}} {
		for _, c := range unary {
			_, _ = m.u(context.Background(), "req", &grpc.UnaryServerInfo{FullMethod: c.method}, func(context.Context, any) (any, error) {
				if c.err != nil {
					return nil, c.err
				}
				return "resp", nil
			})
		}
		for _, c := range streams {
			info := &grpc.StreamServerInfo{FullMethod: c.method, IsClientStream: c.client, IsServerStream: c.server}
			_ = m.s(nil, &fakeStream{n: c.msgs, recvErr: c.recvErr, sendErr: c.sendErr}, info, func(_ any, ss grpc.ServerStream) error {
				for ss.RecvMsg(nil) == nil {
					_ = ss.SendMsg(nil)
				}
				return c.err
			})
		}
	}

	want, got := seriesOf(t, regTheirs), seriesOf(t, regOurs)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("airlock's gRPC metrics differ from the provider's:\n got:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := testutil.CollectAndCount(ours, "grpc_server_handled_total"); n < 17 {
		t.Errorf("%d handled series; want every code of every method at 0 at least", n)
	}
}

// seriesOf is every series g gathers as "name help {labels} value" (a
// histogram by its count: the two runs' durations differ), in order.
func seriesOf(t *testing.T, g prometheus.Gatherer) []string {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			v := m.GetCounter().GetValue()
			if h := m.GetHistogram(); h != nil {
				v = float64(h.GetSampleCount())
			}
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			out = append(out, fmt.Sprintf("%s %q {%s} %v", f.GetName(), f.GetHelp(), strings.Join(labels, ","), v))
		}
	}
	return out
}

// BenchmarkUnaryMetrics is the metrics' cost per Check: airlock's
// interceptor against the provider's, same series.
func BenchmarkUnaryMetrics(b *testing.B) {
	info := &grpc.UnaryServerInfo{FullMethod: "/envoy.service.auth.v3.Authorization/Check"}
	handler := func(context.Context, any) (any, error) { return "resp", nil }
	for _, tc := range []struct {
		name string
		u    grpc.UnaryServerInterceptor
	}{
		{"airlock", newGRPCMetrics().UnaryServerInterceptor()},
		{"provider", grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram(grpcprom.WithHistogramBuckets(grpcHandlingBuckets))).UnaryServerInterceptor()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			ctx := context.Background()
			for b.Loop() {
				_, _ = tc.u(ctx, "req", info, handler)
			}
		})
	}
}
