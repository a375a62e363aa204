package extauthz

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts decisions by outcome and times them, and tracks the
// Checks in flight against Envoy's airlock_authz circuit breaker.
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
			Help: "ext_authz decisions by outcome.",
		}, []string{"outcome"}),
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

func (m *Metrics) observe(o Outcome, d time.Duration) {
	m.decisions.WithLabelValues(string(o)).Inc()
	m.latency.WithLabelValues(string(o)).Observe(d.Seconds())
}
