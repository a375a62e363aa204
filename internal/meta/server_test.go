package meta

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-mcp/airlock/internal/config"
)

func testConfig(t *testing.T, targets string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	src := `
public_url: https://gw.example.com
issuers:
  - {name: okta, url: "https://example.okta.com/oauth2/default"}
  - {name: azure, url: "https://login.example.com/tenant/v2.0"}
targets:
` + targets + `
policy: {dir: p}
`
	cfg, err := config.Parse(strings.NewReader(src), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func get(t *testing.T, h http.Handler, path string) (*http.Response, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Result(), rec.Body.Bytes()
}

func TestProtectedResourceMetadata(t *testing.T) {
	cfg := testConfig(t, `
  - {name: github, upstream: "http://127.0.0.1:1/mcp", scopes_required: [mcp.github], issuers: [okta]}
  - {name: jira, upstream: "http://127.0.0.1:2/mcp"}
`)
	s := New(cfg, Options{})
	cases := []struct {
		path   string
		status int
		want   *ProtectedResourceMetadata
	}{
		{"/.well-known/oauth-protected-resource/mcp/github", 200, &ProtectedResourceMetadata{
			Resource: "https://gw.example.com/mcp/github", AuthorizationServers: []string{"https://example.okta.com/oauth2/default"},
			ScopesSupported: []string{"mcp.github"}, BearerMethodsSupported: []string{"header"}, ResourceName: "github",
		}},
		{"/.well-known/oauth-protected-resource/mcp/jira", 200, &ProtectedResourceMetadata{
			Resource: "https://gw.example.com/mcp/jira", AuthorizationServers: []string{"https://example.okta.com/oauth2/default", "https://login.example.com/tenant/v2.0"},
			BearerMethodsSupported: []string{"header"}, ResourceName: "jira",
		}},
		{"/.well-known/oauth-protected-resource/mcp/nope", 404, nil},
		{"/.well-known/oauth-protected-resource", 404, nil}, // two targets: no root document
	}
	for _, tc := range cases {
		t.Run(tc.path, func(t *testing.T) {
			resp, body := get(t, s, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, body)
			}
			if tc.want == nil {
				return
			}
			var got ProtectedResourceMetadata
			if err := json.Unmarshal(body, &got); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(*tc.want, got); diff != "" {
				t.Errorf("metadata (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRootMetadataForSingleTarget(t *testing.T) {
	s := New(testConfig(t, `  - {name: github, upstream: "http://127.0.0.1:1/mcp"}`), Options{})
	resp, body := get(t, s, "/.well-known/oauth-protected-resource")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"resource":"https://gw.example.com/mcp/github"`) {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestHealthReadyMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "airlock_test_total", Help: "t"})
	reg.MustRegister(c)
	c.Inc()
	s := New(testConfig(t, `  - {name: github, upstream: "http://127.0.0.1:1/mcp"}`), Options{Gatherer: reg})
	if resp, _ := get(t, s, "/healthz"); resp.StatusCode != 200 {
		t.Errorf("healthz %d", resp.StatusCode)
	}
	if resp, _ := get(t, s, "/readyz"); resp.StatusCode != 503 {
		t.Errorf("readyz before SetReady = %d, want 503", resp.StatusCode)
	}
	s.SetReady(true)
	if resp, _ := get(t, s, "/readyz"); resp.StatusCode != 200 {
		t.Errorf("readyz after SetReady = %d", resp.StatusCode)
	}
	if _, body := get(t, s, "/metrics"); !strings.Contains(string(body), "airlock_test_total 1") {
		t.Errorf("metrics: %s", body)
	}
}
