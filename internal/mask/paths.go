package mask

import (
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// maxPaths bounds the path rules of a profile: the matcher tracks which
// rules are still alive as bits of a uint64.
const maxPaths = 64

type segKind uint8

const (
	segName  segKind = iota // .name, ['name']
	segIndex                // [N]
	segAny                  // .*, [*]
)

type seg struct {
	kind segKind
	name string
	idx  int
}

// pathRule is one compiled path: its segments and its mask type
// ("field:" + the last member name in it, or "field:path").
type pathRule struct {
	segs []seg
	typ  string
}

// parsePath compiles "$" followed by segments; see ProfileConfig.Paths.
func parsePath(s string) (pathRule, error) {
	bad := func(at int, format string, args ...any) (pathRule, error) {
		return pathRule{}, fmt.Errorf("path %q: at byte %d: %s", s, at, fmt.Sprintf(format, args...))
	}
	if !strings.HasPrefix(s, "$") {
		return bad(0, "must start with '$'")
	}
	var r pathRule
	i := 1
	for i < len(s) {
		switch s[i] {
		case '.':
			i++
			switch {
			case i < len(s) && s[i] == '.':
				return bad(i-1, "recursive descent (..) is not supported; list the name in keys to mask it at any depth")
			case i < len(s) && s[i] == '*':
				r.segs = append(r.segs, seg{kind: segAny})
				i++
			default:
				j := i
				for j < len(s) && !strings.ContainsRune(".[]*'\" \t", rune(s[j])) {
					j++
				}
				if j == i {
					return bad(i, "expected a member name or '*' after '.'")
				}
				r.segs = append(r.segs, seg{kind: segName, name: s[i:j]})
				i = j
			}
		case '[':
			i++
			if i >= len(s) {
				return bad(i, "unterminated '['")
			}
			switch c := s[i]; {
			case c == '*':
				if i+1 >= len(s) || s[i+1] != ']' {
					return bad(i+1, "expected ']' after '[*'")
				}
				r.segs = append(r.segs, seg{kind: segAny})
				i += 2
			case c == '\'' || c == '"':
				var name strings.Builder
				j := i + 1
				for ; j < len(s) && s[j] != c; j++ {
					if s[j] == '\\' && j+1 < len(s) && (s[j+1] == c || s[j+1] == '\\') {
						j++
					}
					name.WriteByte(s[j])
				}
				if j >= len(s) {
					return bad(i, "unterminated quoted name")
				}
				if j+1 >= len(s) || s[j+1] != ']' {
					return bad(j+1, "expected ']' after the quoted name")
				}
				r.segs = append(r.segs, seg{kind: segName, name: name.String()})
				i = j + 2
			case '0' <= c && c <= '9':
				j := i
				for j < len(s) && '0' <= s[j] && s[j] <= '9' {
					j++
				}
				if j >= len(s) || s[j] != ']' {
					return bad(j, "expected ']' after the index")
				}
				n, err := strconv.Atoi(s[i:j])
				if err != nil || (s[i] == '0' && j-i > 1) {
					return bad(i, "invalid index %q", s[i:j])
				}
				r.segs = append(r.segs, seg{kind: segIndex, idx: n})
				i = j + 1
			default:
				return bad(i, "expected '*', a quoted name or an index after '['")
			}
		default:
			return bad(i, "expected '.' or '['")
		}
	}
	if len(r.segs) == 0 {
		return bad(1, "names no member ('$' alone would mask the whole message)")
	}
	r.typ = "field:path"
	for _, sg := range r.segs {
		if sg.kind == segName && maskSafe(sg.name) {
			r.typ = "field:" + sg.name
		}
	}
	return r, nil
}

// allPaths is the live-rule mask at the root of a message.
func allPaths(n int) uint64 {
	if n == maxPaths {
		return ^uint64(0)
	}
	return 1<<n - 1
}

// stepName advances the live rules at depth d past member name key: child
// holds the rules that go on deeper, typ is the type of the first rule that
// ends at this member ("" if none).
func stepName(rules []pathRule, live uint64, d int, key []byte) (child uint64, typ string) {
	for live != 0 {
		i := bits.TrailingZeros64(live)
		live &^= 1 << i
		r := &rules[i]
		if d >= len(r.segs) {
			continue
		}
		sg := &r.segs[d]
		if sg.kind == segAny || (sg.kind == segName && sg.name == string(key)) {
			if d+1 == len(r.segs) {
				if typ == "" {
					typ = r.typ
				}
			} else {
				child |= 1 << i
			}
		}
	}
	return child, typ
}

// stepIndex is stepName for array element idx.
func stepIndex(rules []pathRule, live uint64, d int, idx int) (child uint64, typ string) {
	for live != 0 {
		i := bits.TrailingZeros64(live)
		live &^= 1 << i
		r := &rules[i]
		if d >= len(r.segs) {
			continue
		}
		sg := &r.segs[d]
		if sg.kind == segAny || (sg.kind == segIndex && sg.idx == idx) {
			if d+1 == len(r.segs) {
				if typ == "" {
					typ = r.typ
				}
			} else {
				child |= 1 << i
			}
		}
	}
	return child, typ
}
