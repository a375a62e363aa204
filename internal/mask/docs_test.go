package mask

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/config"
)

// docBlock returns the fenced code block that follows the marker
// <!-- example:name --> in docs/masking.md.
func docBlock(t *testing.T, doc, name string) string {
	t.Helper()
	marker := "<!-- example:" + name + " -->\n"
	i := strings.Index(doc, marker)
	if i < 0 {
		t.Fatalf("docs/masking.md: no %q", strings.TrimSpace(marker))
	}
	rest := doc[i+len(marker):]
	if !strings.HasPrefix(rest, "```") {
		t.Fatalf("docs/masking.md: %q is not followed by a code block", strings.TrimSpace(marker))
	}
	rest = rest[strings.IndexByte(rest, '\n')+1:]
	j := strings.Index(rest, "```")
	if j < 0 {
		t.Fatalf("docs/masking.md: the block after %q does not end", strings.TrimSpace(marker))
	}
	return rest[:j]
}

// TestDocsMaskingExample keeps the user guide's example true: the
// airlock.yaml snippet in docs/masking.md parses and validates with a
// minimal configuration around it, its profile compiles next to the
// built-ins, and masking the page's example response with it gives the
// page's example output.
func TestDocsMaskingExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/masking.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := `public_url: https://gw.example.com/
issuers:
  - name: okta
    url: https://example.okta.com/oauth2/default
policy:
  dir: policies
` + docBlock(t, doc, "masking-yaml")
	cfg, err := config.Parse(strings.NewReader(yaml), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatalf("the documented airlock.yaml snippet: %v", err)
	}
	set, err := NewSet(cfg.Masking.Profiles)
	if err != nil {
		t.Fatalf("the documented profile: %v", err)
	}
	if len(cfg.Targets) != 1 {
		t.Fatalf("the snippet has %d targets, want 1", len(cfg.Targets))
	}
	p, err := set.Get(cfg.Targets[0].MaskingProfile)
	if err != nil {
		t.Fatal(err)
	}
	in := strings.TrimSpace(docBlock(t, doc, "masking-input"))
	want := strings.TrimSpace(docBlock(t, doc, "masking-output"))
	out, _, err := p.MaskJSON([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, []byte(want)) {
		t.Errorf("masking the documented input with the documented profile:\n got %s\nwant %s", out, want)
	}
}

// TestDocsMaskingLists keeps the user guide's tables complete: every
// built-in detector has its row in docs/masking.md, and the rows of the
// built-in profiles name every key rule they hold.
func TestDocsMaskingLists(t *testing.T) {
	b, err := os.ReadFile("../../docs/masking.md")
	if err != nil {
		t.Fatal(err)
	}
	row := func(first string) string {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "| `"+first+"`") {
				return line
			}
		}
		return ""
	}
	for _, name := range DetectorNames() {
		if row(name) == "" {
			t.Errorf("docs/masking.md: the detector %q has no row in the detector table", name)
		}
	}
	// A row may say "the default ones" rather than list them again.
	inDefault := map[string]bool{}
	for _, k := range Default().Config().Keys {
		inDefault[k] = true
	}
	for _, c := range BuiltinConfigs() {
		r := row(c.Name)
		if r == "" {
			t.Errorf("docs/masking.md: the built-in profile %q has no row", c.Name)
			continue
		}
		for _, k := range c.Keys {
			if c.Name != DefaultProfile && inDefault[k] && strings.Contains(r, "the default ones") {
				continue
			}
			if !strings.Contains(r, "`"+k+"`") {
				t.Errorf("docs/masking.md: the %q profile's row does not name its key rule %q", c.Name, k)
			}
		}
	}
}
