package check

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql/parser"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	rulesFile      = "../prometheus/airlock-rules.yaml"
	chartRulesFile = chartDir + "/files/prometheus/airlock-rules.yaml"
	dashboardsDir  = "../grafana"
)

// promql is Prometheus' own PromQL parser, with its default functions.
var promql = parser.NewParser(parser.Options{})

// TestAlertRules: the rules file is a valid Prometheus rule file
// (rulefmt, as `promtool check rules`: unknown fields refused, every expr
// parsed, label and annotation templates parsed), and every alert says
// how urgent it is and what it means.
func TestAlertRules(t *testing.T) {
	rgs, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	for _, err := range errs {
		t.Error(err)
	}
	if rgs == nil || len(rgs.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	alerts := map[string]bool{}
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			if _, err := promql.ParseExpr(r.Expr); err != nil {
				t.Errorf("%s: %v", r.Alert, err)
			}
			if r.Alert == "" {
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s twice", r.Alert)
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "page" && s != "warning" {
				t.Errorf("%s: severity %q, want page or warning", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
		}
	}
	// docs/operations.md's alerts, and certificate expiry.
	for _, a := range []string{"AirlockFailingChecks", "AirlockErrors", "AirlockSlowDecisions", "AirlockCircuitBreakerFull",
		"AirlockApprovalsNotAnswered", "AirlockSlowApprovals", "AirlockRequestsExpiring", "AirlockWebhookFailing",
		"AirlockAuditSpoolFull", "AirlockAuditSpoolFilling", "AirlockAuditNotShipping", "AirlockAuditRowsLost",
		"AirlockEnvoyRejectsConfig", "AirlockEnvoyNotSynced", "AirlockEnvoyRefused", "AirlockCertificateExpiring"} {
		if !alerts[a] {
			t.Errorf("no alert %s", a)
		}
	}
}

// TestAlertRulesRejectsBadRules: the check above would catch a broken
// rule file.
func TestAlertRulesRejectsBadRules(t *testing.T) {
	for _, tc := range []struct{ name, rules string }{
		{"bad PromQL", "groups: [{name: a, rules: [{alert: A, expr: 'sum(rate(x[5m])'}]}]"},
		{"unknown field", "groups: [{name: a, rules: [{alert: A, expr: up == 0, severity: page}]}]"},
		{"bad template", "groups: [{name: a, rules: [{alert: A, expr: up == 0, annotations: {summary: '{{ $labels.x '}}]}]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, errs := rulefmt.Parse([]byte(tc.rules), false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler)); len(errs) == 0 {
				t.Errorf("rulefmt took %q", tc.rules)
			}
		})
	}
}

// grafanaVars are what Grafana puts for the variables the dashboards use,
// so that their queries parse as the PromQL Prometheus receives.
var grafanaVars = strings.NewReplacer("${target}", ".*", "$target", ".*", "$__rate_interval", "1m", "$__interval", "15s", "$__range", "1h")

