package mcp

import (
	"bytes"
	"strings"
	"testing"
)

func TestPeekIDPrefix(t *testing.T) {
	big := strings.Repeat("x", 200)
	cases := []struct {
		name string
		body string
		// from is the shortest cut that must give want; shorter cuts give nil.
		from int
		want string
	}{
		{"string id first", `{"jsonrpc":"2.0","id":"req-7","method":"tools/call","params":{"name":"echo","arguments":{"t":"` + big + `"}}}`, len(`{"jsonrpc":"2.0","id":"req-7"`) + 1, `"req-7"`},
		{"number id needs a byte after it", `{"id":12345,"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"t":"` + big + `"}}}`, len(`{"id":12345`) + 1, `12345`},
		{"id after params is seen only past params", `{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"t":"` + big + `"}},"id":3}`, len(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"echo","arguments":{"t":"`+big+`"}},"id":3`) + 1, `3`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			for k := 0; k <= len(tc.body); k++ {
				got := PeekIDPrefix([]byte(tc.body[:k]))
				switch {
				case k < tc.from && got != nil:
					t.Fatalf("cut at %d gave %s before the id's value ended", k, got)
				case k >= tc.from && string(got) != tc.want:
					t.Fatalf("cut at %d gave %q, want %s", k, got, tc.want)
				}
			}
		})
	}
	for _, body := range []string{
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"`, // a batch
		`{"id":1,"ID":2,"method":"tools/call","params":{"name":"e`,                          // case variant before the cut
		`{"id":1,"id":1,"method":"tools/call","params":{"name":"e`,                          // duplicate before the cut
		"{\"id\":1,\"method\":\"to\xffols/call\",\"params\":{\"name\":\"e",                  // invalid UTF-8 before the cut
		`{"id":1,"method":"tools/call"}}`,                                                   // garbage, not a cut
		`{"id":{"a":1},"method":"tools/call","params":{"name":"e`,                           // id not a string or number
		"\xef\xbb\xbf{\"id\":1,\"method\":\"tools/call\",\"params\":{\"name\":\"e",          // BOM
	} {
		if got := PeekIDPrefix([]byte(body)); got != nil {
			t.Errorf("PeekIDPrefix(%q) = %s, want nil", body, got)
		}
	}
}

// A truncated request is refused with 413 carrying the id the prefix shows.
func TestTruncatedBodyErrorCarriesID(t *testing.T) {
	body := `{"jsonrpc":"2.0","id":"big-1","method":"tools/call","params":{"name":"echo","arguments":{"t":"` + strings.Repeat("y", 100)
	_, err := ParseHTTP(&HTTPRequest{Method: "POST", Body: []byte(body), Truncated: true,
		Headers: map[string]string{"content-type": "application/json", "x-envoy-auth-partial-body": "true"}})
	if err == nil || err.HTTPStatus != 413 || string(err.ID) != `"big-1"` {
		t.Fatalf("got %+v, want 413 with id \"big-1\"", err)
	}
}

// FuzzPeekIDPrefix: a prefix of a body whose id PeekID reads gives that id
// or nothing, never another value.
func FuzzPeekIDPrefix(f *testing.F) {
	for _, s := range []string{
		`{"jsonrpc":"2.0","id":"a","method":"ping"}`,
		`{"id":-1.5e3,"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"}}`,
		`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"x"},"id":"\u00e9"}`,
		`{"id":"a\"b","method":"x"}`,
	} {
		f.Add([]byte(s), uint16(len(s)/2))
	}
	f.Fuzz(func(t *testing.T, body []byte, cut uint16) {
		k := int(cut) % (len(body) + 1)
		got := PeekIDPrefix(body[:k])
		full := PeekID(body)
		if full != nil && got != nil && !bytes.Equal(got, full) {
			t.Fatalf("prefix %q gave id %s, the whole body's is %s", body[:k], got, full)
		}
		if got != nil && !(got[0] == '"' || got[0] == '-' || (got[0] >= '0' && got[0] <= '9')) {
			t.Fatalf("id %s is not a string or number", got)
		}
		if got != nil && !bytes.Contains(body[:k], got) {
			t.Fatalf("id %s is not in the prefix %q", got, body[:k])
		}
	})
}
