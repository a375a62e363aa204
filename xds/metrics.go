package xds

import "github.com/prometheus/client_golang/prometheus"

// metrics are the server's Prometheus series.
type metrics struct {
	nacks       *prometheus.CounterVec // by type_url
	pushes      *prometheus.CounterVec // by type_url and mode
	streams     *prometheus.GaugeVec   // by mode
	grantRoutes prometheus.Gauge
	refused     *prometheus.CounterVec // by reason
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		nacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_xds_nacks_total",
			Help: "xDS responses an Envoy rejected (NACK), by resource type.",
		}, []string{"type_url"}),
		pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_xds_pushes_total",
			Help: "xDS responses sent to Envoys, by resource type and protocol (sotw, delta).",
		}, []string{"type_url", "mode"}),
		streams: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "airlock_xds_connected_streams",
			Help: "Open xDS streams, by protocol (sotw, delta).",
		}, []string{"mode"}),
		grantRoutes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_xds_grant_routes",
			Help: "Live grants with a route served to Envoy.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_xds_refused_total",
			Help: "xDS streams refused, by reason (envoy_below_floor, no_node_id).",
		}, []string{"reason"}),
	}
	if reg != nil {
		reg.MustRegister(m.nacks, m.pushes, m.streams, m.grantRoutes, m.refused)
	}
	return m
}
