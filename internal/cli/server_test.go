package cli_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/cli"
)

// run runs the airlock command line as cmd/airlock does.
func run(args []string, stdout, stderr io.Writer) int {
	return cli.Run(context.Background(), args, cli.Env{Stdout: stdout, Stderr: stderr})
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const goodConfig = `
issuers:
  - name: okta
    url: https://example.okta.com/oauth2/default
targets:
  - name: github
    upstream: http://127.0.0.1:3001/mcp
policy:
  dir: policies
`

const goodPolicy = `package airlock
decision := {"outcome": "allow", "reason": "ok"}
`

func TestValidate(t *testing.T) {
	cases := []struct {
		name     string
		files    map[string]string
		args     []string
		wantCode int
		wantOut  []string
		notOut   []string
	}{
		{
			name:     "good",
			files:    map[string]string{"airlock.yaml": goodConfig, "policies/p.rego": goodPolicy},
			wantCode: 0, wantOut: []string{"airlock.yaml: ok (1 issuers, 1 targets"}, notOut: []string{"warning"},
		},
		{
			name:     "no ext_proc while a target masks is said",
			files:    map[string]string{"airlock.yaml": goodConfig + "listen: {proc: \"\"}\n", "policies/p.rego": goodPolicy},
			wantCode: 0, wantOut: []string{"warning: listen.proc is empty, so responses of github are neither masked nor recorded", "ok (1 issuers"},
		},
		{
			name: "no ext_proc with masking off is fine", notOut: []string{"warning"},
			files:    map[string]string{"airlock.yaml": strings.Replace(goodConfig, "    upstream: http://127.0.0.1:3001/mcp", "    upstream: http://127.0.0.1:3001/mcp\n    masking_profile: \"off\"", 1) + "listen: {proc: \"\"}\n", "policies/p.rego": goodPolicy},
			wantCode: 0, wantOut: []string{"ok (1 issuers"},
		},
		{
			name:     "broken config points at the line",
			files:    map[string]string{"airlock.yaml": strings.Replace(goodConfig, "upstream: http://127.0.0.1:3001/mcp", "upstream: 127.0.0.1:3001", 1), "policies/p.rego": goodPolicy},
			wantCode: 1, wantOut: []string{"airlock.yaml:7:15: targets[0].upstream", "not an absolute http(s) URL"},
		},
		{
			name:     "broken policy points at the rego line",
			files:    map[string]string{"airlock.yaml": goodConfig, "policies/p.rego": "package airlock\n\ndecision := {\"outcome\": nope}\n"},
			wantCode: 1, wantOut: []string{"p.rego:3:", "var nope is unsafe"},
		},
		{
			name:     "missing credential",
			files:    map[string]string{"airlock.yaml": strings.Replace(goodConfig, "    upstream: http://127.0.0.1:3001/mcp", "    upstream: http://127.0.0.1:3001/mcp\n    credential: {env: AIRLOCK_TEST_UNSET_CRED}", 1), "policies/p.rego": goodPolicy},
			wantCode: 1, wantOut: []string{"AIRLOCK_TEST_UNSET_CRED is not set"},
		},
		{
			name:     "missing credential skipped",
			files:    map[string]string{"airlock.yaml": strings.Replace(goodConfig, "    upstream: http://127.0.0.1:3001/mcp", "    upstream: http://127.0.0.1:3001/mcp\n    credential: {env: AIRLOCK_TEST_UNSET_CRED}", 1), "policies/p.rego": goodPolicy},
			args:     []string{"--skip-credentials"},
			wantCode: 0, wantOut: []string{"ok"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			var out, errOut bytes.Buffer
			args := append([]string{"validate", "--config", filepath.Join(dir, "airlock.yaml")}, tc.args...)
			code := run(args, &out, &errOut)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.wantCode, out.String(), errOut.String())
			}
			all := out.String() + errOut.String()
			for _, w := range tc.wantOut {
				if !strings.Contains(all, w) {
					t.Errorf("output %q lacks %q", all, w)
				}
			}
			for _, w := range tc.notOut {
				if strings.Contains(all, w) {
					t.Errorf("output %q has %q", all, w)
				}
			}
		})
	}
}

func TestEnvoyBootstrapPrintsValidBootstrap(t *testing.T) {
	dir := writeFiles(t, map[string]string{"airlock.yaml": goodConfig, "policies/p.rego": goodPolicy})
	for _, tc := range []struct {
		name  string
		flags []string
		check func(t *testing.T, b *bootstrapv3.Bootstrap)
	}{
		{"ADS (default)", nil, func(t *testing.T, b *bootstrapv3.Bootstrap) {
			if b.GetDynamicResources().GetAdsConfig() == nil || len(b.GetStaticResources().GetListeners()) != 0 {
				t.Errorf("an ADS bootstrap takes its listener from airlock: %v", b.GetDynamicResources())
			}
		}},
		{"static", []string{"--static"}, func(t *testing.T, b *bootstrapv3.Bootstrap) {
			if len(b.GetStaticResources().GetListeners()) != 1 {
				t.Errorf("static bootstrap has %d listeners", len(b.GetStaticResources().GetListeners()))
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"envoy", "bootstrap", "--config", filepath.Join(dir, "airlock.yaml"), "--node-id", "gw-7"}, tc.flags...)
			if code := run(args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			b, err := envoy.ParseBootstrap(out.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			if b.GetNode().GetId() != "gw-7" {
				t.Errorf("node %v", b.GetNode())
			}
			tc.check(t, b)
		})
	}
}

func TestUnknownCommand(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"frobnicate"}, &out, &errOut); code != 2 || !strings.Contains(errOut.String(), `unknown command "frobnicate"`) {
		t.Fatalf("exit %d, stderr %q", code, errOut.String())
	}
}
