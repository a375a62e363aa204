package policy

import (
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Names policy can trust.
//
// A tool, prompt or resource name reaches policy three ways at once: raw
// (the exact string the server will look up), normalised (Unicode NFKC,
// then case-folded, so DELETE_all, ＤＥＬＥＴＥ_all and delete_all are one
// name) and as words (split at every character that is not a letter,
// digit or combining mark — `_ - . / :` and whitespace among them — at
// lower-to-upper camelCase boundaries, at the end of an upper-case acronym
// (HTTPDelete: http, delete) and between letters and digits). Characters
// that make a name read differently to a person, a policy and a server —
// control characters, zero-width and bidi controls, other invisible
// characters, and letters of scripts that do not belong together — are
// reported, so the policy can refuse the name instead of guessing.

// NameFacts is what the policy input says about one name
// (input.mcp.name_normalized, name_words and name_suspicious).
type NameFacts struct {
	Normalized string
	Words      []string
	Suspicious string // why the name cannot be trusted; "" when it can
}

// NormalizeName is name in Unicode NFKC, case-folded (full Unicode case
// folding, so ß and ẞ are ss). It is idempotent.
func NormalizeName(name string) string {
	if isASCII(name) {
		return asciiLower(name)
	}
	s := name
	// NFKC and case folding do not commute for a few characters; repeat
	// until nothing changes (twice in practice) so the result is stable.
	for range 4 {
		next := norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s)))
		if next == s {
			break
		}
		s = next
	}
	return s
}

// NameWords splits name into lower-case (normalised) words: at every
// character that is not a letter, digit or combining mark, at camelCase
// and PascalCase boundaries (repoDelete: repo, delete), at the end of an
// acronym (HTTPDelete: http, delete; DELETEAll: delete, all) and between
// letters and digits (v2delete: v, 2, delete). The name is read in NFKC
// first, so fullwidth and other compatibility forms split like their
// plain letters. Each word is NormalizeName of itself.
func NameWords(name string) []string {
	if !isASCII(name) {
		name = norm.NFKC.String(name)
	}
	var words []string
	start := -1 // byte offset of the current word, -1 outside a word
	var prev runeClass
	emit := func(end int) {
		if start >= 0 && end > start {
			if w := NormalizeName(name[start:end]); w != "" {
				words = append(words, w)
			}
		}
		start = -1
	}
	for i, r := range name {
		c := classify(r)
		switch {
		case c == classSep:
			emit(i)
			prev = classSep
			continue
		case c == classMark:
			// A combining mark belongs to the character before it.
			if start < 0 {
				start = i
			}
			continue
		case start < 0:
			start = i
		case boundary(prev, c, name[i:]):
			emit(i)
			start = i
		}
		prev = c
	}
	emit(len(name))
	return words
}

// SuspiciousName says why name cannot be trusted as a name, or "" when it
// can: a control character, a zero-width character, a bidi control, any
// other invisible (default-ignorable or format) character, a private-use
// character or noncharacter, invalid UTF-8, or letters from scripts that
// are not used together (Latin with Cyrillic or Greek, say; Latin with
// Han, Hiragana, Katakana, Hangul or Bopomofo as Japanese, Chinese and
// Korean are written is fine). Characters are named by code point.
func SuspiciousName(name string) string {
	if isASCII(name) {
		for i := 0; i < len(name); i++ {
			if b := name[i]; b < 0x20 || b == 0x7f {
				return "control character " + codePoint(rune(b))
			}
		}
		return ""
	}
	if !utf8.ValidString(name) {
		return "invalid UTF-8"
	}
	for _, r := range name {
		if why := invisible(r); why != "" {
			return why + " " + codePoint(r)
		}
	}
	return mixedScripts(name)
}

// Facts computes the name facts; uri says the name is a resource URI,
// whose percent-encoded form a server may decode: its words and checks
// then cover the decoded form too.
func Facts(name string, uri bool) NameFacts {
	f := NameFacts{Normalized: NormalizeName(name), Words: NameWords(name), Suspicious: SuspiciousName(name)}
	if f.Words == nil {
		f.Words = []string{}
	}
	if uri && strings.IndexByte(name, '%') >= 0 {
		if dec, err := url.PathUnescape(name); err == nil && dec != name {
			if why := SuspiciousName(dec); why != "" && f.Suspicious == "" {
				f.Suspicious = why + " (percent-encoded)"
			}
			f.Words = append(f.Words, NameWords(strings.ToValidUTF8(dec, " "))...)
		}
	}
	return f
}

// ItemName is the name the message is about, as the shipped policy reads
// it: the tool of tools/call, the prompt of prompts/get, the URI of
// resources/*, and the prompt (or else the URI) that completion/complete
// names. uri says the name is a resource URI.
func (m *MessageInput) ItemName() (name string, uri bool) {
	switch {
	case m.Method == "tools/call":
		return m.Tool, false
	case m.Method == "prompts/get":
		return m.Prompt, false
	case strings.HasPrefix(m.Method, "resources/"):
		return m.URI, true
	case m.Prompt != "":
		return m.Prompt, false
	case m.URI != "":
		return m.URI, true
	default:
		return m.Tool, false
	}
}

type runeClass uint8

const (
	classSep   runeClass = iota // not part of a word
	classUpper                  // upper or title case letter
	classLower                  // lower case letter
	classOther                  // letter without case (Han, Arabic, …)
	classDigit                  // number
	classMark                   // combining mark
)

