package grants_test

import (
	"runtime"
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/grants/grantstest"
)

// BenchmarkLive10k is the heap a Service on a file store of 10,000 live
// grants keeps once loaded (issue 19's memory goal): "live-B" is the heap
// in use after a collection with the Service open, minus the heap in use
// before it was opened.
func BenchmarkLive10k(b *testing.B) {
	dir := b.TempDir()
	grantstest.WriteLive(b, dir, 10000, "github", "https://issuer.example")
	var live uint64
	n := 0
	for b.Loop() {
		before := heapInUse()
		st, err := grants.OpenFileStore(dir, grants.FileStoreOptions{})
		if err != nil {
			b.Fatal(err)
		}
		svc, err := grants.New(st, grants.Defaults(), grants.Options{})
		if err != nil {
			b.Fatal(err)
		}
		after := heapInUse()
		if after > before {
			live += after - before
		}
		n++
		runtime.KeepAlive(st)
		if err := svc.Close(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(live)/float64(n), "live-B")
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
