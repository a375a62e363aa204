package envoydriver

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"

	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
)

// compileRegex compiles a RegexMatcher. regex.proto RegexMatcher: "The regex
// match string. The string must be supported by the configured engine" (RE2,
// whose syntax Go's regexp implements). Envoy's CompiledGoogleReMatcher::match
// uses re2::RE2::FullMatch, so the pattern is anchored at both ends.
func compileRegex(m *matcherv3.RegexMatcher) (*regexp.Regexp, error) {
	if m == nil {
		return nil, fmt.Errorf("regex matcher is empty")
	}
	re, err := regexp.Compile(`^(?:` + m.GetRegex() + `)$`)
	if err != nil {
		return nil, fmt.Errorf("regex %q: %w", m.GetRegex(), err)
	}
	return re, nil
}

// stringMatcher is a compiled type.matcher.v3.StringMatcher.
type stringMatcher struct {
	kind       string // exact, prefix, suffix, contains, regex
	pattern    string
	re         *regexp.Regexp
	ignoreCase bool
}

// compileStringMatcher follows string.proto StringMatcher: exact, prefix,
// suffix, contains and safe_regex; ignore_case "has no effect for
// safe_regex".
func compileStringMatcher(m *matcherv3.StringMatcher) (*stringMatcher, error) {
	if m == nil {
		return nil, fmt.Errorf("string matcher is empty")
	}
	sm := &stringMatcher{ignoreCase: m.GetIgnoreCase()}
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		sm.kind, sm.pattern = "exact", p.Exact
	case *matcherv3.StringMatcher_Prefix:
		sm.kind, sm.pattern = "prefix", p.Prefix
	case *matcherv3.StringMatcher_Suffix:
		sm.kind, sm.pattern = "suffix", p.Suffix
	case *matcherv3.StringMatcher_Contains:
		sm.kind, sm.pattern = "contains", p.Contains
	case *matcherv3.StringMatcher_SafeRegex:
		re, err := compileRegex(p.SafeRegex)
		if err != nil {
			return nil, err
		}
		sm.kind, sm.re = "regex", re
	default:
		return nil, fmt.Errorf("string matcher pattern %T is not supported", p)
	}
	if sm.ignoreCase {
		sm.pattern = strings.ToLower(sm.pattern)
	}
	return sm, nil
}

func (m *stringMatcher) match(v string) bool {
	if m.kind == "regex" {
		return m.re.MatchString(v)
	}
	if m.ignoreCase {
		v = strings.ToLower(v)
	}
	switch m.kind {
	case "exact":
		return v == m.pattern
	case "prefix":
		return strings.HasPrefix(v, m.pattern)
	case "suffix":
		return strings.HasSuffix(v, m.pattern)
	case "contains":
		return strings.Contains(v, m.pattern)
	}
	return false
}

// listMatcher is a compiled ListStringMatcher: it matches when any pattern
// matches (string.proto ListStringMatcher).
type listMatcher []*stringMatcher

func compileListMatcher(l *matcherv3.ListStringMatcher) (listMatcher, error) {
	if l == nil {
		return nil, nil
	}
	out := make(listMatcher, 0, len(l.GetPatterns()))
	for i, p := range l.GetPatterns() {
		m, err := compileStringMatcher(p)
		if err != nil {
			return nil, fmt.Errorf("patterns[%d]: %w", i, err)
		}
		out = append(out, m)
	}
	return out, nil
}

func (l listMatcher) match(v string) bool {
	for _, m := range l {
		if m.match(v) {
			return true
		}
	}
	return false
}

// headerMatcher is a compiled route.v3.HeaderMatcher.
type headerMatcher struct {
	name           string
	present        *bool // present_match
	str            *stringMatcher
	rng            *typev3.Int64Range
	invert         bool
	missingAsEmpty bool
}

