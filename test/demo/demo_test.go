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
	if err := run(bin, true, false, &out); err != nil {
		t.Fatalf("demo failed: %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`initialize → server "airlock-test-server"`,
		`allowed → "hello through airlock"`,
		"the MCP server saw its own credential",
		"[MASKED:aws_access_key]",
		`denied: tool "get-env" on target "everything" is denied`,
		"the agent's call is held",
		"carol runs `airlock requests`: req_",
		"carol runs `airlock approve req_",
		"the held call went through at once",
		"redirected to the dev issuer's login page",
		"bob approves with the inbox's form",
		"the MCP server deleted acme/old-wiki",
		"401, WWW-Authenticate: Bearer",
		"Audit trail so far",
		"allow             00u-alice  github      tools/call                 delete_repository",
		"6. The session, replayed from airlock's recording",
		"(the denied call):",
		"(the approved call):",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	if strings.Contains(out.String(), "eyJ") {
		t.Error("the demo printed a token")
	}
}
