package check

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
)

const envoyDir = "../envoy"

// TestEnvoyBootstraps: deploy/envoy's bootstraps are what `airlock envoy
// bootstrap` prints for the airlock.yaml beside them, and that file passes
// `airlock validate` (TLS files and policies laid out as on the host).
func TestEnvoyBootstraps(t *testing.T) {
	r := rooted{root: t.TempDir(), prefixes: []string{"/etc/airlock", "/etc/envoy/airlock"}}
	copyTree(t, filepath.Join(repoRoot, "policies"), filepath.Join(r.root, "etc/airlock/policies"))
	writeTLS(t, filepath.Join(r.root, "etc/airlock/tls"), "airlock.example.com", filepath.Join(r.root, "etc/envoy/airlock"), "spiffe://example.com/envoy")
	t.Setenv("GITHUB_MCP_TOKEN", "secret-for-the-test")
	src, err := os.ReadFile(filepath.Join(envoyDir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(r.root, "etc/airlock/airlock.yaml")
	writeFile(t, cfgPath, r.in(string(src)))
	validate(t, cfgPath)

	// Envoy on another host reaches airlock's services where airlock
	// renders them: never an unspecified address (Envoy would take it
	// for itself).
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := envoy.BuildDynamic(cfg, envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range dyn.Clusters {
		for _, le := range c.GetLoadAssignment().GetEndpoints() {
			for _, e := range le.GetLbEndpoints() {
				if a := e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress(); strings.HasPrefix(c.GetName(), "airlock_") && (a == "0.0.0.0" || a == "::") {
					t.Errorf("cluster %s reaches %s: Envoy on another host cannot", c.GetName(), a)
				}
			}
		}
	}

	for _, tc := range []struct {
		file string
		args []string
	}{
		{"ads-bootstrap.yaml", nil},
		{"static-bootstrap.yaml", []string{"--static"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			args := append([]string{"envoy", "bootstrap", "--config", cfgPath}, tc.args...)
			out, errs, code := runAirlock(t, args...)
			if code != 0 {
				t.Fatalf("airlock %s: %s", strings.Join(args, " "), errs)
			}
			got := []byte(r.out(out))
			if _, err := envoy.ParseBootstrap(got); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join(envoyDir, tc.file), got)
		})
	}
}

// envoyBootstrapRE finds Envoy bootstraps among deploy/'s files.
var envoyBootstrapRE = regexp.MustCompile(`(?m)^(static_resources|dynamic_resources|admin):`)

// TestEveryEnvoyConfigValidates: every Envoy bootstrap under deploy/
// parses as Envoy's Bootstrap and passes airlock's deep validation (every
// typed_config unpacked and validated), as generated ones do. The chart's
// bootstrap (rendered) and Istio's EnvoyFilter patches are checked in
// TestHelmChart and TestIstio.
func TestEveryEnvoyConfigValidates(t *testing.T) {
	n := 0
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".yaml") {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if !envoyBootstrapRE.Match(b) {
			return nil
		}
		n++
		if _, err := envoy.ParseBootstrap(b); err != nil {
			t.Errorf("%s: %v", path, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 3 {
		t.Errorf("found %d Envoy bootstraps under deploy/, want at least 3 (envoy/ads, envoy/static, compose)", n)
	}
	// A bootstrap that does not validate is caught.
	bad := []byte("static_resources:\n  clusters:\n    - name: x\n      connect_timeout: -1s\n")
	if _, err := envoy.ParseBootstrap(bad); err == nil {
		t.Error("a cluster with a negative connect_timeout passed deep validation")
	}
}
