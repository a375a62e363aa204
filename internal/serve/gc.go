package serve

import (
	"os"
	"runtime/debug"
)

// DefaultGCPercent is the garbage collector target `airlock serve` runs
// with when GOGC is not set. airlock's live heap is small (the compiled
// policy, caches: tens of MiB), so at Go's default of 100 the collector
// runs every few MiB allocated and marks that heap each time: with the
// shipped policy that was a quarter of the CPU per Check (make bench-authz:
// 141 µs at GOGC=100, 99 µs at 400). 400 lets the heap grow to five times
// what is live before collecting. Set GOGC (and GOMEMLIMIT) to choose
// otherwise.
const DefaultGCPercent = 400

// tuneGC applies DefaultGCPercent unless the operator set GOGC; it returns
// the percent in force (-1: collection off).
func tuneGC() int {
	if _, set := os.LookupEnv("GOGC"); set {
		p := debug.SetGCPercent(100)
		debug.SetGCPercent(p)
		return p
	}
	debug.SetGCPercent(DefaultGCPercent)
	return DefaultGCPercent
}
