package extauthz

import (
	"context"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/airlock-mcp/airlock/internal/config"
)

// Checks in flight are a gauge; a Check that arrives with Envoy's
// airlock_authz breaker full (limits.max_held_calls + quick-check room) is
// counted, as is every one past it, and leaving brings the gauge back.
func TestChecksInFlightAgainstTheBreaker(t *testing.T) {
	c := newCore(t)
	m := NewMetrics(prometheus.NewRegistry())
	c.a.metrics = m
	if got, want := c.a.breaker, int64(config.AuthzQuickChecks); got != want {
		t.Fatalf("breaker %d, want %d (no held calls configured + quick-check room)", got, want)
	}
	c.a.breaker = 3
	var leave []func()
	for i, want := range []float64{0, 0, 1, 2} { // saturated after the 1st..4th
		leave = append(leave, c.a.enter())
		if got := value(t, m.inFlight); got != float64(i+1) {
			t.Errorf("after %d: in flight %v", i+1, got)
		}
		if got := value(t, m.saturated); got != want {
			t.Errorf("after %d: saturated %v, want %v", i+1, got, want)
		}
	}
	for _, l := range leave {
		l()
	}
	if got := value(t, m.inFlight); got != 0 {
		t.Errorf("in flight %v after all left", got)
	}

	// Through the gRPC adapter: the Check that fills the breaker counts,
	// and is over when answered.
	c.a.breaker = 2
	l := c.a.enter()
	if _, err := (&Server{A: c.a}).Check(context.Background(), &authv3.CheckRequest{}); err != nil {
		t.Fatal(err)
	}
	l()
	if got := value(t, m.saturated); got != 3 {
		t.Errorf("saturated %v, want 3 (the Check that filled a breaker of 2)", got)
	}
	if got := value(t, m.inFlight); got != 0 {
		t.Errorf("in flight %v after the Check was answered", got)
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
