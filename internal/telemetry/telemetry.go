// Package telemetry builds airlock's OpenTelemetry tracer provider from
// the telemetry.tracing section: an OTLP exporter (gRPC or HTTP) behind a
// batching span processor, parent-based ratio sampling, and the W3C
// traceparent and B3 propagators Envoy speaks. Off (the default) it
// builds nothing and services get a nil *tracing.Tracing: no spans, no
// exporter, no goroutine.
package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"net/url"
	"runtime/debug"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/tracing"
)

// InstrumentationName is the tracer's (instrumentation scope) name.
const InstrumentationName = "github.com/airlock-mcp/airlock"

// Provider is a running tracer provider; the zero value (tracing off)
// is valid: Tracing is nil and Shutdown does nothing.
type Provider struct {
	tp *sdktrace.TracerProvider
	// Tracing is what the services trace with; nil when tracing is off.
	Tracing *tracing.Tracing
}

// Options are for tests.
type Options struct {
	// Exporter replaces the configured OTLP exporter (the SDK's in-memory
	// exporter in tests); it is then synced span by span, not batched.
	Exporter sdktrace.SpanExporter
	// Logger receives the SDK's errors (a collector that cannot be
	// reached, spans dropped): OpenTelemetry's global error handler is
	// pointed at it while tracing is on. nil: the SDK's default (stderr).
	Logger *slog.Logger
}

// New builds the tracer provider cfg asks for. It does not contact the
// collector: OTLP exporters connect lazily and retry, so a collector that
// is down never stops airlock from starting (spans are dropped then).
func New(ctx context.Context, cfg config.Tracing, opts Options) (*Provider, error) {
	if !cfg.Enabled() && opts.Exporter == nil {
		return &Provider{}, nil
	}
	if opts.Logger != nil {
		log := opts.Logger
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing: the OpenTelemetry SDK failed (spans may be dropped)", "error", err)
		}))
	}
	var proc sdktrace.SpanProcessor
	if opts.Exporter != nil {
		proc = sdktrace.NewSimpleSpanProcessor(opts.Exporter)
	} else {
		exp, err := exporter(ctx, cfg)
		if err != nil {
			return nil, err
		}
		proc = sdktrace.NewBatchSpanProcessor(exp, sdktrace.WithExportTimeout(cfg.ExportTimeout))
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(
		semconv.ServiceName(cfg.ServiceName), semconv.ServiceVersion(Version()),
	))
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithSpanProcessor(proc),
		sdktrace.WithResource(res),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(cfg.Ratio()))),
	)
	return &Provider{tp: tp, Tracing: &tracing.Tracing{
		Tracer:     tp.Tracer(InstrumentationName, trace.WithInstrumentationVersion(Version())),
		Propagator: Propagator(cfg.Propagators),
	}}, nil
}

// Shutdown flushes the spans still queued and stops the exporter.
func (p *Provider) Shutdown(ctx context.Context) error {
	if p == nil || p.tp == nil {
		return nil
	}
	return p.tp.Shutdown(ctx)
}

// ForceFlush exports the spans queued now (tests, and before a reload).
func (p *Provider) ForceFlush(ctx context.Context) error {
	if p == nil || p.tp == nil {
		return nil
	}
	return p.tp.ForceFlush(ctx)
}

func exporter(ctx context.Context, cfg config.Tracing) (sdktrace.SpanExporter, error) {
	switch cfg.Exporter {
	case config.ExporterOTLPGRPC:
		o := []otlptracegrpc.Option{otlptracegrpc.WithEndpoint(cfg.Endpoint), otlptracegrpc.WithTimeout(cfg.ExportTimeout)}
		if cfg.Insecure {
			o = append(o, otlptracegrpc.WithInsecure())
		}
		if len(cfg.Headers) > 0 {
			o = append(o, otlptracegrpc.WithHeaders(cfg.Headers))
		}
		return otlptracegrpc.New(ctx, o...)
	case config.ExporterOTLPHTTP:
		o := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(tracesURL(cfg.Endpoint)), otlptracehttp.WithTimeout(cfg.ExportTimeout)}
		if cfg.Insecure {
			o = append(o, otlptracehttp.WithInsecure())
		}
		if len(cfg.Headers) > 0 {
			o = append(o, otlptracehttp.WithHeaders(cfg.Headers))
		}
		return otlptracehttp.New(ctx, o...)
	}
	return nil, fmt.Errorf("telemetry: unknown exporter %q", cfg.Exporter)
}

// tracesURL is the OTLP/HTTP traces URL of endpoint: a collector's base
// URL (http://collector:4318) gets the signal path /v1/traces, as
// OTEL_EXPORTER_OTLP_ENDPOINT does; a URL with a path is used as it is.
func tracesURL(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Path != "" && u.Path != "/") {
		return endpoint
	}
	u.Path = "/v1/traces"
	return u.String()
}

// Propagator composes the named propagators (config.PropagatorTraceContext,
// config.PropagatorB3). B3 is read in both its single (b3) and multi
// (x-b3-*) header forms, and written in the multi form Envoy's Zipkin
// tracer uses.
func Propagator(names []string) propagation.TextMapPropagator {
	var ps []propagation.TextMapPropagator
	for _, n := range names {
		switch n {
		case config.PropagatorTraceContext:
			ps = append(ps, propagation.TraceContext{}, propagation.Baggage{})
		case config.PropagatorB3:
			ps = append(ps, b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader)))
		}
	}
	return propagation.NewCompositeTextMapPropagator(ps...)
}

// Version is airlock's module version as built ("(devel)" from a work tree).
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
