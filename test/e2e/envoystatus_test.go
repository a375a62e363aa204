package e2e

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/cli"
	"github.com/airlock-mcp/airlock/test/envoydriver"
	"github.com/airlock-mcp/airlock/xds"
)

// `airlock envoy status` against the data path the shared stack runs
// (the stand-in's ADS client, playing the floor release), with a second
// client playing Envoy 1.32.3: the first is listed in sync on every type,
// the second is refused with the version it needs.
func TestEnvoyStatusListsTheDataPath(t *testing.T) {
	ctx := ctxT(t, 30*time.Second)
	b, err := envoy.ADSBootstrap(envoy.Node{ID: "e2e-old-envoy", Cluster: "airlock"}, stack.XDSAddr, envoy.ADSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old, err := envoydriver.ConnectBootstrap(b, envoydriver.ADSOptions{NoListener: true, EnvoyVersion: "1.32.3"})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()

	status := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := cli.Run(ctx, append([]string{"envoy", "status", "--server", "http://" + stack.HTTPAddr}, args...),
			cli.Env{Stdout: &out, Stderr: &errOut, Getenv: func(string) string { return "" }})
		return out.String(), errOut.String(), code
	}
	var out string
	waitFor(t, ctx, "the 1.32.3 client to be refused", func() bool {
		var code int
		out, _, code = status()
		return code == 0 && strings.Contains(out, "e2e-old-envoy")
	})
	line := func(prefix string) string {
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, prefix) {
				return l
			}
		}
		t.Fatalf("no line starting %q in:\n%s", prefix, out)
		return ""
	}
	dp := line("airlock-e2e")
	if n := strings.Count(dp, "SYNCED"); n != 3 {
		t.Errorf("the data path is not in sync on listeners, clusters and scoped routes: %q", dp)
	}
	if stack.ADSResponses != nil && !strings.Contains(dp, xds.MinEnvoyVersion) {
		t.Errorf("the stand-in plays %s, the status says %q", xds.MinEnvoyVersion, dp)
	}
	if l := line("e2e-old-envoy"); !strings.Contains(l, "1.32.3") || !strings.Contains(l, "below airlock's floor "+xds.MinEnvoyVersion) {
		t.Errorf("the old Envoy's refusal: %q", l)
	}
	if _, errOut, code := status("-o", "yaml"); code != 2 || errOut == "" {
		t.Errorf("-o yaml: exit %d, stderr %q; want a usage error", code, errOut)
	}
}
