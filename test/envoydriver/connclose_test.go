package envoydriver

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// A local reply sent before the request body finished arriving closes the
// connection (Envoy's HCM drains an HTTP/1 connection whose response
// completed before its request); one sent after the whole body does not.
func TestLocalReplyBeforeBodyEndClosesConnection(t *testing.T) {
	e := newAuthzEnv(t, allow, withBody(1024, false, false))
	for _, tc := range []struct {
		name      string
		body      string
		status    int
		wantClose bool
	}{
		{"413 with body left unread", strings.Repeat("x", 64<<10), 413, true},
		{"allowed request read whole", "small", 200, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := http.Post("http://"+e.d.Addr()+"/", "text/plain", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || resp.Close != tc.wantClose {
				t.Errorf("status %d close %v, want %d close %v", resp.StatusCode, resp.Close, tc.status, tc.wantClose)
			}
		})
	}
}
