package xds

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

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

// Per-node series, read from Status at scrape time: one set per node
// connected now (a node that leaves is gone from the next scrape), so
// their number is bounded by the Envoys connected. A node with several
// streams (a reconnect overlapping the old stream) is reported once: ACKs
// and NACKs summed, the last push the latest, the rest from its newest
// stream. type is listeners, clusters or scoped_routes.
var (
	descNodeInfo = prometheus.NewDesc("airlock_xds_node_info",
		"1 for each connected Envoy node, with its cluster, Envoy version and xDS protocol (sotw, delta).",
		[]string{"node", "cluster", "envoy_version", "mode"}, nil)
	descNodeACKs = prometheus.NewDesc("airlock_xds_node_acks_total",
		"xDS responses a connected node acknowledged on its open streams, by resource type.", []string{"node", "type"}, nil)
	descNodeNACKs = prometheus.NewDesc("airlock_xds_node_nacks_total",
		"xDS responses a connected node rejected on its open streams, by resource type.", []string{"node", "type"}, nil)
	descNodePush = prometheus.NewDesc("airlock_xds_node_last_push_timestamp_seconds",
		"When airlock last sent a connected node a response, by resource type (Unix seconds).", []string{"node", "type"}, nil)
	descNodeVersion = prometheus.NewDesc("airlock_xds_node_version_info",
		"1 with the version a connected node last acknowledged, by resource type.", []string{"node", "type", "version"}, nil)
	descNodeSynced = prometheus.NewDesc("airlock_xds_node_synced",
		"1 when a connected node has acknowledged the current configuration of a resource type, 0 while stale or rejected.", []string{"node", "type"}, nil)
	descNodeBehind = prometheus.NewDesc("airlock_xds_node_behind",
		"Resources a connected node has not acknowledged yet, by resource type (for scoped routes, the live grants it lacks).", []string{"node", "type"}, nil)
)

// nodeCollector exports the per-node series of a Server.
type nodeCollector struct{ s *Server }

func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descNodeInfo, descNodeACKs, descNodeNACKs, descNodePush, descNodeVersion, descNodeSynced, descNodeBehind} {
		ch <- d
	}
}

type nodeType struct{ node, typ string }

func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.s.Status() // streams sorted by node, then connection time
	newest := map[string]StreamStatus{}
	acks, nacks := map[nodeType]int{}, map[nodeType]int{}
	push := map[nodeType]time.Time{}
	for _, ss := range st.Streams {
		if ss.Node == "" {
			continue // before its first request
		}
		newest[ss.Node] = ss
		for _, t := range ss.Types {
			if !servedType(t.Type) {
				continue
			}
			k := nodeType{ss.Node, t.Type}
			acks[k] += t.ACKs
			nacks[k] += t.NACKs
			if t.LastPush != nil && t.LastPush.After(push[k]) {
				push[k] = *t.LastPush
			}
		}
	}
	for node, ss := range newest {
		ch <- prometheus.MustNewConstMetric(descNodeInfo, prometheus.GaugeValue, 1, node, ss.Cluster, ss.EnvoyVersion, ss.Mode)
		for _, t := range ss.Types {
			if !servedType(t.Type) {
				continue // a type URL the client asked for that airlock does not serve: not a label value
			}
			k := nodeType{node, t.Type}
			ch <- prometheus.MustNewConstMetric(descNodeACKs, prometheus.CounterValue, float64(acks[k]), node, t.Type)
			ch <- prometheus.MustNewConstMetric(descNodeNACKs, prometheus.CounterValue, float64(nacks[k]), node, t.Type)
			if p, ok := push[k]; ok {
				ch <- prometheus.MustNewConstMetric(descNodePush, prometheus.GaugeValue, float64(p.UnixNano())/1e9, node, t.Type)
			}
			if t.AckedVersion != "" {
				ch <- prometheus.MustNewConstMetric(descNodeVersion, prometheus.GaugeValue, 1, node, t.Type, t.AckedVersion)
			}
			synced := 0.0
			if t.State == StateSynced {
				synced = 1
			}
			ch <- prometheus.MustNewConstMetric(descNodeSynced, prometheus.GaugeValue, synced, node, t.Type)
			ch <- prometheus.MustNewConstMetric(descNodeBehind, prometheus.GaugeValue, float64(t.Behind), node, t.Type)
		}
	}
}

// servedType reports whether a type name is one airlock serves (the type
// label's values).
func servedType(name string) bool {
	switch name {
	case "listeners", "clusters", "scoped_routes", "routes":
		return true
	}
	return false
}
