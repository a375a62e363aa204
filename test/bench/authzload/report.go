package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// jsonPrefix starts each machine-readable line on stdout.
const jsonPrefix = "BENCH_JSON "

// TargetResult is one target's phases.
type TargetResult struct {
	Bench    string  `json:"bench"`
	Target   string  `json:"target"`
	Addr     string  `json:"addr"`
	Launched bool    `json:"launched"` // started by the driver as a separate process
	Env      Env     `json:"env"`
	Phases   []Phase `json:"phases"`
	// Mem is the memory phase, a result a round (airlock only).
	Mem []MemResult `json:"mem,omitempty"`
	// Audit is what reached ClickHouse at the end of the run (airlock
	// with ClickHouse only).
	Audit *auditRows `json:"audit,omitempty"`
}

// Env describes the machine and the workload.
type Env struct {
	Time     string `json:"time"`
	CPUs     int    `json:"cpus"`
	GoOS     string `json:"goos"`
	GoArch   string `json:"goarch"`
	Go       string `json:"go"`
	Users    int    `json:"users"`
	Requests int    `json:"requests"`
	Fresh    bool   `json:"fresh"`   // every call new (see Workload.Fresh)
	LoadAvg  string `json:"loadavg"` // before the target's first phase
}

func captureEnv(f *runFlags) Env {
	return Env{
		Time: time.Now().UTC().Format(time.RFC3339), CPUs: runtime.NumCPU(),
		GoOS: runtime.GOOS, GoArch: runtime.GOARCH, Go: runtime.Version(),
		Users: f.users, Requests: f.requests, Fresh: f.fresh, LoadAvg: loadAvg(),
	}
}

// cpuPressure is the kernel's CPU pressure over the last 10s (the "some
// avg10" of /proc/pressure/cpu: the share of time runnable work waited
// for a CPU), "" where the kernel has no PSI.
func cpuPressure() string {
	b, err := os.ReadFile("/proc/pressure/cpu")
	if err != nil {
		return ""
	}
	for _, f := range strings.Fields(strings.SplitN(string(b), "\n", 2)[0]) {
		if v, ok := strings.CutPrefix(f, "avg10="); ok {
			return v
		}
	}
	return ""
}

// loadAvg is the first three fields of /proc/loadavg ("" elsewhere).
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	fs := strings.Fields(string(b))
	if len(fs) < 3 {
		return ""
	}
	return strings.Join(fs[:3], " ")
}

// phase is the summary of a mode over the rounds (see medianPhase).
func (r *TargetResult) phase(mode string) *Phase {
	var ps []Phase
	for _, p := range r.Phases {
		if p.Mode == mode {
			ps = append(ps, p)
		}
	}
	return medianPhase(ps)
}

// Ratio is one goal of the issue, as reached.
type Ratio struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"` // 0 when not measurable (see Note)
	Goal  string  `json:"goal"`
	Met   *bool   `json:"met,omitempty"` // nil: informational
	Note  string  `json:"note,omitempty"`
	Count bool    `json:"-"` // Value is a count, printed without decimals
}

// Summary is the ratios line.
type Summary struct {
	Bench   string   `json:"bench"`
	Ratios  []Ratio  `json:"ratios"`
	Skipped []string `json:"skipped,omitempty"`
}

