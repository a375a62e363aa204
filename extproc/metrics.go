package extproc

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	streams  *prometheus.CounterVec // by outcome
	masked   *prometheus.CounterVec // by mask type
	messages *prometheus.CounterVec // recorded, by direction
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		streams: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_proc_streams_total", Help: "ext_proc streams by how they ended.",
		}, []string{"outcome"}),
		masked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_proc_masked_total", Help: "Values masked in responses, by type (never the values).",
		}, []string{"type"}),
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_proc_messages_total", Help: "MCP messages recorded, by direction.",
		}, []string{"direction"}),
	}
	if reg != nil {
		reg.MustRegister(m.streams, m.masked, m.messages)
	}
	return m
}
