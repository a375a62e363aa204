package mask

import (
	"bytes"
	"fmt"
	"math/bits"
	"strings"
)

// maxKeyLen bounds a normalized name, so lookups normalize names into a
// fixed stack buffer; longer names match no rule.
const maxKeyLen = 64

// Key rules and their exceptions match names after normalization: ASCII
// case is folded and everything but letters and digits dropped, and the
// positions where a word of the name starts are kept — after '_', '-',
// '.', a space or any other separator, at a camelCase step (dbPassword,
// DBPassword) and after a known prefix run into the next word
// (PGPASSWORD, xapikey). A rule matches a name that ends with it at one
// of those positions: "password" matches db_password, DB_PASSWORD,
// dbPassword, PGPASSWORD and smtp.password, not passwordless or bypass.

// knownPrefixes are name prefixes often written run into the next word
// without a separator (PGPASSWORD, MYSQLPWD, XAPIKEY); each also starts a
// word when the name goes on after it.
var knownPrefixes = []string{"pg", "mysql", "mongo", "redis", "db", "aws", "x", "api", "smtp", "ldap"}

// prefixFirst marks the first bytes of knownPrefixes.
var prefixFirst = func() (t [256]bool) {
	for _, p := range knownPrefixes {
		t[p[0]] = true
	}
	return t
}()

// keySet holds the key rules of a profile: normalized name → mask type,
// and the exceptions that keep names ending with a rule unmasked.
type keySet struct {
	m      map[string]string
	except map[string]bool // exceptions matching the end of a name, as rules do
	whole  map[string]bool // exceptions matching the whole name only ("=pwd")
	sig    uint64          // a bit per (length, first byte, last byte) of the rules
	tri    *[64]uint64     // a bit per hash of the last three bytes of the rules; nil: not used
	minLen int
	maxLen int
	// maskEnd is the profile's Profile.maskEnd: a name holding one of its
	// masks matches no rule, so masking a name ("a password=x" becoming
	// "a password=[MASKED:field:password]") cannot make it match one.
	maskEnd func(s []byte, i int) int
}

// keySig is the bit of sig a normalized name sets.
func keySig(n int, first, last byte) uint64 {
	return 1 << ((uint(n)*31 + uint(first)*7 + uint(last)) & 63)
}

func (k *keySet) empty() bool { return len(k.m) == 0 }

// Name byte kinds for normalization.
const (
	nkSep   = iota // dropped; the next letter or digit starts a word
	nkLower        // a-z and bytes of multi-byte UTF-8 characters
	nkUpper
	nkDigit
)

var nameKind = func() (t [256]uint8) {
	for i := range t {
		c := byte(i)
		switch {
		case 'a' <= c && c <= 'z' || c >= 0x80:
			t[i] = nkLower
		case 'A' <= c && c <= 'Z':
			t[i] = nkUpper
		case '0' <= c && c <= '9':
			t[i] = nkDigit
		}
	}
	return t
}()

// normalizeName writes the normalized form of name to dst and returns its
// length and the positions where its words start (bit b: a word starts
// at dst[b]); ok is false when it would pass maxKeyLen bytes.
func normalizeName(dst *[maxKeyLen]byte, name []byte) (n int, starts uint64, ok bool) {
	prev := uint8(nkSep)
	for i, c := range name {
		kind := nameKind[c]
		if kind == nkSep {
			prev = nkSep
			continue
		}
		if n == maxKeyLen {
			return 0, 0, false
		}
		switch {
		case prev == nkSep:
			starts |= 1 << n
		case kind == nkUpper && (prev == nkLower || prev == nkDigit):
			starts |= 1 << n // dbPassword, oauth2Token
		case kind == nkUpper && prev == nkUpper && i+1 < len(name) && nameKind[name[i+1]] == nkLower:
			starts |= 1 << n // DBPassword: the P starts a word
		}
		if kind == nkUpper {
			c += 'a' - 'A'
		}
		dst[n] = c
		n++
		prev = kind
	}
	if n == 0 {
		return 0, 0, true
	}
	// Known prefixes run into the next word: PGPASSWORD is pg + password.
	for st := starts; st != 0; st &= st - 1 {
		b := bits.TrailingZeros64(st)
		end := n
		if rest := starts >> (b + 1); rest != 0 {
			end = b + 1 + bits.TrailingZeros64(rest)
		}
		if !prefixFirst[dst[b]] {
			continue
		}
		for _, p := range knownPrefixes {
			if end-b > len(p) && string(dst[b:b+len(p)]) == p {
				starts |= 1 << (b + len(p))
			}
		}
	}
	return n, starts, true
}

