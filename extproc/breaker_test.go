package extproc

import (
	"errors"
	"io"
	"testing"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Each open ext_proc stream (an MCP exchange, SSE included) is in the
// gauge for its life, through the real gRPC adapter; one that arrives with
// Envoy's airlock_proc breaker full (limits.max_streams) is counted, as is
// every one past it.
func TestStreamsInFlightAgainstTheBreaker(t *testing.T) {
	e := startWith(t, func(o *Options) { o.MaxStreams = 2 })
	m := e.p.metrics
	var open []*exchange
	for i, want := range []float64{0, 1, 2} {
		x := e.open(t, procmodev3.ProcessingMode_STREAMED)
		x.requestPhases(meta, toolCall) // answered: the server has the stream
		open = append(open, x)
		if got := value(t, m.inFlight); got != float64(i+1) {
			t.Errorf("after %d streams: in flight %v", i+1, got)
		}
		if got := value(t, m.saturated); got != want {
			t.Errorf("after %d streams: saturated %v, want %v", i+1, got, want)
		}
	}
	for _, x := range open {
		if err := x.stream.CloseSend(); err != nil {
			t.Fatal(err)
		}
		// The handler has returned (and left) before the status is sent.
		if _, err := x.stream.Recv(); !errors.Is(err, io.EOF) {
			t.Fatalf("recv after close: %v", err)
		}
	}
	if got := value(t, m.inFlight); got != 0 {
		t.Errorf("in flight %v after every stream ended", got)
	}
}

// value reads a gauge's or a counter's current value.
func value(t *testing.T, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue()
	}
	return m.GetCounter().GetValue()
}
