package check

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/cli"
)

var update = flag.Bool("update", false, "rewrite the generated files under deploy/ (values.schema.json, Envoy bootstraps)")

// repoRoot is the airlock repository, two levels above this module.
const repoRoot = "../.."

// runAirlock runs the airlock command line in this process (the same
// internal/cli the binary runs) and returns stdout, stderr and the exit code.
func runAirlock(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, cli.Env{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: os.Getenv})
	return out.String(), errb.String(), code
}

// validate runs the real `airlock validate` on the file at path and fails
// the test unless it passes.
func validate(t *testing.T, path string) {
	t.Helper()
	out, errs, code := runAirlock(t, "validate", "--config", path)
	if code != 0 || !strings.Contains(out, ": ok (") {
		t.Fatalf("airlock validate %s: exit %d\nstdout: %s\nstderr: %s", path, code, out, errs)
	}
}

// rooted moves the absolute paths a container sees (/etc/airlock, ...)
// under root, so that a configuration written for a pod can be validated
// here against files the test lays out the same way.
type rooted struct {
	root     string
	prefixes []string
}

func (r rooted) in(s string) string {
	for _, p := range r.prefixes {
		s = strings.ReplaceAll(s, " "+p, " "+filepath.Join(r.root, p))
		s = strings.ReplaceAll(s, "\n"+p, "\n"+filepath.Join(r.root, p))
		s = strings.ReplaceAll(s, "\""+p, "\""+filepath.Join(r.root, p))
	}
	return s
}

func (r rooted) out(s string) string { return strings.ReplaceAll(s, r.root, "") }

// golden compares got with the file at path, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -update in deploy/check writes it)", err)
	}
	if !bytes.Equal(got, want) {
		g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		line := func(l []string) string {
			if i < len(l) {
				return l[i]
			}
			return "<end of file>"
		}
		t.Errorf("%s is stale (regenerate it with `go test -update` in deploy/check): line %d is %q, want %q", path, i+1, line(g), line(w))
	}
}
