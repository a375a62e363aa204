package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
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
	// benchMaskingProfile is the target's masking profile: the built-in
	// "default" with two more keys, so a custom profile is loaded as
	// deployments have one.
	benchMaskingProfile = "bench"
)

// writeAirlockConfig writes the airlock.yaml the bench runs `airlock serve`
// with: ext_authz on authzAddr, the HTTP API on a free port, one issuer,
// the github target with a required scope and an upstream credential read
// from credentialEnv, and the policy in policyDir with its default reload.
// Nothing else is on (see serveConfig for the full configuration).
func writeAirlockConfig(dir, authzAddr, issuerURL, policyDir string) (string, error) {
	return serveConfig{Dir: dir, Authz: authzAddr, IssuerURL: issuerURL, PolicyDir: policyDir}.write()
}

// serveConfig is the airlock.yaml of one benchmark run. With Full set it
// is issue 19's default configuration: audit recording into ClickHouse
// (through the durable spool, as serve wires it whenever a ClickHouse
// address is configured; the embedded store is the other branch of the
// same switch and is written only for the record), the decision log on
// with the file sink, a masking profile next to the built-ins on the
// target, and a file grant store in GrantsDir (filled beforehand).
type serveConfig struct {
	Dir       string // where airlock.yaml, the spool, the audit and decision log files go
	Authz     string // listen.authz
	Proc      string // listen.proc ("" off)
	IssuerURL string
	PolicyDir string

	Full bool
	// ClickHouse is the native address of the audit ClickHouse and
	// Database its database (every other audit setting is the default:
	// rows are shipped each second); with Full and no address the
	// embedded store records instead.
	ClickHouse, Database string
	GrantsDir            string
}

// decisionLogPath is the decision log's file sink inside dir.
func decisionLogPath(dir string) string { return filepath.Join(dir, "decisions.jsonl") }

func (c serveConfig) write() (string, error) {
	abs, err := filepath.Abs(c.PolicyDir)
	if err != nil {
		return "", fmt.Errorf("policy dir %s: %w", c.PolicyDir, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# written by authzload for one benchmark run
public_url: %s
listen: {authz: %q, http: "127.0.0.1:0", proc: %q, xds: ""}
issuers:
  - name: okta
    url: %s
    audiences: [api://default]
targets:
  - name: %s
    upstream: http://127.0.0.1:1/mcp
    scopes_required: [%s]
    credential: {prefix: "Bearer ", env: %s}
`, benchPublic, c.Authz, c.Proc, c.IssuerURL, benchTarget, benchScope, credentialEnv)
	if c.Full {
		fmt.Fprintf(&b, `    masking_profile: %s
masking:
  profiles:
    - name: %s
      extends: default
      keys: [password, client_secret]
grants: {store: file, dir: %q}
decision_log: {sink: file, path: %q}
`, benchMaskingProfile, benchMaskingProfile, c.GrantsDir, decisionLogPath(c.Dir))
		spool := filepath.Join(c.Dir, "spool")
		embedded := filepath.Join(c.Dir, "audit")
		if c.ClickHouse != "" {
			fmt.Fprintf(&b, "audit:\n  clickhouse: {addr: %q, database: %q}\n  spool: {dir: %q}\n  embedded: {dir: %q}\n",
				c.ClickHouse, c.Database, spool, embedded)
		} else {
			fmt.Fprintf(&b, "audit:\n  embedded: {dir: %q}\n", embedded)
		}
	}
	fmt.Fprintf(&b, "policy: {dir: %q}\nlog: {level: error}\n", abs)
	path := filepath.Join(c.Dir, "airlock.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return path, nil
}
