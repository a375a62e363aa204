package approvals

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func FuzzParseCursor(f *testing.F) {
	f.Add(cursor{created: time.Unix(1700000000, 5), id: "req_abc"}.String())
	f.Add("")
	f.Add("MTox")
	f.Add("LTE6eA")
	f.Add("!!!")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := parseCursor(s)
		if err != nil {
			return
		}
		again, err := parseCursor(c.String())
		if err != nil || !again.created.Equal(c.created) || again.id != c.id {
			t.Fatalf("cursor %q does not round-trip: %+v vs %+v (%v)", s, c, again, err)
		}
	})
}

func FuzzSealerOpen(f *testing.F) {
	s, err := newSealer(make([]byte, 32))
	if err != nil {
		f.Fatal(err)
	}
	good, _ := s.seal("airlock_session", session{Subject: "bob", CSRF: "x", Expires: 1})
	f.Add(good)
	f.Add("")
	f.Add("AAAA")
	f.Add(strings.Repeat("A", 5000))
	f.Fuzz(func(t *testing.T, v string) {
		var got session
		if err := s.open("airlock_session", v, &got); err != nil {
			return
		}
		// Only what was sealed opens (the seed, perhaps spelt with other
		// unused base64 bits); anything else would be a forgery of AES-GCM.
		if got.Subject != "bob" || got.CSRF != "x" || got.Expires != 1 || got.User != "" || len(got.Groups) != 0 {
			t.Fatalf("a value not sealed here opened: %q → %+v", v, got)
		}
	})
}

func FuzzShowArgs(f *testing.F) {
	f.Add(`{"repo":"acme/x"}`)
	f.Add(`{"a":[1,2,{"b":"` + strings.Repeat("é", 400) + `"}]}`)
	f.Add(`{"n":1e400}`)
	f.Add(`"\u0000"`)
	f.Fuzz(func(t *testing.T, doc string) {
		if !json.Valid([]byte(doc)) {
			return
		}
		if out := showArgs(json.RawMessage(doc)); !utf8.ValidString(out) && utf8.ValidString(doc) {
			t.Fatalf("showArgs(%q) is not UTF-8: %q", doc, out)
		}
		// The console's payloads stay bounded; a request's arguments are
		// shown whole (issue 15), so only boundedArgs has a bound.
		out := boundedArgs(json.RawMessage(doc))
		if !utf8.ValidString(out) && utf8.ValidString(doc) {
			t.Fatalf("boundedArgs(%q) is not UTF-8: %q", doc, out)
		}
		if len(out) > maxShownArgs+64 {
			t.Fatalf("boundedArgs gave %d bytes, bound %d", len(out), maxShownArgs)
		}
	})
}

func TestShowArgs(t *testing.T) {
	tests := []struct{ in, want string }{
		{``, ``},
		{`{"b":1,"a":"<x>"}`, "{\n  \"a\": \"<x>\",\n  \"b\": 1\n}"},
		{`{"n":12345678901234567890}`, "{\n  \"n\": 12345678901234567890\n}"},
		// Issue 15: an approver sees a long string whole (it was cut at
		// 300 runes, hiding the rest of a payload).
		{`{"s":"` + strings.Repeat("ab", 200) + `"}`, "{\n  \"s\": \"" + strings.Repeat("ab", 200) + "\"\n}"},
		{`not json`, "(arguments could not be shown)"},
	}
	for _, tc := range tests {
		if got := showArgs(json.RawMessage(tc.in)); got != tc.want {
			t.Errorf("showArgs(%.40q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	big := `{"s":[` + strings.Repeat(`"`+strings.Repeat("y", 250)+`",`, 60) + `"z"]}`
	if got := showArgs(json.RawMessage(big)); strings.Count(got, strings.Repeat("y", 250)) != 60 || strings.Contains(got, "not shown") {
		t.Errorf("a large document is not shown whole: %d bytes", len(got))
	}
	// The audit console still bounds a recorded payload.
	if got := boundedArgs(json.RawMessage(`{"s":"` + strings.Repeat("ab", 200) + `"}`)); got != "{\n  \"s\": \""+strings.Repeat("ab", 150)+"… (100 more characters)\"\n}" {
		t.Errorf("boundedArgs = %q", got)
	}
	if got := boundedArgs(json.RawMessage(big)); len(got) > maxShownArgs+64 || !strings.Contains(got, "more bytes not shown") {
		t.Errorf("boundedArgs shows a large document as %d bytes", len(got))
	}
}

func TestBearerToken(t *testing.T) {
	tests := map[string]string{
		"Bearer abc":    "abc",
		"bearer  abc ":  "abc",
		"BEARER abc":    "abc",
		"Basic abc":     "",
		"Bearer":        "",
		"Bearer    ":    "",
		"abc":           "",
		"":              "",
		"Bearerabc def": "",
	}
	for h, want := range tests {
		got, ok := bearerToken(h)
		if got != want || ok != (want != "") {
			t.Errorf("bearerToken(%q) = %q, %v; want %q", h, got, ok, want)
		}
	}
}
