package mcp

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/jsontext"
)

// scanAll runs the scanner over b as a generic JSON value.
func scanAll(b []byte) *scanError {
	var s scanner
	s.init(b)
	s.skipWS()
	if s.value() {
		s.skipWS()
		if s.i < len(s.b) {
			s.unexpected("the end of input")
		}
	}
	return s.err
}

func TestScanDuplicates(t *testing.T) {
	many := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra + "}")
		return b.String()
	}
	tests := []struct {
		name     string
		in       string
		wantKind errKind // 0: valid
		wantMsg  string
	}{
		{"distinct", `{"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]}`, 0, ""},
		{"exact", `{"a":1,"a":2}`, kindDuplicate, `duplicate member name "a"`},
		{"case", `{"abc":1,"ABC":2}`, kindDuplicate, `member names "abc" and "ABC" differ only in letter case`},
		{"escaped", `{"a":1,"\u0061":2}`, kindDuplicate, `duplicate member name "a"`},
		{"escaped slash", `{"a/b":1,"a\/b":2}`, kindDuplicate, `duplicate member name "a/b"`},
		{"long s folds to s", `{"s":1,"\u017f":2}`, kindDuplicate, "member names \"s\" and \"\u017f\" differ only in letter case"},
		{"Greek sigma forms", `{"σ":1,"ς":2}`, kindDuplicate, `member names "σ" and "ς" differ only in letter case`},
		{"nested", `{"a":{"x":1,"y":{"q":1,"q":2}}}`, kindDuplicate, `duplicate member name "q"`},
		{"names freed after an object closes", `{"a":{"b":1},"b":{"a":1}}`, 0, ""},
		{"many distinct members (map path)", many(100, `"last":1`), 0, ""},
		{"duplicate after threshold (map path)", many(40, `"k3":1`), kindDuplicate, `duplicate member name "k3"`},
		{"case duplicate after threshold", many(40, `"K39":1`), kindDuplicate, `member names "k39" and "K39" differ only in letter case`},
		{"duplicate at the threshold", many(foldSetThreshold, `"k0":1`), kindDuplicate, `duplicate member name "k0"`},
		{"long names", `{"` + strings.Repeat("n", 300) + `":1,"` + strings.Repeat("N", 300) + `":2}`, kindDuplicate, "differ only in letter case"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := scanAll([]byte(tt.in))
			if tt.wantKind == 0 {
				if err != nil {
					t.Fatalf("scan: %+v", err)
				}
				return
			}
			if err == nil || err.kind != tt.wantKind || !strings.Contains(err.msg, tt.wantMsg) {
				t.Fatalf("scan = %+v, want kind %d with %q", err, tt.wantKind, tt.wantMsg)
			}
		})
	}
}

func TestScanSyntax(t *testing.T) {
	tests := []struct {
		in       string
		wantKind errKind
		wantOff  int
	}{
		{`{}`, 0, 0},
		{`[]`, 0, 0},
		{` [1, -0.5e+10, 2E-3, true, false, null, "x", {}] `, 0, 0},
		{`"\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"`, 0, 0},
		{`""`, 0, 0},
		{``, kindSyntax, 0},
		{`{`, kindSyntax, 1},
		{`{"a"}`, kindSyntax, 4},
		{`{"a":}`, kindSyntax, 5},
		{`{"a":1 "b":2}`, kindSyntax, 7},
		{`{1:2}`, kindSyntax, 1},
		{`[1,]`, kindSyntax, 3},
		{`[1 2]`, kindSyntax, 3},
		{`01`, kindSyntax, 1},
		{`1.`, kindSyntax, 2},
		{`.5`, kindSyntax, 0},
		{`1e`, kindSyntax, 2},
		{`1e+`, kindSyntax, 3},
		{`-`, kindSyntax, 1},
		{`+1`, kindSyntax, 0},
		{`nul`, kindSyntax, 3},
		{`nulL`, kindSyntax, 3},
		{`"abc`, kindSyntax, 4},
		{`"a\`, kindSyntax, 3},
		{`"\u00g0"`, kindSyntax, 1},
		{`"\ud800"`, kindEncoding, 1},
		{`"\ud800\u0041"`, kindEncoding, 1},
		{`"\udfff"`, kindEncoding, 1},
		{"\"\x80\"", kindEncoding, 1},
		{"\"\xc3\"", kindEncoding, 1},
		{"\"\t\"", kindSyntax, 1},
		{`NaN`, kindSyntax, 0},
		{`1 2`, kindSyntax, 2},
		{strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth), 0, 0},
		{strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1), kindDepth, maxDepth},
		{strings.Repeat(`{"a":`, maxDepth+1) + "1" + strings.Repeat("}", maxDepth+1), kindDepth, 5 * maxDepth},
	}
	for _, tt := range tests {
		name := tt.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			err := scanAll([]byte(tt.in))
			if tt.wantKind == 0 {
				if err != nil {
					t.Fatalf("scan: %+v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("scan accepted, want kind %d at %d", tt.wantKind, tt.wantOff)
			}
			if err.kind != tt.wantKind || err.off != tt.wantOff {
				t.Fatalf("scan = %+v, want kind %d at %d", err, tt.wantKind, tt.wantOff)
			}
		})
	}
}

func TestAppendUnescaped(t *testing.T) {
	tests := map[string]string{
		`plain`:                    "plain",
		`a\"b\\c\/d`:               `a"b\c/d`,
		`\b\f\n\r\t`:               "\b\f\n\r\t",
		`\u0041\u00e9\u4e16`:       "Aé世",
		`x\ud83d\ude00y`:           "x😀y",
		`\uD83D\uDE00`:             "😀",
		`\u0000`:                   "\x00",
		`caf\u00e9 \u2603 tail`:    "café ☃ tail",
		"raw é stays":              "raw é stays",
		`\\u0041 is not an escape`: `\u0041 is not an escape`,
	}
	for in, want := range tests {
		if got := string(jsontext.AppendUnescaped(nil, []byte(in))); got != want {
			t.Errorf("AppendUnescaped(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAppendFoldedMatchesEqualFold(t *testing.T) {
	names := []string{"a", "A", "k", "K", "\u212a", "s", "S", "\u017f", "σ", "Σ", "ς", "é", "É", "ß", "ẞ", "ǅ", "ǆ", "Ǆ", "id", "ID", "Id", "ıd", "İd", "name", "NAME", "nAmE", ""}
	for _, x := range names {
		for _, y := range names {
			want := bytes.EqualFold([]byte(x), []byte(y))
			got := bytes.Equal(appendFolded(nil, []byte(x)), appendFolded(nil, []byte(y)))
			if got != want {
				t.Errorf("folded(%q) == folded(%q) is %v, EqualFold says %v", x, y, got, want)
			}
		}
	}
}

func TestQuoteClip(t *testing.T) {
	tests := []struct{ in, want string }{
		{"short", `"short"`},
		{"new\nline", `"new\nline"`},
		{strings.Repeat("a", 64), `"` + strings.Repeat("a", 64) + `"`},
		{strings.Repeat("a", 65), `"` + strings.Repeat("a", 64) + `"... (65 bytes)`},
		{strings.Repeat("a", 63) + "é", `"` + strings.Repeat("a", 63) + `"... (65 bytes)`},
	}
	for _, tt := range tests {
		if d := cmp.Diff(tt.want, quoteClip(tt.in)); d != "" {
			t.Errorf("quoteClip(%q) (-want +got):\n%s", tt.in, d)
		}
	}
}