// ratios compares airlock with the no-op limit and the peer, where the
// phases needed were run.
func ratios(results []*TargetResult) []Ratio {
	by := map[string]*TargetResult{}
	for _, r := range results {
		by[r.Target] = r
	}
	// A figure is usable when its phase ran without errors; an open-loop
	// p99 also needs the target to have kept the rate.
	rps := func(t string) (float64, string) {
		r := by[t]
		if r == nil {
			return 0, t + " not run"
		}
		p := r.phase("closed")
		switch {
		case p == nil:
			return 0, t + " closed loop not run"
		case p.Errors > 0:
			return 0, fmt.Sprintf("%s had %d errors", t, p.Errors)
		}
		return p.RPS, ""
	}
	p99 := func(t string) (float64, string) {
		r := by[t]
		if r == nil {
			return 0, t + " not run"
		}
		p := r.phase("open")
		switch {
		case p == nil:
			return 0, t + " open loop not run"
		case p.Saturated:
			return 0, fmt.Sprintf("%s could not keep %g req/s (answered %.0f/s): its p99 grows with the run", t, p.TargetRate, p.RPS)
		case p.Errors > 0:
			return 0, fmt.Sprintf("%s had %d errors", t, p.Errors)
		}
		return p.Latency.P99, ""
	}
	projected := func(t string) (float64, string) {
		r := by[t]
		if r == nil {
			return 0, t + " not run"
		}
		p := r.phase("closed")
		switch {
		case p == nil:
			return 0, t + " closed loop not run"
		case !r.Launched:
			return 0, t + "'s CPU was not measured (not started by the driver)"
		case p.ServerCPU <= 0:
			return 0, t + " has no CPU figure (no answers in the window)"
		}
		return projectedPeak(p), ""
	}
	cpu := func(t string) (float64, string) {
		if _, why := projected(t); why != "" {
			return 0, why
		}
		return by[t].phase("closed").ServerCPU, ""
	}
	// A loop no target ran (--phases, --modes) gives no ratio at all.
	ran := map[string]bool{}
	for _, r := range results {
		for _, p := range r.Phases {
			ran[p.Mode] = true
		}
	}
	var out []Ratio
	// add compares a and b with the figures of their mode's loop.
	add := func(name, mode string, fnum, fden func(string) (float64, string), a, b, goal string, met func(float64) bool) {
		num, why1 := fnum(a)
		den, why2 := fden(b)
		if by[a] == nil || by[b] == nil || !ran[mode] {
			return
		}
		r := Ratio{Name: name, Goal: goal}
		why := strings.Trim(why1+"; "+why2, "; ")
		if why == "" && (num <= 0 || den <= 0) {
			why = "no answers in the measured window"
		}
		if why != "" {
			r.Note = why
			if met != nil {
				f := false
				r.Met = &f
			}
			out = append(out, r)
			return
		}
		r.Value = float64(int(num/den*100+0.5)) / 100
		if met != nil {
			m := met(r.Value)
			r.Met = &m
		}
		out = append(out, r)
	}
	// Issue 19's goals: peak within 20% of the no-op server, p99 within
	// 1.5x, and at most 30 µs more CPU per Check (a difference, not a ratio).
	add("airlock/no-op peak req/s", "closed", rps, rps, "airlock", "noop", ">= 0.8", func(v float64) bool { return v >= 0.8 })
	add("airlock/peer peak req/s", "closed", rps, rps, "airlock", "peer", ">= 2", func(v float64) bool { return v >= 2 })
	add("airlock p99 / no-op p99 (open loop)", "open", p99, p99, "airlock", "noop", "<= 1.5", func(v float64) bool { return v <= 1.5 })
	if by["airlock"] != nil && by["noop"] != nil && ran["closed"] {
		r := Ratio{Name: "airlock - no-op CPU µs per Check (closed loop)", Goal: "<= 30"}
		a, why1 := cpu("airlock")
		n, why2 := cpu("noop")
		if why := strings.Trim(why1+"; "+why2, "; "); why != "" {
			r.Note = why
			f := false
			r.Met = &f
		} else {
			r.Value = float64(int((a-n)*10+0.5)) / 10
			m := r.Value <= 30
			r.Met = &m
		}
		out = append(out, r)
	}
	out = append(out, procRatios(by)...)
	out = append(out, memRatios(by["airlock"])...)
	add("peer p99 / no-op p99 (open loop)", "open", p99, p99, "peer", "noop", "(reference)", nil)
	add("airlock/no-op peak from CPU per Check (estimate for idle cores)", "closed", projected, projected, "airlock", "noop", "(reference)", nil)
	add("airlock/peer peak from CPU per Check (estimate for idle cores)", "closed", projected, projected, "airlock", "peer", "(reference)", nil)
	return out
}

