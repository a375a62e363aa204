package policy

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestNoOPADependency keeps this package the light vocabulary: packages
// that only need the input and decision types (grants, approvals, the
// ext_authz core) import it, and must not compile OPA through it. The
// engine belongs in internal/policy/rego.
func TestNoOPADependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		var stderr []byte
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps: %v\n%s", err, stderr)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.HasPrefix(p, "github.com/open-policy-agent/") {
			t.Errorf("internal/policy depends on %s; OPA belongs in internal/policy/rego", p)
		}
	}
}
