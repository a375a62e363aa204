package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
)

// Load configures the phases.
type Load struct {
	Conns       int           // gRPC connections (HTTP/2) to the target
	Concurrency int           // closed loop: workers, each with one call in flight
	Rate        float64       // open loop: requests per second
	OpenWorkers int           // open loop: most calls in flight (later ones queue, and the wait counts)
	Warmup      time.Duration // run before measuring, per phase
	Duration    time.Duration // measured window, per phase
	CallTimeout time.Duration // how long after the window calls may still take
}

func (l Load) validate() error {
	var errs []error
	if l.Conns < 1 {
		errs = append(errs, fmt.Errorf("conns must be at least 1, got %d", l.Conns))
	}
	if l.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("concurrency must be at least 1, got %d", l.Concurrency))
	}
	if l.Rate <= 0 || l.Rate > 1e6 {
		errs = append(errs, fmt.Errorf("rate must be in (0, 1e6] requests/s, got %g", l.Rate))
	}
	if l.OpenWorkers < 1 {
		errs = append(errs, fmt.Errorf("open-workers must be at least 1, got %d", l.OpenWorkers))
	}
	if l.Duration <= 0 || l.Warmup < 0 || l.CallTimeout <= 0 {
		errs = append(errs, fmt.Errorf("duration (%s) and call timeout (%s) must be positive and warmup (%s) not negative", l.Duration, l.CallTimeout, l.Warmup))
	}
	return errors.Join(errs...)
}

// ClosedLoop runs Concurrency workers, each sending its next request as
// soon as the last one is answered, and measures throughput and latency of
// the answers that arrive in the window after the warm-up.
func ClosedLoop(ctx context.Context, conns []*grpc.ClientConn, w *Workload, exp Expect, l Load, m meter) Phase {
	return runClosedLoop(ctx, "closed", len(conns), l, m, func(id int) func(context.Context) error {
		conn := conns[id%len(conns)]
		resp := &authv3.CheckResponse{}
		buf := make([]byte, 0, 4096)
		// Workers start at different places in the pool.
		next := id * len(w.Items) / l.Concurrency
		return func(ctx context.Context) error {
			it := &w.Items[next%len(w.Items)]
			next++
			return call(ctx, conn, w.encode(it, buf), it, resp, exp)
		}
	})
}

// runClosedLoop runs l.Concurrency workers, each calling its do (made by
// worker(id)) again as soon as the last call returned, until the window
// after the warm-up ends, and makes the phase (mode, over conns
// connections) of the calls answered in that window.
func runClosedLoop(ctx context.Context, mode string, conns int, l Load, m meter, worker func(id int) func(context.Context) error) Phase {
	start := time.Now()
	win := window{start.Add(l.Warmup), start.Add(l.Warmup + l.Duration)}
	cpu := measureCPU(m, win)
	ctx, cancel := context.WithDeadline(ctx, win.end.Add(l.CallTimeout))
	defer cancel()
	var errs errorLog
	lat := make([][]int64, l.Concurrency)
	var wg sync.WaitGroup
	for id := range l.Concurrency {
		wg.Go(func() {
			do := worker(id)
			samples := make([]int64, 0, 4096)
			for {
				t0 := time.Now()
				if !t0.Before(win.end) {
					break
				}
				err := do(ctx)
				t1 := time.Now()
				if err != nil {
					errs.add(err)
					if ctx.Err() != nil {
						break
					}
					continue
				}
				if win.contains(t1) {
					samples = append(samples, int64(t1.Sub(t0)))
				}
			}
			lat[id] = samples
		})
	}
	wg.Wait()
	all := merge(lat)
	n, samples := errs.result()
	p := Phase{
		Mode: mode, Concurrency: l.Concurrency, Conns: conns,
		Seconds: l.Duration.Seconds(), Requests: len(all), RPS: round1(float64(len(all)) / l.Duration.Seconds()),
		Errors: n, ErrorSamples: samples, Latency: percentiles(all),
	}
	p.setCPU(cpu())
	return p
}

