package extauthz

import (
	"strings"
	"testing"
)

func TestOrigins(t *testing.T) {
	o := newOrigins([]string{"https://gw.example.com", "http://localhost:*", "http://127.0.0.1:*"})
	cases := []struct {
		origin string
		ok     bool
	}{
		{"", true}, // not a browser
		{"https://gw.example.com", true},
		{"HTTPS://GW.EXAMPLE.COM", true},
		{"https://gw.example.com:8443", false},
		{"http://gw.example.com", false},
		{"http://localhost:3000", true},
		{"http://localhost", true},
		{"http://127.0.0.1:9", true},
		{"http://evil.example.com", false},
		{"http://localhost.evil.example.com:80", false},
		{"null", false},
	}
	for _, tc := range cases {
		why := o.check(tc.origin)
		if (why == "") != tc.ok {
			t.Errorf("check(%q) = %q, want ok=%v", tc.origin, why, tc.ok)
		}
		if why != "" && !strings.Contains(why, "allowed_origins") {
			t.Errorf("reason %q does not say how to fix it", why)
		}
	}
}
