package serve

import (
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy/rego"
)

// statsCollector exposes the counters identity and policy keep themselves
// (read at scrape time, so the hot path pays nothing for metrics).
type statsCollector struct {
	ver   *identity.Verifier
	store *rego.Store
}

var (
	descTokenCache = prometheus.NewDesc("airlock_token_cache_total", "Token verifications answered from the verified-token cache (hit) or not (miss).", []string{"result"}, nil)
	descSigChecks  = prometheus.NewDesc("airlock_token_signature_checks_total", "Token signatures verified with a key.", nil, nil)
	descJWKS       = prometheus.NewDesc("airlock_jwks_fetches_total", "Discovery and JWKS fetch attempts, failed ones included.", nil, nil)
	descPolicyHit  = prometheus.NewDesc("airlock_policy_decision_cache_total", "Policy decisions answered from the decision cache (hit) or evaluated (miss), for the serving policy version.", []string{"result"}, nil)
	descPolicyOn   = prometheus.NewDesc("airlock_policy_decision_cache_enabled", "1 when the serving policy's decisions are cacheable.", nil, nil)
)

func (c statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTokenCache, descSigChecks, descJWKS, descPolicyHit, descPolicyOn} {
		ch <- d
	}
}

func (c statsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.ver.Stats()
	ch <- prometheus.MustNewConstMetric(descTokenCache, prometheus.CounterValue, float64(s.CacheHits), "hit")
	ch <- prometheus.MustNewConstMetric(descTokenCache, prometheus.CounterValue, float64(s.CacheMisses), "miss")
	ch <- prometheus.MustNewConstMetric(descSigChecks, prometheus.CounterValue, float64(s.SignatureChecks))
	ch <- prometheus.MustNewConstMetric(descJWKS, prometheus.CounterValue, float64(s.KeySetFetches))
	ps := c.store.Current().CacheStats()
	on := 0.0
	if ps.Enabled {
		on = 1
	}
	ch <- prometheus.MustNewConstMetric(descPolicyOn, prometheus.GaugeValue, on)
	ch <- prometheus.MustNewConstMetric(descPolicyHit, prometheus.CounterValue, float64(ps.Hits), "hit")
	ch <- prometheus.MustNewConstMetric(descPolicyHit, prometheus.CounterValue, float64(ps.Misses), "miss")
}

// grpcHandlingBuckets are the buckets of grpc_server_handling_seconds:
// from a decided Check (tens of microseconds) to a held one (the hold
// window, up to minutes) and long ext_proc and ADS streams.
var grpcHandlingBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5, 30, 120, 600}

// targetNames are the configured targets' names: the target label values
// the metrics allow.
func targetNames(cfg *config.Config) []string {
	names := make([]string, 0, len(cfg.Targets))
	for _, t := range cfg.Targets {
		names = append(names, t.Name)
	}
	return names
}
