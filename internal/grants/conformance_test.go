package grants_test

import (
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/grants/storetest"
)

// The store conformance suite against the stores of this package; the
// PostgreSQL store runs it in package pgstore.
func TestStoreConformance(t *testing.T) {
	backends := []struct {
		name    string
		backend storetest.Backend
	}{
		{"FileStore", func(t *testing.T) func(t *testing.T) grants.Store {
			dir := t.TempDir()
			return func(t *testing.T) grants.Store {
				s, err := grants.OpenFileStore(dir, grants.FileStoreOptions{})
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
		}},
		{"SharedMemStore", func(t *testing.T) func(t *testing.T) grants.Store {
			s := grants.NewSharedMemStore()
			return func(*testing.T) grants.Store { return s }
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) { storetest.Run(t, b.backend) })
	}
}
