package extauthz

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts decisions by outcome and times them.
type Metrics struct {
	decisions *prometheus.CounterVec
	latency   *prometheus.HistogramVec
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
	}
	reg.MustRegister(m.decisions, m.latency)
	return m
}

func (m *Metrics) observe(o Outcome, d time.Duration) {
	m.decisions.WithLabelValues(string(o)).Inc()
	m.latency.WithLabelValues(string(o)).Observe(d.Seconds())
}
