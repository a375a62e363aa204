package grants

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func TestReasonFromCall(t *testing.T) {
	tests := []struct {
		name    string
		params  string
		headers map[string]string
		want    string
	}{
		{"meta", `{"name":"t","_meta":{"io.airlock/reason":"ticket OPS-12"}}`, nil, "ticket OPS-12"},
		{"meta wins over header", `{"_meta":{"io.airlock/reason":"from meta"}}`, map[string]string{ReasonHeader: "from header"}, "from meta"},
		{"header when no meta", `{"name":"t","arguments":{"a":1}}`, map[string]string{ReasonHeader: "from header"}, "from header"},
		{"header when meta is blank", `{"_meta":{"io.airlock/reason":"  \n "}}`, map[string]string{ReasonHeader: "h"}, "h"},
		{"meta not a string", `{"_meta":{"io.airlock/reason":42}}`, map[string]string{ReasonHeader: "h"}, "h"},
		{"other meta keys ignored", `{"_meta":{"progressToken":"p","io.airlock/Reason":"case differs"}}`, nil, ""},
		{"params not an object", `[1,2]`, map[string]string{ReasonHeader: "h"}, "h"},
		{"params not JSON", `{"_meta":`, nil, ""},
		{"nothing", ``, nil, ""},
		{"cleaned", `{"_meta":{"io.airlock/reason":"line one\nline\u202e two\t\u0000end"}}`, nil, "line one line two end"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ReasonFromCall([]byte(tt.params), tt.headers); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCleanReason(t *testing.T) {
	long := strings.Repeat("é", MaxReasonRunes+10)
	tests := []struct{ in, want string }{
		{"", ""},
		{"  plain  ", "plain"},
		{"a\r\n\tb", "a b"},
		{"bidi \u202eevil\u202c text", "bidi evil text"},
		{"zero\u200bwidth", "zerowidth"},
		{"bad \xff utf8", "bad utf8"},
		{long, strings.Repeat("é", MaxReasonRunes) + "…"},
		{strings.Repeat("a", MaxReasonRunes-1) + " b", strings.Repeat("a", MaxReasonRunes-1) + "…"},
		{strings.Repeat("a", MaxReasonRunes), strings.Repeat("a", MaxReasonRunes)},
	}
	for _, tt := range tests {
		if got := CleanReason(tt.in); got != tt.want {
			t.Errorf("CleanReason(%.40q) = %.40q…, want %.40q…", tt.in, got, tt.want)
		}
	}
}

func FuzzReasonFromCall(f *testing.F) {
	f.Add([]byte(`{"_meta":{"io.airlock/reason":"why"}}`), "hdr")
	f.Add([]byte(`{"_meta":{"io.airlock/reason":"\u202e\u0000 x \ud800"}}`), "")
	f.Add([]byte(`null`), "\xff\xfe")
	f.Add([]byte(``), strings.Repeat("long ", 200))
	f.Fuzz(func(t *testing.T, params []byte, header string) {
		got := ReasonFromCall(params, map[string]string{ReasonHeader: header})
		checkCleaned(t, got)
	})
}

func FuzzCleanReason(f *testing.F) {
	for _, s := range []string{"", "a b", " \t\n", "\u202e", "\xff", strings.Repeat("x ", 400)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := CleanReason(s)
		checkCleaned(t, got)
		if again := CleanReason(got); again != got {
			t.Fatalf("not idempotent: %q then %q", got, again)
		}
	})
}

func checkCleaned(t *testing.T, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("invalid UTF-8: %q", s)
	}
	if n := utf8.RuneCountInString(s); n > MaxReasonRunes+1 {
		t.Fatalf("%d runes, limit %d", n, MaxReasonRunes)
	}
	if s != strings.TrimSpace(s) || strings.Contains(s, "  ") {
		t.Fatalf("untrimmed or doubled spaces: %q", s)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || (unicode.IsSpace(r) && r != ' ') {
			t.Fatalf("control, format or odd space %U in %q", r, s)
		}
	}
}

func TestCanonicalArguments(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr bool
	}{
		{"member order", `{"b":1,"a":2}`, `{"a":2,"b":1}`, false},
		{"white space", " { \"a\" : [ 1 , 2 ] } ", `{"a":[1,2]}`, false},
		{"number spellings", `[1, 1.0, 1e0, 10E-1, -0, 0.1, 1.50, 100]`, `[1,1,1,1,0,1/10,3/2,100]`, false},
		{"big integers stay exact", `[9007199254740993, 9007199254740992]`, `[9007199254740993,9007199254740992]`, false},
		{"huge exponent kept as spelt", `[1e999999, 1E999999]`, `[n:1e999999,n:1e999999]`, false},
		{"string escapes", `["\u0041\n\/"]`, `["A\n/"]`, false},
		{"nested", `{"z":{"y":null,"x":true},"a":[]}`, `{"a":[],"z":{"x":true,"y":null}}`, false},
		{"not JSON", `{"a":`, "", true},
		{"two values", `{} {}`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := CanonicalArguments([]byte(tt.in))
			if tt.wantErr {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("err = %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCallKey(t *testing.T) {
	base := func() (Principal, string, Kind, string, []byte) {
		return alice, "github", KindTool, "delete", []byte(`{"a":1}`)
	}
	p, tg, k, n, a := base()
	ref := callKey(p, tg, k, n, a)
	variants := map[string]string{}
	{
		p2 := p
		p2.Subject = "bob"
		variants["subject"] = callKey(p2, tg, k, n, a)
		p3 := p
		p3.ClientID = "agent-2"
		variants["client"] = callKey(p3, tg, k, n, a)
	}
	variants["target"] = callKey(p, "gitlab", k, n, a)
	variants["kind"] = callKey(p, tg, KindResource, n, a)
	variants["name"] = callKey(p, tg, k, "delete2", a)
	variants["arguments"] = callKey(p, tg, k, n, []byte(`{"a":2}`))
	variants["boundary shift"] = callKey(p, tg+"d", k, "elete", a)
	for what, key := range variants {
		if key == ref {
			t.Errorf("a different %s gives the same key", what)
		}
	}
	// Groups and user are not part of the call.
	p.Groups, p.User = []string{"other"}, "other"
	if callKey(p, tg, k, n, a) != ref {
		t.Error("groups or user changed the key")
	}
}

func FuzzCanonicalArguments(f *testing.F) {
	for _, s := range []string{`{}`, `{"b":[1,2.50,"x"],"a":null}`, `1e400`, `-0.0e-0`, `"\ud800"`, `[{"a":{"b":{}}}]`, `{"a":1,"a":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c, err := CanonicalArguments(raw)
		if err != nil {
			return
		}
		if !json.Valid(raw) {
			t.Fatalf("accepted invalid JSON %q", raw)
		}
		// Compact white space and re-spelling do not change the form.
		var b bytes.Buffer
		if err := json.Compact(&b, raw); err != nil {
			t.Fatal(err)
		}
		c2, err := CanonicalArguments(b.Bytes())
		if err != nil || !bytes.Equal(c, c2) {
			t.Fatalf("compacting changed the canonical form: %s vs %s (%v)", c, c2, err)
		}
		// Re-encoding the decoded value (member order, escapes) does not either.
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if dec.Decode(&v) != nil {
			return
		}
		re, err := json.Marshal(v)
		if err != nil {
			return
		}
		c3, err := CanonicalArguments(re)
		if err != nil || !bytes.Equal(c, c3) {
			t.Fatalf("re-encoding changed the canonical form: %s vs %s (%v)", c, c3, err)
		}
	})
}

func FuzzScanFrames(f *testing.F) {
	frames := appendFrame(nil, []byte(`{"seq":1}`))
	frames = appendFrame(frames, []byte(`{"seq":2,"drop_grants":["g"]}`))
	f.Add(frames)
	f.Add(frames[:len(frames)-3])
	f.Add(append(bytes.Clone(frames), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
	f.Add([]byte{0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := scanFrames(data, 0, "fuzz")
		if s.end < 0 || s.end > len(data) {
			t.Fatalf("end %d out of 0..%d", s.end, len(data))
		}
		// The frames read are exactly the bytes up to end.
		var re []byte
		for _, p := range s.frames {
			re = appendFrame(re, p)
		}
		if !bytes.Equal(re, data[:s.end]) {
			t.Fatalf("frames do not re-encode to the prefix they came from")
		}
		if err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v is not ErrCorrupt", err)
		}
		// Whatever a crash leaves after good frames is a torn tail, never an error.
		if err == nil {
			cut := appendFrame(bytes.Clone(data[:s.end]), []byte("torn record"))
			cut = cut[:len(cut)-1-len(cut)%5%4]
			if _, err := scanFrames(cut, 0, "fuzz"); err != nil && len(cut) > s.end {
				t.Fatalf("a torn last frame was reported as damage: %v", err)
			}
		}
	})
}
