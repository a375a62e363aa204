package envoydriver

import (
	"strings"
	"testing"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// TestPathPolicy: ConnectionManagerUtility::maybeNormalizePath
// (conn_manager_utility.cc) with the HCM's settings.
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
		{"reserved escapes kept as written", all, "/mcp/a%3ab%3A", "/mcp/a%3ab%3A", false, false},
		{"backslash is a slash", all, `/mcp\github`, "/mcp/github", false, false},
		{"query kept as is", all, "/mcp/./github?a=../b", "/mcp/github?a=../b", false, false},
		{"escaped slash redirects", all, "/mcp%2Fgithub", "/mcp/github", true, false},
		{"escaped slash forwarded", pathPolicy{escaped: hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD}, "/mcp%2fgithub", "/mcp/github", false, false},
		{"escaped slash rejected", pathPolicy{escaped: hcmv3.HttpConnectionManager_REJECT_REQUEST}, "/mcp%2Fgithub", "/mcp%2Fgithub", false, true},
		{"escaped slash kept", pathPolicy{escaped: hcmv3.HttpConnectionManager_KEEP_UNCHANGED}, "/mcp%2Fgithub", "/mcp%2Fgithub", false, false},
		{"escaped slash in the query kept", pathPolicy{escaped: hcmv3.HttpConnectionManager_REJECT_REQUEST}, "/mcp?a=%2F", "/mcp?a=%2F", false, false},
		{"fragment rejected", pathPolicy{}, "/mcp#frag", "/mcp#frag", false, true},
		{"escaped NUL rejected when normalizing", all, "/xyz/.%00../abc", "/xyz/.%00../abc", false, true},
		{"escaped NUL passes without normalize_path", pathPolicy{}, "/a%00", "/a%00", false, false},
		{"merge keeps a lone double slash", pathPolicy{merge: true}, "//", "//", false, false},
		{"merge slashes, query untouched", pathPolicy{merge: true}, "//a//b/?x=//", "/a/b/?x=//", false, false},
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

// TestCanonicalPath: PathUtil::canonicalPath, with the cases of Envoy's
// test/common/http/path_utility_test.cc (NormalizeValidPaths,
// NormalizeCasePath, InvalidPaths) and the Chromium table's escapes.
func TestCanonicalPath(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		ok       bool
	}{
		{"/xyz", "/xyz", true},
		{"/a/b/../c", "/a/c", true},
		{"/a/b/./c", "/a/b/c", true},
		{"a/b/../c", "/a/c", true},
		{"/a/b/../../../../c", "/c", true},
		{`/a/..\c`, "/c", true},
		{"/%c0%af", "/%c0%af", true},
		{"/%5c%25", "/%5c%25", true},
		{"/a/b/%2E%2E/c", "/a/c", true},
		{"/a/b/%2e%2e/c", "/a/c", true},
		{"/A/B/C", "/A/B/C", true},
		{"/a/%2F%2f/c", "/a/%2F%2f/c", true},
		{"/xyz/.%00../abc", "", false},
		{"/xyz/%00.%00./abc", "", false},
		{"/xyz/AAAAA%%0000/abc", "", false},
		{"/a%7e%41%2d%5f", "/a~A-_", true},
		{"/a%zz%", "/a%zz%", true},
		{`/a"b<c>{d}|e^f` + "`", "/a%22b%3Cc%3E%7Bd%7D%7Ce%5Ef%60", true},
		{"/caf\xc3\xa9", "/caf%C3%A9", true},
		{"/a.%2e/b", "/a../b", true},
		{"/%%30%30", "/%2500", true}, // CheckForNestedEscapes
		{"", "/", true},
	} {
		got, ok := canonicalPath(tc.in)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("canonicalPath(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// FuzzPathPolicy: whatever the path, apply does not panic, keeps the
// query, and a normalized path starts with a slash and has no dot
// segments left.
func FuzzPathPolicy(f *testing.F) {
	for _, s := range []string{"/a/../b", "/%2e%2E/x?q=1", `\..\`, "/%%30%30", "//a//", "/a%00", "", "a#b", "/%2Fx"} {
		f.Add(s)
	}
	p := pathPolicy{normalize: true, merge: true, escaped: hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD}
	f.Fuzz(func(t *testing.T, raw string) {
		got, _, reject := p.apply(raw)
		if reject {
			return
		}
		pth, q, hasQ := strings.Cut(got, "?")
		if _, rq, rhasQ := strings.Cut(raw, "?"); rhasQ != hasQ || rq != q {
			t.Fatalf("query changed: %q → %q", raw, got)
		}
		if !strings.HasPrefix(pth, "/") {
			t.Fatalf("%q → %q: no leading slash", raw, got)
		}
		for _, seg := range strings.Split(pth, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("%q → %q: dot segment left", raw, got)
			}
		}
	})
}
