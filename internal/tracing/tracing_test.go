package tracing

import (
	"context"
	"testing"
)

func TestHeaderTraceID(t *testing.T) {
	const id = "4bf92f3577b34da6a3ce929d0e0e4736"
	for _, tc := range []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"traceparent", map[string]string{"traceparent": "00-" + id + "-00f067aa0ba902b7-01"}, id},
		{"traceparent upper case", map[string]string{"traceparent": "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-00"}, id},
		{"future version with more fields", map[string]string{"traceparent": "01-" + id + "-00f067aa0ba902b7-01-extra"}, id},
		{"version 00 with more fields", map[string]string{"traceparent": "00-" + id + "-00f067aa0ba902b7-01-extra"}, ""},
		{"version ff", map[string]string{"traceparent": "ff-" + id + "-00f067aa0ba902b7-01"}, ""},
		{"zero trace id", map[string]string{"traceparent": "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}, ""},
		{"zero span id", map[string]string{"traceparent": "00-" + id + "-0000000000000000-01"}, ""},
		{"short trace id", map[string]string{"traceparent": "00-4bf92f35-00f067aa0ba902b7-01"}, ""},
		{"not hex", map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01"}, ""},
		{"b3 single", map[string]string{"b3": id + "-00f067aa0ba902b7-1"}, id},
		{"b3 multi", map[string]string{"x-b3-traceid": id}, id},
		{"b3 64-bit", map[string]string{"x-b3-traceid": "a3ce929d0e0e4736"}, "0000000000000000a3ce929d0e0e4736"},
		{"b3 sampling only", map[string]string{"b3": "0"}, ""},
		{"traceparent wins", map[string]string{"traceparent": "00-" + id + "-00f067aa0ba902b7-01", "x-b3-traceid": "a3ce929d0e0e4736"}, id},
		{"none", map[string]string{}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HeaderTraceID(tc.headers); got != tc.want {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzParseTraceparent(f *testing.F) {
	f.Add("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	f.Add("ff-0-0-0")
	f.Add("")
	f.Fuzz(func(t *testing.T, v string) {
		id := ParseTraceparent(v)
		if id != "" && (len(id) != 32 || normTraceID(id) != id) {
			t.Fatalf("%q gave %q", v, id)
		}
		_ = HeaderTraceID(map[string]string{"b3": v, "x-b3-traceid": v})
	})
}

// TestOffCostsNothing: a nil Tracing starts no span and reads no context.
func TestOffCostsNothing(t *testing.T) {
	var tr *Tracing
	ctx := context.Background()
	if tr.Incoming(ctx, map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}) != ctx {
		t.Error("off: Incoming changed the context")
	}
	c2, span := tr.Start(ctx, "x", 0)
	if c2 != ctx || span.IsRecording() || span.SpanContext().IsValid() {
		t.Error("off: Start made a span")
	}
	if TraceID(ctx) != "" {
		t.Error("a context without a span has a trace id")
	}
	if n := testing.AllocsPerRun(100, func() { _, s := tr.Start(ctx, "x", 0); s.End() }); n != 0 {
		t.Errorf("off: %v allocations per span", n)
	}
	h := map[string]string{"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	if n := testing.AllocsPerRun(100, func() { _ = HeaderTraceID(h) }); n != 0 {
		t.Errorf("reading the propagated trace id: %v allocations", n)
	}
}
