package main

import (
	"fmt"
	"os"
	"path/filepath"
)

// Bench route: one MCP target behind the gateway, as in the quick start.
const (
	benchHost     = "gw.bench"
	benchPublic   = "https://" + benchHost
	benchTarget   = "github"
	benchPath     = "/mcp/github"
	benchResource = benchPublic + benchPath
	benchScope    = "mcp.github"
	// credentialEnv carries the upstream credential to the airlock process.
	credentialEnv = "AIRLOCK_BENCH_UPSTREAM_TOKEN"
)

// writeAirlockConfig writes the airlock.yaml the bench runs `airlock serve`
// with: ext_authz on authzAddr, the HTTP API on a free port, one issuer,
// the github target with a required scope and an upstream credential read
// from credentialEnv, and the policy in policyDir with its default reload.
func writeAirlockConfig(dir, authzAddr, issuerURL, policyDir string) (string, error) {
	abs, err := filepath.Abs(policyDir)
	if err != nil {
		return "", fmt.Errorf("policy dir %s: %w", policyDir, err)
	}
	src := fmt.Sprintf(`# written by authzload for one benchmark run
public_url: %s
listen: {authz: %q, http: "127.0.0.1:0", proc: "", xds: ""}
issuers:
  - name: okta
    url: %s
    audiences: [api://default]
targets:
  - name: %s
    upstream: http://127.0.0.1:1/mcp
    scopes_required: [%s]
    credential: {prefix: "Bearer ", env: %s}
policy: {dir: %q}
log: {level: error}
`, benchPublic, authzAddr, issuerURL, benchTarget, benchScope, credentialEnv, abs)
	path := filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