func compileHeaderMatcher(m *routev3.HeaderMatcher) (*headerMatcher, error) {
	hm := &headerMatcher{
		name:           strings.ToLower(m.GetName()),
		invert:         m.GetInvertMatch(),
		missingAsEmpty: m.GetTreatMissingHeaderAsEmpty(),
	}
	var err error
	switch s := m.GetHeaderMatchSpecifier().(type) {
	case nil:
		// route_components.proto HeaderMatcher: with no match specifier the
		// header only has to be present (Envoy's HeaderDataPresentMatch).
		t := true
		hm.present = &t
	case *routev3.HeaderMatcher_PresentMatch:
		v := s.PresentMatch
		hm.present = &v
	case *routev3.HeaderMatcher_ExactMatch:
		hm.str = &stringMatcher{kind: "exact", pattern: s.ExactMatch}
	case *routev3.HeaderMatcher_PrefixMatch:
		hm.str = &stringMatcher{kind: "prefix", pattern: s.PrefixMatch}
	case *routev3.HeaderMatcher_SuffixMatch:
		hm.str = &stringMatcher{kind: "suffix", pattern: s.SuffixMatch}
	case *routev3.HeaderMatcher_ContainsMatch:
		hm.str = &stringMatcher{kind: "contains", pattern: s.ContainsMatch}
	case *routev3.HeaderMatcher_SafeRegexMatch:
		var re *regexp.Regexp
		re, err = compileRegex(s.SafeRegexMatch)
		hm.str = &stringMatcher{kind: "regex", re: re}
	case *routev3.HeaderMatcher_StringMatch:
		hm.str, err = compileStringMatcher(s.StringMatch)
	case *routev3.HeaderMatcher_RangeMatch:
		hm.rng = s.RangeMatch
	default:
		err = fmt.Errorf("header match specifier %T is not supported", s)
	}
	if err != nil {
		return nil, fmt.Errorf("header matcher %q: %w", m.GetName(), err)
	}
	return hm, nil
}

// match follows route_components.proto HeaderMatcher: the value matched is
// every value of the header joined with ","; present_match true/false
// checks presence/absence; a missing header matches nothing (whatever
// invert_match says) unless treat_missing_header_as_empty is set.
func (m *headerMatcher) match(h *headerMap) bool {
	v, ok := h.joined(m.name)
	if m.present != nil {
		return (ok == *m.present) != m.invert
	}
	if !ok {
		if !m.missingAsEmpty {
			return false
		}
		v = ""
	}
	var res bool
	switch {
	case m.str != nil:
		res = m.str.match(v)
	case m.rng != nil:
		// Int64Range: [start, end); the whole value must be an integer.
		n, err := strconv.ParseInt(v, 10, 64)
		res = err == nil && n >= m.rng.GetStart() && n < m.rng.GetEnd()
	}
	return res != m.invert
}

// queryMatcher is a compiled route.v3.QueryParameterMatcher.
type queryMatcher struct {
	name    string
	present bool
	str     *stringMatcher
}

func compileQueryMatcher(m *routev3.QueryParameterMatcher) (*queryMatcher, error) {
	qm := &queryMatcher{name: m.GetName()}
	switch s := m.GetQueryParameterMatchSpecifier().(type) {
	case *routev3.QueryParameterMatcher_PresentMatch:
		qm.present = s.PresentMatch
	case *routev3.QueryParameterMatcher_StringMatch:
		sm, err := compileStringMatcher(s.StringMatch)
		if err != nil {
			return nil, fmt.Errorf("query parameter matcher %q: %w", m.GetName(), err)
		}
		qm.str = sm
	default:
		return nil, fmt.Errorf("query parameter matcher %q: specifier %T is not supported", m.GetName(), s)
	}
	return qm, nil
}

// match follows route_components.proto QueryParameterMatcher: the parameter
// must be present and, for string_match, its value must match.
func (m *queryMatcher) match(q url.Values) bool {
	vals, ok := q[m.name]
	if !ok {
		return false
	}
	if m.str == nil {
		return m.present
	}
	return len(vals) > 0 && m.str.match(vals[0])
}
