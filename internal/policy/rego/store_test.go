package rego

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/syncbuf"
)

const (
	allowPolicy  = "package airlock\n\ndecision := {\"outcome\": \"allow\", \"reason\": \"v1\"}\n"
	denyPolicy   = "package airlock\n\ndecision := {\"outcome\": \"deny\", \"reason\": \"v2\"}\n"
	brokenPolicy = "package airlock\n\ndecision := {\"outcome\": \"deny\",\n\t\"reason\" \"v3\"}\n"
)

func newTestStore(t *testing.T, dir string) (*Store, *syncbuf.Buffer) {
	t.Helper()
	logs := &syncbuf.Buffer{}
	s, err := NewStore(dir, "", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return s, logs
}

func reasonOf(t *testing.T, s *Store) string {
	t.Helper()
	d, err := s.Evaluate(context.Background(), &policy.Input{})
	if err != nil {
		t.Fatal(err)
	}
	return d.Reason
}

func TestNewStoreFailsOnBrokenPolicy(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", brokenPolicy)
	if _, err := NewStore(dir, "", nil); err == nil || !strings.Contains(err.Error(), "p.rego:4:11") {
		t.Fatalf("got %v, want an error at p.rego:4:11", err)
	}
}

func TestStoreReloadKeepsLastGoodEngine(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", allowPolicy)
	s, logs := newTestStore(t, dir)
	good := s.Current()

	write(t, dir, "p.rego", brokenPolicy)
	err := s.Reload()
	if err == nil || !strings.Contains(err.Error(), "p.rego:4:11: rego_parse_error") {
		t.Fatalf("Reload: got %v, want a parse error at p.rego:4:11", err)
	}
	if s.Current() != good {
		t.Fatal("a failed reload replaced the engine")
	}
	if got := reasonOf(t, s); got != "v1" {
		t.Errorf("serving %q after a failed reload, want the last good policy (v1)", got)
	}
	if l := logs.String(); !strings.Contains(l, "policy reload failed") || !strings.Contains(l, "p.rego:4:11") {
		t.Errorf("the failure was not logged with its position:\n%s", l)
	}

	write(t, dir, "p.rego", denyPolicy)
	if err := s.Reload(); err != nil {
		t.Fatal(err)
	}
	if s.Current() == good || s.Current().Version() == good.Version() {
		t.Fatal("a good reload did not swap the engine")
	}
	if got := reasonOf(t, s); got != "v2" {
		t.Errorf("serving %q after a fixed reload, want v2", got)
	}
}

func TestStoreWatchPicksUpChanges(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", allowPolicy)
	s, logs := newTestStore(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, 10*time.Millisecond)
	}()
	defer func() {
		cancel()
		<-done
	}()

	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; logs:\n%s", what, logs.String())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	write(t, dir, "p.rego", denyPolicy)
	waitFor("the new policy", func() bool { return reasonOf(t, s) == "v2" })
	v2 := s.Current()

	write(t, dir, "p.rego", brokenPolicy)
	waitFor("the failed reload to be logged", func() bool { return strings.Contains(logs.String(), "policy reload failed") })
	if s.Current() != v2 {
		t.Fatal("Watch replaced the engine with a broken policy")
	}
	// The broken files are not retried on every poll.
	time.Sleep(100 * time.Millisecond)
	if n := strings.Count(logs.String(), "policy reload failed"); n != 1 {
		t.Errorf("logged %d reload failures for one broken change, want 1", n)
	}

	write(t, dir, "sub/extra.rego", "package airlock.extra\n\nx := 1\n")
	write(t, dir, "p.rego", allowPolicy)
	waitFor("the fixed policy", func() bool { return reasonOf(t, s) == "v1" && s.Current() != v2 })
	if got := len(s.Current().Files()); got != 2 {
		t.Errorf("loaded %d files, want 2", got)
	}
}

func TestStoreWatchIgnoresTestFiles(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", allowPolicy)
	s, _ := newTestStore(t, dir)
	first := s.Current()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, 5*time.Millisecond)
	}()
	write(t, dir, "p_test.rego", "package airlock_test\n\ntest_x if true\n")
	time.Sleep(100 * time.Millisecond)
	cancel()
	<-done
	if s.Current() != first {
		t.Error("adding a test file reloaded the policy")
	}
}

func TestStoreWatchStopsWithContext(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "p.rego", allowPolicy)
	s, _ := newTestStore(t, dir)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, time.Hour)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
}
