package extproc

import "github.com/prometheus/client_golang/prometheus"

// metrics are the ext_proc series. Label values are bounded: outcome and
// direction are fixed sets, target a configured target's name (or
// "other"), detector a masking detector's name from the profiles.
type metrics struct {
	streams   *prometheus.CounterVec // by outcome
	masked    *prometheus.CounterVec // by target and detector
	messages  *prometheus.CounterVec // recorded, by direction
	tooLarge  prometheus.Counter     // responses over the response limit
	inFlight  prometheus.Gauge       // streams open now
	saturated prometheus.Counter     // streams that filled the airlock_proc breaker
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_proc_streams_total", Help: "ext_proc streams by how they ended.",
		}, []string{"outcome"}),
		masked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_proc_masked_total", Help: "Values masked in responses, by target and detector (never the values).",
		}, []string{"target", "detector"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_proc_messages_total", Help: "MCP messages recorded, by direction.",
		}, []string{"direction"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_proc_streams_in_flight", Help: "ext_proc streams open now (one per MCP exchange, SSE included).",
		}),
		saturated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_proc_breaker_saturated_total",
			Help: "ext_proc streams that arrived with the airlock_proc circuit breaker (limits.max_streams) full: " +
				"Envoy refuses the next ones (its upstream_rq_overflow).",
		}),
		tooLarge: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_proc_responses_too_large_total", Help: "Responses withheld for a body over limits.max_response_bytes.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.masked, m.messages, m.tooLarge, m.inFlight, m.saturated)
	}
	return m
}

// targetLabel is the target label of a stream: its target when the
// processor was told the configured targets and it is one of them (it
// comes from ext_authz's metadata), otherwise "other".
func (p *Processor) targetLabel(t string) string {
	if _, ok := p.targets[t]; ok {
		return t
	}
	return "other"
}
