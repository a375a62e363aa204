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
	if ps == at || ps < floor || p.containsMask(s[ps:at]) || strings.IndexByte("%${<", s[ps]) >= 0 {
		// A format or template placeholder (%s, ${PASS}, {password},
		// <password>) is not a password.
		return ms, at + 1
	}
	return append(ms, match{ps, at, "url_password"}), at
}

// authSchemes are the words after which an Authorization value goes on.
var authSchemes = []string{"bearer", "basic", "token", "digest", "negotiate", "bot"}

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

// literal reports whether the unquoted value s[vs:ve] is a literal and
// not code: no variable or interpolation ($TOKEN, ${X}, $(cmd), {{ x }}),
// call, index or member access (getpass(), os.environ[…], req.headers.x,
// self.token), string prefix (f"…"), keyword (None, null, true), and no
// operator after it (a + b, x ? y : z). Code stays as written: masking it
// would corrupt a source file an agent edits.
func literal(s []byte, vs, ve int) bool {
	v := s[vs:ve]
	if len(v) == 0 {
		return false
	}
	switch v[0] {
	case '$', '{', '(', '[', '%':
		return false
	case '!', '&', '*':
		// YAML tags and anchors (!Ref Name, !secret db_password, &pw,
		// *pw); not !Passw0rd.
		if len(v) > 1 && (v[0] != '!' || (hasLetter(v[1:]) && !secretish(v[1:]) && ve < len(s) && s[ve] == ' ')) && identChain(v[1:]) {
			return false
		}
	}
	if bytes.IndexAny(v, "([{") >= 0 || bytes.Contains(v, []byte("->")) || bytes.Contains(v, []byte("::")) {
		return false
	}
	if ve < len(s) && stringPrefix(v, s[ve]) {
		return false // f"…", r'…', tag`…`, C#'s @"…"
	}
	if identChain(v) && bytes.IndexByte(v, '.') > 0 {
		return false // member access
	}
	if keyword(v) {
		return false // None, true
	}
	// An operator after the value: a + b, a || b, a ? b : c, a if b.
	k := ve
	for k < len(s) && (s[k] == ' ' || s[k] == '\t') {
		k++
	}
	if k == ve || k >= len(s) {
		return true
	}
	c := s[k]
	if strings.IndexByte("+-*/%|&^?<>=!", c) >= 0 {
		o := k + 1
		for o < len(s) && o-k < 3 && strings.IndexByte("+-*/%|&^?<>=!", s[o]) >= 0 {
			o++
		}
		return o < len(s) && s[o] != ' ' && s[o] != '\t'
	}
	for _, w := range []string{"if ", "or ", "and ", "else "} {
		if hasPrefix(s, k, w) {
			return false
		}
	}
	return true
}

// stringPrefix reports whether v, right before the quote q, is a string
// prefix of code rather than the end of a value inside a string: Python's
// f r b u rb br fr rf, C#'s @, or before a backtick a tagged template's
// tag (sql`…`, gql`…`: an identifier without digits). Anything longer is
// a value whose string closes there ("…&password=i9oYrzob";, echo
// "TOKEN=npm_…").
func stringPrefix(v []byte, q byte) bool {
	switch q {
	case '"', '\'':
		if string(v) == "@" {
			return true
		}
		if len(v) > 2 {
			return false
		}
		for _, c := range v {
			if strings.IndexByte("fFrRbBuU", c) < 0 {
				return false
			}
		}
		return true
	case '`':
		return identChain(v) && bytes.IndexAny(v, "0123456789") < 0
	}
	return false
}

// quotedLiteral reports whether the content of a quoted value is a
// literal: no interpolation ("${X}", "$(cmd)", "{{ x }}", "#{x}",
// "$TOKEN") and more than an auth scheme ("Bearer " + token).
func quotedLiteral(v []byte) bool {
	for k := 0; k+1 < len(v); k++ {
		c, d := v[k], v[k+1]
		switch {
		case c == '$' && (d == '{' || d == '('):
			return false
		case c == '$' && (d == '_' || is(d, cUpper|cLower)) && (k == 0 || strings.IndexByte(" /:=", v[k-1]) >= 0):
			return false // "$TOKEN", "Bearer $TOKEN", "$HOME/x"; not "pa$word"
		case (c == '{' || c == '#') && d == '{':
			return false
		}
	}
	t := bytes.TrimSpace(v)
	if len(t) < 3 || isAuthScheme(t) || keyword(t) {
		return false // too short to hide anything ("", "."), Bearer, none
	}
	// Code between two strings: "A=" + a + "B=" — the quotes close and
	// open string literals around it.
	if (v[0] == ' ' && strings.IndexByte("+.|&,)", t[0]) >= 0) || (v[len(v)-1] == ' ' && strings.IndexByte("+.|&,(", t[len(t)-1]) >= 0) {
		return false
	}
	return true
}

