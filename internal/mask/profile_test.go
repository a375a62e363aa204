package mask

import (
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	"github.com/google/go-cmp/cmp"
)

func TestCompileErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  ProfileConfig
		want []string // each must appear in the error
	}{
		{"bad name", ProfileConfig{Name: "has space"}, []string{`profile "has space": name must be`}},
		{"unknown base", ProfileConfig{Name: "x", Extends: "nope"}, []string{`extends: no profile named "nope"`}},
		{"unknown detector", ProfileConfig{Name: "x", Detectors: []string{"jwt", "jwtt"}}, []string{`detectors[1]: unknown detector "jwtt"`, "known: all, aws_access_key"}},
		{"unknown disabled detector", ProfileConfig{Name: "x", DisableDetectors: []string{"mail"}}, []string{`disable_detectors[0]: unknown detector "mail"`}},
		{"empty key", ProfileConfig{Name: "x", Keys: []string{"ok", "__"}}, []string{`keys[1] "__": has no characters`}},
		{"long key", ProfileConfig{Name: "x", Keys: []string{strings.Repeat("k", 65)}}, []string{"keys[0]: longer than 64"}},
		{"bracket key", ProfileConfig{Name: "x", Keys: []string{"a]b"}}, []string{`keys[0] "a]b": may not hold`}},
		{"bad path", ProfileConfig{Name: "x", Paths: []string{"$.a", "result.b"}}, []string{`paths[1]: path "result.b": at byte 0: must start with '$'`}},
		{"bad regexp", ProfileConfig{Name: "x", Patterns: []PatternConfig{{Type: "ticket", Regexp: "TKT-(["}}}, []string{"patterns[0].regexp: error parsing regexp"}},
		{"empty-matching regexp", ProfileConfig{Name: "x", Patterns: []PatternConfig{{Type: "ticket", Regexp: "x*"}}}, []string{`patterns[0].regexp "x*": matches the empty string`}},
		{"bad pattern type", ProfileConfig{Name: "x", Patterns: []PatternConfig{{Type: "Ticket!", Regexp: "x"}}}, []string{`patterns[0].type "Ticket!": must be`}},
		{"pattern type of a detector", ProfileConfig{Name: "x", Patterns: []PatternConfig{{Type: "jwt", Regexp: "x"}}}, []string{`patterns[0].type "jwt": is the name of a built-in detector`}},
		{"all problems at once", ProfileConfig{Name: "x", Detectors: []string{"nope"}, Paths: []string{"$"}},
			[]string{"detectors[0]", `paths[0]: path "$": at byte 1: names no member`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Compile(c.cfg)
			if err == nil || p != nil {
				t.Fatalf("Compile succeeded")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

func TestCompileTooManyPaths(t *testing.T) {
	var paths []string
	for range maxPaths + 1 {
		paths = append(paths, "$.a")
	}
	if _, err := Compile(ProfileConfig{Name: "x", Paths: paths}); err == nil || !strings.Contains(err.Error(), "at most 64") {
		t.Fatalf("error %v, want one about the path limit", err)
	}
}

func TestCompileFromYAML(t *testing.T) {
	const doc = `
name: payments
extends: default
detectors: [email]
disable_detectors: [phone, assignment]
keys: [pan, account_number]
paths: ["$.result.structuredContent.customer.*"]
patterns:
  - type: ticket_secret
    regexp: 'TKT-[0-9]{6}'
`
	var cfg ProfileConfig
	if err := yaml.Unmarshal([]byte(doc), &cfg); err != nil {
		t.Fatal(err)
	}
	p := mustCompile(t, cfg)
	got := p.Config()
	if got.Name != "payments" || !contains(got.Detectors, "email") || contains(got.Detectors, "assignment") || contains(got.Detectors, "phone") ||
		!contains(got.Detectors, "jwt") || !contains(got.Keys, "pan") || !contains(got.Keys, "password") || len(got.Paths) != 1 || len(got.Patterns) != 1 {
		t.Errorf("compiled config = %+v", got)
	}
	checkJSON(t, jsonCase{p: p,
		in:     `{"result":{"structuredContent":{"customer":{"name":"Ann"}},"pan":"x1","note":"mail ann@example.com about TKT-123456, password=x"}}`,
		want:   `{"result":{"structuredContent":{"customer":{"name":"[MASKED:field:customer]"}},"pan":"[MASKED:field:pan]","note":"mail [MASKED:email] about [MASKED:ticket_secret], password=x"}}`,
		counts: Counts{"field:customer": 1, "field:pan": 1, "email": 1, "ticket_secret": 1}})
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

func TestDetectorsDescribed(t *testing.T) {
	ds := Detectors()
	if len(ds) != len(DetectorNames()) {
		t.Fatalf("%d detectors, %d names", len(ds), len(DetectorNames()))
	}
	for i, d := range ds {
		if d.Name != DetectorNames()[i] || d.Doc == "" {
			t.Errorf("detector %d = %+v", i, d)
		}
		if _, err := Compile(ProfileConfig{Name: "one", Detectors: []string{d.Name}}); err != nil {
			t.Errorf("detector %s cannot be named in a profile: %v", d.Name, err)
		}
	}
}

func TestBuiltins(t *testing.T) {
	def, strict := profileNamed(t, DefaultProfile), profileNamed(t, StrictProfile)
	if contains(def.Config().Detectors, "email") || !contains(strict.Config().Detectors, "email") || !contains(strict.Config().Keys, "ssn") {
		t.Errorf("default %v / strict %v detectors", def.Config().Detectors, strict.Config().Detectors)
	}
	if diff := cmp.Diff(len(detectorTable), len(strict.Config().Detectors)); diff != "" {
		t.Errorf("strict has not every detector: %s", diff)
	}
	for _, c := range BuiltinConfigs() {
		if _, err := Compile(c); err != nil {
			t.Errorf("built-in %s: %v", c.Name, err)
		}
	}
}

func TestSet(t *testing.T) {
	s, err := NewSet([]ProfileConfig{
		{Name: "base", Extends: StrictProfile, Keys: []string{"pin"}},
		{Name: "derived", Extends: "base", DisableDetectors: []string{"email"}},
		{Name: DefaultProfile, Extends: OffProfile, Keys: []string{"only_this"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"base", "default", "derived", "off", "strict"}, s.Names()); diff != "" {
		t.Errorf("Names (-want +got):\n%s", diff)
	}
	d, err := s.Get("derived")
	if err != nil || !contains(d.Config().Keys, "pin") || contains(d.Config().Detectors, "email") || !contains(d.Config().Detectors, "phone") {
		t.Errorf("derived = %+v, %v", d.Config(), err)
	}
	def, err := s.Get("")
	if err != nil || def.Name() != DefaultProfile || contains(def.Config().Keys, "password") || !contains(def.Config().Keys, "only_this") {
		t.Errorf(`Get("") = %+v, %v; want the configured default`, def.Config(), err)
	}
	if _, err := s.Get("missing"); err == nil || !strings.Contains(err.Error(), `no masking profile named "missing"`) {
		t.Errorf("Get(missing) error = %v", err)
	}
	if Default().Config().Keys[0] != "password" {
		t.Errorf("NewSet changed the built-in default")
	}
}

func TestSetErrors(t *testing.T) {
	_, err := NewSet([]ProfileConfig{
		{Name: "a"}, {Name: "a"},
		{Name: "b", Extends: "c"}, {Name: "c"},
		{Name: "d", Detectors: []string{"x"}},
	})
	for _, w := range []string{`profiles[1]: a profile named "a" is already defined`, `profiles[2]: profile "b": extends: no profile named "c"`, `profiles[4]: profile "d": detectors[0]`} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v does not say %q", err, w)
		}
	}
}

func TestCounts(t *testing.T) {
	var c Counts
	c.Add("jwt", 0)
	if c != nil {
		t.Errorf("Add of 0 allocated")
	}
	c.Add("jwt", 2)
	c.Merge(Counts{"jwt": 1, "field:password": 3})
	c.Merge(nil)
	if diff := cmp.Diff(Counts{"jwt": 3, "field:password": 3}, c); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if c.Total() != 6 || c.String() != "field:password=3 jwt=3" || Counts(nil).String() != "" {
		t.Errorf("Total %d, String %q", c.Total(), c.String())
	}
	if diff := cmp.Diff([]string{"field:password", "jwt"}, c.Types()); diff != "" {
		t.Errorf("Types (-want +got):\n%s", diff)
	}
}