// grafanaDashboard is the part of a dashboard the check reads; unknown
// fields are allowed (Grafana's schema is large), these must be right.
type grafanaDashboard struct {
	Title      string         `json:"title"`
	UID        string         `json:"uid"`
	Panels     []grafanaPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name  string `json:"name"`
			Type  string `json:"type"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type grafanaPanel struct {
	ID         int                `json:"id"`
	Type       string             `json:"type"`
	Title      string             `json:"title"`
	Datasource *grafanaDatasource `json:"datasource"`
	Panels     []grafanaPanel     `json:"panels"`
	Targets    []struct {
		RefID      string             `json:"refId"`
		Expr       string             `json:"expr"`
		Datasource *grafanaDatasource `json:"datasource"`
	} `json:"targets"`
}

type grafanaDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

// TestGrafanaDashboards: each dashboard decodes, has the ${datasource}
// Prometheus variable and the target variable, queries only through
// ${datasource}, and every panel query parses as PromQL.
func TestGrafanaDashboards(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards in %s (%v)", dashboardsDir, err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var d grafanaDashboard
			if err := kjson.UnmarshalCaseSensitivePreserveInts(b, &d); err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) || d.Title == "" || d.UID == "" {
				t.Fatalf("title %q uid %q: want both", d.Title, d.UID)
			}
			vars := map[string]string{}
			for _, v := range d.Templating.List {
				vars[v.Name] = v.Type
				if v.Name == "datasource" && v.Query != "prometheus" {
					t.Errorf("variable datasource queries %v, want prometheus", v.Query)
				}
			}
			if vars["datasource"] != "datasource" || vars["target"] != "query" {
				t.Errorf("variables %v: want datasource (a Prometheus data source) and target (a query)", vars)
			}
			ids, queries := map[int]bool{}, 0
			var walk func([]grafanaPanel)
			walk = func(ps []grafanaPanel) {
				for _, p := range ps {
					if ids[p.ID] {
						t.Errorf("panel id %d twice", p.ID)
					}
					ids[p.ID] = true
					walk(p.Panels)
					if p.Type == "row" {
						continue
					}
					if p.Datasource == nil || p.Datasource.UID != "${datasource}" || p.Datasource.Type != "prometheus" {
						t.Errorf("%s: data source %+v, want the ${datasource} variable", p.Title, p.Datasource)
					}
					if len(p.Targets) == 0 {
						t.Errorf("%s: no query", p.Title)
					}
					for _, q := range p.Targets {
						queries++
						if q.Datasource != nil && q.Datasource.UID != "${datasource}" {
							t.Errorf("%s %s: data source %+v", p.Title, q.RefID, q.Datasource)
						}
						if err := parsePanelQuery(q.Expr); err != nil {
							t.Errorf("%s %s: %v", p.Title, q.RefID, err)
						}
					}
				}
			}
			walk(d.Panels)
			if queries == 0 {
				t.Error("no panel queries")
			}
		})
	}
}

// parsePanelQuery parses a panel's query as Prometheus would receive it.
func parsePanelQuery(expr string) error {
	if strings.TrimSpace(expr) == "" {
		return fmt.Errorf("empty query")
	}
	_, err := promql.ParseExpr(grafanaVars.Replace(expr))
	return err
}

func TestParsePanelQuery(t *testing.T) {
	for _, tc := range []struct {
		expr string
		ok   bool
	}{
		{`sum by (target) (rate(airlock_authz_decisions_total{target=~"$target"}[$__rate_interval]))`, true},
		{`sum by (target) (rate(airlock_authz_decisions_total{target=~"$target"}[$__rate_interval])`, false},
		{`rate(x[$__rate_interval]) +`, false},
		{``, false},
	} {
		if err := parsePanelQuery(tc.expr); (err == nil) != tc.ok {
			t.Errorf("parsePanelQuery(%q) = %v, want ok %v", tc.expr, err, tc.ok)
		}
	}
}

// TestHelmPrometheusRule: with prometheusRule.enabled the chart renders a
// PrometheusRule (strictly decoded) whose spec is the rules file; the
// chart's copy of the file is the file; off by default.
func TestHelmPrometheusRule(t *testing.T) {
	want, err := os.ReadFile(rulesFile)
	if err != nil {
		t.Fatal(err)
	}
	if copied, err := os.ReadFile(chartRulesFile); err != nil || string(copied) != string(want) {
		t.Fatalf("%s differs from %s (%v): copy it", chartRulesFile, rulesFile, err)
	}
	j, err := yaml.YAMLToJSONStrict(want)
	if err != nil {
		t.Fatal(err)
	}
	var spec monitoringv1.PrometheusRuleSpec
	if strict, err := kjson.UnmarshalStrict(j, &spec, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields); err != nil || len(strict) > 0 {
		t.Fatalf("%s as a PrometheusRule spec: %v %v", rulesFile, err, strict)
	}

	ch := loadChart(t)
	if _, ok := renderObjects(t, ch, map[string]any{})["PrometheusRule/airlock"]; ok {
		t.Error("a PrometheusRule rendered by default")
	}
	objs := renderObjects(t, ch, map[string]any{"prometheusRule": map[string]any{"enabled": true, "labels": map[string]any{"release": "kube-prometheus-stack"}}})
	pr, ok := objs["PrometheusRule/airlock"].(*monitoringv1.PrometheusRule)
	if !ok {
		t.Fatalf("prometheusRule.enabled: no PrometheusRule airlock among %d objects", len(objs))
	}
	if pr.Labels["release"] != "kube-prometheus-stack" {
		t.Errorf("labels %v: want prometheusRule.labels among them", pr.Labels)
	}
	if !reflect.DeepEqual(pr.Spec, spec) {
		t.Errorf("the chart's PrometheusRule spec differs from %s", rulesFile)
	}
	// And it is still a rule file Prometheus takes.
	out, err := yaml.Marshal(pr.Spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, errs := rulefmt.Parse(out, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler)); len(errs) > 0 {
		t.Errorf("the chart's PrometheusRule: %v", errs)
	}
}

// TestDashboardsAndRulesUseDocumentedMetrics: every metric the rules and
// the dashboard select (found by Prometheus' parser, not a regex) is
// documented in docs/operations.md, or is one of Envoy's statistics listed
// in docs/deploy.md's "Dashboards and alerts". internal/serve checks the
// same names against a running airlock's /metrics.
func TestDashboardsAndRulesUseDocumentedMetrics(t *testing.T) {
	ops, err := os.ReadFile(filepath.Join(repoRoot, "docs/operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	dep, err := os.ReadFile(filepath.Join(repoRoot, "docs/deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, envoySection, ok := strings.Cut(string(dep), "## Dashboards and alerts")
	if !ok {
		t.Fatal(`docs/deploy.md has no "Dashboards and alerts" section`)
	}
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("`([a-z_:][a-z0-9_:]*)`").FindAllStringSubmatch(string(ops), -1) {
		documented[m[1]] = true
	}
	for _, m := range regexp.MustCompile("`(envoy_[a-z0-9_]+)`").FindAllStringSubmatch(envoySection, -1) {
		documented[m[1]] = true
	}

	var exprs []string
	rgs, errs := rulefmt.ParseFile(rulesFile, false, model.UTF8Validation, promql, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, g := range rgs.Groups {
		for _, r := range g.Rules {
			exprs = append(exprs, r.Expr)
		}
	}
	files, _ := filepath.Glob(filepath.Join(dashboardsDir, "*.json"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d grafanaDashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatal(err)
		}
		var walk func([]grafanaPanel)
		walk = func(ps []grafanaPanel) {
			for _, p := range ps {
				walk(p.Panels)
				for _, q := range p.Targets {
					exprs = append(exprs, grafanaVars.Replace(q.Expr))
				}
			}
		}
		walk(d.Panels)
	}
	n := 0
	for _, e := range exprs {
		ast, err := promql.ParseExpr(e)
		if err != nil {
			t.Errorf("%q: %v", e, err)
			continue
		}
		parser.Inspect(ast, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			n++
			name := vs.Name
			if name == "" {
				t.Errorf("%q selects series without a metric name", e)
				return nil
			}
			base := name
			for _, s := range []string{"_bucket", "_sum", "_count"} {
				if b, ok := strings.CutSuffix(name, s); ok && documented[b] {
					base = b
				}
			}
			if !documented[base] {
				t.Errorf("%s (in %q) is not documented in docs/operations.md (nor an Envoy statistic listed in docs/deploy.md)", name, e)
			}
			return nil
		})
	}
	if n < 40 {
		t.Errorf("only %d selectors found", n)
	}
}
