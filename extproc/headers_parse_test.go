package extproc

import (
	"mime"
	"strconv"
	"testing"
)

// checkHeaderParsing: atoi, parseInt and mediaType read a value as
// strconv.Atoi, strconv.ParseInt and mime.ParseMediaType do.
func checkHeaderParsing(t *testing.T, v string) {
	t.Helper()
	want, _ := strconv.Atoi(v)
	if got := atoi([]byte(v)); got != want {
		t.Errorf("atoi(%q) = %d, strconv.Atoi %d", v, got, want)
	}
	wn, werr := strconv.ParseInt(v, 10, 64)
	gn, gerr := parseInt([]byte(v))
	if gn != wn || (gerr == nil) != (werr == nil) {
		t.Errorf("parseInt(%q) = %d, %v; strconv.ParseInt %d, %v", v, gn, gerr, wn, werr)
	}
	wct, params, _ := mime.ParseMediaType(v)
	if ct, cs := mediaType([]byte(v)); ct != wct || cs != params["charset"] {
		t.Errorf("mediaType(%q) = %q, %q; mime.ParseMediaType %q, %q", v, ct, cs, wct, params["charset"])
	}
}

var headerValues = []string{"", "200", "0200", "+200", "-1", "2x", "999999999", "1000000000", "99999999999999999999",
	"123456789012345678", "1234567890123456789", "9223372036854775808", " 200", "application/json", "text/event-stream",
	"application/json; charset=utf-8", "text/event-stream; charset=utf-8", "Application/JSON", "application/json;charset=UTF-16",
	"text/event-stream; charset=utf-8 ", "application/vnd.api+json", "text/plain; charset=\"latin1\"", "application/json; charset=utf-8; x=y"}

func TestHeaderParsing(t *testing.T) {
	for _, v := range headerValues {
		checkHeaderParsing(t, v)
	}
}

func FuzzHeaderParsing(f *testing.F) {
	for _, v := range headerValues {
		f.Add(v)
	}
	f.Fuzz(checkHeaderParsing)
}
