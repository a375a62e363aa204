package grants

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are just-in-time access's Prometheus series: access requests
// opened and decided, the approvers' latency, holds and their duration,
// grants issued, used and ended (counted from the events this replica
// writes, so the sum over replicas counts each once), and the requests
// pending and grants live now (read from the records at scrape time: on a
// shared store every replica reports the same, take the max).
//
// Label values are bounded: target is a configured target's name (a
// request's target is the one ext_authz matched), verdict, outcome and
// reason fixed sets.
type Metrics struct {
	opened   *prometheus.CounterVec   // target
	decided  *prometheus.CounterVec   // target, verdict
	approval *prometheus.HistogramVec // verdict
	holds    *prometheus.CounterVec   // outcome
	holdSecs *prometheus.HistogramVec // outcome
	issued   *prometheus.CounterVec   // target
	used     *prometheus.CounterVec   // target
	ended    *prometheus.CounterVec   // target, reason

	svc atomic.Pointer[Service] // for the gauges; nil until a Service uses these metrics
}

var (
	descPending = prometheus.NewDesc("airlock_access_requests_pending", "Access requests waiting for approvers now.", nil, nil)
	descLive    = prometheus.NewDesc("airlock_grants_live", "Grants active now, by target.", []string{"target"}, nil)
)

// Hold outcome label for a hold that failed (the store, or Envoy gave up).
const holdError = "error"

// NewMetrics registers the access metrics with reg (nil: not registered).
// Pass them to one Service in Options.Metrics.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		opened: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_access_requests_opened_total",
			Help: "Access requests opened (a held call that joined a pending one is not counted), by target.",
		}, []string{"target"}),
		decided: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_access_requests_decided_total",
			Help: "Access requests that left pending, by target and verdict (approved, denied, expired, cancelled).",
		}, []string{"target", "verdict"}),
		approval: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "airlock_access_request_approval_seconds",
			Help:    "Time from a request's opening to the approvers' verdict, by verdict (approved, denied).",
			Buckets: []float64{1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600},
		}, []string{"verdict"}),
		holds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_holds_total",
			Help: "Calls held for approval, by outcome (allowed, pending, denied, expired, cancelled, grant_used, error).",
		}, []string{"outcome"}),
		holdSecs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "airlock_hold_seconds",
			Help:    "Time a held call waited, by outcome (pending: the hold window passed).",
			Buckets: []float64{.01, .05, .1, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300},
		}, []string{"outcome"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_grants_issued_total",
			Help: "Grants issued by an approval, by target.",
		}, []string{"target"}),
		used: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_grants_used_total",
			Help: "Calls allowed by a grant (a single-use grant consumed or a time-bound grant used), by target.",
		}, []string{"target"}),
		ended: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_grants_ended_total",
			Help: "Grants that ended, by target and reason (consumed, expired, revoked).",
		}, []string{"target", "reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.opened, m.decided, m.approval, m.holds, m.holdSecs, m.issued, m.used, m.ended, gauges{m})
	}
	return m
}

// event counts one event this replica wrote.
func (m *Metrics) event(e *Event) {
	switch e.Type {
	case EventRequestOpened:
		m.opened.WithLabelValues(e.Request.Target).Inc()
	case EventRequestApproved, EventRequestDenied, EventRequestExpired, EventRequestCancelled:
		r := e.Request
		verdict := string(r.State)
		m.decided.WithLabelValues(r.Target, verdict).Inc()
		if e.Type == EventRequestApproved || e.Type == EventRequestDenied {
			m.approval.WithLabelValues(verdict).Observe(max(e.At.Sub(r.CreatedAt), 0).Seconds())
		}
	case EventGrantIssued:
		m.issued.WithLabelValues(e.Grant.Target).Inc()
	case EventGrantUsed:
		m.used.WithLabelValues(e.Grant.Target).Inc()
	case EventGrantConsumed:
		m.used.WithLabelValues(e.Grant.Target).Inc()
		m.ended.WithLabelValues(e.Grant.Target, string(GrantConsumed)).Inc()
	case EventGrantExpired:
		m.ended.WithLabelValues(e.Grant.Target, string(GrantExpired)).Inc()
	case EventGrantRevoked:
		m.ended.WithLabelValues(e.Grant.Target, string(GrantRevoked)).Inc()
	}
}

// hold counts one held call.
func (m *Metrics) hold(outcome string, d time.Duration) {
	m.holds.WithLabelValues(outcome).Inc()
	m.holdSecs.WithLabelValues(outcome).Observe(d.Seconds())
}

// gauges reads the pending requests and live grants at scrape time.
type gauges struct{ m *Metrics }

func (g gauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- descPending
	ch <- descLive
}

func (g gauges) Collect(ch chan<- prometheus.Metric) {
	s := g.m.svc.Load()
	if s == nil {
		ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, 0)
		return
	}
	live := map[string]int{}
	s.mu.RLock()
	pending := len(s.pending)
	for _, gs := range s.active {
		for _, gr := range gs {
			live[gr.Target]++
		}
	}
	s.mu.RUnlock()
	ch <- prometheus.MustNewConstMetric(descPending, prometheus.GaugeValue, float64(pending))
	for t, n := range live {
		ch <- prometheus.MustNewConstMetric(descLive, prometheus.GaugeValue, float64(n), t)
	}
}
