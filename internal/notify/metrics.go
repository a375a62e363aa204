package notify

import "github.com/prometheus/client_golang/prometheus"

var (
	descDelivered = prometheus.NewDesc("airlock_webhook_deliveries_total", "Events a webhook's receiver accepted (2xx), by webhook.", []string{"webhook"}, nil)
	descFailed    = prometheus.NewDesc("airlock_webhook_failures_total", "Events given up on (attempts exhausted or refused by the receiver), by webhook.", []string{"webhook"}, nil)
	descAttempts  = prometheus.NewDesc("airlock_webhook_attempts_total", "HTTP attempts, retries included, by webhook.", []string{"webhook"}, nil)
	descDropped   = prometheus.NewDesc("airlock_webhook_dropped_total", "Events dropped from a full queue (notifications.queue_size), by webhook.", []string{"webhook"}, nil)
	descQueued    = prometheus.NewDesc("airlock_webhook_queued_events", "Events waiting to be sent now, by webhook.", []string{"webhook"}, nil)
)

// Collector exports Stats to Prometheus, read at scrape time (the
// delivery path keeps only its atomic counters). The webhook label is a
// configured webhook's name.
func (s *Sender) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Sender }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descDelivered, descFailed, descAttempts, descDropped, descQueued} {
		ch <- d
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.Stats() {
		ch <- prometheus.MustNewConstMetric(descDelivered, prometheus.CounterValue, float64(st.Sent), st.Webhook)
		ch <- prometheus.MustNewConstMetric(descFailed, prometheus.CounterValue, float64(st.Failed), st.Webhook)
		ch <- prometheus.MustNewConstMetric(descAttempts, prometheus.CounterValue, float64(st.Attempts), st.Webhook)
		ch <- prometheus.MustNewConstMetric(descDropped, prometheus.CounterValue, float64(st.Dropped), st.Webhook)
		ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(st.Queued), st.Webhook)
	}
}
