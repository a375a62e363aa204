package config

import (
	"path/filepath"
	"strings"
	"testing"
)

// withTarget adds lines (indented as target fields) after the target's
// upstream in minimal.
func withTarget(lines string) string {
	return strings.Replace(minimal, "    upstream: http://127.0.0.1:3001/mcp\n", "    upstream: http://127.0.0.1:3001/mcp\n"+lines, 1)
}

// withIssuer adds lines (indented as issuer fields) after the issuer's url.
func withIssuer(y, lines string) string {
	return strings.Replace(y, "    url: https://example.okta.com/oauth2/default\n", "    url: https://example.okta.com/oauth2/default\n"+lines, 1)
}

func TestAudienceBinding(t *testing.T) {
	cases := []struct {
		name string
		yaml string
		want []string // each must appear in the error; none: valid
	}{
		{"issuer-level audiences without opt-in", withIssuer(minimal, "    audiences: [api://default]\n"), nil},
		{"opt-in with scopes", withIssuer(withTarget("    accept_issuer_audiences: true\n    scopes_required: [mcp:github]\n"), "    audiences: [api://default]\n"), nil},
		{"opt-in without scopes", withIssuer(withTarget("    accept_issuer_audiences: true\n"), "    audiences: [api://default]\n"), []string{
			"airlock.yaml:10:30: targets[0].accept_issuer_audiences: is true but scopes_required is empty",
			"must require scopes only its own agents are given",
			"have tokens minted for https://gw.example.com/mcp/github",
		}},
		{"opt-in with an empty scope list", withTarget("    accept_issuer_audiences: true\n    scopes_required: []\n"), []string{
			"airlock.yaml:9:30: targets[0].accept_issuer_audiences: is true but scopes_required is empty",
		}},
		{"api audience is a target's resource", minimal + "api:\n  audience: https://gw.example.com/mcp/github\n", []string{
			`airlock.yaml:12:13: api.audience: "https://gw.example.com/mcp/github" is also the resource URI of target "github" (targets[0])`,
		}},
		{"default api audience is a target's resource", withTarget("    resource: https://gw.example.com/airlock\n"), []string{
			`api.audience: "https://gw.example.com/airlock" is also the resource URI of target "github" (targets[0])`,
		}},
		{"api audience is an issuer-level audience", withIssuer(minimal, "    audiences: [api://default]\n") + "api:\n  audience: api://default\n", []string{
			`airlock.yaml:13:13: api.audience: "api://default" is also an issuer-level audience of issuer "okta" (issuers[0].audiences[0])`,
		}},
		{"approver scopes and client ids", minimal + "api:\n  approver_scopes: [airlock:approve]\n  client_ids: [0oa-cli]\n", nil},
		{"empty approver scope", minimal + "api:\n  approver_scopes: [\"\"]\n", []string{
			`airlock.yaml:12:21: api.approver_scopes[0]: "" is empty or holds white space`,
		}},
		{"client id with a space", minimal + "api:\n  client_ids: [ok, \"a b\"]\n", []string{
			`api.client_ids[1]: "a b" is empty or holds white space`,
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePolicyDir(t)
			cfg, err := Parse(strings.NewReader(tc.yaml), filepath.Join(dir, "airlock.yaml"))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Parse accepted it: %+v", cfg.Targets)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestAcceptIssuerAudiencesDecodes(t *testing.T) {
	dir := writePolicyDir(t)
	cfg, err := Parse(strings.NewReader(withTarget("    accept_issuer_audiences: true\n    scopes_required: [mcp:github]\n")), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Targets[0].AcceptIssuerAudiences {
		t.Error("accept_issuer_audiences: true did not decode")
	}
	cfg, err = Parse(strings.NewReader(minimal), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Targets[0].AcceptIssuerAudiences {
		t.Error("accept_issuer_audiences defaults to true")
	}
}
