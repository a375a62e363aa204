package audit

import (
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the audit pipeline's Prometheus metrics, mirrored in atomic
// counters that Stats reads.
type metrics struct {
	recorded *prometheus.CounterVec // kind
	dropped  *prometheus.CounterVec // kind
	rejected *prometheus.CounterVec // kind
	shipped  *prometheus.CounterVec // table
	shipErrs prometheus.Counter
	corrupt  prometheus.Counter
	future   prometheus.Counter
	bytes    prometheus.Gauge
	full     prometheus.Gauge
	segments prometheus.Gauge
	shipSecs prometheus.Histogram
	shipLag  prometheus.Gauge
	lastShip prometheus.Gauge

	recK, dropK, rejK [numKinds]prometheus.Counter

	nRecorded, nDropped, nRejected, nShipped, nShipErrs, nCorrupt, nFuture atomic.Int64
}

// shipLabel is the table label of airlock_audit_shipped_rows_total by
// kind: the ClickHouse table each kind's rows go to.
var shipLabel = [numKinds]string{kindEvent: "events", kindDecision: "decisions", kindRequest: "request_events", kindGrant: "grant_events"}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		recorded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_audit_recorded_total",
			Help: "Audit rows accepted by Record, by kind (event, decision, request, grant).",
		}, []string{"kind"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_audit_dropped_total",
			Help: "Audit rows dropped because the spool was full (full_policy drop_newest), by kind.",
		}, []string{"kind"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_audit_rejected_total",
			Help: "Audit rows refused because the spool was full (full_policy fail_closed), by kind.",
		}, []string{"kind"}),
		shipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "airlock_audit_shipped_rows_total",
			Help: "Rows ClickHouse (or the embedded store) acknowledged, by table.",
		}, []string{"table"}),
		shipErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_audit_ship_errors_total",
			Help: "Failed attempts to write a batch (retried until it succeeds).",
		}),
		corrupt: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_audit_spool_corrupt_bytes_total",
			Help: "Spool bytes skipped as torn or corrupt (after a crash).",
		}),
		future: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "airlock_audit_spool_future_records_total",
			Help: "Spool records in a format newer than this airlock reads (left by a newer airlock before a downgrade); their segments are kept, not shipped, for a newer airlock to ship.",
		}),
		bytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_audit_spool_bytes",
			Help: "Bytes held by the spool: segments on disk and rows not yet written.",
		}),
		full: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_audit_spool_full",
			Help: "1 while the spool is full and rows are dropped or refused (alarm on this).",
		}),
		segments: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_audit_spool_segments",
			Help: "Sealed spool segments waiting to be shipped.",
		}),
		shipSecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "airlock_audit_ship_seconds",
			Help:    "Time to write one batch to ClickHouse (or the embedded store).",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		shipLag: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_audit_ship_lag_seconds",
			Help: "Age of the oldest row of the last batch written, when it was written: how far the store trails the gateway (read it with airlock_audit_last_ship_timestamp_seconds, which stops moving while writes fail).",
		}),
		lastShip: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "airlock_audit_last_ship_timestamp_seconds",
			Help: "When a batch was last written to ClickHouse (or the embedded store), in Unix seconds; 0 before the first.",
		}),
	}
	for k := kindEvent; int(k) < numKinds; k++ {
		m.recK[k] = m.recorded.WithLabelValues(k.String())
		m.dropK[k] = m.dropped.WithLabelValues(k.String())
		m.rejK[k] = m.rejected.WithLabelValues(k.String())
	}
	if reg != nil {
		reg.MustRegister(m.recorded, m.dropped, m.rejected, m.shipped, m.shipErrs, m.corrupt, m.future, m.bytes, m.full, m.segments, m.shipSecs, m.shipLag, m.lastShip)
	}
	return m
}

func (m *metrics) record(k kind) {
	m.recK[k].Inc()
	m.nRecorded.Add(1)
}

func (m *metrics) drop(k kind) {
	m.dropK[k].Inc()
	m.nDropped.Add(1)
}

func (m *metrics) reject(k kind) {
	m.rejK[k].Inc()
	m.nRejected.Add(1)
}

func (m *metrics) ship(table string, n int) {
	m.shipped.WithLabelValues(table).Add(float64(n))
	m.nShipped.Add(int64(n))
}

// wrote notes a batch written at now whose oldest row is from oldest.
func (m *metrics) wrote(oldest, now time.Time) {
	m.lastShip.Set(float64(now.UnixNano()) / 1e9)
	if !oldest.IsZero() {
		m.shipLag.Set(max(now.Sub(oldest), 0).Seconds())
	}
}

// recordTime is a row's time (zero when unset).
func recordTime(r Record) time.Time {
	switch r := r.(type) {
	case *Event:
		return r.Time
	case *Decision:
		return r.Time
	case *RequestEvent:
		return r.Time
	case *GrantEvent:
		return r.Time
	}
	return time.Time{}
}

func (m *metrics) shipError() {
	m.shipErrs.Inc()
	m.nShipErrs.Add(1)
}

func (m *metrics) corruptBytes(n int) {
	m.corrupt.Add(float64(n))
	m.nCorrupt.Add(int64(n))
}

func (m *metrics) futureRecords(n int) {
	m.future.Add(float64(n))
	m.nFuture.Add(int64(n))
}

// Stats is a snapshot of the pipeline's counters since it was opened.
type Stats struct {
	Recorded   int64 // rows accepted by Record
	Dropped    int64 // rows dropped by drop_newest
	Rejected   int64 // rows refused by fail_closed
	Shipped    int64 // rows acknowledged by ClickHouse (or written by the embedded store)
	ShipErrors int64 // failed batch writes (each retried)
	Corrupt    int64 // spool bytes skipped as torn or corrupt
	Future     int64 // spool records of a newer format, kept unshipped for a newer airlock
	SpoolBytes int64 // bytes held by the spool now
	Full       bool  // the spool is full now
	Segments   int   // sealed segments waiting now
}

func (m *metrics) stats() Stats {
	return Stats{
		Recorded:   m.nRecorded.Load(),
		Dropped:    m.nDropped.Load(),
		Rejected:   m.nRejected.Load(),
		Shipped:    m.nShipped.Load(),
		Future:     m.nFuture.Load(),
		ShipErrors: m.nShipErrs.Load(),
		Corrupt:    m.nCorrupt.Load(),
	}
}