// compileKeys compiles key rules and exceptions. An exception written
// "=name" matches the whole name only; others match the end of a name as
// rules do.
func compileKeys(keys, except []string) (keySet, []error) {
	var errs []error
	ks := keySet{m: make(map[string]string, len(keys)), minLen: maxKeyLen + 1}
	norm := func(field string, i int, k string) (string, bool) {
		var buf [maxKeyLen]byte
		n, _, ok := normalizeName(&buf, []byte(k))
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s[%d]: longer than %d characters", field, i, maxKeyLen))
			return "", false
		case n == 0:
			errs = append(errs, fmt.Errorf("%s[%d] %q: has no characters but separators ('_', '-', '.', …)", field, i, k))
			return "", false
		case !maskSafe(k):
			errs = append(errs, fmt.Errorf("%s[%d] %q: may not hold brackets, quotes, '\\\\', '`' or control characters", field, i, k))
			return "", false
		}
		return string(buf[:n]), true
	}
	for i, k := range keys {
		nk, ok := norm("keys", i, k)
		if !ok {
			continue
		}
		if _, dup := ks.m[nk]; dup {
			continue
		}
		n := len(nk)
		ks.m[nk] = "field:" + strings.ToLower(k)
		ks.sig |= keySig(n, nk[0], nk[n-1])
		ks.minLen = min(ks.minLen, n)
		ks.maxLen = max(ks.maxLen, n)
	}
	for i, k := range except {
		whole := strings.HasPrefix(k, "=")
		nk, ok := norm("except_keys", i, strings.TrimPrefix(k, "="))
		if !ok {
			continue
		}
		if whole {
			if ks.whole == nil {
				ks.whole = make(map[string]bool)
			}
			ks.whole[nk] = true
			continue
		}
		if ks.except == nil {
			ks.except = make(map[string]bool)
		}
		ks.except[nk] = true
	}
	if len(ks.m) == 0 {
		ks.m = nil
	}
	if ks.minLen >= 3 && ks.m != nil {
		// Most names end unlike any rule ("type", "text", "content"):
		// their last three bytes reject them before normalization.
		ks.tri = new([64]uint64)
		for nk := range ks.m {
			h := triHash(nk[len(nk)-3], nk[len(nk)-2], nk[len(nk)-1])
			ks.tri[h>>6] |= 1 << (h & 63)
		}
	}
	return ks, errs
}

func triHash(a, b, c byte) uint { return (uint(a)*961 + uint(b)*31 + uint(c)) & 4095 }

// lastThree reports whether the last three letters or digits of name,
// folded as normalization does, can end a rule once versionEnd has cut
// the version and number words off the end (token_v2, password2,
// DB_PASSWORD_2). Each place the name may end after that cut is tried:
// the first letter before the trailing digits and, when that letter is a
// 'v' that may start a version word, the first letter before it and its
// own digits, and so on. A name that may end with a digit after the cut
// (one holding only a version word) is not rejected here.
func (k *keySet) lastThree(name []byte) bool {
	if n := len(name); n >= 3 {
		// Most names end with three ASCII letters (id, type, created_at,
		// request_id): those are hashed at once, with no version word to
		// cut and no separator to skip.
		a, b, c := name[n-3], name[n-2], name[n-1]
		if is(a, cUpper|cLower) && is(b, cUpper|cLower) && is(c, cUpper|cLower) {
			h := triHash(a|0x20, b|0x20, c|0x20)
			return k.tri[h>>6]&(1<<(h&63)) != 0
		}
	}
	i := len(name) - 1
	for {
		// Skip the digits (and separators) that versionEnd may cut.
		digits := false
		for ; i >= 0; i-- {
			kind := nameKind[name[i]]
			if kind == nkDigit {
				digits = true
			} else if kind != nkSep {
				break
			}
		}
		if i < 0 {
			return digits // only a number, kept whole by versionEnd
		}
		t, ok := k.endsRule(name, i)
		if !ok {
			// Too short to end a rule, unless versionEnd keeps a
			// version word whole ("v12"): then let lookup decide.
			return digits
		}
		if t {
			return true
		}
		c := name[i]
		if !digits || (c != 'v' && c != 'V') {
			return false
		}
		i-- // v2 may be a version word: the name may end before it
	}
}

