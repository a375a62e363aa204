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

// TestProcAndMemRatios: the ext_proc goal is a difference of server CPU
// per exchange, the memory goal a ceiling on the worst round's RSS, and
// the audit line needs rows in ClickHouse.
func TestProcAndMemRatios(t *testing.T) {
	yes, no := true, false
	proc := func(target string, jsonCPU, sseCPU float64, errs int) *TargetResult {
		r := &TargetResult{Target: target, Launched: true}
		r.Phases = append(r.Phases, Phase{Mode: "proc-json", Requests: 100, ServerCPU: jsonCPU, Errors: errs}, Phase{Mode: "proc-sse", Requests: 100, ServerCPU: sseCPU})
		return r
	}
	withMem := func(r *TargetResult, rss ...float64) *TargetResult {
		for i, v := range rss {
			r.Mem = append(r.Mem, MemResult{Round: i + 1, Streams: 1000, Grants: 10000, RSS: v})
		}
		return r
	}
	const jsonName, sseName = "airlock - no-op CPU µs per JSON exchange (ext_proc, 4 messages)", "airlock - no-op CPU µs per SSE exchange (ext_proc, 4 messages)"
	const memName, auditName = "airlock RSS MB with 10000 live grants and 1000 open MCP streams", "audit rows airlock shipped to ClickHouse (decisions + events)"
	tests := []struct {
		name     string
		noop, al *TargetResult
		want     []Ratio
	}{
		{"met", proc("noop", 180, 190, 0), withMem(proc("airlock", 220, 240.04, 0), 120, 140),
			[]Ratio{{Name: jsonName, Value: 40, Goal: "<= 50", Met: &yes}, {Name: sseName, Value: 50, Goal: "<= 50", Met: &yes},
				{Name: memName, Value: 140, Goal: "< 150", Met: &yes}}},
		{"not met, worst round counts", proc("noop", 180, 190, 0), withMem(proc("airlock", 400, 250, 0), 149, 163.6),
			[]Ratio{{Name: jsonName, Value: 220, Goal: "<= 50", Met: &no}, {Name: sseName, Value: 60, Goal: "<= 50", Met: &no},
				{Name: memName, Value: 163.6, Goal: "< 150", Met: &no}}},
		{"errors are not figures", proc("noop", 180, 190, 0), proc("airlock", 220, 240, 3),
			[]Ratio{{Name: jsonName, Goal: "<= 50", Met: &no, Note: "airlock had 3 errors"}, {Name: sseName, Value: 50, Goal: "<= 50", Met: &yes}}},
		{"no no-op: no ext_proc goal", nil, withMem(&TargetResult{Target: "airlock", Launched: true, Audit: &auditRows{Decisions: 5, Events: 7}}, 90),
			[]Ratio{{Name: memName, Value: 90, Goal: "< 150", Met: &yes}, {Name: auditName, Value: 12, Goal: "> 0", Met: &yes, Count: true}}},
		{"no audit rows", nil, &TargetResult{Target: "airlock", Launched: true, Audit: &auditRows{Err: "count x.decisions: timeout"}},
			[]Ratio{{Name: auditName, Goal: "> 0", Met: &no, Note: "count x.decisions: timeout", Count: true}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			by := map[string]*TargetResult{"airlock": tc.al}
			if tc.noop != nil {
				by["noop"] = tc.noop
			}
			got := append(procRatios(by), memRatios(tc.al)...)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ratios (-want +got):\n%s", diff)
			}
		})
	}
	// Without Check loops (--phases proc,mem) no Check ratio is printed.
	noop, al := proc("noop", 180, 190, 0), withMem(proc("airlock", 220, 240, 0), 120)
	for _, r := range ratios([]*TargetResult{noop, al}) {
		if strings.Contains(r.Name, "Check") || strings.Contains(r.Name, "peak") || strings.Contains(r.Name, "p99") {
			t.Errorf("a Check ratio without Check loops: %+v", r)
		}
	}
	// Failed streams void the memory figure.
	r := withMem(&TargetResult{Target: "airlock"}, 100)
	r.Mem[0].Errors, r.Mem[0].Samples = 2, []string{"check: denied"}
	if got := memRatios(r); len(got) != 1 || got[0].Note == "" || *got[0].Met {
		t.Errorf("memory with failed streams: %+v", got)
	}
}

func TestWriteReportPrintsProcAndMemGoals(t *testing.T) {
	f, err := parseRunFlags(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	noop := &TargetResult{Target: "noop", Launched: true, Phases: []Phase{{Mode: "proc-json", Concurrency: 64, Conns: 4, Requests: 10, RPS: 2000, ServerCPU: 180}, {Mode: "proc-sse", Requests: 10, RPS: 2100, ServerCPU: 190}}}
	al := &TargetResult{Target: "airlock", Launched: true, Phases: []Phase{{Mode: "proc-json", Requests: 10, RPS: 1500, ServerCPU: 300}, {Mode: "proc-sse", Requests: 10, RPS: 1400, ServerCPU: 320}},
		Mem: []MemResult{{Streams: 1000, Grants: 10000, IdleRSS: 148.6, RSS: 163.6, Anon: 126.5, File: 37.1, HWM: 170, LoadRSS: 373.5, LoadHWM: 380}}, Audit: &auditRows{Decisions: 1500, Events: 4000}}
	al.Phases = append(al.Phases, Phase{Mode: "closed", Requests: 10, RPS: 5000, ServerCPU: 160, DriverCPU: 60, StoreCPU: 12.5})
	var b strings.Builder
	if err := writeReport(&b, f, []*TargetResult{noop, al}, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| noop | JSON | 2000 |", "| airlock | SSE | 1400 |",
		"| airlock - no-op CPU µs per JSON exchange (ext_proc, 4 messages) | 120.00 | <= 50 | no |",
		"| airlock | 10000 | 1000 | 148.6 | 163.6 | 126.5 / 37.1 | 170.0 | 0 |",
		"| airlock RSS MB with 10000 live grants and 1000 open MCP streams | 163.60 | < 150 | no |",
		"| audit rows airlock shipped to ClickHouse (decisions + events) | 5500 | > 0 | yes |",
		"1500 decisions (ext_authz), 4000 events",
		"at their end: VmRSS 373.5 MB, VmHWM 380.0 MB",
		"| ClickHouse CPU µs/Check |", "| airlock | 160.0 | 60.0 | 12.5 | 9091 |",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}

func TestWriteReportWithoutCheckLoops(t *testing.T) {
	f, err := parseRunFlags([]string{"--phases", "proc"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	noop := &TargetResult{Target: "noop", Launched: true, Phases: []Phase{{Mode: "proc-json", Requests: 10, RPS: 2000, ServerCPU: 180}}}
	al := &TargetResult{Target: "airlock", Launched: true, Phases: []Phase{{Mode: "proc-json", Requests: 10, RPS: 1500, ServerCPU: 220}}}
	var b strings.Builder
	if err := writeReport(&b, f, []*TargetResult{noop, al}, nil); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "ext_authz Check") || strings.Contains(out, "per Check") {
		t.Errorf("a report without Check loops prints Check figures:\n%s", out)
	}
	if !strings.Contains(out, "| airlock - no-op CPU µs per JSON exchange (ext_proc, 4 messages) | 40.00 | <= 50 | yes |") {
		t.Errorf("report lacks the ext_proc goal:\n%s", out)
	}
}
