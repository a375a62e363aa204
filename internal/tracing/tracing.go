// Package tracing is the OpenTelemetry API surface the services trace
// with: continuing the trace Envoy sends in gRPC metadata (W3C
// traceparent, Zipkin x-b3-*), starting spans, and reading the trace id a
// request carries for the decision log and the audit. It imports the
// OpenTelemetry API only, never the SDK or an exporter (internal/telemetry
// builds those), so ext_proc and the ext_authz core stay light.
//
// Tracing off is the nil *Tracing: every method is then a nil check and
// returns a no-op span, which costs nothing measurable on the Check path.
package tracing

import (
	"context"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
	"google.golang.org/grpc/metadata"
)

// Tracing is what a service traces with. nil means off.
type Tracing struct {
	Tracer     trace.Tracer
	Propagator propagation.TextMapPropagator
}

// On says whether spans are recorded.
func (t *Tracing) On() bool { return t != nil && t.Tracer != nil }

var noopSpan trace.Span = noop.Span{}

// Incoming returns ctx carrying the caller's span context, read from the
// incoming gRPC metadata (Envoy's gRPC client injects its trace headers
// there) or, when that holds none, from headers (the HTTP request Envoy
// asks about, lower-case names). Off: ctx unchanged.
func (t *Tracing) Incoming(ctx context.Context, headers map[string]string) context.Context {
	if !t.On() || t.Propagator == nil {
		return ctx
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if out := t.Propagator.Extract(ctx, MetadataCarrier(md)); trace.SpanContextFromContext(out).IsValid() {
			return out
		}
	}
	if len(headers) > 0 {
		return t.Propagator.Extract(ctx, propagation.MapCarrier(headers))
	}
	return ctx
}

// Start starts a span named name as a child of ctx's. Off: ctx and a
// no-op span.
func (t *Tracing) Start(ctx context.Context, name string, kind trace.SpanKind, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	if !t.On() {
		return ctx, noopSpan
	}
	return t.Tracer.Start(ctx, name, trace.WithSpanKind(kind), trace.WithAttributes(attrs...))
}

// TraceID is the trace id of ctx's span, or "" when it has none.
func TraceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}

// HeaderTraceID is the trace id a request's headers carry (traceparent,
// then b3, then x-b3-traceid), lower-case hex, or "" when none is valid.
// It is how the decision log and the audit name the trace with tracing
// off: Envoy still propagates it.
func HeaderTraceID(headers map[string]string) string {
	if id := ParseTraceparent(headers["traceparent"]); id != "" {
		return id
	}
	if b3 := headers["b3"]; b3 != "" {
		id, _, _ := strings.Cut(b3, "-")
		if id = normTraceID(id); id != "" {
			return id
		}
	}
	return normTraceID(headers["x-b3-traceid"])
}

// ParseTraceparent returns the trace id of a W3C traceparent header
// (version-traceid-parentid-flags), or "" when it is not one. It does not
// allocate for a lower-case header (the Check path reads it with tracing
// off).
func ParseTraceparent(v string) string {
	v = strings.TrimSpace(v)
	// 2 version, 32 trace id, 16 parent id, 2 flags, 3 dashes.
	const n = 55
	if len(v) < n || v[2] != '-' || v[35] != '-' || v[52] != '-' {
		return ""
	}
	ver := v[:2]
	if !isHex(ver) || ver == "ff" || ver == "FF" {
		return ""
	}
	if len(v) > n && (ver == "00" || v[n] != '-') {
		return "" // version 00 has exactly four fields; later ones may add fields
	}
	if !isHex(v[36:52]) || !isHex(v[53:55]) || allZero(v[36:52]) {
		return ""
	}
	return normTraceID(v[3:35])
}

// normTraceID is a 32 (or B3's 16, left-padded) hex digit trace id,
// lower case, not all zero; "" otherwise.
func normTraceID(id string) string {
	id = strings.TrimSpace(id)
	if len(id) == 16 {
		id = strings.Repeat("0", 16) + id
	}
	if len(id) != 32 || !isHex(id) || allZero(id) {
		return ""
	}
	return strings.ToLower(id)
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') && (c < 'A' || c > 'F') {
			return false
		}
	}
	return true
}

// allZero says whether the hex string s is all zeros.
func allZero(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// MetadataCarrier reads and writes gRPC metadata as a TextMapCarrier
// (metadata keys are lower case, as propagators' are).
type MetadataCarrier metadata.MD

var _ propagation.TextMapCarrier = MetadataCarrier(nil)

// Get returns the first value of key.
func (c MetadataCarrier) Get(key string) string {
	if v := metadata.MD(c).Get(key); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Set sets key to value.
func (c MetadataCarrier) Set(key, value string) { metadata.MD(c).Set(key, value) }

// Keys lists the keys.
func (c MetadataCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}
