package serve_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	dto "github.com/prometheus/client_model/go"
)

// envoyStats are the Envoy statistics (Envoy's own /stats/prometheus,
// scraped from the gateway, not from airlock) the dashboards may use;
// docs/deploy.md "Dashboards and alerts" lists them. Any other envoy_
// name fails the test.
var envoyStats = []string{
	"envoy_cluster_circuit_breakers_default_rq_open",
	"envoy_cluster_upstream_rq_pending_overflow",
}

// TestDashboardsAndRulesUseServedMetrics: every metric the Grafana
// dashboards (deploy/grafana/*.json: panel queries and the target
// variable) and the alert rules (deploy/prometheus/*.yaml) name is served
// by a running airlock after a scripted session (runSession: mutual TLS,
// Envoy nodes on ADS, checks allowed, denied and held, masking, webhooks).
// A histogram is named by its _bucket, _sum or _count series; names
// starting envoy_ are Envoy's and must be in envoyStats.
func TestDashboardsAndRulesUseServedMetrics(t *testing.T) {
	_, file, _, _ := runtime.Caller(0)
	deploy := filepath.Join(filepath.Dir(file), "..", "..", "deploy")
	used := map[string][]string{} // metric name → where
	add := func(where, expr string) {
		for _, n := range promqlMetricNames(expr) {
			used[n] = append(used[n], where)
		}
	}

	dashboards, _ := filepath.Glob(filepath.Join(deploy, "grafana", "*.json"))
	rules, _ := filepath.Glob(filepath.Join(deploy, "prometheus", "*.yaml"))
	if len(dashboards) == 0 || len(rules) == 0 {
		t.Fatalf("dashboards %v, rules %v: want both", dashboards, rules)
	}
	for _, path := range dashboards {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		n := 0
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				add(filepath.Base(path)+": "+p.Title, tg.Expr)
				n++
			}
		}
		for _, v := range d.Templating.List {
			if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
				used[m[1]] = append(used[m[1]], filepath.Base(path)+": variable "+v.Name)
			}
		}
		if n == 0 {
			t.Errorf("%s: no panel queries", path)
		}
	}
	for _, path := range rules {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		var rf struct {
			Groups []struct {
				Rules []struct {
					Alert, Record, Expr string
				}
			}
		}
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				add(filepath.Base(path)+": "+r.Alert+r.Record, r.Expr)
			}
		}
	}
	if len(used) < 40 {
		t.Fatalf("only %d metric names found in the dashboards and rules: the extraction is broken", len(used))
	}

	fams := runSession(t).fams
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasPrefix(n, "envoy_") {
			if !slices.Contains(envoyStats, n) {
				t.Errorf("%s (in %v) is an Envoy statistic not in the documented list", n, used[n])
			}
			continue
		}
		if !served(fams, n) {
			t.Errorf("%s (in %v) is not served on /metrics", n, used[n])
		}
	}
}

// served reports whether /metrics holds series of name, a histogram's or
// summary's _bucket, _sum and _count included.
func served(fams map[string]*dto.MetricFamily, name string) bool {
	if mf := fams[name]; mf != nil && len(mf.GetMetric()) > 0 {
		return true
	}
	for _, s := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, s)
		if !ok {
			continue
		}
		mf := fams[base]
		if mf == nil || len(mf.GetMetric()) == 0 {
			return false
		}
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM:
			return true
		case dto.MetricType_SUMMARY:
			return s != "_bucket"
		}
	}
	return false
}

// dashboard is the part of a Grafana dashboard's JSON the test reads.
type dashboard struct {
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string `json:"name"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	Title   string  `json:"title"`
	Panels  []panel `json:"panels"` // a collapsed row's
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
}

func (d dashboard) allPanels() []panel {
	var out []panel
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

var (
	labelValues = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,`)
	// What is not a metric name in PromQL: string literals, label
	// matchers, ranges and subqueries (Grafana's $__rate_interval
	// included), grouping and matching label lists.
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|` + "`[^`]*`")
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "offset": true,
		"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
		"inf": true, "nan": true, "atan2": true}
)

// promqlMetricNames are the metric names a PromQL expression selects
// (identifiers that are neither functions, keywords nor label names).
// deploy/check parses the same expressions with Prometheus' own parser.
func promqlMetricNames(expr string) []string {
	e := promqlStrings.ReplaceAllString(expr, `""`)
	e = promqlMatchers.ReplaceAllString(e, " ")
	e = promqlRanges.ReplaceAllString(e, " ")
	e = promqlGrouping.ReplaceAllString(e, " ")
	var out []string
	for _, loc := range promqlIdent.FindAllStringIndex(e, -1) {
		name := e[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(e[loc[0]-1:loc[0]], "0123456789.$") {
			continue // a number's exponent or unit, a Grafana variable
		}
		if strings.HasPrefix(strings.TrimLeft(e[loc[1]:], " \t\n"), "(") || promqlKeywords[strings.ToLower(name)] {
			continue // a function call or an operator
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	return out
}

func TestPromQLMetricNames(t *testing.T) {
	tests := []struct {
		expr string
		want []string
	}{
		{`sum(rate(grpc_server_handled_total{grpc_service="a",grpc_code!="OK"}[5m])) > 0`, []string{"grpc_server_handled_total"}},
		{`histogram_quantile(0.99, sum by (le, outcome) (rate(airlock_authz_decision_seconds_bucket[$__rate_interval])))`, []string{"airlock_authz_decision_seconds_bucket"}},
		{`increase(a_total[5m]) > 0 or increase(b_total[5m]) > 0`, []string{"a_total", "b_total"}},
		{`(max(x) > 0 and time() - max(y) > 300) or max(z) > 300`, []string{"x", "y", "z"}},
		{`min by (role) (c) - time() < 14 * 86400`, []string{"c"}},
		{`a / on (node) group_left (cluster) b offset 5m`, []string{"a", "b"}},
		{`sum without (instance) (m{target=~"$target", x="by (y)"})`, []string{"m"}},
		{`1e3 * m2 > bool 5`, []string{"m2"}},
	}
	for _, tt := range tests {
		if got := promqlMetricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("promqlMetricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// FuzzPromQLMetricNames: the extraction never panics and returns only
// identifiers, none of them an operator keyword.
func FuzzPromQLMetricNames(f *testing.F) {
	for _, s := range []string{`sum by (le) (rate(a_bucket{x="}"}[5m]))`, `a or b`, `"unterminated`, `{`, `1e3m`, `$__rate_interval`} {
		f.Add(s)
	}
	ident := regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	f.Fuzz(func(t *testing.T, expr string) {
		for _, n := range promqlMetricNames(expr) {
			if !ident.MatchString(n) || promqlKeywords[strings.ToLower(n)] {
				t.Errorf("promqlMetricNames(%q) returned %q", expr, n)
			}
		}
	})
}
