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

// apply follows ConnectionManagerUtility::maybeNormalizePath
// (source/common/http/conn_manager_utility.cc): a path with a fragment is
// rejected (runtime envoy.reloadable_features.http_reject_path_with_fragment,
// on by default); then escaped slashes per path_with_escaped_slashes_action
// (REJECT_REQUEST: 400; UNESCAPE_AND_REDIRECT: "Unescape %2F and %5C
// sequences and redirect to the new path if these sequences were present.
// Redirect occurs after path normalization and merge slashes
// transformations if they were configured"; UNESCAPE_AND_FORWARD;
// KEEP_UNCHANGED, also the default); then normalize_path
// (PathUtil::canonicalPath; a path it cannot canonicalize is rejected);
// then merge_slashes (PathUtil::mergeSlashes). The query is never touched.
func (p pathPolicy) apply(raw string) (path string, redirect bool, reject bool) {
	if strings.Contains(raw, "#") {
		return raw, false, true
	}
	pth, query, hasQuery := strings.Cut(raw, "?")
	escaped := false
	switch p.escaped {
	case hcmv3.HttpConnectionManager_REJECT_REQUEST, hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT, hcmv3.HttpConnectionManager_UNESCAPE_AND_FORWARD:
		if u := unescapeSlashes(pth); u != pth {
			if p.escaped == hcmv3.HttpConnectionManager_REJECT_REQUEST {
				return raw, false, true
			}
			escaped = true
			pth = u
		}
	}
	if p.normalize {
		var ok bool
		if pth, ok = canonicalPath(pth); !ok {
			return raw, false, true
		}
	}
	if p.merge {
		pth = mergeSlashes(pth)
	}
	if hasQuery {
		pth += "?" + query
	}
	return pth, escaped && p.escaped == hcmv3.HttpConnectionManager_UNESCAPE_AND_REDIRECT, false
}

// unescapeSlashes is PathUtil::unescapeSlashes (path_utility.cc): %2F,
// %2f, %5C and %5c in the path become / and \.
func unescapeSlashes(p string) string {
	return strings.NewReplacer("%2F", "/", "%2f", "/", "%5C", `\`, "%5c", `\`).Replace(p)
}

// mergeSlashes is PathUtil::mergeSlashes: the path's non-empty segments
// joined by single slashes, keeping a leading and a trailing slash (so
// "//" stays "//", as Envoy's StrJoin of no segments leaves both).
func mergeSlashes(p string) string {
	if !strings.Contains(p, "//") {
		return p
	}
	var segs []string
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			segs = append(segs, s)
		}
	}
	var b strings.Builder
	if strings.HasPrefix(p, "/") {
		b.WriteByte('/')
	}
	b.WriteString(strings.Join(segs, "/"))
	if strings.HasSuffix(p, "/") {
		b.WriteByte('/')
	}
	return b.String()
}

// Path character classes of the Chromium URL canonicalizer Envoy uses for
// normalize_path (PathUtil::canonicalPath → url::CanonicalizePath;
// url_canon_path.cc kPathCharLookup, the table Envoy's path_utility_test
// pins: "%00" fails, "/a/%2F%2f/c" is kept as is, "%2E%2E" is a dot-dot).
const (
	pcPass     = 0
	pcSpecial  = 1
	pcEscape   = 2 | pcSpecial
	pcUnescape = 4
	pcInvalid  = 8 | pcSpecial
)

var pathCharClass = func() [256]byte {
	var t [256]byte
	for c := 0; c < 256; c++ {
		switch {
		case c == 0:
			t[c] = pcInvalid
		case c < 0x20 || c >= 0x7f:
			t[c] = pcEscape
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_', c == '~':
			t[c] = pcUnescape
		}
	}
	for _, c := range " \"#%<>?\\^`{|}" {
		t[c] = pcEscape
	}
	t['.'] = pcSpecial
	return t
}()

