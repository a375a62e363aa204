package grants

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// The access metrics follow a request through its life: each script
// drives a Service (manual clock and expiry) and checks every series.
func TestAccessMetrics(t *testing.T) {
	timeBound := approval(func(a *policy.Approval) { a.SingleUse, a.GrantDuration = false, 10*time.Minute })
	tests := []struct {
		name   string
		script func(t *testing.T, f *fixture)
		want   map[string]float64 // series (as testutil names them) → value
	}{
		{"denied after 30s", func(t *testing.T, f *fixture) {
			r := f.open(openParams("delete_repo", `{}`, approval(nil)))
			f.clk.Add(30 * time.Second)
			f.decide(r.ID, bob, VerdictDeny, "no")
		}, map[string]float64{"opened": 1, "decided/denied": 1, "approval_count/denied": 1, "approval_sum/denied": 30, "pending": 0}},
		{"expired", func(t *testing.T, f *fixture) {
			f.open(openParams("delete_repo", `{}`, approval(nil)))
			f.clk.Add(f.s.cfg.PendingTTL + time.Minute)
			f.s.sweep()
		}, map[string]float64{"opened": 1, "decided/expired": 1, "approval_count/denied": 0, "approval_count/approved": 0, "pending": 0}},
		{"still pending", func(t *testing.T, f *fixture) {
			f.open(openParams("delete_repo", `{}`, approval(nil)))
			f.open(openParams("delete_repo", `{"other":1}`, approval(nil)))
		}, map[string]float64{"opened": 2, "pending": 2}},
		{"time-bound grant used twice, then revoked", func(t *testing.T, f *fixture) {
			r := f.open(openParams("deploy", `{}`, timeBound))
			f.clk.Add(5 * time.Minute)
			r = f.decide(r.ID, bob, VerdictApprove, "ok")
			for range 2 {
				if _, err := f.s.ConsumeFor(f.ctx, r.GrantID, alice); err != nil {
					t.Fatal(err)
				}
			}
			if got := gaugeValue(t, f.s.metrics, "live"); got != 1 {
				t.Errorf("airlock_grants_live{target=github} = %v while the grant is active, want 1", got)
			}
			if _, err := f.s.Revoke(f.ctx, r.GrantID, bob, "done"); err != nil {
				t.Fatal(err)
			}
		}, map[string]float64{"opened": 1, "decided/approved": 1, "approval_count/approved": 1, "approval_sum/approved": 300,
			"issued": 1, "used": 2, "ended/revoked": 1, "live": 0}},
		{"single-use grant consumed", func(t *testing.T, f *fixture) {
			r := f.open(openParams("delete_repo", `{}`, approval(nil)))
			r = f.decide(r.ID, bob, VerdictApprove, "ok")
			if _, err := f.s.ConsumeFor(f.ctx, r.GrantID, alice); err != nil {
				t.Fatal(err)
			}
		}, map[string]float64{"issued": 1, "used": 1, "ended/consumed": 1, "live": 0}},
		{"time-bound grant expires", func(t *testing.T, f *fixture) {
			r := f.open(openParams("deploy", `{}`, timeBound))
			f.decide(r.ID, bob, VerdictApprove, "ok")
			f.clk.Add(11 * time.Minute)
			f.s.sweep()
		}, map[string]float64{"issued": 1, "used": 0, "ended/expired": 1, "live": 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			clk := newClock()
			s, err := New(NewMemStore(), testConfig(), Options{Now: clk.Now, Metrics: m, manualExpiry: true})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			f := &fixture{t: t, s: s, clk: clk, rec: &recorder{}, ctx: context.Background()}
			tt.script(t, f)
			for k, want := range tt.want {
				if got := seriesValue(t, m, k); got != want {
					t.Errorf("%s = %v, want %v", k, got, want)
				}
			}
			if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
				t.Errorf("promlint: %v %v", problems, err)
			}
		})
	}
}

// seriesValue reads the series a test names: "opened", "decided/<verdict>",
// "approval_count/<verdict>", "approval_sum/<verdict>", "issued", "used",
// "ended/<reason>", "pending", "live" (target github throughout).
func seriesValue(t *testing.T, m *Metrics, k string) float64 {
	t.Helper()
	kind, arg, _ := strings.Cut(k, "/")
	switch kind {
	case "opened":
		return testutil.ToFloat64(m.opened.WithLabelValues("github"))
	case "decided":
		return testutil.ToFloat64(m.decided.WithLabelValues("github", arg))
	case "approval_count", "approval_sum":
		var d dto.Metric
		if err := m.approval.WithLabelValues(arg).(prometheus.Metric).Write(&d); err != nil {
			t.Fatal(err)
		}
		h := d.GetHistogram()
		if kind == "approval_count" {
			return float64(h.GetSampleCount())
		}
		return h.GetSampleSum()
	case "issued":
		return testutil.ToFloat64(m.issued.WithLabelValues("github"))
	case "used":
		return testutil.ToFloat64(m.used.WithLabelValues("github"))
	case "ended":
		return testutil.ToFloat64(m.ended.WithLabelValues("github", arg))
	case "pending", "live":
		return gaugeValue(t, m, kind)
	}
	t.Fatalf("unknown series %q", k)
	return 0
}

// gaugeValue reads airlock_access_requests_pending ("pending") or
// airlock_grants_live{target="github"} ("live"; 0 when absent) as a
// scrape does.
func gaugeValue(t *testing.T, m *Metrics, which string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(gauges{m})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	name := map[string]string{"pending": "airlock_access_requests_pending", "live": "airlock_grants_live"}[which]
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, s := range mf.GetMetric() {
			if which == "pending" || (len(s.GetLabel()) == 1 && s.GetLabel()[0].GetValue() == "github") {
				return s.GetGauge().GetValue()
			}
		}
	}
	return 0
}

// Each held call is counted once by its outcome, with its duration.
func TestHoldMetrics(t *testing.T) {
	tests := []struct {
		name    string
		window  time.Duration
		verdict Verdict // "" : nobody decides
		cancel  bool    // the caller (Envoy) gives up
		want    string
	}{
		{"approved", time.Minute, VerdictApprove, false, "allowed"},
		{"denied", time.Minute, VerdictDeny, false, "denied"},
		{"window passes", 10 * time.Millisecond, "", false, "pending"},
		{"caller gives up", time.Minute, "", true, "error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := NewMetrics(prometheus.NewRegistry())
			s, err := New(NewMemStore(), testConfig(), Options{Metrics: m})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			s.cfg.HoldWindow = tt.window
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events := s.Subscribe(ctx)
			go func() {
				for e := range events {
					if e.Type != EventRequestOpened {
						continue
					}
					switch {
					case tt.cancel:
						cancel()
					case tt.verdict != "":
						if _, err := s.Decide(context.Background(), e.Request.ID, bob, tt.verdict, "r"); err != nil {
							t.Error(err)
						}
					}
					return
				}
			}()
			_, _ = s.Hold(ctx, openParams("t", `{}`, approval(nil)))
			if got := testutil.ToFloat64(m.holds.WithLabelValues(tt.want)); got != 1 {
				t.Errorf("airlock_holds_total{outcome=%s} = %v, want 1", tt.want, got)
			}
			if n := testutil.CollectAndCount(m.holds); n != 1 {
				t.Errorf("%d hold series, want 1", n)
			}
			if n := testutil.CollectAndCount(m.holdSecs); n != 1 {
				t.Errorf("%d hold duration series, want 1", n)
			}
		})
	}
}
