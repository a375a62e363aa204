package main

import (
	"math"
	"slices"
	"sync"
	"time"
)

// Phase is the result of one load phase against one target.
type Phase struct {
	Round       int     `json:"round"`
	Mode        string  `json:"mode"` // "closed" or "open"
	Concurrency int     `json:"concurrency,omitempty"`
	Conns       int     `json:"conns"`
	TargetRate  float64 `json:"target_rate,omitempty"` // open loop: requests/s scheduled
	Seconds     float64 `json:"seconds"`               // measured window
	Requests    int     `json:"requests"`              // correct answers in the window
	RPS         float64 `json:"rps"`                   // correct answers per second
	// Errors counts failed calls and wrong answers over the whole phase,
	// warm-up included; ErrorSamples holds a few distinct messages.
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"error_samples,omitempty"`
	// Latency in milliseconds. In the open loop it runs from each request's
	// scheduled send time; Service* from its actual send time.
	Latency Percentiles  `json:"latency_ms"`
	Service *Percentiles `json:"service_ms,omitempty"`
	// ServerCPU and DriverCPU are CPU microseconds (user + system) per
	// measured request, of the target process (when the driver started it)
	// and of the driver. Unlike requests/s they barely move with other
	// work on a shared machine.
	ServerCPU float64 `json:"server_cpu_us_per_req,omitempty"`
	DriverCPU float64 `json:"driver_cpu_us_per_req,omitempty"`
	// StoreCPU is the audit ClickHouse's CPU microseconds per measured
	// request (when the driver started it): what shipping the rows costs
	// on the same machine. It runs through every target's phases.
	StoreCPU float64 `json:"clickhouse_cpu_us_per_req,omitempty"`
	// Saturated: the open loop's target answered less than 95% of the
	// rate; its latency then grows with the length of the run.
	Saturated bool `json:"saturated,omitempty"`
	// LoadAvg is /proc/loadavg after the phase: other work on the machine.
	LoadAvg string `json:"loadavg,omitempty"`
	// CPUPressure is /proc/pressure/cpu "some avg10" after the phase (%).
	CPUPressure string `json:"cpu_pressure,omitempty"`
}

// Percentiles of a latency sample, in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
}

// percentiles uses the nearest-rank method on ns (which it sorts).
func percentiles(ns []int64) Percentiles {
	if len(ns) == 0 {
		return Percentiles{}
	}
	slices.Sort(ns)
	rank := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(ns)))) - 1
		i = max(0, min(i, len(ns)-1))
		return ms(ns[i])
	}
	return Percentiles{P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), P999: rank(0.999), Max: ms(ns[len(ns)-1])}
}

func ms(ns int64) float64 {
	return math.Round(float64(ns)/1e3) / 1e3 // microsecond resolution
}

// errorLog counts errors and keeps the first few distinct messages.
type errorLog struct {
	mu      sync.Mutex
	n       int
	samples []string
}

const maxErrorSamples = 5

func (l *errorLog) add(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if len(l.samples) >= maxErrorSamples {
		return
	}
	msg := err.Error()
	if !slices.Contains(l.samples, msg) {
		l.samples = append(l.samples, msg)
	}
}

func (l *errorLog) result() (int, []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, slices.Clone(l.samples)
}

// window is the measured part of a phase: [start, end).
type window struct{ start, end time.Time }

func (w window) contains(t time.Time) bool { return !t.Before(w.start) && t.Before(w.end) }

// medianPhase summarises the rounds of one mode: the median of each
// figure (errors are summed: one wrong answer in any round shows).
func medianPhase(ps []Phase) *Phase {
	switch len(ps) {
	case 0:
		return nil
	case 1:
		return &ps[0]
	}
	med := func(get func(p *Phase) float64) float64 {
		vs := make([]float64, len(ps))
		for i := range ps {
			vs[i] = get(&ps[i])
		}
		slices.Sort(vs)
		return vs[len(vs)/2]
	}
	out := ps[0]
	out.Round = 0
	out.RPS = med(func(p *Phase) float64 { return p.RPS })
	out.ServerCPU = med(func(p *Phase) float64 { return p.ServerCPU })
	out.DriverCPU = med(func(p *Phase) float64 { return p.DriverCPU })
	out.StoreCPU = med(func(p *Phase) float64 { return p.StoreCPU })
	out.Requests = int(med(func(p *Phase) float64 { return float64(p.Requests) }))
	out.Latency = medianPercentiles(ps, func(p *Phase) *Percentiles { return &p.Latency }, med)
	if out.Service != nil {
		sp := medianPercentiles(ps, func(p *Phase) *Percentiles { return p.Service }, med)
		out.Service = &sp
	}
	out.Errors, out.ErrorSamples, out.Saturated = 0, nil, false
	saturated := 0
	for _, p := range ps {
		out.Errors += p.Errors
		out.ErrorSamples = append(out.ErrorSamples, p.ErrorSamples...)
		if p.Saturated {
			saturated++
		}
	}
	out.Saturated = saturated*2 > len(ps)
	return &out
}

func medianPercentiles(ps []Phase, pick func(*Phase) *Percentiles, med func(func(*Phase) float64) float64) Percentiles {
	get := func(f func(*Percentiles) float64) float64 {
		return med(func(p *Phase) float64 {
			if q := pick(p); q != nil {
				return f(q)
			}
			return 0
		})
	}
	return Percentiles{
		P50:  get(func(q *Percentiles) float64 { return q.P50 }),
		P90:  get(func(q *Percentiles) float64 { return q.P90 }),
		P99:  get(func(q *Percentiles) float64 { return q.P99 }),
		P999: get(func(q *Percentiles) float64 { return q.P999 }),
		Max:  get(func(q *Percentiles) float64 { return q.Max }),
	}
}
