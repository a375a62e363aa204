package mask

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

type jsonCase struct {
	name   string
	p      *Profile // Default() when nil
	in     string
	want   string // == in when empty
	counts Counts
}

// checkJSON masks c.in and checks the output, the counts, that the output
// is valid JSON and that masking it again changes nothing.
func checkJSON(t *testing.T, c jsonCase) {
	t.Helper()
	p := c.p
	if p == nil {
		p = Default()
	}
	want := c.want
	if want == "" {
		want = c.in
	}
	out, counts, err := p.MaskJSON([]byte(c.in))
	if err != nil {
		t.Fatalf("MaskJSON: %v", err)
	}
	if diff := cmp.Diff(want, string(out)); diff != "" {
		t.Errorf("MaskJSON (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(c.counts, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if !json.Valid(out) {
		t.Errorf("output is not valid JSON")
	}
	again, c2, err := p.MaskJSON(out)
	if err != nil || string(again) != string(out) || len(c2) != 0 {
		t.Errorf("not idempotent: again %q, counts %v, err %v", again, c2, err)
	}
}

func mustCompile(t testing.TB, c ProfileConfig) *Profile {
	t.Helper()
	p, err := Compile(c)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

func TestMaskJSONFieldRules(t *testing.T) {
	paths := mustCompile(t, ProfileConfig{Name: "paths", Extends: DefaultProfile, Paths: []string{
		"$.result.structuredContent.credentials.*",
		"$.result.content[0].text.database.password",
		"$.result.items[1]",
		"$['result']['odd key']",
	}})
	idKey := mustCompile(t, ProfileConfig{Name: "id-key", Keys: []string{"id", "method"}})
	for _, c := range []jsonCase{
		{name: "keys",
			in:     `{"jsonrpc":"2.0","id":1,"result":{"password":"x","Client-Secret":12345,"API_KEY":"k","nested":[{"passwd":"y"}]}}`,
			want:   `{"jsonrpc":"2.0","id":1,"result":{"password":"[MASKED:field:password]","Client-Secret":"[MASKED:field:client_secret]","API_KEY":"[MASKED:field:api_key]","nested":[{"passwd":"[MASKED:field:passwd]"}]}}`,
			counts: Counts{"field:password": 1, "field:client_secret": 1, "field:api_key": 1, "field:passwd": 1}},
		{name: "keys leave objects, empty, null and booleans",
			in: `{"result":{"tools":[{"name":"login","inputSchema":{"type":"object","properties":{"password":{"type":"string"},"token":{"type":"string","description":"an API token"}}}}],"secret":"","token":null,"cookie":true}}`},
		{name: "keys search inside objects",
			in:     `{"authorization":{"scheme":"bearer","token":"abc"}}`,
			want:   `{"authorization":{"scheme":"bearer","token":"[MASKED:field:token]"}}`,
			counts: one("field:token")},
		{name: "envelope stays", p: idKey,
			in:     `{"jsonrpc":"2.0","id":"r-1","method":"notifications/x","params":{"id":"inner","method":"m"}}`,
			want:   `{"jsonrpc":"2.0","id":"r-1","method":"notifications/x","params":{"id":"[MASKED:field:id]","method":"[MASKED:field:method]"}}`,
			counts: Counts{"field:id": 1, "field:method": 1}},
		{name: "envelope values still go through detectors",
			in:     `{"jsonrpc":"2.0","id":"AKIAIOSFODNN7EXAMPLE","result":{}}`,
			want:   `{"jsonrpc":"2.0","id":"[MASKED:aws_access_key]","result":{}}`,
			counts: one("aws_access_key")},
		{name: "unknown mask shields nothing",
			in:     `{"a":"[MASKED: AKIAIOSFODNN7EXAMPLE ]","b":"[MASKED:AKIAIOSFODNN7EXAMPLE]","password":"[MASKED:made_up]"}`,
			want:   `{"a":"[MASKED: [MASKED:aws_access_key] ]","b":"[MASKED:[MASKED:aws_access_key]]","password":"[MASKED:field:password]"}`,
			counts: Counts{"aws_access_key": 2, "field:password": 1}},
		{name: "paths", p: paths,
			in: `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"{\"database\":{\"host\":\"db\",\"password\":7}}"}],` +
				`"structuredContent":{"credentials":{"a":{"x":1},"b":[1,2],"c":"s"},"other":"keep"},"items":["a","b","c"],"odd key":false}}`,
			want: `{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"{\"database\":{\"host\":\"db\",\"password\":\"[MASKED:field:password]\"}}"}],` +
				`"structuredContent":{"credentials":{"a":"[MASKED:field:credentials]","b":"[MASKED:field:credentials]","c":"[MASKED:field:credentials]"},"other":"keep"},"items":["a","[MASKED:field:items]","c"],"odd key":"[MASKED:field:odd key]"}}`,
			counts: Counts{"field:credentials": 3, "field:password": 1, "field:items": 1, "field:odd key": 1}},
		{name: "paths start at each message of a batch", p: paths,
			in:     `[{"jsonrpc":"2.0","id":1,"result":{"items":[0,1]}},{"jsonrpc":"2.0","id":2,"result":{"items":[2,3]}}]`,
			want:   `[{"jsonrpc":"2.0","id":1,"result":{"items":[0,"[MASKED:field:items]"]}},{"jsonrpc":"2.0","id":2,"result":{"items":[2,"[MASKED:field:items]"]}}]`,
			counts: Counts{"field:items": 2}},
		{name: "aws secret member",
			in:     `{"Credentials":{"AccessKeyId":"AKIAIOSFODNN7EXAMPLE","SecretAccessKey":"` + fakeAWSSecret + `"}}`,
			want:   `{"Credentials":{"AccessKeyId":"[MASKED:aws_access_key]","SecretAccessKey":"[MASKED:aws_secret_key]"}}`,
			counts: Counts{"aws_access_key": 1, "aws_secret_key": 1}},
	} {
		t.Run(c.name, func(t *testing.T) { checkJSON(t, c) })
	}
}

func TestMaskJSONStrings(t *testing.T) {
	for _, c := range []jsonCase{
		{name: "escape hides a key id",
			in:   `{"a":"\u0041KIAIOSFODNN7EXAMPLE"}`,
			want: `{"a":"[MASKED:aws_access_key]"}`, counts: one("aws_access_key")},
		{name: "escaped slash in url",
			in:   `{"a":"postgres:\/\/app:s3cret@db\/x"}`,
			want: `{"a":"postgres://app:[MASKED:url_password]@db/x"}`, counts: one("url_password")},
		{name: "escaped underscore in token",
			in:   `["ghp\u005faBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"]`,
			want: `["[MASKED:github_token]"]`, counts: one("github_token")},
		{name: "other escapes kept in meaning",
			in:   `{"a":"line1\nkey AKIAIOSFODNN7EXAMPLE\t\"q\" \u00e9\u0001 \ud83d\ude00"}`,
			want: `{"a":"line1\nkey [MASKED:aws_access_key]\t\"q\" é\u0001 😀"}`, counts: one("aws_access_key")},
		{name: "lone surrogate",
			in:   `{"a":"\ud800 AKIAIOSFODNN7EXAMPLE"}`,
			want: `{"a":"` + "\uFFFD" + ` [MASKED:aws_access_key]"}`, counts: one("aws_access_key")},
		{name: "secret in a member name",
			in:   `{"tokens":{"AKIAIOSFODNN7EXAMPLE":{"user":"ci"}}}`,
			want: `{"tokens":{"[MASKED:aws_access_key]":{"user":"ci"}}}`, counts: one("aws_access_key")},
		{name: "json in string",
			in:     `{"result":{"content":[{"type":"text","text":"{\"service\":\"billing\",\"database\":{\"password\":\"hunter2\"},\"note\":\"key AKIAIOSFODNN7EXAMPLE\"}"}]}}`,
			want:   `{"result":{"content":[{"type":"text","text":"{\"service\":\"billing\",\"database\":{\"password\":\"[MASKED:field:password]\"},\"note\":\"key [MASKED:aws_access_key]\"}"}]}}`,
			counts: Counts{"field:password": 1, "aws_access_key": 1}},
		{name: "json in string in json in string",
			in:     `{"t":"{\"inner\":\"[{\\\"token\\\":\\\"abc\\\"}]\"}"}`,
			want:   `{"t":"{\"inner\":\"[{\\\"token\\\":\\\"[MASKED:field:token]\\\"}]\"}"}`,
			counts: one("field:token")},
		{name: "json in string kept byte for byte when clean",
			in: `{"t":"{ \"a\" : [1, 2.5e3, true] ,\n \"b\":\"\\u0041\" }"}`},
		{name: "looks like json but is text",
			in:     `{"t":"[INFO] password=hunter2 {ok}"}`,
			want:   `{"t":"[INFO] password=[MASKED:field:password] {ok}"}`,
			counts: one("field:password")},
		{name: "broken json in string counted once",
			in:     `{"t":"{\"password\":\"hunter2\", broken}"}`,
			want:   `{"t":"{\"password\":\"[MASKED:field:password]\", broken}"}`,
			counts: one("field:password")},
		{name: "top-level string",
			in: `"Bearer abc123def456ghi"`, want: `"Bearer [MASKED:bearer_token]"`, counts: one("bearer_token")},
		{name: "card number as a JSON number",
			in:     `{"payment":{"pan":4111111111111111,"amount":4111111111111112,"id":-4111111111111111,"f":4111111111111111.0}}`,
			want:   `{"payment":{"pan":"[MASKED:card_number]","amount":4111111111111112,"id":-4111111111111111,"f":4111111111111111.0}}`,
			counts: one("card_number")},
		{name: "scalars and whitespace",
			in: " \t\n[1, -0.5e-3, true, false, null, \"\", {}, []]\r\n"},
	} {
		t.Run(c.name, func(t *testing.T) { checkJSON(t, c) })
	}
}

func TestMaskJSONInvalid(t *testing.T) {
	deep := strings.Repeat("[", maxDepth+1) + strings.Repeat("]", maxDepth+1)
	for _, c := range []struct{ name, in string }{
		{"empty", ""},
		{"blank", " \n"},
		{"unterminated object", `{"a":1`},
		{"missing value", `{"a":}`},
		{"missing colon", `{"a" 1}`},
		{"trailing comma", `[1,]`},
		{"unterminated string", `"abc`},
		{"trailing data", `{"a":1}x`},
		{"two values", `1 2`},
		{"bad literal", `tru`},
		{"leading zero", `01`},
		{"bare point", `1.`},
		{"bad exponent", `1e+`},
		{"control character", "\"a\x01b\""},
		{"bad escape", `"\q"`},
		{"bad unicode escape", `"\u12G4"`},
		{"single quotes", `{'a':1}`},
		{"name not a string", `{a:1}`},
		{"too deep", deep},
		{"invalid json in a masked member", `{"password":[1,}`},
		{"invalid json in an envelope member", `{"id":[1,}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			if json.Valid([]byte(c.in)) {
				t.Fatalf("test input is valid JSON")
			}
			out, counts, err := Default().MaskJSON([]byte(c.in))
			var se *SyntaxError
			if !errors.As(err, &se) || out != nil || counts != nil {
				t.Fatalf("MaskJSON = %q, %v, %v; want a *SyntaxError", out, counts, err)
			}
			if se.Offset < 0 || se.Offset > len(c.in) || se.Msg == "" {
				t.Errorf("error %v points outside the input", se)
			}
			if _, _, err := profileNamed(t, OffProfile).MaskJSON([]byte(c.in)); err == nil {
				t.Errorf("off profile accepted invalid JSON")
			}
		})
	}
}

func TestMaskJSONErrorHoldsNoInput(t *testing.T) {
	_, _, err := Default().MaskJSON([]byte(`{"password":"hunter2-secret",}`))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v: want one that does not quote the input", err)
	}
}

func TestMaskJSONSecretsCorpus(t *testing.T) {
	secrets := []string{corpusGitHubToken, corpusOpenAIKey, corpusJWT, fakeAWSKeyID, fakeAWSSecret,
		"hunter2-not-a-real-password", "correct-horse-battery-staple", fakeStripe, fakeSlack, "k-1234567890", "s3cr3t-v4lu3"}
	var total Counts
	for i, d := range corpus(true) {
		out, counts, err := Default().MaskJSON(d)
		if err != nil {
			t.Fatalf("doc %d: %v", i, err)
		}
		if !json.Valid(out) {
			t.Errorf("doc %d: output not valid JSON", i)
		}
		for j, s := range secrets {
			if strings.Contains(string(out), s) {
				t.Errorf("doc %d: secret %d left unmasked", i, j)
			}
		}
		total.Merge(counts)
	}
	want := Counts{"aws_access_key": 1, "aws_secret_key": 1, "bearer_token": 1, "field:api_key": 1, "field:client_secret": 1,
		"field:password": 2, "github_token": 3, "jwt": 2, "openai_key": 1, "slack_token": 1, "stripe_key": 1, "url_password": 1}
	if diff := cmp.Diff(want, total); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
}

func TestMaskJSONConcurrent(t *testing.T) {
	docs := corpus(true)
	want := make([][]byte, len(docs))
	for i, d := range docs {
		out, _, err := Default().MaskJSON(d)
		if err != nil {
			t.Fatal(err)
		}
		want[i] = out
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			for k := range 50 {
				i := (g + k) % len(docs)
				out, _, err := Default().MaskJSON(docs[i])
				if err == nil && string(out) != string(want[i]) {
					err = errors.New("output differs between goroutines")
				}
				if err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