// identChain reports whether v is an identifier or identifiers joined by
// dots (a, self.token, req.headers.authorization).
func identChain(v []byte) bool {
	start := true
	for _, c := range v {
		switch {
		case c == '.':
			if start {
				return false
			}
			start = true
		case c == '_' || is(c, cUpper|cLower):
			start = false
		case is(c, cDigit):
			if start {
				return false
			}
		default:
			return false
		}
	}
	return !start
}

// keyword reports whether v is a language or configuration keyword that
// holds no secret (None, null, true, …).
func keyword(v []byte) bool {
	for _, k := range keywords {
		if len(v) == len(k) && hasPrefixFold(v, 0, k) {
			return true
		}
	}
	return false
}

var keywords = []string{"none", "null", "nil", "undefined", "true", "false", "yes", "no", "on", "off", "~",
	"include", "omit", "same-origin", // fetch's credentials option
	"read", "write", // GitHub Actions permissions (id-token: write)
	"iota", "self", "this"}

// declaredName returns the name declared before the type starting at
// s[ts] — "name: " or "name " before it — or an empty span.
func declaredName(s []byte, ts, floor int) (int, int) {
	j := ts
	for j > floor && ts-j < 8 && s[j-1] == ' ' {
		j--
	}
	if j > floor && s[j-1] == ':' {
		j--
		for j > floor && ts-j < 16 && s[j-1] == ' ' {
			j--
		}
	} else if j == ts {
		return 0, 0 // no blank: the type is not a declaration's
	}
	ne := j
	for j > floor && ne-j <= maxKeyLen && is(s[j-1], cWord) {
		j--
	}
	if j == ne || ne-j > maxKeyLen || !(is(s[j], cUpper|cLower) || s[j] == '_') {
		return 0, 0
	}
	return j, ne
}

