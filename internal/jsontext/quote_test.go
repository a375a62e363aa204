package jsontext

import (
	"bytes"
	"encoding/json"
	"testing"
)

var quoteSeeds = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>",
	"ctl \x00\x01\x1f\x7f \b\f\n\r\t", "utf8 é 日本 😀", "bad \xff\xfe utf8 \xc3",
	"sep \u2028 \u2029 end", "\xe2\x80", "tool/name_with-dash.1",
}

// AppendQuoted is json.Marshal's quoting of a string, byte for byte.
func TestAppendQuotedMatchesMarshal(t *testing.T) {
	for _, s := range quoteSeeds {
		want, _ := json.Marshal(s)
		if got := AppendQuoted([]byte("x"), s); !bytes.Equal(got, append([]byte("x"), want...)) {
			t.Errorf("%q:\n got %s\nwant x%s", s, got, want)
		}
	}
}

func FuzzAppendQuoted(f *testing.F) {
	for _, s := range quoteSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := AppendQuoted(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}
