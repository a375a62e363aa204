package clickhouse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
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

// TestCluster: two replicas of one shard on one ZooKeeper: ON CLUSTER DDL
// reaches both, a Replicated table copies a row inserted on one to the
// other, and a Distributed table reads it.
func TestCluster(t *testing.T) {
	c := StartClusterT(t, ClusterOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, err := chgo.Open(&chgo.Options{Addr: []string{c.Nodes[0].Addr()}, ReadTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{
		"CREATE DATABASE IF NOT EXISTS x ON CLUSTER airlock",
		"CREATE TABLE IF NOT EXISTS x.t_local ON CLUSTER airlock (k UInt32) ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/x/t_local', '{replica}') ORDER BY k",
		"CREATE TABLE IF NOT EXISTS x.t ON CLUSTER airlock AS x.t_local ENGINE = Distributed(airlock, x, t_local, k)",
	} {
		if err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v\n%s\n%s", q, err, c.Nodes[0].logTail(), c.Nodes[1].logTail())
		}
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO x.t_local (k)")
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Append(uint32(7)); err != nil {
		t.Fatal(err)
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
	other, err := chgo.Open(&chgo.Options{Addr: []string{c.Nodes[1].Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := other.Exec(ctx, "SYSTEM SYNC REPLICA x.t_local"); err != nil {
		t.Fatal(err)
	}
	if got := query(t, c.Nodes[1].Addr(), "SELECT toString(sum(k)) FROM x.t_local"); got != "7" {
		t.Fatalf("replica: got %q, want 7", got)
	}
	if got := query(t, c.Nodes[1].Addr(), "SELECT toString(count()) FROM x.t"); got != "1" {
		t.Fatalf("distributed: got %q, want 1", got)
	}
}

// TestNice: with Options.Nice every thread of the server runs at that
// nice level (nice(1) execs the server, so the threads it starts inherit
// it), and Pid is still the server's.
func TestNice(t *testing.T) {
	s, err := Start(context.Background(), Options{Nice: 7})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := query(t, s.Addr(), "SELECT version()"); v == "" {
		t.Fatal("empty version")
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", s.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasPrefix(string(comm), "nice") {
		t.Fatalf("Pid %d is nice(1), not the server", s.Pid())
	}
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", s.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) < 2 {
		t.Fatalf("server has %d threads; want its worker threads too", len(tasks))
	}
	for _, task := range tasks {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/stat", s.Pid(), task.Name()))
		if err != nil {
			continue // the thread ended
		}
		// Fields after the command (which may hold spaces): state is
		// field 3, nice is field 19.
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) < 17 {
			t.Fatalf("thread %s: short stat %q", task.Name(), stat)
		}
		if f[16] != "7" {
			t.Errorf("thread %s: nice %s, want 7", task.Name(), f[16])
		}
	}
}
