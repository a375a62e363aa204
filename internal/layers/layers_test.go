package layers

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

// goList runs `go list` over the module from this package's directory.
func goList(t *testing.T, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	return lines
}

func rel(p string) (string, bool) {
	if p == Module {
		return ".", true
	}
	r, ok := strings.CutPrefix(p, Module+"/")
	return r, ok
}

// violations checks direct imports (pkg → its non-test imports) against
// Rank: every import of an airlock package must go to a lower rank.
func violations(imports map[string][]string) []string {
	var out []string
	for pkg, deps := range imports {
		r, ok := Rank[pkg]
		if !ok {
			out = append(out, fmt.Sprintf("%s has no rank in layers.Rank: place it", pkg))
			continue
		}
		for _, d := range deps {
			dr, ok := Rank[d]
			if !ok {
				continue // reported as its own package
			}
			if dr >= r {
				out = append(out, fmt.Sprintf("%s (rank %d) imports %s (rank %d): imports must point down", pkg, r, d, dr))
			}
		}
	}
	sort.Strings(out)
	return out
}

// TestImportsPointDown holds the rank table over every non-test package
// under internal/, the service packages and cmd/ (test/ is exempt: it
// drives everything).
func TestImportsPointDown(t *testing.T) {
	imports := map[string][]string{}
	for _, l := range goList(t, "-f", "{{.ImportPath}} {{join .Imports \" \"}}", Module+"/...") {
		f := strings.Fields(l)
		pkg, ok := rel(f[0])
		if !ok || strings.HasPrefix(pkg, "test/") {
			continue
		}
		for _, d := range f[1:] {
			if r, ok := rel(d); ok {
				imports[pkg] = append(imports[pkg], r)
			}
		}
		if _, ok := imports[pkg]; !ok {
			imports[pkg] = nil
		}
	}
	for _, v := range violations(imports) {
		t.Error(v)
	}
	for pkg := range Rank {
		if _, ok := imports[pkg]; !ok {
			t.Errorf("layers.Rank lists %s, which is not a package: remove it", pkg)
		}
	}
}

// TestLightStaysLight: the renderer, ext_proc and the vocabularies never
// reach OPA or ClickHouse, even through another package.
func TestLightStaysLight(t *testing.T) {
	for _, pkg := range Light {
		t.Run(pkg, func(t *testing.T) {
			deps := goList(t, "-deps", "-f", "{{.ImportPath}}", Module+"/"+pkg)
			for _, h := range Heavy {
				var hit []string
				for _, d := range deps {
					if strings.HasPrefix(d, h) {
						hit = append(hit, d)
					}
				}
				if len(hit) > 0 {
					t.Errorf("%s reaches %d packages of %s, e.g. %s (see go list -deps)", pkg, len(hit), h, hit[0])
				}
			}
		})
	}
}

// TestLeavesImportNothing: rank 0 imports no airlock package at all, even
// indirectly.
func TestLeavesImportNothing(t *testing.T) {
	for pkg, r := range Rank {
		if r != 0 {
			continue
		}
		for _, d := range goList(t, "-deps", "-f", "{{.ImportPath}}", Module+"/"+pkg) {
			if rd, ok := rel(d); ok && rd != pkg {
				t.Errorf("%s is a leaf but reaches %s", pkg, rd)
			}
		}
	}
}

// TestViolationsCatchesUpwardImport: the checker itself fails on an
// upward or sideways import and on an unplaced package.
func TestViolationsCatchesUpwardImport(t *testing.T) {
	for _, tc := range []struct {
		name    string
		imports map[string][]string
		want    string
	}{
		{"config imports grants", map[string][]string{"internal/config": {"internal/grants"}}, "internal/config (rank 0) imports internal/grants (rank 3)"},
		{"extauthz imports serve", map[string][]string{"extauthz": {"internal/serve"}}, "extauthz (rank 5) imports internal/serve (rank 7)"},
		{"same rank", map[string][]string{"extproc": {"extauthz"}}, "extproc (rank 5) imports extauthz (rank 5)"},
		{"unplaced", map[string][]string{"internal/newthing": nil}, "internal/newthing has no rank"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := violations(tc.imports)
			if len(v) != 1 || !strings.Contains(v[0], tc.want) {
				t.Fatalf("violations = %q, want one containing %q", v, tc.want)
			}
		})
	}
	if v := violations(map[string][]string{"extauthz": {"internal/mcp", "internal/wire"}}); len(v) != 0 {
		t.Fatalf("downward imports flagged: %q", v)
	}
}
