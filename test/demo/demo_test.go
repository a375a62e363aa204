package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDemo runs `make demo`'s program once, with a freshly built airlock,
// and checks that it shows each step of the story.
func TestDemo(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "airlock")
	build := exec.Command("go", "build", "-o", bin, "github.com/airlock-mcp/airlock/cmd/airlock")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building airlock: %v\n%s", err, out)
	}
	var out bytes.Buffer
	if err := run(bin, true, &out); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`initialize → server "airlock-test-server"`,
		`allowed → "hello through airlock"`,
		"the MCP server saw its own credential",
		`denied: tool "get-env" on target "everything" is denied`,
		`approval required: tool "delete_repository"`,
		"the MCP server never saw it",
		"401, WWW-Authenticate: Bearer",
		"Audit trail so far",
		"approval_required 00u-alice  github",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "eyJ") {
		t.Error("the demo printed a token")
	}
}
