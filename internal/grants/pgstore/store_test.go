package pgstore

import (
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/grants/pgtest"
	"github.com/airlock-mcp/airlock/internal/grants/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func open(t *testing.T, dsn string, opts Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The store conformance suite on a real PostgreSQL: one database per
// test, every handle (restart, replica) a separate Store on it.
func TestStoreConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) func(t *testing.T) grants.Store {
		dsn := pgtest.DSN(t)
		return func(t *testing.T) grants.Store { return open(t, dsn, Options{Migrate: true}) }
	})
}

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	// Not migrated: a store that may not migrate refuses, naming the fix.
	if _, err := Open(ctx, dsn, Options{}); err == nil || !strings.Contains(err.Error(), "airlock migrate") {
		t.Fatalf("Open of an empty database without Migrate = %v, want a hint to run airlock migrate", err)
	}
	// Every replica migrates at start, at once: one runs each step.
	const replicas = 4
	var wg sync.WaitGroup
	stores := make([]*Store, replicas)
	errs := make([]error, replicas)
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(ctx, dsn, Options{Migrate: true})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var n, v int
	if err := stores[0].Pool().QueryRow(ctx, "SELECT count(*), max(version) FROM airlock_schema_versions").Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != len(migrations) || v != SchemaVersion() {
		t.Fatalf("schema versions table: %d rows up to %d, want %d up to %d (each step once)", n, v, len(migrations), SchemaVersion())
	}
	// Now a store that may not migrate opens.
	s := open(t, dsn, Options{})
	_ = s.Close()
	// A schema from a newer airlock is refused.
	if _, err := stores[0].Pool().Exec(ctx, "INSERT INTO airlock_schema_versions (version, what) VALUES ($1, 'from the future')", SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	for _, migrate := range []bool{false, true} {
		if _, err := Open(ctx, dsn, Options{Migrate: migrate}); !errors.Is(err, ErrSchemaNewer) {
			t.Fatalf("Open (migrate %v) of a newer schema = %v, want ErrSchemaNewer", migrate, err)
		}
	}
}

func TestDSNNeverInErrors(t *testing.T) {
	const secret = "s3cr3t-pw"
	for _, dsn := range []string{
		"postgres://airlock:" + secret + "@127.0.0.1:bad-port/db",
		"host=127.0.0.1 password=" + secret + " port=notaport",
		"postgres://airlock:" + secret + "@127.0.0.1:1/db?sslmode=bogus",
	} {
		_, err := Open(context.Background(), dsn, Options{})
		if err == nil {
			t.Fatalf("Open(a bad DSN) succeeded")
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the error repeats the password: %v", err)
		}
	}
}

// A replica that fell behind past the pruned feed reloads everything.
func TestFeedPrunedReload(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	s := open(t, dsn, Options{Migrate: true, FeedKeep: 1, FeedAge: 1})
	defer s.Close()
	for i := range 300 {
		g := grants.Grant{ID: "gr_" + strconv.Itoa(i), Version: 1, State: grants.GrantActive}
		if err := s.Apply(ctx, grants.Mutation{Grants: []grants.Grant{g}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Changes(ctx, 0, 10); !errors.Is(err, grants.ErrFeedGap) {
		t.Fatalf("Changes after 0 once pruned = %v, want ErrFeedGap", err)
	}
	cs, err := s.Changes(ctx, 299, 10)
	if err != nil || len(cs) != 1 || cs[0].Seq != 300 {
		t.Fatalf("Changes after 299 = %v, %v: want the last change", seqs(cs), err)
	}
}

func seqs(cs []grants.Change) []uint64 {
	var out []uint64
	for _, c := range cs {
		out = append(out, c.Seq)
	}
	return out
}
