package extauthz

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts decisions by target, outcome and MCP method and times
// them, and tracks the Checks in flight against Envoy's airlock_authz
// circuit breaker.
//
// Label values are bounded: target is a configured target's name ("none"
// for a request no target serves), method one of the MCP methods airlock
// knows (mcpMethods), "batch" for a JSON-RPC batch, "none" for a request
// refused before its body was read, and "other" for anything else a
// client sent.
type Metrics struct {
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
	inFlight  prometheus.Gauge
	saturated prometheus.Counter
}

// NewMetrics registers the ext_authz metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_authz_decisions_total",
			Help: "ext_authz decisions by target, outcome and MCP method (other: a method airlock does not know; batch: a JSON-RPC batch; none: refused before the body was read).",
		}, []string{"target", "outcome", "method"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "airlock_authz_decision_seconds",
			Help:    "Time to decide one ext_authz Check, by outcome.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5, 30},
		}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_authz_checks_in_flight",
			Help: "ext_authz Checks being answered now, held calls included.",
		}),
		saturated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_authz_breaker_saturated_total",
			Help: "Checks that arrived with the airlock_authz circuit breaker (limits.max_held_calls + " +
				"quick-check room) full: Envoy refuses the next ones (its upstream_rq_overflow).",
		}),
	}
	reg.MustRegister(m.decisions, m.latency, m.inFlight, m.saturated)
	return m
}

func (m *Metrics) observe(r *Result, d time.Duration) {
	target := r.target
	if target == "" {
		target = "none"
	}
	m.decisions.WithLabelValues(target, string(r.Outcome), methodLabel(r)).Inc()
	m.latency.WithLabelValues(string(r.Outcome)).Observe(d.Seconds())
}

// methodLabel is the method label of a decision (see Metrics).
func methodLabel(r *Result) string {
	c := r.call
	switch {
	case c == nil || len(c.Messages) == 0:
		return "none"
	case c.Batch:
		return "batch"
	}
	if m := c.Messages[0].Method; mcpMethods[m] {
		return m
	}
	return "other"
}

// mcpMethods are the MCP methods of the versions airlock parses
// (internal/mcp internMethod): the values of the method label.
var mcpMethods = map[string]bool{
	"initialize": true, "ping": true, "server/discover": true,
	"tools/list": true, "tools/call": true,
	"resources/list": true, "resources/templates/list": true, "resources/read": true,
	"resources/subscribe": true, "resources/unsubscribe": true,
	"prompts/list": true, "prompts/get": true, "completion/complete": true,
	"logging/setLevel": true, "subscriptions/listen": true,
	"tasks/get": true, "tasks/list": true, "tasks/result": true, "tasks/cancel": true,
	"notifications/initialized": true, "notifications/cancelled": true, "notifications/progress": true,
	"notifications/roots/list_changed": true, "notifications/tasks/status": true,
}
