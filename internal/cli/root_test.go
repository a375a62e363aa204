package cli_test

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/cli"
)

// The help is generated from the one command table: every verb, server
// and access, is listed, and each answers --help with its usage line.
func TestHelpListsEveryVerb(t *testing.T) {
	verbs := []string{"serve", "validate", "migrate", "envoy", "requests", "request", "approve", "deny", "cancel",
		"grants", "revoke", "watch", "sessions", "replay", "version", "completion"}
	var out, errOut bytes.Buffer
	if code := run([]string{"--help"}, &out, &errOut); code != 0 || errOut.Len() > 0 {
		t.Fatalf("--help: exit %d, stderr %q", code, errOut.String())
	}
	for _, v := range verbs {
		if !strings.Contains(out.String(), "\n  "+v+" ") {
			t.Errorf("--help lacks %s:\n%s", v, out.String())
		}
	}
	for _, v := range append(verbs, "envoy bootstrap", "envoy status", "dev issuer", "dev token") {
		out.Reset()
		if code := run(append(strings.Fields(v), "--help"), &out, &errOut); code != 0 || !strings.Contains(out.String(), "Usage:\n  airlock "+v) {
			t.Errorf("%s --help: exit %d\n%s", v, code, out.String())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{nil, "Usage:\n  airlock\n"},
		{[]string{"envoy"}, "Usage:\n  airlock envoy\n  airlock envoy [command]\n\nAvailable Commands:\n  bootstrap "},
		{[]string{"envoy", "bootstrp"}, "airlock envoy: unknown command \"bootstrp\"\n\nDid you mean this?\n\tbootstrap\n"},
		{[]string{"serve", "extra"}, "airlock serve: takes no arguments"},
		{[]string{"replay", "--config", "x.yaml"}, "usage: airlock replay --config airlock.yaml [--payloads] [--outcome O] [--tool T] [--since 7d] [--output table|json] SESSION\n"},
		{[]string{"validate", "--bogus"}, "airlock validate: unknown flag: --bogus"},
	} {
		var out, errOut bytes.Buffer
		if code := run(tc.args, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), tc.wantErr) || out.Len() > 0 {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2 and %q", tc.args, code, out.String(), errOut.String(), tc.wantErr)
		}
	}
}

func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"version"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "airlock ") || !strings.HasPrefix(lines[1], "revision ") ||
		!strings.HasPrefix(lines[2], runtime.Version()+" "+runtime.GOOS+"/"+runtime.GOARCH) {
		t.Errorf("version:\n%s", out.String())
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		var out, errOut bytes.Buffer
		code := cli.Run(context.Background(), []string{"completion", shell}, cli.Env{Stdout: &out, Stderr: &errOut})
		if code != 0 || !strings.Contains(out.String(), "airlock") {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, out.Len(), errOut.String())
		}
	}
	// What the shells call: the verbs complete from the table.
	var out, errOut bytes.Buffer
	if code := run([]string{"__complete", "app"}, &out, &errOut); code != 0 || !strings.HasPrefix(out.String(), "approve\t") {
		t.Errorf("__complete app: exit %d %q", code, out.String())
	}
}
