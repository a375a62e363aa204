package extproc

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLightDependencies: ext_proc sits on the data path of every response
// and records through internal/audit's vocabulary; it must never link the
// ClickHouse driver or the OPA engine (nor the packages that do).
func TestLightDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		for _, heavy := range []string{"github.com/ClickHouse/", "github.com/open-policy-agent/", "github.com/airlock-mcp/airlock/internal/audit/clickhouse"} {
			if strings.HasPrefix(pkg, heavy) {
				t.Errorf("extproc depends on %s", pkg)
			}
		}
	}
}
