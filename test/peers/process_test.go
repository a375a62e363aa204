package peers

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTailBuffer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		limit  int
		writes []string
		want   string
	}{
		{"under the limit", 10, []string{"abc", "def"}, "abcdef"},
		{"exactly the limit", 6, []string{"abc", "def"}, "abcdef"},
		{"drops the oldest", 6, []string{"abc", "def", "gh"}, "[earlier output dropped]\ncdefgh"},
		{"one write past the limit", 4, []string{"abcdefgh"}, "[earlier output dropped]\nefgh"},
		{"big write after small", 4, []string{"ab", "cdefgh"}, "[earlier output dropped]\nefgh"},
		{"nothing", 4, nil, ""},
	}
	for _, tc := range tests {
		b := newTailBuffer(tc.limit)
		for _, w := range tc.writes {
			if n, err := b.Write([]byte(w)); n != len(w) || err != nil {
				t.Fatalf("%s: Write(%q) = %d, %v", tc.name, w, n, err)
			}
		}
		if diff := cmp.Diff(tc.want, b.String()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, diff)
		}
	}
}

// TestProcessCloseKillsGroup checks that Close stops the children a peer
// started, not just the peer.
func TestProcessCloseKillsGroup(t *testing.T) {
	t.Parallel()
	p, err := startProcess("shell", t.TempDir(), []string{"/bin/sh", "-c", "sleep 60 & echo child $!; wait"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var child int
	ctx := testContext(t, 10*time.Second)
	err = p.waitReady(ctx, 5*time.Second, func(context.Context) error {
		f := strings.Fields(p.Output())
		if len(f) < 2 {
			return errors.New("no child pid yet")
		}
		child, err = strconv.Atoi(f[1])
		return err
	})
	if err != nil {
		t.Fatalf("waiting for the child pid: %v", err)
	}
	if err := syscall.Kill(child, 0); err != nil {
		t.Fatalf("child %d is not running before Close: %v", child, err)
	}
	p.Close()
	p.Close() // idempotent
	// The child is reparented (to init or a subreaper) once killed; it may
	// linger as a zombie briefly, so look at its state, not just existence.
	deadline := time.Now().Add(5 * time.Second)
	for processAlive(child) {
		if time.Now().After(deadline) {
			t.Fatalf("child %d still running after Close", child)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestProcessExitShowsOutput(t *testing.T) {
	t.Parallel()
	p, err := startProcess("failing peer", t.TempDir(), []string{"/bin/sh", "-c", "echo listen failed: port in use >&2; exit 3"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = p.waitReady(testContext(t, 10*time.Second), 5*time.Second, func(context.Context) error { return errors.New("not yet") })
	if err == nil {
		t.Fatal("waitReady succeeded for a process that exited")
	}
	for _, want := range []string{"failing peer exited before it was ready", "exit status 3", "listen failed: port in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

func TestProcessReadinessTimeout(t *testing.T) {
	t.Parallel()
	p, err := startProcess("slow peer", t.TempDir(), []string{"/bin/sh", "-c", "echo starting; exec sleep 60"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = p.waitReady(testContext(t, 10*time.Second), 300*time.Millisecond, func(context.Context) error { return errors.New("port closed") })
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "port closed") ||
		!strings.Contains(err.Error(), "starting") {
		t.Errorf("error = %v, want a deadline error naming the last check and showing the output", err)
	}
	if !p.exited() {
		t.Error("the peer still runs after a failed start")
	}
}

func TestNodeDirNotInstalled(t *testing.T) {
	empty := t.TempDir()
	if err := os.WriteFile(filepath.Join(empty, "package.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t, 5*time.Second)
	starts := map[string]func() error{
		"StartEverything": func() error { _, err := StartEverything(ctx, EverythingOptions{NodeDir: empty}); return err },
		"StartOIDCProvider": func() error {
			_, err := StartOIDCProvider(ctx, OIDCOptions{NodeDir: empty})
			return err
		},
		"RunTSClientWith": func() error {
			_, err := RunTSClientWith(ctx, TSClientOptions{NodeDir: empty}, "http://127.0.0.1:1/mcp", "", nil)
			return err
		},
		"NodeDir from env": func() error {
			t.Setenv(NodeDirEnv, empty)
			_, err := NodeDir()
			return err
		},
	}
	for name, start := range starts {
		err := start()
		if !errors.Is(err, ErrNotInstalled) || !strings.Contains(err.Error(), "run `make test-deps` (npm ci in test/node)") {
			t.Errorf("%s: error %v, want ErrNotInstalled", name, err)
		}
	}
	t.Setenv(NodeDirEnv, "")
	dir, err := NodeDir()
	if err != nil {
		t.Fatalf("NodeDir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "client.mjs")); err != nil {
		t.Errorf("NodeDir %s does not hold the peer scripts: %v", dir, err)
	}
}
