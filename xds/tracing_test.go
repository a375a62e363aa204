package xds

import (
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/airlock-mcp/airlock/internal/tracing"
)

// TestPushSpans: a grant's route pushed, then withdrawn, and a new
// snapshot of listener and clusters are each one airlock.xds.push span.
func TestPushSpans(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	cfg := testConfig(t, "127.0.0.1:1", "127.0.0.1:2")
	m := testModel(t, cfg)
	s, err := New(m, Options{Tracing: &tracing.Tracing{Tracer: tp.Tracer("test")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	exp.Reset()
	for _, step := range []struct {
		name string
		do   func() error
		want map[string]string
	}{
		{"grant", func() error {
			return s.UpsertGrant(Grant{ID: "g1", Target: "github", Expiry: time.Now().Add(time.Hour)})
		},
			map[string]string{"airlock.xds.kind": "scopes", "airlock.xds.updated": "1", "airlock.xds.removed": "0"}},
		{"revoke", func() error { return s.RemoveGrant("g1") },
			map[string]string{"airlock.xds.kind": "scopes", "airlock.xds.updated": "0", "airlock.xds.removed": "1"}},
	} {
		t.Run(step.name, func(t *testing.T) {
			exp.Reset()
			if err := step.do(); err != nil {
				t.Fatal(err)
			}
			spans := exp.GetSpans()
			if len(spans) != 1 || spans[0].Name != "airlock.xds.push" {
				t.Fatalf("spans %v", spans)
			}
			got := map[string]string{}
			for _, kv := range spans[0].Attributes {
				got[string(kv.Key)] = kv.Value.Emit()
			}
			for k, v := range step.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	exp.Reset()
	if err := s.SetModel(m); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, sp := range exp.GetSpans() {
		for _, kv := range sp.Attributes {
			if kv.Key == "airlock.xds.kind" {
				kinds[kv.Value.Emit()]++
			}
		}
	}
	if kinds["snapshot"] != 1 || kinds["scopes"] != 1 {
		t.Errorf("a new model pushed %v, want one snapshot and one scopes push", kinds)
	}
}
