package identity

import (
	"net/url"
	"strings"
)

// CanonicalIssuer is the issuer identifier in the form used to compare
// identities: scheme and host lower-cased, a default port (:443 for https,
// :80 for http) dropped, and trailing slashes trimmed. Spellings of one
// issuer URL compare equal; the path (Okta's /oauth2/default) is kept as
// is, case included. A value that is not an absolute URL is only trimmed
// of trailing slashes.
func CanonicalIssuer(iss string) string {
	u, err := url.Parse(iss)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" {
		return strings.TrimRight(iss, "/")
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Host)
	switch {
	case scheme == "https" && strings.HasSuffix(host, ":443"):
		host = strings.TrimSuffix(host, ":443")
	case scheme == "http" && strings.HasSuffix(host, ":80"):
		host = strings.TrimSuffix(host, ":80")
	}
	rest := strings.TrimRight(u.EscapedPath(), "/")
	if u.RawQuery != "" || u.ForceQuery {
		rest += "?" + u.RawQuery
	}
	if u.Fragment != "" {
		rest += "#" + u.EscapedFragment()
	}
	if u.User != nil {
		return scheme + "://" + u.User.String() + "@" + host + rest
	}
	return scheme + "://" + host + rest
}

// SameIssuer reports whether a and b name the same issuer once canonical.
func SameIssuer(a, b string) bool {
	return a == b || CanonicalIssuer(a) == CanonicalIssuer(b)
}

// SamePerson reports whether (issA, subA) and (issB, subB) name the same
// principal: the subject is equal and non-empty, and the issuers are the
// same once canonical. A subject is only unique within its issuer, so the
// same sub from two issuers is two principals.
func SamePerson(issA, subA, issB, subB string) bool {
	return subA != "" && subA == subB && SameIssuer(issA, issB)
}
