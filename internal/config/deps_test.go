package config

import (
	"os/exec"
	"strings"
	"testing"
)

// TestImportsNoAirlockPackage: config is at the bottom of airlock's
// imports. Every part may import it for its section's types, so it must
// import none of them: that would pull their dependencies (OPA, gRPC,
// ClickHouse) into every binary and test that reads airlock.yaml.
func TestImportsNoAirlockPackage(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const self = "github.com/airlock-mcp/airlock/internal/config"
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/airlock-mcp/airlock") && p != self {
			t.Errorf("config imports %s", p)
		}
	}
}
