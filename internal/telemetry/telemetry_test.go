package telemetry

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	collectortrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/internal/config"
)

// collector is an in-process OTLP receiver (gRPC and HTTP): it keeps the
// spans it is sent and the headers they came with.
type collector struct {
	collectortrace.UnimplementedTraceServiceServer
	mu      sync.Mutex
	spans   []*tracepb.ResourceSpans
	headers []string // the x-api-key of each export
}

func (c *collector) Export(ctx context.Context, req *collectortrace.ExportTraceServiceRequest) (*collectortrace.ExportTraceServiceResponse, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	c.keep(req, first(md.Get("x-api-key")))
	return &collectortrace.ExportTraceServiceResponse{}, nil
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var req collectortrace.ExportTraceServiceRequest
	if r.URL.Path != "/v1/traces" || proto.Unmarshal(b, &req) != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	c.keep(&req, r.Header.Get("x-api-key"))
	out, _ := proto.Marshal(&collectortrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

func (c *collector) keep(req *collectortrace.ExportTraceServiceRequest, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.spans = append(c.spans, req.GetResourceSpans()...)
	c.headers = append(c.headers, key)
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// TestOTLPExport: spans continuing a caller's traceparent reach an OTLP
// collector over gRPC and over HTTP, with the configured service name
// and headers.
func TestOTLPExport(t *testing.T) {
	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	c := &collector{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	collectortrace.RegisterTraceServiceServer(gs, c)
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	hs := httptest.NewServer(c)
	t.Cleanup(hs.Close)

	for _, tc := range []struct{ exporter, endpoint string }{
		{config.ExporterOTLPGRPC, lis.Addr().String()},
		{config.ExporterOTLPHTTP, hs.URL},
	} {
		t.Run(tc.exporter, func(t *testing.T) {
			c.mu.Lock()
			c.spans, c.headers = nil, nil
			c.mu.Unlock()
			cfg := config.Tracing{Exporter: tc.exporter, Endpoint: tc.endpoint, Insecure: true, ServiceName: "airlock-test",
				Headers: map[string]string{"x-api-key": "k1"}, Propagators: []string{config.PropagatorTraceContext, config.PropagatorB3}, ExportTimeout: 10 * time.Second}
			p, err := New(context.Background(), cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			tr := p.Tracing
			ctx := tr.Incoming(context.Background(), map[string]string{"traceparent": "00-" + traceID + "-00f067aa0ba902b7-01"})
			_, span := tr.Start(ctx, "airlock.authz.Check", trace.SpanKindServer)
			span.End()
			// Shutdown flushes the batch processor: the export is done when it returns.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := p.Shutdown(ctx); err != nil {
				t.Fatal(err)
			}
			c.mu.Lock()
			defer c.mu.Unlock()
			if len(c.spans) != 1 || len(c.headers) != 1 || c.headers[0] != "k1" {
				t.Fatalf("%d resource spans, headers %v", len(c.spans), c.headers)
			}
			rs := c.spans[0]
			svc := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					svc = kv.GetValue().GetStringValue()
				}
			}
			if svc != "airlock-test" {
				t.Errorf("service.name %q", svc)
			}
			s := rs.GetScopeSpans()[0].GetSpans()[0]
			if s.GetName() != "airlock.authz.Check" || trace.TraceID(s.GetTraceId()).String() != traceID {
				t.Errorf("span %s in trace %x", s.GetName(), s.GetTraceId())
			}
		})
	}
}

// TestOff: no exporter configured is no provider, no tracing.
func TestOff(t *testing.T) {
	p, err := New(context.Background(), config.Tracing{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Tracing != nil || p.Tracing.On() {
		t.Error("tracing on without an exporter")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestPropagator: the configured propagators read (and write) their
// headers only.
func TestPropagator(t *testing.T) {
	for _, tc := range []struct {
		names  []string
		fields []string
	}{
		{[]string{config.PropagatorTraceContext}, []string{"traceparent", "tracestate", "baggage"}},
		{[]string{config.PropagatorB3}, []string{"x-b3-traceid", "x-b3-spanid", "x-b3-sampled", "x-b3-flags"}},
	} {
		got := map[string]bool{}
		for _, f := range Propagator(tc.names).Fields() {
			got[f] = true
		}
		for _, f := range tc.fields {
			if !got[f] {
				t.Errorf("%v: no %s among %v", tc.names, f, Propagator(tc.names).Fields())
			}
		}
	}
	var _ propagation.TextMapPropagator = Propagator(nil)
}
