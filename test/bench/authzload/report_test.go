package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestMedianPhase(t *testing.T) {
	ps := []Phase{
		{Round: 1, Mode: "open", RPS: 1990, Requests: 19900, Latency: Percentiles{P50: 0.3, P99: 2}, Service: &Percentiles{P99: 1}},
		{Round: 2, Mode: "open", RPS: 2000, Requests: 20000, Latency: Percentiles{P50: 0.2, P99: 9}, Service: &Percentiles{P99: 3}, Errors: 1, ErrorSamples: []string{"x"}, Saturated: true},
		{Round: 3, Mode: "open", RPS: 1000, Requests: 10000, Latency: Percentiles{P50: 0.4, P99: 3}, Service: &Percentiles{P99: 2}, Saturated: true},
	}
	got := medianPhase(ps)
	want := &Phase{Mode: "open", RPS: 1990, Requests: 19900, Latency: Percentiles{P50: 0.3, P99: 3}, Service: &Percentiles{P99: 2},
		Errors: 1, ErrorSamples: []string{"x"}, Saturated: true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("medianPhase (-want +got):\n%s", diff)
	}
	if medianPhase(nil) != nil {
		t.Error("no phases must give nil")
	}
	if one := medianPhase(ps[:1]); one.Round != 1 || one.Latency.P99 != 2 {
		t.Errorf("one phase must come back as it is, got %+v", one)
	}
}

func result(target string, closedRPS, openP99 float64, mod func(closed, open *Phase)) *TargetResult {
	// CPU per request in proportion to the throughput, as on idle cores.
	c := Phase{Mode: "closed", RPS: closedRPS, ServerCPU: 1e6 / closedRPS}
	o := Phase{Mode: "open", TargetRate: 2000, RPS: 2000, Latency: Percentiles{P99: openP99}}
	if mod != nil {
		mod(&c, &o)
	}
	return &TargetResult{Target: target, Launched: true, Phases: []Phase{c, o}}
}

func TestRatios(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name    string
		results []*TargetResult
		want    []Ratio
	}{
		{
			name:    "all goals met",
			results: []*TargetResult{result("noop", 10000, 1, nil), result("airlock", 8000, 1.5, nil), result("peer", 3000, 10, nil)},
			want: []Ratio{
				{Name: "airlock/no-op peak req/s", Value: 0.8, Goal: ">= 0.8", Met: &yes},
				{Name: "airlock/peer peak req/s", Value: 2.67, Goal: ">= 2", Met: &yes},
				{Name: "airlock p99 / no-op p99 (open loop)", Value: 1.5, Goal: "<= 1.5", Met: &yes},
				{Name: "airlock - no-op CPU µs per Check (closed loop)", Value: 25, Goal: "<= 30", Met: &yes},
				{Name: "peer p99 / no-op p99 (open loop)", Value: 10, Goal: "(reference)"},
				{Name: "airlock/no-op peak from CPU per Check (estimate for idle cores)", Value: 0.8, Goal: "(reference)"},
				{Name: "airlock/peer peak from CPU per Check (estimate for idle cores)", Value: 2.67, Goal: "(reference)"},
			},
		},
		{
			name: "saturation and errors are not ratios",
			results: []*TargetResult{
				result("noop", 10000, 1, nil),
				result("airlock", 6000, 0, func(c, o *Phase) { o.Saturated, o.RPS = true, 900 }),
				result("peer", 3000, 10, func(c, o *Phase) { c.Errors = 4 }),
			},
			want: []Ratio{
				{Name: "airlock/no-op peak req/s", Value: 0.6, Goal: ">= 0.8", Met: &no},
				{Name: "airlock/peer peak req/s", Goal: ">= 2", Met: &no, Note: "peer had 4 errors"},
				{Name: "airlock p99 / no-op p99 (open loop)", Goal: "<= 1.5", Met: &no, Note: "airlock could not keep 2000 req/s (answered 900/s): its p99 grows with the run"},
				{Name: "airlock - no-op CPU µs per Check (closed loop)", Value: 66.7, Goal: "<= 30", Met: &no},
				{Name: "peer p99 / no-op p99 (open loop)", Value: 10, Goal: "(reference)"},
				{Name: "airlock/no-op peak from CPU per Check (estimate for idle cores)", Value: 0.6, Goal: "(reference)"},
				{Name: "airlock/peer peak from CPU per Check (estimate for idle cores)", Value: 2, Goal: "(reference)"},
			},
		},
		{
			name:    "no peer: no peer ratios",
			results: []*TargetResult{result("noop", 10000, 1, nil), result("airlock", 7000, 2, nil)},
			want: []Ratio{
				{Name: "airlock/no-op peak req/s", Value: 0.7, Goal: ">= 0.8", Met: &no},
				{Name: "airlock p99 / no-op p99 (open loop)", Value: 2, Goal: "<= 1.5", Met: &no},
				{Name: "airlock - no-op CPU µs per Check (closed loop)", Value: 42.9, Goal: "<= 30", Met: &no},
				{Name: "airlock/no-op peak from CPU per Check (estimate for idle cores)", Value: 0.7, Goal: "(reference)"},
			},
		},
		{
			name: "CPU unknown for a running server",
			results: []*TargetResult{func() *TargetResult {
				r := result("noop", 10000, 1, nil)
				r.Launched = false
				return r
			}(), result("airlock", 7000, 2, nil)},
			want: []Ratio{
				{Name: "airlock/no-op peak req/s", Value: 0.7, Goal: ">= 0.8", Met: &no},
				{Name: "airlock p99 / no-op p99 (open loop)", Value: 2, Goal: "<= 1.5", Met: &no},
				{Name: "airlock - no-op CPU µs per Check (closed loop)", Goal: "<= 30", Met: &no, Note: "noop's CPU was not measured (not started by the driver)"},
				{Name: "airlock/no-op peak from CPU per Check (estimate for idle cores)", Goal: "(reference)", Note: "noop's CPU was not measured (not started by the driver)"},
			},
		},
		{
			name: "a target that answered nothing",
			results: []*TargetResult{result("noop", 10000, 1, nil), result("airlock", 0, 0, func(c, o *Phase) {
				c.RPS, c.ServerCPU, o.RPS, o.Saturated = 0, 0, 0, true
			})},
			want: []Ratio{
				{Name: "airlock/no-op peak req/s", Goal: ">= 0.8", Met: &no, Note: "no answers in the measured window"},
				{Name: "airlock p99 / no-op p99 (open loop)", Goal: "<= 1.5", Met: &no, Note: "airlock could not keep 2000 req/s (answered 0/s): its p99 grows with the run"},
				{Name: "airlock - no-op CPU µs per Check (closed loop)", Goal: "<= 30", Met: &no, Note: "airlock has no CPU figure (no answers in the window)"},
				{Name: "airlock/no-op peak from CPU per Check (estimate for idle cores)", Goal: "(reference)", Note: "airlock has no CPU figure (no answers in the window)"},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, ratios(tc.results)); diff != "" {
				t.Errorf("ratios (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWriteReportMarksSaturation(t *testing.T) {
	f, err := parseRunFlags(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	rs := []*TargetResult{result("noop", 10000, 1, nil), result("airlock", 900, 0, func(c, o *Phase) { o.Saturated, o.RPS = true, 900 })}
	if err := writeReport(&b, f, rs, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| airlock | 900 |", "900 (saturated)", "n/a (airlock could not keep 2000 req/s", jsonPrefix + `{"bench":"ext_authz_check_summary"`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
