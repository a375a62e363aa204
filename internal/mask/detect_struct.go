package mask

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// Detectors for secrets found by their surroundings: a password in a URL,
// an Authorization scheme, an e-mail address. A value assigned to a
// secret-looking name is detect_assign.go's (with detect_literal.go
// deciding what is a literal), command-line options detect_cmdline.go's.

// urlPassword masks the password of scheme://user:password@host; i is the
// ':' of "://". The user and host stay.
func (p *Profile) urlPassword(s []byte, i, floor int, ms []match) ([]match, int) {
	j := i
	for j > 0 && i-j < 32 && (is(s[j-1], cUpper|cLower|cDigit) || s[j-1] == '+' || s[j-1] == '.' || s[j-1] == '-') {
		j--
	}
	if j == i || !is(s[j], cUpper|cLower) {
		return ms, i + 3
	}
	a := i + 3
	at := -1
	lim := min(len(s), a+512)
	k := a
	for ; k < lim; k++ {
		c := s[k]
		if c == '/' || c == '?' || c == '#' || c <= ' ' || c == '"' || c == '\'' || c == '<' || c == '>' || c == '\\' || c == '`' {
			break
		}
		if c == '@' {
			at = k
		}
	}
	if at < 0 {
		return ms, i + 3
	}
	colon := bytes.IndexByte(s[a:at], ':')
	if colon < 0 {
		return ms, at + 1
	}
	ps := a + colon + 1
	if ps == at || ps < floor || p.containsMask(s[ps:at]) || strings.IndexByte("%${<", s[ps]) >= 0 {
		// A format or template placeholder (%s, ${PASS}, {password},
		// <password>) is not a password.
		return ms, at + 1
	}
	return append(ms, match{ps, at, "url_password"}), at
}

// authSchemes are the words after which an Authorization value goes on.
var authSchemes = []string{"bearer", "basic", "token", "digest", "negotiate", "bot"}

func isAuthScheme(w []byte) bool {
	for _, a := range authSchemes {
		if len(w) == len(a) && hasPrefixFold(w, 0, a) {
			return true
		}
	}
	return false
}

// fireB handles "Bearer <token>" and "Basic <base64 of user:password>",
// any case, masking the credentials and keeping the scheme.
func (p *Profile) fireB(s []byte, i, floor int, ms []match) ([]match, int) {
	if i < floor || (i > 0 && is(s[i-1], cWord)) {
		return ms, i + 1
	}
	var scheme int
	switch {
	case p.on(dBearer) && hasPrefixFold(s, i, "bearer"):
		scheme = 6
	case p.on(dBasicAuth) && hasPrefixFold(s, i, "basic"):
		scheme = 5
	default:
		return ms, i + 1
	}
	k := i + scheme
	for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
		k++
	}
	if k == i+scheme {
		return ms, k
	}
	if e := p.maskEnd(s, k); e > 0 {
		return ms, e
	}
	if scheme == 6 {
		e := k
		for e < len(s) && (is(s[e], cB64URL|cB64Std|cName) || s[e] == '~') {
			e++
		}
		for e < len(s) && s[e] == '=' {
			e++
		}
		for e > k && s[e-1] == '.' {
			e--
		}
		if e-k >= 8 && bytes.IndexAny(s[k:e], "0123456789") >= 0 {
			return append(ms, match{k, e, "bearer_token"}), e
		}
		return ms, k
	}
	e := run(s, k, cB64Std)
	for e < len(s) && s[e] == '=' {
		e++
	}
	if e-k >= 8 && endOK(s, e, cWord) && basicCredentials(s[k:e]) {
		return append(ms, match{k, e, "basic_auth"}), e
	}
	return ms, k
}

// basicCredentials reports whether b is base64 of printable "user:password".
func basicCredentials(b []byte) bool {
	var buf [192]byte
	if base64.StdEncoding.DecodedLen(len(b)) > len(buf) {
		return false
	}
	n, err := base64.StdEncoding.Decode(buf[:], b)
	if err != nil || n < 2 {
		return false
	}
	colon := false
	for _, c := range buf[:n] {
		if c < 0x20 || c >= 0x7f {
			return false
		}
		colon = colon || c == ':'
	}
	return colon && buf[0] != ':'
}

// email masks local@domain.tld; i is the '@'.
func email(s []byte, i, floor int, ms []match) ([]match, int) {
	j := i
	for j > floor && i-j <= 64 && (is(s[j-1], cWord) || strings.IndexByte(".%+-", s[j-1]) >= 0) {
		j--
	}
	if j == i || i-j > 64 || s[j] == '.' || s[i-1] == '.' {
		return ms, i + 1
	}
	k, labels, tld := i+1, 0, 0
	for {
		l := k
		for k < len(s) && (is(s[k], cUpper|cLower|cDigit) || s[k] == '-') {
			k++
		}
		if k == l {
			return ms, i + 1
		}
		labels++
		tld = l
		if k+1 < len(s) && s[k] == '.' && is(s[k+1], cUpper|cLower|cDigit) {
			k++
			continue
		}
		break
	}
	if labels < 2 || k-tld < 2 {
		return ms, i + 1
	}
	for _, c := range s[tld:k] {
		if !is(c, cUpper|cLower) {
			return ms, i + 1
		}
	}
	return append(ms, match{j, k, "email"}), k
}