// endsRule reports whether the three letters or digits of name ending at
// name[i] (a letter) hash to the end of a rule; ok is false when there are
// fewer than three.
func (k *keySet) endsRule(name []byte, i int) (t, ok bool) {
	var b [3]byte
	n := 3
	for ; i >= 0 && n > 0; i-- {
		c := name[i]
		switch nameKind[c] {
		case nkSep:
			continue
		case nkUpper:
			c += 'a' - 'A'
		}
		n--
		b[n] = c
	}
	if n > 0 {
		return false, false
	}
	h := triHash(b[0], b[1], b[2])
	return k.tri[h>>6]&(1<<(h&63)) != 0, true
}

// lookup matches a name — a JSON member name, or NAME in NAME=value —
// against the rules: the longest rule ending the name at a word start,
// unless an exception at least as long ends it too. Version and number
// words at the end do not end the name (see versionEnd): password2,
// token_v2 and ses_smtp_password_v4 match "password" and "token".
func (k *keySet) lookup(name []byte) (string, bool) {
	if k.m == nil || len(name) < k.minLen || (k.tri != nil && !k.lastThree(name)) {
		return "", false
	}
	var buf [maxKeyLen]byte
	full, starts, ok := normalizeName(&buf, name)
	if !ok || full < k.minLen || k.holdsMask(name) {
		return "", false
	}
	n := versionEnd(buf[:full], starts)
	if n < k.minLen {
		return "", false
	}
	ws := starts & (uint64(1)<<n - 1)
	last := buf[n-1]
	for st := ws; st != 0; st &= st - 1 {
		b := bits.TrailingZeros64(st)
		l := n - b
		if l < k.minLen {
			break
		}
		if l > k.maxLen || k.sig&keySig(l, buf[b], last) == 0 {
			continue
		}
		if typ, ok := k.m[string(buf[b:n])]; ok {
			if k.excepted(buf[:full], starts, buf[:n], ws, b) {
				return "", false
			}
			return typ, true
		}
	}
	return "", false
}

// versionEnd returns the length of the normalized name norm (its words
// starting at the bits of starts) without the version or number words
// that end it: a word of digits (password_2), v and digits (token_v2,
// ses_smtp_password_v4), digits ending a word (password2). Those number
// a secret's versions, they do not say what it is. A name of only such
// a word keeps it.
func versionEnd(norm []byte, starts uint64) int {
	n := len(norm)
	for n > 0 && isDigit(norm[n-1]) {
		ws := 63 - bits.LeadingZeros64(starts&(uint64(1)<<n-1)) // the last word's start
		d := n
		for d > ws && isDigit(norm[d-1]) {
			d--
		}
		switch {
		case d == ws || (d == ws+1 && norm[ws] == 'v'):
			if ws == 0 {
				return n // "2", "v2": nothing else to name
			}
			n = ws
		default:
			n = d
		}
	}
	return n
}

// holdsMask reports whether name holds a mask of the profile.
func (k *keySet) holdsMask(name []byte) bool {
	if k.maskEnd == nil {
		return false
	}
	for i := bytes.IndexByte(name, '['); i >= 0; {
		if k.maskEnd(name, i) > 0 {
			return true
		}
		j := bytes.IndexByte(name[i+1:], '[')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// excepted reports whether an exception matches the normalized name
// whose rule match starts at br: the whole name, or an end of it at
// least as long as the rule's — of the name as written (full) or of the
// name without its version words (norm, see versionEnd), so next_token
// excepts next_token_v2 too.
func (k *keySet) excepted(full []byte, fullStarts uint64, norm []byte, starts uint64, br int) bool {
	if k.whole != nil && k.whole[string(full)] {
		return true
	}
	if k.except == nil {
		return false
	}
	for _, nm := range [2]struct {
		b  []byte
		st uint64
	}{{norm, starts}, {full, fullStarts}} {
		for st := nm.st; st != 0; st &= st - 1 {
			b := bits.TrailingZeros64(st)
			if b > br {
				break
			}
			if k.except[string(nm.b[b:])] {
				return true
			}
		}
	}
	return false
}

// maskSafe reports whether name can go into a mask type: a mask must not
// hold what ends a value or a mask in text (brackets, quotes, '\\', '`',
// control characters).
func maskSafe(name string) bool {
	for _, c := range []byte(name) {
		if c < 0x20 || c == 0x7f || strings.IndexByte("[]\"'\\`", c) >= 0 {
			return false
		}
	}
	return true
}
