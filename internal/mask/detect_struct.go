package mask

import (
	"bytes"
	"encoding/base64"
	"strings"
)

// Detectors for secrets found by their surroundings: a password in a URL,
// a value assigned to a secret-looking name, an Authorization scheme, an
// e-mail address.

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
	if ps == at || ps < floor || p.isMask(s[ps:at]) {
		return ms, at + 1
	}
	return append(ms, match{ps, at, "url_password"}), at
}

// authSchemes are the words after which an Authorization value goes on.
var authSchemes = []string{"bearer", "basic", "token", "digest", "negotiate", "bot"}

// valueEnd is where an unquoted value starting at v ends. A mask in it is
// taken whole (its ']' does not end the value), so a value ends at the
// same place before and after masking.
func (p *Profile) valueEnd(s []byte, v int) int {
	for v < len(s) {
		c := s[v]
		if c == '[' {
			if e := p.maskEnd(s, v); e > 0 {
				v = e
				continue
			}
		}
		if valueStop[c] {
			break
		}
		v++
	}
	return v
}

var valueStop = func() (t [256]bool) {
	for _, c := range []byte(" \t\n\r\f\v,;&\"'<>)}]`") {
		t[c] = true
	}
	return t
}()

// fireAssign handles NAME=value and NAME: value (also "NAME": "value",
// NAME := value, NAME => value) at the separator s[i]. The value is masked
// as an AWS secret key when it is one under an AWS-secret name, else as
// field:<key> when NAME matches a key rule — unless a detector finds a
// more specific secret in it, whose match is used instead.
func (p *Profile) fireAssign(s []byte, i, floor int, ms []match, noAssign bool) ([]match, int) {
	n := len(s)
	if s[i] == '=' && ((i > 0 && strings.IndexByte("=!<>", s[i-1]) >= 0) || (i+1 < n && s[i+1] == '=')) {
		return ms, i + 1 // a comparison
	}
	j := i
	for j > floor && i-j < 8 && (s[j-1] == ' ' || s[j-1] == '\t') {
		j--
	}
	var q byte
	if j > floor && (s[j-1] == '"' || s[j-1] == '\'') {
		q = s[j-1]
		j--
		if j > floor && s[j-1] == '\\' { // \"NAME\": in text holding escaped JSON
			j--
		}
	}
	ne := j
	for j > floor && ne-j <= maxKeyLen && is(s[j-1], cName) {
		j--
	}
	ns := j
	if ns == ne || ne-ns > maxKeyLen || (q != 0 && (ns == floor || s[ns-1] != q)) {
		return ms, i + 1
	}
	name := s[ns:ne]
	if !hasLetter(name) {
		return ms, i + 1
	}
	aws := p.on(dAWSSecretKey) && awsSecretName(name, s[max(0, ns-32):ns])
	var typ string
	if !noAssign && p.on(dAssignment) {
		typ, _ = p.keys.lookup(name)
	}
	if !aws && typ == "" {
		return ms, i + 1
	}
	v := i + 1
	if v < n && ((s[i] == ':' && s[v] == '=') || (s[i] == '=' && s[v] == '>')) {
		v++
	}
	for v < n && v-i < 16 && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	if v >= n {
		return ms, n
	}
	// Where the value starts, and the quote that ends it (0: none; '\\':
	// \" in text holding escaped JSON).
	vs, q := v, byte(0)
	switch c := s[v]; {
	case c == '"' || c == '\'':
		vs, q = v+1, c
	case c == '\\' && v+1 < n && s[v+1] == '"':
		vs, q = v+2, '\\'
	}
	if aws {
		// Only the 40 bytes are looked at, so a value that is not a key
		// costs nothing more.
		e := runMax(s, vs, cB64Std, 41)
		if e-vs == 40 && (e == n || (q == 0 && valueStop[s[e]]) || (q != 0 && s[e] == q)) {
			return append(ms, match{vs, e, "aws_secret_key"}), e
		}
	}
	if typ == "" {
		return ms, i + 1
	}
	// The value is scanned to its end only here, where it is then
	// skipped whatever happens: the scan stays linear.
	ve := vs
	switch q {
	case 0:
		ve = p.valueEnd(s, vs)
		if ve < n && s[ve] == ' ' && isAuthScheme(s[vs:ve]) {
			w := ve + 1
			for w < n && s[w] == ' ' {
				w++
			}
			if we := p.valueEnd(s, w); we > w {
				ve = we
			}
		}
	case '\\':
		for ve < n && s[ve] != '"' && s[ve] != '\\' && s[ve] != '\n' && s[ve] != '\r' {
			ve++
		}
	default:
		for ve < n && s[ve] != q && s[ve] != '\n' && s[ve] != '\r' {
			if s[ve] == '\\' && ve+1 < n && s[ve+1] != '\n' && s[ve+1] != '\r' {
				ve++
			}
			ve++
		}
		ve = min(ve, n)
	}
	if ve <= vs {
		return ms, i + 1
	}
	if s[i] == ':' && q == 0 && !secretish(s[vs:ve]) && !endsLine(s, ve) {
		// "token: The token to use." — prose (tool descriptions written
		// as docstrings), not YAML: a plain word followed by more words.
		return ms, i + 1
	}
	if p.containsMask(s[vs:ve]) {
		return ms, ve // masked already, whole or in part
	}
	before := len(ms)
	ms = p.scanText(s[vs:ve], ms, true)
	if len(ms) > before {
		for k := before; k < len(ms); k++ {
			ms[k].s += vs
			ms[k].e += vs
		}
		return ms, ve
	}
	return append(ms, match{vs, ve, typ}), ve
}

// secretish reports whether a value has something other than letters.
func secretish(v []byte) bool {
	for _, c := range v {
		if !is(c, cUpper|cLower) {
			return true
		}
	}
	return false
}

// endsLine reports whether only blanks, then the end of the line, a '#'
// comment, ',' or '}' follow e.
func endsLine(s []byte, e int) bool {
	for e < len(s) && (s[e] == ' ' || s[e] == '\t') {
		e++
	}
	return e == len(s) || strings.IndexByte("\n\r#,}", s[e]) >= 0
}

func isAuthScheme(w []byte) bool {
	for _, a := range authSchemes {
		if len(w) == len(a) && hasPrefixFold(w, 0, a) {
			return true
		}
	}
	return false
}

func hasLetter(b []byte) bool {
	for _, c := range b {
		if is(c, cUpper|cLower) {
			return true
		}
	}
	return false
}

// awsSecretName reports whether a name (with the text just before it)
// names an AWS secret access key: it holds "secretaccesskey" once '_' and
// '-' are dropped, or "secret" with "aws" in it or just before it.
func awsSecretName(name, before []byte) bool {
	var buf [maxKeyLen]byte
	n, _, ok := normalizeName(&buf, name)
	if !ok {
		return false
	}
	norm := buf[:n]
	if bytes.Contains(norm, []byte("secretaccesskey")) {
		return true
	}
	if !bytes.Contains(norm, []byte("secret")) {
		return false
	}
	if bytes.Contains(norm, []byte("aws")) {
		return true
	}
	if k := bytes.LastIndexAny(before, "\n\r"); k >= 0 {
		before = before[k+1:]
	}
	for k := 0; k+3 <= len(before); k++ {
		if hasPrefixFold(before, k, "aws") {
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
