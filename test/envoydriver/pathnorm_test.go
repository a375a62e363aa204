package envoydriver

import (
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

func TestPathPolicy(t *testing.T) {
	all := pathPolicy{normalize: true, merge: true, escaped: hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT}
	cases := []struct {
		name     string
		p        pathPolicy
		in, want string
		redirect bool
		reject   bool
	}{
		{"untouched", pathPolicy{}, "/mcp/./github//x", "/mcp/./github//x", false, false},
		{"dot segments", all, "/mcp/x/../github/./", "/mcp/github/", false, false},
		{"cannot climb above root", all, "/../../mcp/github", "/mcp/github", false, false},
		{"merge slashes", all, "/mcp//github", "/mcp/github", false, false},
		{"unreserved escapes decoded", all, "/mcp/%67ithub", "/mcp/github", false, false},
		{"reserved escapes kept upper-case", all, "/mcp/a%3ab", "/mcp/a%3Ab", false, false},
		{"backslash is a slash", all, `/mcp\github`, "/mcp/github", false, false},
		{"query kept as is", all, "/mcp/./github?a=../b", "/mcp/github?a=../b", false, false},
		{"escaped slash redirects", all, "/mcp%2Fgithub", "/mcp/github", true, false},
		{"escaped slash forwarded", pathPolicy{escaped: hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD}, "/mcp%2fgithub", "/mcp/github", false, false},
		{"escaped slash rejected", pathPolicy{escaped: hcmv3.HttpConnectionManager_REJECT_REQUEST}, "/mcp%2Fgithub", "/mcp%2Fgithub", false, true},
		{"escaped slash kept", pathPolicy{escaped: hcmv3.HttpConnectionManager_KEEP_UNCHANGED}, "/mcp%2Fgithub", "/mcp%2Fgithub", false, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, redirect, reject := tc.p.apply(tc.in)
			if got != tc.want || redirect != tc.redirect || reject != tc.reject {
				t.Errorf("apply(%q) = %q, redirect %v, reject %v; want %q, %v, %v", tc.in, got, redirect, reject, tc.want, tc.redirect, tc.reject)
			}
		})
	}
}
