package harness

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/airlock-mcp/airlock/internal/config"
)

func (s *Stack) writeConfig(opts Options, authz, httpAddr, proc, xdsAddr, level string) (*config.Config, error) {
	polDir := filepath.Join(s.WorkDir, "policies")
	if err := os.MkdirAll(polDir, 0o755); err != nil {
		return nil, err
	}
	if err := copyShippedPolicy(filepath.Join(repoRoot(), "policies", "airlock"), filepath.Join(polDir, "airlock")); err != nil {
		return nil, fmt.Errorf("shipped policy: %w", err)
	}
	if err := os.WriteFile(filepath.Join(polDir, "data.yaml"), policyData, 0o644); err != nil {
		return nil, err
	}
	for rel, data := range opts.PolicyData {
		p := filepath.Join(polDir, filepath.FromSlash(rel))
		if !strings.HasPrefix(p, polDir+string(filepath.Separator)) {
			return nil, fmt.Errorf("policy data file %q is outside the policy directory", rel)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			return nil, err
		}
	}
	credFile := filepath.Join(s.WorkDir, "github-credential")
	if err := os.WriteFile(credFile, []byte(UpstreamSecret+"\n"), 0o600); err != nil {
		return nil, err
	}
	maxBody := opts.MaxRequestBytes
	if maxBody == 0 {
		maxBody = 1 << 20
	}
	var b strings.Builder
	// Local tools (the conformance suite, MCP inspectors) send a loopback Origin.
	fmt.Fprintf(&b, `public_url: %s
allowed_origins: ["http://127.0.0.1:*", "http://localhost:*"]
listen: {authz: %q, http: %q, proc: %q, xds: %q%s}
issuers:
  - name: okta
    url: %s
targets:
  - name: github
    upstream: %s
    scopes_required: [mcp.read]
    credential: {prefix: "Bearer ", file: %s}
  - name: jsonapi
    upstream: %s
    scopes_required: [mcp.read]
    credential: {prefix: "Bearer ", file: %s}
`, s.BaseURL, authz, httpAddr, proc, xdsAddr, listenTLS(opts.ListenTLS), s.Issuer.URL(), s.GoServer.URL(), credFile, s.JSONServer.URL(), credFile)
	if len(opts.IssuerAudiences) > 0 {
		cfg := b.String()
		b.Reset()
		b.WriteString(strings.Replace(cfg, "    url: "+s.Issuer.URL()+"\n", fmt.Sprintf("    url: %s\n    audiences: %s\n", s.Issuer.URL(), yamlList(opts.IssuerAudiences)), 1))
	}
	if s.Issuer2 != nil {
		cfg := b.String()
		b.Reset()
		b.WriteString(strings.Replace(cfg, "targets:\n", fmt.Sprintf("  - name: second\n    url: %s\ntargets:\n", s.Issuer2.URL()), 1))
	}
	if s.OIDC != nil {
		// A second issuer, appended under issuers: by rewriting the targets: key.
		cfg := b.String()
		b.Reset()
		b.WriteString(strings.Replace(cfg, "targets:\n", fmt.Sprintf("  - name: oidc-provider\n    url: %s\ntargets:\n", s.OIDC.Issuer()), 1))
	}
	if s.Everything != nil {
		fmt.Fprintf(&b, "  - name: everything\n    upstream: %s\n", s.Everything.URL())
	}
	if s.TSServer != nil {
		for _, t := range [][2]string{{"tsserver", s.TSServer.URL()}, {"tsstateless", s.TSServer.StatelessURL()}} {
			fmt.Fprintf(&b, "  - name: %s\n    upstream: %s\n    scopes_required: [mcp.read]\n    credential: {prefix: \"Bearer \", file: %s}\n", t[0], t[1], credFile)
		}
	}
	if s.GzipJSON != nil {
		for _, t := range [][2]string{{"gzipjson", s.GzipJSON.URL()}, {"gzipsse", s.GzipSSE.URL()}} {
			fmt.Fprintf(&b, "  - name: %s\n    upstream: %s\n    scopes_required: [mcp.read]\n    credential: {prefix: \"Bearer \", file: %s}\n", t[0], t[1], credFile)
		}
	}
	if opts.NoScopeTarget {
		fmt.Fprintf(&b, "  - name: noscope\n    upstream: %s\n    credential: {prefix: \"Bearer \", file: %s}\n", s.JSONServer.URL(), credFile)
	}
	limits := fmt.Sprintf("max_request_bytes: %d", maxBody)
	if opts.MaxResponseBytes > 0 {
		limits += fmt.Sprintf(", max_response_bytes: %d", opts.MaxResponseBytes)
	}
	fmt.Fprintf(&b, "policy: {dir: %s, reload_interval: 2s}\nlimits: {%s}\nlog: {level: %s, format: json}\n", polDir, limits, level)
	fmt.Fprintf(&b, "grants: {dir: %s", filepath.Join(s.WorkDir, "grants"))
	if opts.HoldWindow > 0 {
		fmt.Fprintf(&b, ", hold_window: %s", opts.HoldWindow)
	}
	if opts.PendingTTL > 0 {
		fmt.Fprintf(&b, ", pending_ttl: %s", opts.PendingTTL)
	}
	b.WriteString("}\n")
	if opts.ClickHouse != "" {
		db := opts.ClickHouseDatabase
		if db == "" {
			db = "airlock"
		}
		fmt.Fprintf(&b, "audit: {clickhouse: {addr: %q, database: %q, flush_interval: 50ms}, spool: {fsync_interval: 10ms}}\n", opts.ClickHouse, db)
	}
	if opts.ExtraConfig != nil {
		b.WriteString(opts.ExtraConfig(s.BaseURL))
	}
	path := filepath.Join(s.WorkDir, "airlock.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		return nil, err
	}
	return config.Load(path)
}

// listenTLS is the listen.tls member of the listen: flow mapping ("" when t is nil).
func listenTLS(t *config.ListenTLS) string {
	if t == nil {
		return ""
	}
	return fmt.Sprintf(", tls: {cert_file: %q, key_file: %q, client_ca_file: %q, allowed_identities: %s, envoy: {cert_file: %q, key_file: %q, ca_file: %q, server_name: %q}}",
		t.CertFile, t.KeyFile, t.ClientCAFile, yamlList(t.AllowedIdentities), t.Envoy.CertFile, t.Envoy.KeyFile, t.Envoy.CAFile, t.Envoy.ServerName)
}

// yamlList is a YAML flow sequence of quoted strings.
func yamlList(items []string) string {
	q := make([]string, len(items))
	for i, it := range items {
		q[i] = strconv.Quote(it)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// copyShippedPolicy copies the shipped policy's Rego modules and data
// files (not its tests) from src to dst, keeping their relative paths
// (data files are namespaced by their directory).
func copyShippedPolicy(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		name := d.Name()
		keep := (strings.HasSuffix(name, ".rego") && !strings.HasSuffix(name, "_test.rego")) ||
			name == "data.yaml" || name == "data.yml" || name == "data.json"
		if !keep {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
}

// repoRoot is the checkout this package was built from.
func repoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if ok {
		if root := filepath.Join(filepath.Dir(file), "..", ".."); exists(filepath.Join(root, "go.mod")) {
			return root
		}
	}
	wd, _ := os.Getwd()
	for d := wd; d != filepath.Dir(d); d = filepath.Dir(d) {
		if exists(filepath.Join(d, "go.mod")) && exists(filepath.Join(d, "policies")) {
			return d
		}
	}
	return wd
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
