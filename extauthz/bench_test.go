package extauthz_test

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc/metadata"

	"github.com/airlock-mcp/airlock/extauthz"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/internal/telemetry"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// BenchmarkCheckTracing is an allowed tools/call through a running
// airlock's ext_authz (real gRPC on loopback, real token, the shipped
// policy), with tracing off (the default: a nil tracer, no span) and on
// (every Check sampled: Check, token, parse, grants and policy spans,
// handed to an exporter that discards them, so the figure is airlock's
// cost, not a collector's). Envoy's traceparent rides in the gRPC
// metadata in both. docs/benchmarks.md reports on/off as a ratio.
func BenchmarkCheckTracing(b *testing.B) {
	for _, tc := range []struct {
		name string
		opts serve.Options
	}{
		{"off", serve.Options{}},
		{"on", serve.Options{Telemetry: telemetry.Options{Exporter: tracetest.NewNoopExporter()}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := startEnvOpts(b, func(string) string { return "" }, tc.opts)
			tok := e.token(b, oidcissuer.Token{})
			req := envoyRequest{method: "POST", path: "/mcp/github", target: "github",
				headers: map[string]string{"authorization": "Bearer " + tok}, body: toolCall(7, "search_issues", `{"q":"bug"}`)}.proto()
			ctx := metadata.NewOutgoingContext(context.Background(),
				metadata.Pairs("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"))
			b.Run("grpc", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					resp, err := e.client.Check(ctx, req)
					if err != nil || resp.GetOkResponse() == nil {
						b.Fatalf("%v %v", err, resp.GetStatus())
					}
				}
			})
			// core: the decision pipeline alone (no gRPC, no loopback),
			// where tracing's share is largest.
			b.Run("core", func(b *testing.B) {
				r := extauthz.FromCheckRequest(req)
				r.Headers["traceparent"] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
				cctx := e.g.Tracer.Tracing.Incoming(context.Background(), r.Headers)
				b.ReportAllocs()
				for b.Loop() {
					if res := e.g.Authorizer.Check(cctx, r); res.Outcome != extauthz.OutcomeAllow {
						b.Fatalf("%s: %s", res.Outcome, res.Reason)
					}
				}
			})
		})
	}
}
