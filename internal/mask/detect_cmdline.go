package mask

// Command lines: --password=…, --token …, mysql -pSECRET, curl -u
// user:password.

import (
	"bytes"
	"strings"
)

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
