package clickhouse

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
)

func query(t *testing.T, addr, q string) string {
	t.Helper()
	conn, err := chgo.Open(&chgo.Options{Addr: []string{addr}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out string
	if err := conn.QueryRow(ctx, q).Scan(&out); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return out
}

// TestStartStopRestart: the server answers, keeps its data across a
// stop/start on the same port, and its directory goes away on Close.
func TestStartStopRestart(t *testing.T) {
	ctx := context.Background()
	s, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Dir()
	if v := query(t, s.Addr(), "SELECT version()"); v == "" {
		t.Fatal("empty version")
	}
	conn, err := chgo.Open(&chgo.Options{Addr: []string{s.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	if err := conn.Exec(ctx, "CREATE TABLE default.keep (x UInt32) ENGINE = MergeTree() ORDER BY x"); err != nil {
		t.Fatal(err)
	}
	// 18.16 takes INSERT data only as blocks after the statement.
	b, err := conn.PrepareBatch(ctx, "INSERT INTO default.keep (x)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(42)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	addr := s.Addr()
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if s.Running() {
		t.Fatal("still running after Stop")
	}
	if err := s.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if s.Addr() != addr {
		t.Fatalf("address changed across restart: %s → %s", addr, s.Addr())
	}
	if got := query(t, s.Addr(), "SELECT toString(sum(x)) FROM default.keep"); got != "42" {
		t.Fatalf("data after restart: got %q, want 42", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s left after Close: %v", dir, err)
	}
}

func TestNotInstalled(t *testing.T) {
	_, err := Start(context.Background(), Options{Binary: "/nonexistent/clickhouse-server"})
	if err == nil || !errors.Is(err, ErrNotInstalled) {
		t.Fatalf("got %v, want ErrNotInstalled", err)
	}
}
