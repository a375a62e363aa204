package peers

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A gzip Go server compresses what it answers (JSON or SSE) as its mode
// says; the compressed answer still holds the secrets a masking gateway
// must not let through unread.
func TestGoServerGzipModes(t *testing.T) {
	t.Parallel()
	const secret = "gz-secret"
	call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"get_secret_config","arguments":{}}}`
	noAuto := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	for _, tc := range []struct {
		name     string
		opts     GoServerOptions
		accept   string
		wantGzip bool
	}{
		{"if-accepted, accepted", GoServerOptions{Gzip: GzipIfAccepted, JSONResponse: true, Stateless: true}, "gzip, deflate", true},
		{"if-accepted, identity", GoServerOptions{Gzip: GzipIfAccepted, JSONResponse: true, Stateless: true}, "identity", false},
		{"if-accepted, q=0", GoServerOptions{Gzip: GzipIfAccepted, JSONResponse: true, Stateless: true}, "gzip;q=0", false},
		{"always, SSE", GoServerOptions{Gzip: GzipAlways, Stateless: true}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.RequireBearer = secret
			s := startGoServer(t, tc.opts)
			req, _ := http.NewRequestWithContext(testContext(t, 10*time.Second), "POST", s.URL(), strings.NewReader(call))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			req.Header.Set("Authorization", "Bearer "+secret)
			req.Header.Set("Mcp-Protocol-Version", "2025-11-25")
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			resp, err := noAuto.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body io.Reader = resp.Body
			gz := resp.Header.Get("Content-Encoding") == "gzip"
			if gz != tc.wantGzip || resp.StatusCode != 200 {
				t.Fatalf("status %d, Content-Encoding %q, want gzip %v", resp.StatusCode, resp.Header.Get("Content-Encoding"), tc.wantGzip)
			}
			if gz {
				zr, err := gzip.NewReader(resp.Body)
				if err != nil {
					t.Fatal(err)
				}
				body = zr
			}
			b, err := io.ReadAll(body)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), FakeAWSAccessKeyID) {
				t.Errorf("the decoded answer (%d bytes) lacks the secret config", len(b))
			}
		})
	}
}