// canonicalPath follows url::CanonicalizePath's DoPartialPath, which
// PathUtil::canonicalPath runs on the path without its query: "." and
// ".." segments (also written %2E) are resolved and cannot climb above
// the root; a backslash is a slash; an escape of an unreserved character
// (A-Z a-z 0-9 - . _ ~) is decoded; any other valid escape is kept exactly
// as written (its hex case included), and an escaped NUL fails (400); an
// invalid escape ("%zz") passes; characters the table marks are
// percent-encoded. ok is false when canonicalization fails.
func canonicalPath(p string) (string, bool) {
	out := make([]byte, 0, len(p)+1)
	if p == "" || (p[0] != '/' && p[0] != '\\') {
		out = append(out, '/')
	}
	ok := true
	lastInvalidPercent := -1 << 30
	for i := 0; i < len(p); i++ {
		c := p[i]
		flags := pathCharClass[c]
		if flags&pcSpecial == 0 {
			out = append(out, c)
			continue
		}
		if n := dotLen(p, i); n > 0 {
			if len(out) > 0 && out[len(out)-1] == '/' {
				switch kind, consumed := classifyAfterDot(p, i+n); kind {
				case notADirectory:
					out = append(out, '.')
					i += n - 1
				case directoryCur:
					i += n + consumed - 1
				case directoryUp:
					out = backUpToPreviousSlash(out)
					i += n + consumed - 1
				}
			} else {
				out = append(out, '.')
				i += n - 1
			}
			continue
		}
		switch {
		case c == '\\':
			out = append(out, '/')
		case c == '%':
			v, valid := decodeEscaped(p, i)
			if !valid {
				// "Invalid escape sequence ... We use the permissive
				// behavior."
				lastInvalidPercent = len(out)
				out = append(out, '%')
				continue
			}
			i += 2
			vf := pathCharClass[v]
			if vf&pcUnescape != 0 {
				out = append(out, v)
				if lastInvalidPercent >= len(out)-3 {
					out = checkForNestedEscapes(p, i+1, lastInvalidPercent, out)
				}
				continue
			}
			out = append(out, '%', p[i-1], p[i])
			if vf&pcInvalid == pcInvalid {
				ok = false
			}
		case flags&pcInvalid == pcInvalid:
			out = appendEscaped(out, c)
			ok = false
		case flags&pcEscape == pcEscape:
			out = appendEscaped(out, c)
		}
	}
	return string(out), ok
}

type dotKind int

const (
	notADirectory dotKind = iota
	directoryCur
	directoryUp
)

// dotLen is IsDot: 1 for ".", 3 for "%2e"/"%2E", 0 otherwise.
func dotLen(p string, i int) int {
	switch {
	case p[i] == '.':
		return 1
	case p[i] == '%' && i+2 < len(p) && p[i+1] == '2' && (p[i+2] == 'e' || p[i+2] == 'E'):
		return 3
	}
	return 0
}

// classifyAfterDot is ClassifyAfterDot: what the dot ending at after
// means, and how many input characters after it that consumed.
func classifyAfterDot(p string, after int) (dotKind, int) {
	if after == len(p) {
		return directoryCur, 0
	}
	if p[after] == '/' || p[after] == '\\' {
		return directoryCur, 1
	}
	if n := dotLen(p, after); n > 0 {
		next := after + n
		if next == len(p) {
			return directoryUp, n
		}
		if p[next] == '/' || p[next] == '\\' {
			return directoryUp, n + 1
		}
	}
	return notADirectory, 0
}

// backUpToPreviousSlash is BackUpToPreviousSlash: drop the last segment,
// never above the first slash.
func backUpToPreviousSlash(out []byte) []byte {
	i := len(out) - 1
	if i == 0 {
		return out
	}
	i--
	for out[i] != '/' && i > 0 {
		i--
	}
	return out[:i+1]
}

// checkForNestedEscapes is CheckForNestedEscapes: when decoding made an
// earlier stray '%' start a valid escape ("%%30%30"), that '%' becomes
// "%25" so the output cannot be decoded into something else later.
func checkForNestedEscapes(p string, next, lastInvalid int, out []byte) []byte {
	length := len(out)
	lastUnescaped := out[length-1]
	appendNext := lastInvalid == length-2
	if appendNext {
		if next == len(p) || p[next] >= 0x80 {
			return out
		}
		out = append(out, p[next])
	}
	if _, valid := decodeEscaped(string(out), lastInvalid); valid {
		if !appendNext {
			out = append(out, out[lastInvalid+1])
		}
		out[lastInvalid+1], out[lastInvalid+2] = '2', '5'
		return append(out, lastUnescaped)
	}
	if appendNext {
		out = out[:length]
	}
	return out
}

// decodeEscaped reads "%XX" at i.
func decodeEscaped(p string, i int) (byte, bool) {
	if i+2 >= len(p) || !isHex(p[i+1]) || !isHex(p[i+2]) {
		return 0, false
	}
	return unhex(p[i+1])<<4 | unhex(p[i+2]), true
}

func appendEscaped(out []byte, c byte) []byte {
	const hex = "0123456789ABCDEF"
	return append(out, '%', hex[c>>4], hex[c&15])
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
