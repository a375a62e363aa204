package mask

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePath(t *testing.T) {
	for _, c := range []struct {
		in   string
		segs []seg
		typ  string
	}{
		{"$.result.structuredContent.credentials.*", []seg{{kind: segName, name: "result"}, {kind: segName, name: "structuredContent"},
			{kind: segName, name: "credentials"}, {kind: segAny}}, "field:credentials"},
		{"$.a[0][*]", []seg{{kind: segName, name: "a"}, {kind: segIndex, idx: 0}, {kind: segAny}}, "field:a"},
		{`$['odd key']["x\"y"][12]`, []seg{{kind: segName, name: "odd key"}, {kind: segName, name: `x"y`}, {kind: segIndex, idx: 12}}, "field:odd key"},
		{"$.*", []seg{{kind: segAny}}, "field:path"},
		{"$.a-b_c$", []seg{{kind: segName, name: "a-b_c$"}}, "field:a-b_c$"},
	} {
		r, err := parsePath(c.in)
		if err != nil {
			t.Errorf("%s: %v", c.in, err)
			continue
		}
		if diff := cmp.Diff(c.segs, r.segs, cmp.AllowUnexported(seg{})); diff != "" {
			t.Errorf("%s segments (-want +got):\n%s", c.in, diff)
		}
		if r.typ != c.typ {
			t.Errorf("%s type = %q, want %q", c.in, r.typ, c.typ)
		}
	}
}

func TestParsePathErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", "at byte 0: must start with '$'"},
		{"a.b", "at byte 0: must start with '$'"},
		{"$", "at byte 1: names no member"},
		{"$..a", "at byte 1: recursive descent (..) is not supported"},
		{"$.", "at byte 2: expected a member name or '*' after '.'"},
		{"$.a b", "at byte 3: expected '.' or '['"},
		{"$[", "at byte 2: unterminated '['"},
		{"$[*", "at byte 3: expected ']' after '[*'"},
		{"$['a", "at byte 2: unterminated quoted name"},
		{"$['a'x", "at byte 5: expected ']' after the quoted name"},
		{"$[01]", "at byte 2: invalid index"},
		{"$[1", "at byte 3: expected ']' after the index"},
		{"$[-1]", "at byte 2: expected '*', a quoted name or an index"},
	} {
		_, err := parsePath(c.in)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parsePath(%q) error = %v, want %q", c.in, err, c.want)
		}
	}
}

func TestStep(t *testing.T) {
	var rules []pathRule
	for _, s := range []string{"$.a.b", "$.a[1]", "$.*.c", "$.a"} {
		r, err := parsePath(s)
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, r)
	}
	live := allPaths(len(rules))
	child, typ := stepName(rules, live, 0, []byte("a"))
	if child != 0b0111 || typ != "field:a" {
		t.Errorf("step a: child %b typ %q", child, typ)
	}
	if c, typ := stepName(rules, child, 1, []byte("b")); c != 0 || typ != "field:b" {
		t.Errorf("step a.b: child %b typ %q", c, typ)
	}
	if c, typ := stepIndex(rules, child, 1, 1); c != 0 || typ != "field:a" {
		t.Errorf("step a[1]: child %b typ %q", c, typ)
	}
	if c, typ := stepIndex(rules, child, 1, 0); c != 0 || typ != "" {
		t.Errorf("step a[0]: child %b typ %q", c, typ)
	}
	if allPaths(maxPaths) != ^uint64(0) {
		t.Errorf("allPaths(64) is not all ones")
	}
}
