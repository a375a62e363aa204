package pgtest

import (
	"context"
	"os"
	"testing"
)

func TestMain(m *testing.M) { os.Exit(Run(m)) }

func TestDatabasesAreSeparate(t *testing.T) {
	a, b := DSN(t), DSN(t)
	if a == b {
		t.Fatalf("two tests got one database: %s", a)
	}
	ctx := context.Background()
	for _, dsn := range []string{a, b} {
		if err := execSQL(ctx, dsn, "CREATE TABLE t (x int)"); err != nil {
			t.Fatalf("creating a table in %s: %v", dsn, err)
		}
	}
}
