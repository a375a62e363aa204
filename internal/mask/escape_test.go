package mask

import (
	"encoding/json"
	"testing"
)

// Issue 13: bodies not labelled JSON were masked as text without JSON
// unescaping, so \u-escaped secrets in text/plain, text/html or
// application/x-ndjson bodies passed. Text is now scanned decoded too and
// masked in its original bytes.
func TestMaskTextJSONEscapes(t *testing.T) {
	runTextCases(t, []textCase{
		{name: "escaped key id", in: `{"k":"\u0041KIAIOSFODNN7EXAMPLE"}`, want: `{"k":"[MASKED:aws_access_key]"}`, counts: one("aws_access_key")},
		{name: "escaped github token", in: `{"t":"ghp\u005faBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"}` + "\n" + `{"t":"ok"}`,
			want: `{"t":"[MASKED:github_token]"}` + "\n" + `{"t":"ok"}`, counts: one("github_token")},
		{name: "escaped slashes in a url", in: `{"url":"postgres:\/\/app:s3cret@db\/x"} trailing`, want: `{"url":"postgres:\/\/app:[MASKED:url_password]@db\/x"} trailing`, counts: one("url_password")},
		{name: "escaped name in html", in: `<script>var c = {"pass\u0077ord": "hunter2x"};</script>`,
			want: `<script>var c = {"pass\u0077ord": "[MASKED:field:password]"};</script>`, counts: one("field:password")},
		{name: "surrogate pair before a secret", in: `"\ud83d\ude00 \u0041KIAIOSFODNN7EXAMPLE"`, want: `"\ud83d\ude00 [MASKED:aws_access_key]"`, counts: one("aws_access_key")},
		{name: "windows path", in: `C:\users\bob\unit\dir`},
		{name: "escaped backslash before u", in: `"\\u0041KIAIOSFODNN7EXAMPLE"`},
	})
}

func TestMaskTextEscapesStayValidJSON(t *testing.T) {
	in := []byte(`{"a":"x \u0041KIAIOSFODNN7EXAMPLE y","b":"\u0067hp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"}`)
	out, _ := Default().MaskText(in)
	if !json.Valid(out) {
		t.Fatalf("output is not JSON: %s", out)
	}
	if string(out) != `{"a":"x [MASKED:aws_access_key] y","b":"[MASKED:github_token]"}` {
		t.Errorf("got %s", out)
	}
}