// procRatios are the ext_proc goal: each exchange kind adds at most 50 µs
// of server CPU over the no-op processor's.
func procRatios(by map[string]*TargetResult) []Ratio {
	a, n := by["airlock"], by["noop"]
	if a == nil || n == nil {
		return nil
	}
	var out []Ratio
	for _, kind := range procKinds {
		ap, np := a.phase(procMode(kind)), n.phase(procMode(kind))
		if ap == nil || np == nil {
			continue
		}
		r := Ratio{Name: fmt.Sprintf("airlock - no-op CPU µs per %s exchange (ext_proc, 4 messages)", strings.ToUpper(kind)), Goal: "<= 50"}
		var why []string
		for _, t := range []struct {
			name string
			res  *TargetResult
			p    *Phase
		}{{"airlock", a, ap}, {"noop", n, np}} {
			switch {
			case !t.res.Launched:
				why = append(why, t.name+"'s CPU was not measured (not started by the driver)")
			case t.p.Errors > 0:
				why = append(why, fmt.Sprintf("%s had %d errors", t.name, t.p.Errors))
			case t.p.ServerCPU <= 0:
				why = append(why, t.name+" has no CPU figure (no exchanges in the window)")
			}
		}
		f := false
		r.Met = &f
		if len(why) > 0 {
			r.Note = strings.Join(why, "; ")
		} else {
			r.Value = round1(ap.ServerCPU - np.ServerCPU)
			m := r.Value <= 50
			r.Met = &m
		}
		out = append(out, r)
	}
	return out
}

// memGoalMB is the memory goal: airlock's RSS with the live grants and
// the open streams, in MB.
const memGoalMB = 150

// memResult is the memory phase over the rounds: the round with the
// highest RSS (the goal is a ceiling), errors summed.
func (r *TargetResult) memResult() *MemResult {
	if len(r.Mem) == 0 {
		return nil
	}
	out := r.Mem[0]
	errs, samples := 0, []string(nil)
	for _, m := range r.Mem {
		if m.RSS > out.RSS {
			out = m
		}
		errs += m.Errors
		samples = append(samples, m.Samples...)
	}
	out.Errors, out.Samples = errs, samples
	return &out
}

// memRatios are the memory goal and the audit check of airlock's run.
func memRatios(a *TargetResult) []Ratio {
	if a == nil {
		return nil
	}
	var out []Ratio
	if m := a.memResult(); m != nil {
		r := Ratio{Name: fmt.Sprintf("airlock RSS MB with %d live grants and %d open MCP streams", m.Grants, m.Streams), Goal: fmt.Sprintf("< %d", memGoalMB)}
		met := false
		switch {
		case m.Errors > 0:
			r.Note = fmt.Sprintf("%d streams failed to open or close", m.Errors)
		case m.RSS <= 0:
			r.Note = "no memory figure"
		default:
			r.Value = m.RSS
			met = m.RSS < memGoalMB
		}
		r.Met = &met
		out = append(out, r)
	}
	if au := a.Audit; au != nil {
		r := Ratio{Name: "audit rows airlock shipped to ClickHouse (decisions + events)", Goal: "> 0", Count: true}
		met := au.Err == "" && au.Decisions > 0
		if au.Err != "" {
			r.Note = au.Err
		} else {
			r.Value = float64(au.Decisions + au.Events)
		}
		r.Met = &met
		out = append(out, r)
	}
	return out
}

// projectedPeak is the requests/s the closed loop's CPU cost per request
// (target + driver) allows on this machine's cores with nothing else
// running: an estimate that shared-machine noise barely moves.
func projectedPeak(p *Phase) float64 {
	per := p.ServerCPU + p.DriverCPU
	if per <= 0 {
		return 0
	}
	return float64(runtime.NumCPU()) * 1e6 / per
}