// typeName reports whether v is a type a declaration names after ':'
// (password: string, token: str).
func typeName(v []byte) bool {
	switch string(v) {
	case "string", "String", "str", "number", "int", "integer", "bool", "boolean", "any", "bytes",
		"object", "unknown", "Optional", "SecretStr":
		return true
	}
	return false
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

// fireOption handles command-line options at the '-' s[i]: --NAME value
// where NAME is a key rule (--NAME=value is an assignment), mysql's
// -pPASSWORD on a mysql or mariadb command line and curl's -u
// user:password. It returns the value's match, if any.
func (p *Profile) fireOption(s []byte, i, floor int) (match, bool) {
	n := len(s)
	if i < floor || i+2 >= n || (i > 0 && strings.IndexByte(" \t\n'\"", s[i-1]) < 0) {
		return match{}, false
	}
	if (s[i+1] == 'u' || hasPrefix(s, i+1, "-user")) && curlLine(s, i) {
		return p.curlUser(s, i)
	}
	if s[i+1] == 'p' && is(s[i+2], cWord) && mysqlLine(s, i) {
		typ, ok := p.keys.lookup([]byte("password"))
		ve := p.valueEnd(s, i+2)
		if !ok || p.containsMask(s[i+2:ve]) || !literal(s, i+2, ve) {
			return match{}, false
		}
		return match{i + 2, ve, typ}, true
	}
	if s[i+1] != '-' || !is(s[i+2], cUpper|cLower) {
		return match{}, false
	}
	ne := i + 2
	for ne < n && ne-i <= maxKeyLen && (is(s[ne], cUpper|cLower|cDigit) || s[ne] == '-' || s[ne] == '_') {
		ne++
	}
	if ne+1 >= n || s[ne] != ' ' {
		return match{}, false // --password=x is an assignment; --password[=x] is help text
	}
	typ, ok := p.keys.lookup(s[i+2 : ne])
	if !ok {
		return match{}, false
	}
	vs := ne + 1
	switch q := s[vs]; q {
	case '"', '\'':
		e := bytes.IndexByte(s[vs+1:min(n, vs+1+512)], q)
		if e < 0 || !quotedLiteral(s[vs+1:vs+1+e]) || p.containsMask(s[vs+1:vs+1+e]) {
			return match{}, false
		}
		return match{vs + 1, vs + 1 + e, typ}, true
	}
	ve := p.valueEnd(s, vs)
	if ve == vs || s[vs] == '-' || metavar(s[vs:ve]) || p.containsMask(s[vs:ve]) || !literal(s, vs, ve) {
		return match{}, false
	}
	return match{vs, ve, typ}, true
}

// curlUser handles curl's -u user:password and --user user:password
// (also -uuser:password, --user=…, quoted) at the '-' s[i]: the password
// is masked, the user stays. Without a password (-u user, -u "user:")
// curl prompts for one; a variable ($PASS, ${PASS}) or a placeholder
// (PASSWORD) is left.
func (p *Profile) curlUser(s []byte, i int) (match, bool) {
	n := len(s)
	v := i + 2
	if s[i+1] == '-' {
		v = i + len("--user")
		if v >= n || (s[v] != ' ' && s[v] != '=') {
			return match{}, false
		}
		if s[v] == '=' {
			v++
		}
	}
	for v < n && v-i < 16 && (s[v] == ' ' || s[v] == '\t') {
		v++
	}
	if v >= n {
		return match{}, false
	}
	var vs, ve int
	q := s[v]
	switch q {
	case '"', '\'':
		vs = v + 1
		e := bytes.IndexByte(s[vs:min(n, vs+512)], q)
		if e < 0 {
			return match{}, false
		}
		ve = vs + e
	case '\\':
		// -u \"user:pw\" in text holding escaped JSON
		if v+1 >= n || s[v+1] != '"' {
			return match{}, false
		}
		q, vs = '"', v+2
		e := bytes.Index(s[vs:min(n, vs+512)], []byte(`\"`))
		if e < 0 {
			return match{}, false
		}
		ve = vs + e
	default:
		vs, ve = v, p.valueEnd(s, v)
	}
	colon := bytes.IndexByte(s[vs:ve], ':')
	if colon < 0 || bytes.IndexAny(s[vs:ve], "\n\r") >= 0 {
		return match{}, false
	}
	ps := vs + colon + 1
	if ps >= ve || metavar(s[ps:ve]) || p.containsMask(s[ps:ve]) {
		return match{}, false
	}
	if q == '"' || q == '\'' {
		if !quotedLiteral(s[ps:ve]) || s[ps] == '$' {
			return match{}, false
		}
	} else if !literal(s, ps, ve) {
		return match{}, false
	}
	typ, ok := p.keys.lookup([]byte("password"))
	if !ok {
		return match{}, false
	}
	return match{ps, ve, typ}, true
}

// curlLine reports whether the command line holding s[i] — its lines
// joined where one ends with a '\\' — runs curl before it.
func curlLine(s []byte, i int) bool {
	lo := max(0, i-1024)
	if bytes.Index(s[lo:i], []byte("curl")) < 0 {
		return false // most text: one fast pass, no line walking
	}
	ls := i
	for {
		k := bytes.LastIndexByte(s[lo:ls], '\n')
		if k < 0 {
			ls = lo
			break
		}
		k += lo
		e := k
		if e > lo && s[e-1] == '\r' {
			e--
		}
		if e > lo && s[e-1] == '\\' {
			ls = k // the line before goes on into this one
			continue
		}
		ls = k + 1
		break
	}
	for k := ls; ; {
		j := bytes.Index(s[k:i], []byte("curl"))
		if j < 0 {
			return false
		}
		k += j
		if (k == 0 || !is(s[k-1], cWord)) && k+4 < len(s) && !is(s[k+4], cWord) {
			return true
		}
		k += 4
	}
}

// mysqlLine reports whether the line holding s[i] runs mysql, mysqldump,
// mysqladmin or mariadb before it: only there is -pSECRET a password.
func mysqlLine(s []byte, i int) bool {
	ls := bytes.LastIndexByte(s[max(0, i-256):i], '\n') + 1 + max(0, i-256)
	line := s[ls:i]
	return bytes.Contains(line, []byte("mysql")) || bytes.Contains(line, []byte("mariadb"))
}

// metavar reports whether v is help text's placeholder for a value
// (--token TOKEN, --password PASSWORD): upper-case letters and '_' only.
func metavar(v []byte) bool {
	for _, c := range v {
		if !is(c, cUpper) && c != '_' {
			return false
		}
	}
	return true
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
