package audit

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoClickHouseDependency keeps clickhouse-go out of internal/audit:
// everything that only records (extproc, extauthz, the grants auditor)
// imports this package, and ClickHouse belongs in internal/audit/clickhouse.
func TestNoClickHouseDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/ClickHouse/") || strings.HasSuffix(pkg, "/internal/audit/clickhouse") {
			t.Errorf("internal/audit depends on %s", pkg)
		}
	}
}