func writeReport(w io.Writer, f *runFlags, results []*TargetResult, skipped []string) error {
	var b strings.Builder
	calls := "every call new (fresh JSON-RPC id, request id and cursor argument)"
	if !f.fresh {
		calls = fmt.Sprintf("a pool of %d requests replayed, so calls repeat", f.requests)
	}
	checkLoops := false
	for _, r := range results {
		if r.phase("closed") != nil || r.phase("open") != nil {
			checkLoops = true
		}
	}
	if checkLoops {
		writeCheckTables(&b, f, results, calls)
	}
	writeProcTable(&b, results)
	writeMemTable(&b, results)
	rs := ratios(results)
	if len(rs) > 0 {
		b.WriteString("\n| ratio | value | goal | met |\n|---|---:|---|---|\n")
		for _, r := range rs {
			met := "–"
			if r.Met != nil {
				met = map[bool]string{true: "yes", false: "no"}[*r.Met]
			}
			val := fmt.Sprintf("%.2f", r.Value)
			if r.Count {
				val = fmt.Sprintf("%.0f", r.Value)
			}
			if r.Note != "" {
				val = "n/a (" + r.Note + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", r.Name, val, r.Goal, met)
		}
	}
	for _, r := range results {
		for _, p := range r.Phases {
			for _, s := range p.ErrorSamples {
				fmt.Fprintf(&b, "\n%s %s loop error: %s", r.Target, p.Mode, s)
			}
		}
		for _, m := range r.Mem {
			for _, s := range m.Samples {
				fmt.Fprintf(&b, "\n%s memory phase error: %s", r.Target, s)
			}
		}
	}
	for _, s := range skipped {
		fmt.Fprintf(&b, "\nNote: %s", s)
	}
	b.WriteString("\n\n")
	lines, err := jsonLines(results, rs, skipped)
	if err != nil {
		return err
	}
	for _, l := range lines {
		b.WriteString(jsonPrefix + l + "\n")
	}
	_, err = io.WriteString(w, b.String())
	return err
}

// writeCheckTables is the Check loops' tables (when they ran).
func writeCheckTables(b *strings.Builder, f *runFlags, results []*TargetResult, calls string) {
	fmt.Fprintf(b, "\n### ext_authz Check: %d CPUs shared by the driver and the target; %d users (tokens), %s\n\n", runtime.NumCPU(), f.users, calls)
	fmt.Fprintf(b, "Closed loop: %d in flight over %d connections. Open loop: %g req/s, latency from each request's scheduled send time. %s measured after %s warm-up per phase",
		f.load.Concurrency, f.load.Conns, f.load.Rate, f.load.Duration, f.load.Warmup)
	if f.rounds > 1 {
		fmt.Fprintf(b, "; each figure is the median of %d rounds (targets interleaved, errors summed)", f.rounds)
	}
	b.WriteString(".\n\n")
	b.WriteString("| target | closed req/s | p50 ms | p90 ms | p99 ms | errors | open req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | errors |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, r := range results {
		fmt.Fprintf(b, "| %s |", r.Target)
		if p := r.phase("closed"); p != nil {
			fmt.Fprintf(b, " %.0f | %.3f | %.3f | %.3f | %d |", p.RPS, p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Errors)
		} else {
			b.WriteString(" – | – | – | – | – |")
		}
		if p := r.phase("open"); p != nil {
			sat := ""
			if p.Saturated {
				sat = " (saturated)"
			}
			fmt.Fprintf(b, " %.0f%s | %.3f | %.3f | %.3f | %.3f | %d |", p.RPS, sat, p.Latency.P50, p.Latency.P90, p.Latency.P99, p.Latency.P999, p.Errors)
		} else {
			b.WriteString(" – | – | – | – | – | – |")
		}
		b.WriteString("\n")
	}
	store := false
	for _, r := range results {
		if p := r.phase("closed"); p != nil && p.StoreCPU > 0 {
			store = true
		}
	}
	if store {
		b.WriteString("\n| target | target CPU µs/Check | driver CPU µs/Check | ClickHouse CPU µs/Check | peak req/s from CPU (idle cores) |\n|---|---:|---:|---:|---:|\n")
	} else {
		b.WriteString("\n| target | target CPU µs/Check | driver CPU µs/Check | peak req/s from CPU (idle cores) |\n|---|---:|---:|---:|\n")
	}
	for _, r := range results {
		p := r.phase("closed")
		if p == nil {
			continue
		}
		ch := ""
		if store {
			ch = fmt.Sprintf(" %.1f |", p.StoreCPU)
		}
		if p.ServerCPU > 0 {
			fmt.Fprintf(b, "| %s | %.1f | %.1f |%s %.0f |\n", r.Target, p.ServerCPU, p.DriverCPU, ch, projectedPeak(p))
		} else {
			fmt.Fprintf(b, "| %s | – | %.1f |%s – |\n", r.Target, p.DriverCPU, ch)
		}
	}
}

// writeProcTable is the ext_proc phase's table (when it ran).
func writeProcTable(b *strings.Builder, results []*TargetResult) {
	head := false
	for _, r := range results {
		for _, kind := range procKinds {
			p := r.phase(procMode(kind))
			if p == nil {
				continue
			}
			if !head {
				head = true
				fmt.Fprintf(b, "\n### ext_proc: one MCP exchange (request headers, request body, response headers, response body), closed loop, %d in flight over %d connections\n\n", p.Concurrency, p.Conns)
				b.WriteString("| target | exchange | exchanges/s | p50 ms | p99 ms | errors | target CPU µs/exchange | driver CPU µs/exchange | ClickHouse CPU µs/exchange |\n|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
			}
			cpu := "–"
			if p.ServerCPU > 0 {
				cpu = fmt.Sprintf("%.1f", p.ServerCPU)
			}
			ch := "–"
			if p.StoreCPU > 0 {
				ch = fmt.Sprintf("%.1f", p.StoreCPU)
			}
			fmt.Fprintf(b, "| %s | %s | %.0f | %.3f | %.3f | %d | %s | %.1f | %s |\n", r.Target, strings.ToUpper(kind), p.RPS, p.Latency.P50, p.Latency.P99, p.Errors, cpu, p.DriverCPU, ch)
		}
	}
}

// writeMemTable is the memory phase's table (when it ran).
func writeMemTable(b *strings.Builder, results []*TargetResult) {
	for _, r := range results {
		m := r.memResult()
		if m == nil {
			continue
		}
		b.WriteString("\n### Memory: MCP streams held open in a fresh airlock process (each a Check, then an ext_proc stream up to its first SSE events)\n\n")
		b.WriteString("| target | live grants | open streams | VmRSS before MB | VmRSS with the streams MB | of which anon / file MB | VmHWM MB | errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		fmt.Fprintf(b, "| %s | %d | %d | %.1f | %.1f | %.1f / %.1f | %.1f | %d |\n", r.Target, m.Grants, m.Streams, m.IdleRSS, m.RSS, m.Anon, m.File, m.HWM, m.Errors)
		if m.LoadRSS > 0 {
			fmt.Fprintf(b, "\nFor reference, the %s process of the load phases at their end: VmRSS %.1f MB, VmHWM %.1f MB.\n", r.Target, m.LoadRSS, m.LoadHWM)
		}
	}
	for _, r := range results {
		if au := r.Audit; au != nil && au.Err == "" {
			fmt.Fprintf(b, "\n%s's audit rows in ClickHouse at the end of the run: %d decisions (ext_authz), %d events (ext_proc messages).\n", r.Target, au.Decisions, au.Events)
		}
	}
}

func jsonLines(results []*TargetResult, rs []Ratio, skipped []string) ([]string, error) {
	var lines []string
	for _, r := range results {
		j, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		lines = append(lines, string(j))
	}
	j, err := json.Marshal(Summary{Bench: "ext_authz_check_summary", Ratios: rs, Skipped: skipped})
	if err != nil {
		return nil, err
	}
	return append(lines, string(j)), nil
}

func appendJSON(path string, results []*TargetResult, skipped []string) error {
	lines, err := jsonLines(results, ratios(results), skipped)
	if err != nil {
		return err
	}
	fh, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("json output: %w", err)
	}
	_, err = io.WriteString(fh, strings.Join(lines, "\n")+"\n")
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	return err
}
