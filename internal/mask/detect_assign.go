package mask

// The assignment detector: the value of NAME=value, NAME: value,
// "NAME": "value" and the like, when NAME is a key rule (or an AWS
// secret's name) and the value a literal (see detect_literal.go).

import (
	"bytes"
	"strings"
)

// valueEnd is where an unquoted value starting at v ends: at a blank,
// ',', ';', '&', a quote, a closing bracket or an escaped line break or
// quote (\n, \") of text holding JSON. A mask in it is
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
		if c == '\\' && v+1 < len(s) && strings.IndexByte(`nrt"`, s[v+1]) >= 0 {
			break // an escaped line break or quote in text holding JSON
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
	if s[i] == '=' && ((i > 0 && comparison(s[i-1])) || (i+1 < n && s[i+1] == '=')) {
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
	if !hasLetter(name) || (ns >= 2 && s[ns-2] == '$' && s[ns-1] == '{') {
		return ms, i + 1 // ${NAME:-default} is a shell expansion
	}
	if s[i] == '=' && q == 0 && typeName(name) {
		// A typed declaration names its variable before the type:
		// token: string = "…" (TypeScript, Kotlin, Python), var token
		// string = "…" (Go).
		if ds, de := declaredName(s, ns, floor); de > ds {
			ns, ne, name = ds, de, s[ds:de]
		}
	}
	// Whether the name is an AWS secret's is asked last, of a value that
	// can be one (40 bytes of base64): most values are not, and are
	// rejected by their first bytes, cheaper than normalizing the name.
	awsOn := p.on(dAWSSecretKey)
	awsName := func() bool { return awsSecretName(name, s[max(0, ns-32):ns]) }
	var typ string
	if !noAssign && p.on(dAssignment) {
		typ, _ = p.keys.lookup(name)
	}
	if !awsOn && typ == "" {
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
		if typ == "" && !awsName() {
			return ms, i + 1
		}
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
	if awsOn && vs+40 <= n && is(s[vs], cB64Std) && is(s[vs+39], cB64Std) {
		// Only the 40 bytes are looked at, so a value that is not a key
		// costs nothing more; most are rejected by their first and
		// fortieth bytes.
		e := runMax(s, vs, cB64Std, 41)
		if e-vs == 40 && (e == n || (q == 0 && valueStop[s[e]]) || (q != 0 && s[e] == q)) && awsName() {
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
		if p.containsMask(s[vs:ve]) {
			return ms, ve // masked already, whole or in part
		}
		if !literal(s, vs, ve) || variable(s, i, vs, ve) {
			return ms, i + 1
		}
		if s[i] == ':' && cookieRule(typ) && strings.IndexByte(string(s[vs:ve]), '=') > 0 {
			// Cookie: a=1; b=2 — the whole header value is the secret.
			for ve = lineEnd(s, vs); ve > vs && (s[ve-1] == ' ' || s[ve-1] == '\t'); ve-- {
			}
			if p.containsMask(s[vs:ve]) {
				return ms, ve
			}
			break
		}
		if ve < n && s[ve] == ' ' && isAuthScheme(s[vs:ve]) {
			w := ve + 1
			for w < n && s[w] == ' ' {
				w++
			}
			if we := p.valueEnd(s, w); we > w {
				if !literal(s, w, we) {
					return ms, i + 1 // Authorization: Bearer $TOKEN
				}
				ve = we
			}
		}
		if isAuthScheme(s[vs:ve]) {
			return ms, i + 1 // auth: basic — the scheme alone
		}
		if identChain(s[vs:ve]) {
			if _, named := p.keys.lookup(s[vs:ve]); named {
				return ms, i + 1 // Password: dbPassword, password=password: a variable
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
	if q != 0 && (ve >= n || (q == '\\' && s[ve] != '\\') || (q != '\\' && s[ve] != q) || !quotedLiteral(s[vs:ve])) {
		// Not closed on its line ("NAME=" + x: the quote closed a string
		// of code), or "${TOKEN}", "Bearer " + token.
		return ms, i + 1
	}
	if s[i] == ':' && q == 0 && !secretish(s[vs:ve]) && (!endsLine(s, ve) || typeName(s[vs:ve])) {
		// "token: The token to use." — prose (tool descriptions written
		// as docstrings), not YAML: a plain word followed by more words;
		// "password: string," — a type annotation.
		return ms, i + 1
	}
	if p.containsMask(s[vs:ve]) {
		return ms, ve // masked already, whole or in part
	}
	return p.valueMatch(s, vs, ve, typ, ms), ve
}

// comparison reports whether c before '=' makes it a comparison (==, !=,
// <=, >=) rather than an assignment.
func comparison(c byte) bool { return c == '=' || c == '!' || c == '<' || c == '>' }

// valueMatch appends the match of a value s[vs:ve] under a key rule: the
// secrets a detector finds in it, with their own types, or else the whole
// value as typ.
func (p *Profile) valueMatch(s []byte, vs, ve int, typ string, ms []match) []match {
	before := len(ms)
	ms = p.scanText(s[vs:ve], ms, true)
	if len(ms) > before {
		for k := before; k < len(ms); k++ {
			ms[k].s += vs
			ms[k].e += vs
		}
		return ms
	}
	return append(ms, match{vs, ve, typ})
}

// variable reports whether the unquoted value s[vs:ve] after the
// separator s[i] is, by its shape, a variable rather than a secret:
// lowerCamelCase words without digits (noCreds, sessionCookie), or one to
// three letters or '_', or digits, in code — after " = " or " := ", or
// before ',', ';', ')' or '}' (secret = v, token: tok, "BASIC_AUTH": 1,)
// — too short to be worth hiding there, and what code passes around.
// "token: abc" ending a YAML line is a value. Only '*' is a value
// redacted already, or Markdown.
func variable(s []byte, i, vs, ve int) bool {
	v := s[vs:ve]
	if len(bytes.Trim(v, "*")) == 0 {
		return true // ***: redacted already, or Markdown (**password:**)
	}
	if len(v) <= 3 {
		letters, digits := true, true
		for _, c := range v {
			letters = letters && (c == '_' || is(c, cUpper|cLower))
			digits = digits && is(c, cDigit)
		}
		if !letters && !digits {
			return false
		}
		k := ve
		for k < len(s) && s[k] == ' ' {
			k++
		}
		sep := i + 1
		if sep < len(s) && s[i] == ':' && s[sep] == '=' {
			sep++
		}
		code := (s[i] == '=' || sep == i+2) && sep < vs && s[sep] == ' '
		return code || (k < len(s) && strings.IndexByte(",;)}", s[k]) >= 0)
	}
	if !is(v[0], cLower) {
		return false
	}
	humps := 0
	for k, c := range v {
		switch {
		case is(c, cLower):
		case is(c, cUpper):
			if !is(v[k-1], cLower) || k+1 == len(v) || !is(v[k+1], cLower) {
				return false
			}
			humps++
		default:
			return false
		}
	}
	return humps > 0
}

// cookieRule reports whether a mask type is that of a cookie rule (cookie,
// set_cookie), whose value runs to the end of the line.
func cookieRule(typ string) bool { return strings.HasSuffix(typ, "cookie") }

// lineEnd is the end of the header value starting at s[i]: the end of
// its line (a literal "\n" too, in text holding JSON) or a quote that
// closes the string holding it; a quoted cookie value (a="x y") is taken
// whole.
func lineEnd(s []byte, i int) int {
	for ; i < len(s); i++ {
		switch c := s[i]; c {
		case '\n', '\r':
			return i
		case '"', '\'', '`':
			if i == 0 || s[i-1] != '=' {
				return i
			}
			k := i + 1
			for k < len(s) && s[k] != c && s[k] != '\n' && s[k] != '\r' {
				k++
			}
			if k == len(s) || s[k] != c {
				return i
			}
			i = k
		case '\\':
			if i+1 < len(s) && (s[i+1] == 'n' || s[i+1] == 'r' || s[i+1] == '"') {
				return i
			}
		}
	}
	return i
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

// endsLine reports whether only blanks, then the end of the line (also
// an escaped one, \n, in text holding JSON), a '#' comment, ',' or '}'
// follow e.
func endsLine(s []byte, e int) bool {
	for e < len(s) && (s[e] == ' ' || s[e] == '\t') {
		e++
	}
	return e == len(s) || strings.IndexByte("\n\r#,}", s[e]) >= 0 || hasPrefix(s, e, `\n`) || hasPrefix(s, e, `\r`)
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
	if len(name) < 6 || len(name) > maxKeyLen || !holdsSecret(name) {
		return false
	}
	var buf [maxKeyLen]byte
	n := 0
	for _, c := range name {
		switch nameKind[c] {
		case nkSep:
			continue
		case nkUpper:
			c += 'a' - 'A'
		}
		buf[n] = c
		n++
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

// holdsSecret reports whether name holds "secret" once ASCII case is
// folded and separators dropped, as awsSecretName normalizes it: both of
// its tests need that word, and most names (every '=' and ':' of a log
// line has one) lack it, so one pass without a buffer rejects them.
// "secret" shares no prefix with a suffix of itself, so on a mismatch
// the match restarts at 0, or at 1 when the byte is an 's'.
func holdsSecret(name []byte) bool {
	const w = "secret"
	k := 0
	for _, c := range name {
		switch nameKind[c] {
		case nkSep:
			continue
		case nkUpper:
			c += 'a' - 'A'
		}
		switch {
		case c == w[k]:
			k++
			if k == len(w) {
				return true
			}
		case c == 's':
			k = 1
		default:
			k = 0
		}
	}
	return false
}
