package envoydriver

import (
	"strings"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// pathPolicy is the HCM's path handling, applied before any filter or
// route sees :path (http_connection_manager.proto normalize_path: "Should
// paths be normalized according to RFC 3986 before any processing of
// requests by HTTP filters or routing? This affects the upstream :path
// header as well."; merge_slashes: "Determines if adjacent slashes in the
// path are merged into one before any processing of requests by HTTP
// filters or routing"; path_with_escaped_slashes_action).
type pathPolicy struct {
	normalize bool
	merge     bool
	escaped   hcmv3.HttpConnectionManager_PathWithEscapedSlashesAction
}

func compilePathPolicy(h *hcmv3.HttpConnectionManager) pathPolicy {
	return pathPolicy{
		normalize: h.GetNormalizePath().GetValue(),
		merge:     h.GetMergeSlashes(),
		escaped:   h.GetPathWithEscapedSlashesAction(),
	}
}

// apply returns the path Envoy routes on, and whether Envoy answers with
// a redirect to it instead (UNESCAPE_AND_REDIRECT: "Unescape %2F and %5C
// sequences and redirect to the new path if these sequences were present.
// Redirect occurs after path normalization and merge slashes
// transformations if they were configured"), or rejects the request
// (REJECT_REQUEST: 400).
func (p pathPolicy) apply(raw string) (path string, redirect bool, reject bool) {
	pth, query, hasQuery := strings.Cut(raw, "?")
	escaped := false
	switch p.escaped {
	case hcmv3.HttpConnectionManager_REJECT_REQUEST, hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT, hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD:
		if hasEscapedSlash(pth) {
			if p.escaped == hcmv3.HttpConnectionManager_REJECT_REQUEST {
				return raw, false, true
			}
			escaped = true
			pth = unescapeSlashes(pth)
		}
	}
	if p.normalize {
		pth = canonicalPath(pth)
	}
	if p.merge {
		for strings.Contains(pth, "//") {
			pth = strings.ReplaceAll(pth, "//", "/")
		}
	}
	if hasQuery {
		pth += "?" + query
	}
	return pth, escaped && p.escaped == hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT, false
}

func hasEscapedSlash(p string) bool {
	l := strings.ToLower(p)
	return strings.Contains(l, "%2f") || strings.Contains(l, "%5c")
}

func unescapeSlashes(p string) string {
	return strings.NewReplacer("%2F", "/", "%2f", "/", "%5C", "\\", "%5c", "\\").Replace(p)
}

// canonicalPath follows Envoy's PathUtil::canonicalPath (Chromium's URL
// canonicalizer): percent-encoded unreserved characters are decoded, other
// escapes upper-cased, backslashes become slashes, and "." and ".."
// segments are removed (RFC 3986 §5.2.4).
func canonicalPath(p string) string {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '\\':
			b.WriteByte('/')
		case c == '%' && i+2 < len(p) && isHex(p[i+1]) && isHex(p[i+2]):
			v := unhex(p[i+1])<<4 | unhex(p[i+2])
			if isUnreserved(v) {
				b.WriteByte(v)
			} else {
				b.WriteByte('%')
				b.WriteString(strings.ToUpper(p[i+1 : i+3]))
			}
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return removeDotSegments(b.String())
}

func removeDotSegments(p string) string {
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case ".":
			if last {
				out = append(out, "")
			}
		case "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, s)
		}
	}
	r := strings.Join(out, "/")
	if !strings.HasPrefix(r, "/") {
		r = "/" + r
	}
	return r
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

func isUnreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}
