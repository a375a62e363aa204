package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func writePolicyDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

const minimal = `
public_url: https://gw.example.com/
issuers:
  - name: okta
    url: https://example.okta.com/oauth2/default
targets:
  - name: github
    upstream: http://127.0.0.1:3001/mcp
policy:
  dir: policies
`

func TestParseAppliesDefaults(t *testing.T) {
	dir := writePolicyDir(t)
	cfg, err := Parse(strings.NewReader(minimal), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := Target{
		Name:           "github",
		PathPrefix:     "/mcp/github",
		Upstream:       "http://127.0.0.1:3001/mcp",
		Resource:       "https://gw.example.com/mcp/github",
		Credential:     Credential{Header: "authorization"},
		MaskingProfile: "default",
	}
	if diff := cmp.Diff(want, cfg.Targets[0]); diff != "" {
		t.Errorf("target (-want +got):\n%s", diff)
	}
	is := cfg.Issuers[0]
	if diff := cmp.Diff([]string{"RS256", "ES256"}, is.Algorithms); diff != "" {
		t.Errorf("algorithms: %s", diff)
	}
	if is.ClockSkew != 30*time.Second || is.Claims.ClientID != "cid" || is.Claims.Scopes != "scp" {
		t.Errorf("issuer defaults not applied: %+v", is)
	}
	if cfg.Policy.Dir != filepath.Join(dir, "policies") {
		t.Errorf("policy dir not resolved against the config file: %s", cfg.Policy.Dir)
	}
	if cfg.Listen.Authz != "127.0.0.1:9001" || cfg.Limits.MaxRequestBytes != 1<<20 {
		t.Errorf("listen/limits defaults missing: %+v %+v", cfg.Listen, cfg.Limits)
	}
}

func TestParseErrorsPointAtTheField(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // each must appear in the error
	}{
		{"unknown key", minimal + "bogus: 1\n", []string{"airlock.yaml:11:1", "bogus"}},
		{"unknown nested key", strings.Replace(minimal, "    upstream:", "    upstrem: x\n    upstream:", 1), []string{"airlock.yaml:8:5", "upstrem"}},
		{"bad url", strings.Replace(minimal, "http://127.0.0.1:3001/mcp", "ftp//nope", 1), []string{"airlock.yaml:8:15", "targets[0].upstream", `"ftp//nope" is not an absolute http(s) URL`}},
		{"hmac algorithm", strings.Replace(minimal, "    url: https://example.okta.com/oauth2/default", "    url: https://example.okta.com/oauth2/default\n    algorithms: [HS256]", 1), []string{"issuers[0].algorithms[0]", `"HS256" is not allowed`}},
		{"bad duration", strings.Replace(minimal, "policy:\n", "policy:\n  reload_interval: soon\n", 1), []string{"airlock.yaml:10:20", `invalid duration "soon"`}},
		{"no issuers", strings.Replace(minimal, "issuers:\n  - name: okta\n    url: https://example.okta.com/oauth2/default\n", "", 1), []string{"issuers: at least one issuer is required"}},
		{"duplicate target", minimal[:strings.Index(minimal, "policy:")] + "  - name: github\n    upstream: http://127.0.0.1:3002/mcp\npolicy:\n  dir: policies\n", []string{"targets[1].name", `duplicate target name "github"`, "targets[1].path_prefix"}},
		{"unknown issuer on target", strings.Replace(minimal, "    upstream: http://127.0.0.1:3001/mcp", "    upstream: http://127.0.0.1:3001/mcp\n    issuers: [azure]", 1), []string{"targets[0].issuers[0]", `no issuer named "azure"`}},
		{"missing policy dir", strings.Replace(minimal, "dir: policies", "dir: nowhere", 1), []string{"airlock.yaml:10:8", "policy.dir"}},
		{"env and file", strings.Replace(minimal, "    upstream: http://127.0.0.1:3001/mcp", "    upstream: http://127.0.0.1:3001/mcp\n    credential: {env: A, file: b}", 1), []string{"targets[0].credential", "set env or file, not both"}},
		{"syntax", "targets: [\n", []string{"airlock.yaml:"}},
		{"grants window", minimal + "grants:\n  hold_window: 10m\n", []string{"grants.hold_window", "outside 0s..5m"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePolicyDir(t)
			_, err := Parse(strings.NewReader(tc.yaml), filepath.Join(dir, "airlock.yaml"))
			if err == nil {
				t.Fatal("Parse accepted a broken config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestExampleConfigIsValid(t *testing.T) {
	if _, err := Load("../../examples/airlock.yaml"); err != nil {
		t.Fatal(err)
	}
}

func TestCredentialResolve(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "tok")
	if err := os.WriteFile(file, []byte("s3cret-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AIRLOCK_TEST_CRED", "s3cret-env")
	cases := []struct {
		name    string
		c       Credential
		want    string
		wantErr string
	}{
		{"none", Credential{}, "", ""},
		{"env", Credential{Env: "AIRLOCK_TEST_CRED", Prefix: "Bearer "}, "Bearer s3cret-env", ""},
		{"file", Credential{File: file}, "s3cret-file", ""},
		{"env missing", Credential{Env: "AIRLOCK_TEST_UNSET"}, "", "AIRLOCK_TEST_UNSET is not set"},
		{"file missing", Credential{File: filepath.Join(dir, "nope")}, "", "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.c.Resolve()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "s3cret") {
					t.Fatal("error leaks the secret")
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("Resolve() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
