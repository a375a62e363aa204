package serve

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/slackapp"
)

// TestSlackAppMounted: with notifications.slack_app the gateway serves
// Slack's interactivity URL and refuses unsigned requests there; it does
// not start without the signing secret; without the section the URL is
// not served.
func TestSlackAppMounted(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := os.Mkdir(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pol, "p.rego"), []byte("package airlock\n\ndecision := {\"outcome\": \"allow\", \"reason\": \"v1\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := func(t *testing.T, extra string) (*Gateway, error) {
		src := fmt.Sprintf(`
listen: {authz: "127.0.0.1:0", http: "127.0.0.1:0", proc: "", xds: ""}
issuers: [{name: okta, url: "https://example.okta.com/oauth2/default"}]
targets: [{name: github, upstream: "http://127.0.0.1:1/mcp"}]
policy: {dir: %s}
grants: {dir: %s}
%s`, pol, t.TempDir(), extra)
		cfg, err := config.Parse(strings.NewReader(src), filepath.Join(dir, "airlock.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		g, err := Start(context.Background(), cfg, Options{})
		if err == nil {
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				g.Stop(ctx)
			})
		}
		return g, err
	}
	status := func(t *testing.T, g *Gateway) int {
		resp, err := http.Post("http://"+g.HTTPAddr.String()+slackapp.Path, "application/x-www-form-urlencoded", strings.NewReader("payload=%7B%7D"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	slack := `notifications:
  slack_app:
    signing_secret_env: AIRLOCK_TEST_SLACK_SIGNING_SECRET
    approvers: [{slack_user_id: U0BOB1234, subject: 00u-bob, groups: [airlock-approvers]}]
`
	t.Run("on", func(t *testing.T) {
		t.Setenv("AIRLOCK_TEST_SLACK_SIGNING_SECRET", "0123456789abcdef0123456789abcdef")
		g, err := start(t, slack)
		if err != nil {
			t.Fatal(err)
		}
		if got := status(t, g); got != http.StatusUnauthorized {
			t.Errorf("unsigned Slack request: %d, want 401", got)
		}
	})
	t.Run("no secret", func(t *testing.T) {
		t.Setenv("AIRLOCK_TEST_SLACK_SIGNING_SECRET", "")
		if _, err := start(t, slack); err == nil || !strings.Contains(err.Error(), "signing_secret_env") {
			t.Errorf("Start = %v, want a missing secret", err)
		}
	})
	t.Run("off", func(t *testing.T) {
		g, err := start(t, "")
		if err != nil {
			t.Fatal(err)
		}
		if got := status(t, g); got != http.StatusNotFound {
			t.Errorf("without slack_app: %d, want 404", got)
		}
	})
}
