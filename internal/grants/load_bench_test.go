package grants_test

import (
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/grants/grantstest"
)

// BenchmarkLoad10k is a start with 10,000 live grants of one holder in a
// file store: reading the store and building the indexes. B/op is the
// garbage a starting airlock makes before it serves (issue 19's memory
// goal; docs/benchmarks.md).
func BenchmarkLoad10k(b *testing.B) {
	dir := b.TempDir()
	grantstest.WriteLive(b, dir, 10000, "github", "https://issuer.example")
	b.ReportAllocs()
	for b.Loop() {
		st, err := grants.OpenFileStore(dir, grants.FileStoreOptions{})
		if err != nil {
			b.Fatal(err)
		}
		svc, err := grants.New(st, grants.Defaults(), grants.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := svc.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
