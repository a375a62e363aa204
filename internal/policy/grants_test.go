package policy

import (
	"encoding/json"
	"testing"
)

func TestCoveringGrants(t *testing.T) {
	g := func(id, args string) GrantInput {
		gi := GrantInput{ID: id}
		if args != "" {
			gi.Arguments = json.RawMessage(args)
		}
		return gi
	}
	cases := []struct {
		name string
		args string
		want string // ids covered, in order
	}{
		{"same values, other order and spelling", `{"key": "PROJ-1", "n": 1.0}`, "any,exact"},
		{"other value", `{"key": "PROJ-2", "n": 1}`, "any"},
		{"no arguments", ``, "any"},
		{"extra argument", `{"key": "PROJ-1", "n": 1, "force": true}`, "any"},
		{"big integers stay exact", `{"key": "PROJ-1", "n": 9007199254740993}`, "any"},
		{"not JSON", `{"key":`, "any"},
	}
	grants := []GrantInput{g("any", ""), g("exact", `{"n":1,"key":"PROJ-1"}`)}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ids string
			for i, c := range CoveringGrants(grants, json.RawMessage(tc.args)) {
				if i > 0 {
					ids += ","
				}
				ids += c.ID
			}
			if ids != tc.want {
				t.Errorf("covering grants %q, want %q", ids, tc.want)
			}
		})
	}
	empty := []GrantInput{g("empty", `{}`)}
	if got := CoveringGrants(empty, nil); len(got) != 1 {
		t.Error("a grant for a call without arguments ({}) does not cover that call")
	}
	if got := CoveringGrants(empty, json.RawMessage(`{"x":1}`)); len(got) != 0 {
		t.Error("a grant for {} covers a call with arguments")
	}
	big := []GrantInput{g("big", `{"n":9007199254740992}`)}
	if got := CoveringGrants(big, json.RawMessage(`{"n":9007199254740993}`)); len(got) != 0 {
		t.Error("2^53 and 2^53+1 compared equal")
	}
}

// TestCoveringGrantsByHash: a grant that keeps only the hash of its
// arguments (the grant store keeps no raw copy) covers exactly the calls
// whose arguments equal them as JSON values.
func TestCoveringGrantsByHash(t *testing.T) {
	h, err := ArgumentsHash([]byte(`{"n":1,"key":"PROJ-1"}`))
	if err != nil {
		t.Fatal(err)
	}
	empty, _ := ArgumentsHash(nil)
	grants := []GrantInput{{ID: "exact", ArgumentsHash: h, Arguments: json.RawMessage(`{"key":"[MASKED:x]","n":1}`)}, {ID: "none", ArgumentsHash: empty}}
	for args, want := range map[string]string{
		`{"key": "PROJ-1", "n": 1.0}`: "exact",
		`{"key":"PROJ-1","n":10e-1}`:  "exact",
		`{"key":"[MASKED:x]","n":1}`:  "",
		`{"key":"PROJ-2","n":1}`:      "",
		`{"key":`:                     "",
		``:                            "none",
		`{}`:                          "none",
	} {
		var ids string
		for _, g := range CoveringGrants(grants, json.RawMessage(args)) {
			ids += g.ID
		}
		if ids != want {
			t.Errorf("arguments %s: covered by %q, want %q", args, ids, want)
		}
	}
}
