package mask

import (
	"fmt"
	"strings"
)

// maxKeyLen bounds a normalized key rule, so lookups normalize names into
// a fixed stack buffer.
const maxKeyLen = 64

// keySet holds the key rules of a profile: normalized name → mask type.
type keySet struct {
	m      map[string]string
	sig    uint64 // a bit per (length, first byte, last byte) of the normalized names
	minLen int
	maxLen int
}

// keySig is the bit of sig a normalized name sets.
func keySig(n int, first, last byte) uint64 {
	return 1 << ((uint(n)*31 + uint(first)*7 + uint(last)) & 63)
}

func (k *keySet) empty() bool { return len(k.m) == 0 }

// keyFold maps a name byte to its normalized form: ASCII lower case, and 0
// for '_' and '-', which normalization drops.
var keyFold = func() (t [256]byte) {
	for i := range t {
		c := byte(i)
		switch {
		case c == '_' || c == '-':
			t[i] = 0
		case 'A' <= c && c <= 'Z':
			t[i] = c + 'a' - 'A'
		default:
			t[i] = c
		}
	}
	return t
}()

// normalizeKey appends the normalized form of k to dst; ok is false when
// that would pass maxKeyLen bytes.
func normalizeKey(dst *[maxKeyLen]byte, k []byte) (n int, ok bool) {
	for _, c := range k {
		f := keyFold[c]
		if f == 0 {
			continue
		}
		if n == maxKeyLen {
			return 0, false
		}
		dst[n] = f
		n++
	}
	return n, true
}

func compileKeys(keys []string) (keySet, []error) {
	var errs []error
	ks := keySet{m: make(map[string]string, len(keys)), minLen: maxKeyLen + 1}
	for i, k := range keys {
		var buf [maxKeyLen]byte
		n, ok := normalizeKey(&buf, []byte(k))
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("keys[%d]: longer than %d characters", i, maxKeyLen))
			continue
		case n == 0:
			errs = append(errs, fmt.Errorf("keys[%d] %q: has no characters but '_' and '-'", i, k))
			continue
		case !maskSafe(k):
			errs = append(errs, fmt.Errorf("keys[%d] %q: may not hold brackets, quotes, '\\\\', '`' or control characters", i, k))
			continue
		}
		norm := string(buf[:n])
		if _, dup := ks.m[norm]; dup {
			continue
		}
		ks.m[norm] = "field:" + strings.ToLower(k)
		ks.sig |= keySig(n, buf[0], buf[n-1])
		ks.minLen = min(ks.minLen, n)
		ks.maxLen = max(ks.maxLen, n)
	}
	if len(ks.m) == 0 {
		ks.m = nil
	}
	return ks, errs
}

// lookup matches a whole name (a JSON member name) against the rules.
func (k *keySet) lookup(name []byte) (string, bool) {
	if k.m == nil || len(name) < k.minLen {
		return "", false
	}
	var buf [maxKeyLen]byte
	n, ok := normalizeKey(&buf, name)
	if !ok || n < k.minLen || n > k.maxLen || k.sig&keySig(n, buf[0], buf[n-1]) == 0 {
		return "", false
	}
	typ, ok := k.m[string(buf[:n])]
	return typ, ok
}

// lookupSuffix matches a name in text: the whole name, or what follows any
// '_', '-' or '.' in it (DB_PASSWORD, smtp.password match "password").
func (k *keySet) lookupSuffix(name []byte) (string, bool) {
	if typ, ok := k.lookup(name); ok {
		return typ, true
	}
	for j := 1; j < len(name); j++ {
		if c := name[j-1]; c == '_' || c == '-' || c == '.' {
			if typ, ok := k.lookup(name[j:]); ok {
				return typ, true
			}
		}
	}
	return "", false
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
