package serve

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/config"
)

// Start binds its listeners, serves metrics that include the identity and
// policy counters, keeps the last good policy when a broken one is
// written, and stops cleanly.
func TestStartServeReloadStop(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := os.Mkdir(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	good := "package airlock\n\ndecision := {\"outcome\": \"allow\", \"reason\": \"v1\"}\n"
	if err := os.WriteFile(filepath.Join(pol, "p.rego"), []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
listen: {authz: "127.0.0.1:0", http: "127.0.0.1:0", proc: "", xds: ""}
issuers: [{name: okta, url: "https://example.okta.com/oauth2/default"}]
targets: [{name: github, upstream: "http://127.0.0.1:1/mcp"}]
policy: {dir: %s, reload_interval: 20ms}
`, pol)
	cfg, err := config.Parse(strings.NewReader(src), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	g, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	v1 := g.Policy.Current().Version()

	resp, err := http.Get("http://" + g.HTTPAddr.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, m := range []string{"airlock_policy_decision_cache_enabled 1", `airlock_token_cache_total{result="hit"} 0`, "airlock_jwks_fetches_total"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("metrics lack %q", m)
		}
	}

	// A broken policy is rejected; v1 keeps serving.
	if err := os.WriteFile(filepath.Join(pol, "p.rego"), []byte("package airlock\n\ndecision := {"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.Policy.Reload(); err == nil || !strings.Contains(err.Error(), "p.rego:3") {
		t.Fatalf("reloading a broken policy: %v, want an error at p.rego:3", err)
	}
	if got := g.Policy.Current().Version(); got != v1 {
		t.Fatalf("a broken policy replaced the good one (%s → %s)", v1, got)
	}
	// A fixed one is picked up.
	if err := os.WriteFile(filepath.Join(pol, "p.rego"), []byte(strings.Replace(good, "v1", "v2", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.Policy.Current().Version() == v1 {
		if time.Now().After(deadline) {
			t.Fatal("the fixed policy was never loaded")
		}
		time.Sleep(20 * time.Millisecond)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	g.Stop(ctx)
	if _, err := http.Get("http://" + g.HTTPAddr.String() + "/healthz"); err == nil {
		t.Error("HTTP still serving after Stop")
	}
}
