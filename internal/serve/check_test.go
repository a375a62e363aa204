package serve

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/config"
)

// TestCheckFindsWhatValidateCannot: the checks that need airlock's parts
// (moved here from config.Validate, which imports none) still fail the
// configuration, and their field errors point at the line in the file.
func TestCheckFindsWhatValidateCannot(t *testing.T) {
	cases := []struct {
		name   string
		listen string
		extra  string
		target string // appended to the target's flow mapping
		want   []string
	}{
		{name: "unknown masking profile", target: ", masking_profile: paranoid",
			want: []string{"airlock.yaml:6:", "targets[0].masking_profile", `no masking profile named "paranoid"`}},
		{name: "broken masking profile", extra: "masking:\n  profiles:\n    - name: mine\n      patterns: [{type: x, regexp: \"(\"}]\n",
			want: []string{"airlock.yaml:10:", "masking.profiles", "regexp"}},
		{name: "TLS without identities", listen: "  xds: ''\n  tls: {cert_file: a, key_file: b, client_ca_file: c}",
			want: []string{"airlock.yaml:4:", "listen.tls.allowed_identities: name at least one identity"}},
		{name: "TLS without the CA", listen: "  xds: ''\n  tls: {cert_file: a, key_file: b, allowed_identities: [gw.internal]}",
			want: []string{"airlock.yaml:4:", "listen.tls.client_ca_file: is required"}},
		{name: "TLS with a bad identity", listen: "  xds: ''\n  tls: {cert_file: a, key_file: b, client_ca_file: c, allowed_identities: ['*.internal']}",
			want: []string{"airlock.yaml:4:", `listen.tls.allowed_identities[0]: "*.internal" is neither`}},
		{name: "webhook secret unset", extra: "notifications:\n  webhooks: [{name: ops, url: \"https://hooks.example/x\", secret_env: AIRLOCK_TEST_SURELY_UNSET_SECRET}]\n",
			want: []string{"airlock.yaml:9:", "notifications.webhooks[0].secret_env: environment variable AIRLOCK_TEST_SURELY_UNSET_SECRET is empty or unset"}},
		{name: "missing credential", target: ", credential: {env: AIRLOCK_TEST_SURELY_UNSET_CRED}",
			want: []string{"airlock.yaml:", "targets[0].credential: target github: credential: environment variable AIRLOCK_TEST_SURELY_UNSET_CRED is not set"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := checkConfig(t, tc.listen, tc.target, tc.extra)
			_, err := Check(context.Background(), cfg, CheckOptions{})
			if err == nil {
				t.Fatal("Check accepted a broken configuration")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestCheckPasses: a sound configuration passes and Check says what it
// found.
func TestCheckPasses(t *testing.T) {
	cfg := checkConfig(t, "", ", credential: {env: AIRLOCK_TEST_SURELY_UNSET_CRED}", "")
	chk, err := Check(context.Background(), cfg, CheckOptions{SkipCredentials: true})
	if err != nil {
		t.Fatal(err)
	}
	if chk.PolicyVersion == "" || chk.GRPCTransport != "plaintext on loopback" || chk.TLS != nil || len(chk.Notes) != 0 {
		t.Errorf("Checked = %+v", chk)
	}
}

// checkConfig parses a configuration (listen: on line 2, its fields from
// line 3, the target on line 6) with a compiling policy.
func checkConfig(t *testing.T, listen, target, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := os.Mkdir(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pol, "p.rego"), []byte("package airlock\n\ndecision := {\"outcome\": \"allow\", \"reason\": \"ok\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if listen == "" {
		listen = "  xds: ''"
	}
	src := "\nlisten:\n" + listen + "\nissuers: [{name: okta, url: \"https://example.okta.com/oauth2/default\"}]\ntargets:\n" +
		"  - {name: github, upstream: \"http://127.0.0.1:1/mcp\"" + target + "}\npolicy: {dir: " + pol + ", reload_interval: 0s}\n" + extra
	cfg, err := config.Parse(strings.NewReader(src), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
