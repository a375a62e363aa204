package serve

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync/atomic"
)

// DefaultGCPercent is the most the garbage collector lets `airlock serve`'s
// heap grow past what is live before collecting (GOGC=400: five times the
// live heap), while the heap stays under limits.heap_target_bytes.
// airlock's live heap is small (the compiled policy, caches, grants: tens
// of MiB), so at Go's default of 100 the collector runs every few MiB
// allocated and marks that heap each time: with the shipped policy that
// was a quarter of the CPU per Check (make bench-authz: 141 µs at
// GOGC=100, 99 µs at 400).
const DefaultGCPercent = 400

// MinGCPercent is the least headroom the tuner leaves: a heap whose live
// part outgrows the target may still grow half as much again before a
// collection (Go's default is as much again), so collections never come
// back to back however large the live heap (no collection spiral, as a
// hard memory limit would have).
const MinGCPercent = 50

// gcTuner keeps the heap goal near a target: after every collection it
// sets the GC percent so that live × (1 + percent/100) is the target,
// within MinGCPercent..DefaultGCPercent. A small heap gets the cheap
// collector (400) up to the target, a large one half its size again, and
// resident memory follows the target rather than five times the live
// heap (issue 19's memory goal, docs/benchmarks.md).
type gcTuner struct {
	target  uint64
	stopped atomic.Bool
	sample  []metrics.Sample
	percent atomic.Int64 // the percent last set
}

// gcPercentFor is the percent that makes the heap goal target for a live
// heap of live bytes, clamped to MinGCPercent..DefaultGCPercent.
func gcPercentFor(live, target uint64) int {
	if live == 0 || target <= live {
		return MinGCPercent
	}
	p := (target - live) * 100 / live
	return int(min(max(p, MinGCPercent), DefaultGCPercent))
}

// TuneGC sets the collector's policy for `airlock serve` (Run calls it;
// an in-process Start, as the benchmarks run, calls it to pay the same
// collector) and returns a function that stops tuning, and the percent in
// force: the operator's GOGC if set (nothing tuned then), else
// DefaultGCPercent until the first collection, after which the tuner
// follows the live heap toward target bytes (0: no target,
// DefaultGCPercent always).
func TuneGC(target uint64) (stop func(), percent int) {
	if _, set := os.LookupEnv("GOGC"); set {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return func() {}, p
	}
	debug.SetGCPercent(DefaultGCPercent)
	if target == 0 {
		return func() {}, DefaultGCPercent
	}
	t := &gcTuner{target: target, sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
	t.percent.Store(DefaultGCPercent)
	t.arm()
	return func() { t.stopped.Store(true) }, DefaultGCPercent
}

// arm asks to be called after the next collection: a cleanup on an
// object nothing references runs once the collector has found it dead
// (not a tiny allocation, which shares its block and may never be freed
// alone).
func (t *gcTuner) arm() {
	runtime.AddCleanup(new([64]byte), func(t *gcTuner) { t.adjust() }, t)
}

// adjust sets the percent for the live heap the last collection left,
// and re-arms unless stopped.
func (t *gcTuner) adjust() {
	if t.stopped.Load() {
		return
	}
	metrics.Read(t.sample)
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		p := gcPercentFor(t.sample[0].Value.Uint64(), t.target)
		if int64(p) != t.percent.Load() {
			debug.SetGCPercent(p)
			t.percent.Store(int64(p))
		}
	}
	t.arm()
}
