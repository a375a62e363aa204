package extproc

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/airlock-mcp/airlock/internal/tracing"
)

// TestStreamContinuesTrace: an ext_proc stream is one span, continuing
// the trace Envoy's gRPC client put in the stream's metadata (traceparent
// or x-b3-*), named by the ext_authz decision it carried; with tracing
// off, no span is made. The span ends before the stream's status is
// sent, so it is exported once the client sees the end of the stream.
func TestStreamContinuesTrace(t *testing.T) {
	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	for _, tc := range []struct {
		name string
		md   metadata.MD
		off  bool
	}{
		{name: "traceparent", md: metadata.Pairs("traceparent", "00-"+traceID+"-"+spanID+"-01")},
		{name: "b3 multi", md: metadata.Pairs("x-b3-traceid", traceID, "x-b3-spanid", spanID, "x-b3-sampled", "1")},
		{name: "tracing off", md: metadata.Pairs("traceparent", "00-"+traceID+"-"+spanID+"-01"), off: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			e := startWith(t, func(o *Options) {
				if !tc.off {
					o.Tracing = &tracing.Tracing{Tracer: tp.Tracer("test"),
						Propagator: propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, b3.New())}
				}
			})
			ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(), tc.md), 10*time.Second)
			defer cancel()
			s, err := e.client.Process(ctx)
			if err != nil {
				t.Fatal(err)
			}
			x := &exchange{t: t, stream: s, first: true, mode: procmodev3.ProcessingMode_BUFFERED}
			x.requestPhases(meta, toolCall)
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			if _, err := s.Recv(); !errors.Is(err, io.EOF) {
				t.Fatalf("stream end: %v", err)
			}
			spans := exp.GetSpans()
			if tc.off {
				if len(spans) != 0 {
					t.Fatalf("tracing off made %d spans", len(spans))
				}
				return
			}
			if len(spans) != 1 {
				t.Fatalf("%d spans, want one for the stream", len(spans))
			}
			sp := spans[0]
			if sp.Name != "airlock.proc.Stream" || sp.SpanKind != trace.SpanKindServer {
				t.Errorf("span %s kind %v", sp.Name, sp.SpanKind)
			}
			if sp.SpanContext.TraceID().String() != traceID || sp.Parent.SpanID().String() != spanID || !sp.Parent.IsRemote() {
				t.Errorf("span in trace %s under %s, want the client's %s under %s", sp.SpanContext.TraceID(), sp.Parent.SpanID(), traceID, spanID)
			}
			attrs := map[string]string{}
			for _, kv := range sp.Attributes {
				attrs[string(kv.Key)] = kv.Value.Emit()
			}
			if attrs["airlock.decision_id"] != "d-1" || attrs["airlock.target"] != "github" {
				t.Errorf("attributes %v", attrs)
			}
			for _, v := range attrs {
				if v == ghToken {
					t.Error("a span attribute holds the argument's secret")
				}
			}
		})
	}
}