func (p *Phase) setCPU(c cpuSample) {
	p.DriverCPU = perRequest(c.driver, p.Requests)
	if c.ok {
		p.ServerCPU = perRequest(c.server, p.Requests)
	}
	if c.storeOK {
		p.StoreCPU = perRequest(c.store, p.Requests)
	}
}

// OpenLoop sends requests at a fixed rate whatever the target does: the
// i-th request is due at start + i/Rate. Its latency runs from that due
// time, so time spent waiting behind a slow answer (for a free worker, or
// for the pacer to catch up) is counted rather than silently omitted.
func OpenLoop(ctx context.Context, conns []*grpc.ClientConn, w *Workload, exp Expect, l Load, m meter) Phase {
	total := int(math.Ceil((l.Warmup + l.Duration).Seconds() * l.Rate))
	interval := float64(time.Second) / l.Rate
	start := time.Now().Add(10 * time.Millisecond)
	win := window{start.Add(l.Warmup), start.Add(l.Warmup + l.Duration)}
	due := func(i int) time.Time { return start.Add(time.Duration(float64(i) * interval)) }
	ctx, cancel := context.WithDeadline(ctx, win.end.Add(l.CallTimeout))
	defer cancel()
	cpu := measureCPU(m, win)

	queue := make(chan int, total) // never blocks the pacer
	var errs errorLog
	type sample struct{ lat, svc int64 }
	res := make([][]sample, l.OpenWorkers)
	lastDone := make([]time.Time, l.OpenWorkers)
	var wg sync.WaitGroup
	for id := range l.OpenWorkers {
		wg.Go(func() {
			resp := &authv3.CheckResponse{}
			buf := make([]byte, 0, 4096)
			var out []sample
			var last time.Time
			for i := range queue {
				it := &w.Items[i%len(w.Items)]
				conn := conns[i%len(conns)]
				raw := w.encode(it, buf)
				t0 := time.Now()
				err := call(ctx, conn, raw, it, resp, exp)
				t1 := time.Now()
				if err != nil {
					errs.add(err)
					continue
				}
				if d := due(i); win.contains(d) {
					out = append(out, sample{int64(t1.Sub(d)), int64(t1.Sub(t0))})
					last = t1
				}
			}
			res[id], lastDone[id] = out, last
		})
	}
pace:
	for i := range total {
		if d := time.Until(due(i)); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				break pace
			}
		}
		queue <- i
	}
	close(queue)
	wg.Wait()

	var lat, svc []int64
	var end time.Time
	for id, rs := range res {
		for _, s := range rs {
			lat = append(lat, s.lat)
			svc = append(svc, s.svc)
		}
		if lastDone[id].After(end) {
			end = lastDone[id]
		}
	}
	// The achieved rate: answers to the window's requests over the time
	// they took to arrive (longer than the window when the target lags).
	secs := l.Duration.Seconds()
	if el := end.Sub(win.start).Seconds(); el > secs {
		secs = el
	}
	n, samples := errs.result()
	sp := percentiles(svc)
	p := Phase{
		Mode: "open", Conns: len(conns), TargetRate: l.Rate,
		Seconds: l.Duration.Seconds(), Requests: len(lat), RPS: round1(float64(len(lat)) / secs),
		Errors: n, ErrorSamples: samples, Latency: percentiles(lat), Service: &sp,
		Saturated: float64(len(lat))/secs < 0.95*l.Rate,
	}
	p.setCPU(cpu())
	return p
}

// call sends one request and checks its answer, decoded without its
// dynamic_metadata (no Expect reads it). ctx carries the phase's
// deadline (a per-call timer would cost the driver CPU it shares with the
// target).
func call(ctx context.Context, c *grpc.ClientConn, raw []byte, it *Item, resp *authv3.CheckResponse, exp Expect) error {
	if err := invoke(ctx, c, raw, resp, true); err != nil {
		return fmt.Errorf("call: %w", err)
	}
	return exp.Check(resp, it)
}

func merge(parts [][]int64) []int64 {
	n := 0
	for _, p := range parts {
		n += len(p)
	}
	all := make([]int64, 0, n)
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func round1(f float64) float64 { return math.Round(f*10) / 10 }