func classify(r rune) runeClass {
	if r < utf8.RuneSelf {
		switch {
		case 'a' <= r && r <= 'z':
			return classLower
		case 'A' <= r && r <= 'Z':
			return classUpper
		case '0' <= r && r <= '9':
			return classDigit
		}
		return classSep
	}
	switch {
	case unicode.IsUpper(r) || unicode.IsTitle(r):
		return classUpper
	case unicode.IsLower(r):
		return classLower
	case unicode.IsLetter(r):
		return classOther
	case unicode.IsNumber(r):
		return classDigit
	case unicode.IsMark(r):
		return classMark
	}
	return classSep
}

// boundary says whether a word ends before the character of class c (the
// start of rest), after a character of class prev.
func boundary(prev, c runeClass, rest string) bool {
	switch {
	case prev == c:
		// HTTPDelete: the acronym ends before the last capital, the one
		// that starts a lower-case word.
		return c == classUpper && nextIsLower(rest)
	case prev == classUpper && c == classLower:
		return false // Delete
	default:
		// lower→Upper (camelCase), letter↔digit, cased↔caseless letters.
		return true
	}
}

// nextIsLower says whether the character after the first one of s (marks
// skipped) is a lower-case letter.
func nextIsLower(s string) bool {
	_, n := utf8.DecodeRuneInString(s)
	for _, r := range s[n:] {
		switch classify(r) {
		case classMark:
			continue
		case classLower:
			return true
		default:
			return false
		}
	}
	return false
}

// invisible names the kind of character r is when it has no business in a
// name, or "".
func invisible(r rune) string {
	switch {
	case r == 0x200B || r == 0x200C || r == 0x200D || r == 0x2060 || r == 0xFEFF:
		return "zero-width character"
	case r == 0x200E || r == 0x200F || r == 0x061C || (0x202A <= r && r <= 0x202E) || (0x2066 <= r && r <= 0x2069):
		return "bidi control"
	case unicode.IsControl(r) || r == 0x2028 || r == 0x2029:
		return "control character"
	case unicode.Is(unicode.Variation_Selector, r):
		return "variation selector"
	case unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) ||
		r == 0x034F || r == 0x115F || r == 0x1160 || r == 0x3164 || r == 0xFFA0 || (0x17B4 <= r && r <= 0x17B5):
		return "invisible character"
	case unicode.Is(unicode.Co, r):
		return "private-use character"
	case unicode.Is(unicode.Noncharacter_Code_Point, r):
		return "noncharacter"
	}
	return ""
}

// mixedScripts reports letters of scripts that are not written together.
// Common (punctuation, digits, symbols) and Inherited (combining marks)
// characters belong to any script.
func mixedScripts(name string) string {
	var seen []string
	for _, r := range name {
		if r < utf8.RuneSelf {
			if ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
				seen = addScript(seen, "Latin")
			}
			continue
		}
		if s := scriptOf(r); s != "" && s != "Common" && s != "Inherited" {
			seen = addScript(seen, s)
		}
	}
	if len(seen) < 2 {
		return ""
	}
	for _, ok := range compatibleScripts {
		if subset(seen, ok) {
			return ""
		}
	}
	return "mixed scripts " + strings.Join(seen, "+")
}

// compatibleScripts are the script sets one name may mix (Unicode TS #39's
// "highly restrictive" level): Japanese, Chinese and Korean writing, each
// with Latin.
var compatibleScripts = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

func addScript(seen []string, s string) []string {
	if slices.Contains(seen, s) {
		return seen
	}
	return append(seen, s)
}

func subset(a, b []string) bool {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

type scriptRange struct {
	lo, hi rune
	name   string
}

// scriptRanges is every range of unicode.Scripts, sorted, for a binary
// search (ranging over the map per character would be slow).
var scriptRanges = sync.OnceValue(func() []scriptRange {
	var rs []scriptRange
	// add appends lo..hi (every stride-th rune of it) to rs.
	add := func(lo, hi, stride rune, name string) {
		if stride == 1 {
			rs = append(rs, scriptRange{lo, hi, name})
			return
		}
		for r := lo; r <= hi; r += stride {
			rs = append(rs, scriptRange{r, r, name})
		}
	}
	for name, t := range unicode.Scripts {
		for _, r := range t.R16 {
			add(rune(r.Lo), rune(r.Hi), rune(r.Stride), name)
		}
		for _, r := range t.R32 {
			add(rune(r.Lo), rune(r.Hi), rune(r.Stride), name)
		}
	}
	sort.Slice(rs, func(i, j int) bool { return rs[i].lo < rs[j].lo })
	return rs
})

// scriptOf is the Unicode script of r, "" when it has none (unassigned).
func scriptOf(r rune) string {
	rs := scriptRanges()
	i := sort.Search(len(rs), func(i int) bool { return rs[i].hi >= r })
	if i < len(rs) && rs[i].lo <= r {
		return rs[i].name
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return strings.ToLower(s)
		}
	}
	return s
}

func codePoint(r rune) string {
	const hex = "0123456789ABCDEF"
	b := []byte("U+")
	digits := 4
	for v := r >> 16; v > 0; v >>= 4 {
		digits++
	}
	for i := digits - 1; i >= 0; i-- {
		b = append(b, hex[(r>>(4*uint(i)))&0xF])
	}
	return string(b)
}
