package mask

// Values, not code: whether an assigned value is a literal (a quoted
// string or a bare token) rather than code that computes it (a call, an
// index, a member, an interpolation, a variable, a keyword), so source
// files come back byte for byte.

import (
	"bytes"
	"strings"
)

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
