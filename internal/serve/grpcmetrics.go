package serve

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// grpcMetrics are the gRPC server metrics of ext_authz, ext_proc and xDS:
// grpc_server_started_total, grpc_server_handled_total{grpc_code},
// grpc_server_msg_received_total, grpc_server_msg_sent_total and
// grpc_server_handling_seconds, labelled by grpc_type, grpc_service and
// grpc_method (the services' own, a fixed set). They are the series
// go-grpc-middleware's Prometheus provider exports — names, help, labels
// and when each counts — so dashboards and alerts read them unchanged;
// what differs is that each method's series are looked up once, not by
// their label values on every call and stream message (five lookups per
// Check, two per ext_proc message, ~2% of a Check's CPU).
type grpcMetrics struct {
	started, handled, received, sent *prometheus.CounterVec
	handling                         *prometheus.HistogramVec
	methods                          sync.Map // full method name → *methodMetrics
}

// methodMetrics are one method's series.
type methodMetrics struct {
	started, received, sent prometheus.Counter
	handling                prometheus.Observer
	// handled is grpc_server_handled_total by code, made up front for
	// the registered methods (InitializeMetrics); nil entries (a method
	// seen first in a call, or a code past Unauthenticated) are looked up.
	handled              [codes.Unauthenticated + 1]prometheus.Counter
	typ, service, method string
}

// gRPC types, the grpc_type label.
const (
	grpcUnary        = "unary"
	grpcClientStream = "client_stream"
	grpcServerStream = "server_stream"
	grpcBidiStream   = "bidi_stream"
)

func newGRPCMetrics() *grpcMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	return &grpcMetrics{
		started: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_started_total", Help: "Total number of RPCs started on the server.",
		}, labels),
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total", Help: "Total number of RPCs completed on the server, regardless of success or failure.",
		}, append(labels[:3:3], "grpc_code")),
		received: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_received_total", Help: "Total number of RPC stream messages received on the server.",
		}, labels),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_msg_sent_total", Help: "Total number of gRPC stream messages sent by the server.",
		}, labels),
		handling: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
			Buckets: grpcHandlingBuckets,
		}, labels),
	}
}

// Describe implements prometheus.Collector.
func (m *grpcMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range []prometheus.Collector{m.started, m.handled, m.received, m.sent, m.handling} {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector.
func (m *grpcMetrics) Collect(ch chan<- prometheus.Metric) {
	for _, c := range []prometheus.Collector{m.started, m.handled, m.received, m.sent, m.handling} {
		c.Collect(ch)
	}
}

// InitializeMetrics creates every series of every method s serves (each
// code of grpc_server_handled_total included) at 0, before its first call.
func (m *grpcMetrics) InitializeMetrics(s *grpc.Server) {
	for svc, info := range s.GetServiceInfo() {
		for _, mi := range info.Methods {
			m.forMethod("/"+svc+"/"+mi.Name, streamType(mi.IsClientStream, mi.IsServerStream, mi.IsClientStream || mi.IsServerStream), true)
		}
	}
}

// streamType is the grpc_type of a method.
func streamType(client, server, stream bool) string {
	switch {
	case !stream:
		return grpcUnary
	case client && !server:
		return grpcClientStream
	case !client && server:
		return grpcServerStream
	}
	return grpcBidiStream
}

// forMethod returns the series of a method, creating them on its first
// call (the full method names are the registered services', a fixed set;
// a method InitializeMetrics did not see gets its counters at 0 at its
// first call, where the provider made each at its first count);
// allCodes makes its handled series of every code too, at 0, as the
// provider's InitializeMetrics did.
func (m *grpcMetrics) forMethod(full, typ string, allCodes bool) *methodMetrics {
	if v, ok := m.methods.Load(full); ok {
		return v.(*methodMetrics)
	}
	svc, meth := splitMethod(full)
	mm := &methodMetrics{
		typ: typ, service: svc, method: meth,
		started:  m.started.WithLabelValues(typ, svc, meth),
		received: m.received.WithLabelValues(typ, svc, meth),
		sent:     m.sent.WithLabelValues(typ, svc, meth),
		handling: m.handling.WithLabelValues(typ, svc, meth),
	}
	if allCodes {
		for c := range mm.handled {
			mm.handled[c] = m.handled.WithLabelValues(typ, svc, meth, codes.Code(c).String())
		}
	}
	v, _ := m.methods.LoadOrStore(full, mm)
	return v.(*methodMetrics)
}

// splitMethod splits "/service/method" as the provider did ("unknown"
// for both when there is no second slash).
func splitMethod(full string) (service, method string) {
	full = strings.TrimPrefix(full, "/")
	if i := strings.Index(full, "/"); i >= 0 {
		return full[:i], full[i+1:]
	}
	return "unknown", "unknown"
}

// handledFor is the grpc_server_handled_total series of code.
func (mm *methodMetrics) handledFor(m *grpcMetrics, c codes.Code) prometheus.Counter {
	if int(c) < len(mm.handled) && mm.handled[c] != nil {
		return mm.handled[c]
	}
	return m.handled.WithLabelValues(mm.typ, mm.service, mm.method, c.String())
}

// done counts a finished call: its code (as the provider read it: the
// status of err, or of the context error it wraps) and its duration.
func (mm *methodMetrics) done(m *grpcMetrics, err error, start time.Time) {
	s, ok := status.FromError(err)
	if !ok {
		s = status.FromContextError(err)
	}
	mm.handledFor(m, s.Code()).Inc()
	mm.handling.Observe(time.Since(start).Seconds())
}

// UnaryServerInterceptor counts a unary call: started, its request
// received, its answer sent (when there is one), handled and its time.
func (m *grpcMetrics) UnaryServerInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		mm := m.forMethod(info.FullMethod, grpcUnary, false)
		mm.started.Inc()
		mm.received.Inc()
		resp, err := handler(ctx, req)
		if err == nil {
			mm.sent.Inc()
		}
		mm.done(m, err, start)
		return resp, err
	}
}

// StreamServerInterceptor counts a stream: started, each message received
// and sent without error, handled and its time.
func (m *grpcMetrics) StreamServerInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		mm := m.forMethod(info.FullMethod, streamType(info.IsClientStream, info.IsServerStream, true), false)
		mm.started.Inc()
		err := handler(srv, &countedStream{ServerStream: ss, mm: mm})
		mm.done(m, err, start)
		return err
	}
}

// countedStream counts a stream's messages.
type countedStream struct {
	grpc.ServerStream
	mm *methodMetrics
}

func (s *countedStream) SendMsg(v any) error {
	err := s.ServerStream.SendMsg(v)
	if err == nil {
		s.mm.sent.Inc()
	}
	return err
}

func (s *countedStream) RecvMsg(v any) error {
	err := s.ServerStream.RecvMsg(v)
	if err == nil {
		s.mm.received.Inc()
	}
	return err
}
