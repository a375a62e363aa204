package peers

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseStepLines(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		out     string
		want    []string // op ok/failed per result
		wantErr string
	}{
		{"two steps", `{"step":0,"op":"connect","ok":true,"result":{}}` + "\n" +
			`{"step":1,"op":"listTools","ok":false,"error":{"name":"McpError","message":"x","code":-32601}}` + "\n",
			[]string{"connect true", "listTools false"}, ""},
		{"noise skipped", "warning: something\n\n" + `{"step":0,"op":"connect","ok":true}`, []string{"connect true"}, ""},
		{"out of order", `{"step":1,"op":"connect","ok":true}`, nil, "is step 1, want step 0"},
		{"no op", `{"step":0,"ok":true}`, nil, "has no op"},
		{"ok with error", `{"step":0,"op":"connect","ok":true,"error":{"name":"E","message":"m"}}`, nil, "either ok true or an error"},
		{"failed without error", `{"step":0,"op":"connect","ok":false}`, nil, "either ok true or an error"},
		{"broken JSON", `{"step":0,`, nil, "line 1 is not a step result"},
	}
	for _, tc := range tests {
		got, err := parseStepLines([]byte(tc.out))
		var ops []string
		for _, r := range got {
			ops = append(ops, r.Op+" "+map[bool]string{true: "true", false: "false"}[r.OK])
		}
		if diff := cmp.Diff(tc.want, ops); diff != "" {
			t.Errorf("%s: results (-want +got):\n%s", tc.name, diff)
		}
		if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
		}
	}
}

func FuzzParseStepLines(f *testing.F) {
	f.Add([]byte(`{"step":0,"op":"connect","ok":true,"result":{"serverInfo":{"name":"x"}}}` + "\n"))
	f.Add([]byte(`{"step":0,"op":"connect","ok":false,"error":{"name":"StreamableHTTPError","message":"m","code":401,` +
		`"http":{"status":401,"method":"POST","wwwAuthenticate":"Bearer","body":"no"}}}`))
	f.Add([]byte("noise\n{\"step\":0,\"op\":\"a\",\"ok\":true}\n{\"step\":1,\"op\":\"b\",\"ok\":true,\"progress\":[{}]}"))
	f.Add([]byte(`{"step":0,"op":"a","ok":true,"notifications":[1],"transportErrors":["x"]}`))
	f.Fuzz(func(t *testing.T, out []byte) {
		results, err := parseStepLines(out)
		for i, r := range results {
			if r.Step != i || r.Op == "" || r.OK == (r.Error != nil) {
				t.Fatalf("result %d is inconsistent: %v (err %v)", i, r, err)
			}
			_ = r.String()
		}
	})
}
