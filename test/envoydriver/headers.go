package envoydriver

import (
	"strings"
	"unicode/utf8"
)

// header is one entry of a headerMap: a lower-cased name and its value.
type header struct {
	key, value string
}

// headerMap is an ordered multi-map of lower-cased header names, like
// Envoy's Http::HeaderMapImpl: pseudo-headers (":authority", ":path",
// ":method", ":scheme", ":status") live in the same list, first.
type headerMap struct {
	entries []header
}

func (h *headerMap) clone() *headerMap {
	if h == nil {
		return nil
	}
	return &headerMap{entries: append([]header(nil), h.entries...)}
}

// get returns the first value for key.
func (h *headerMap) get(key string) (string, bool) {
	for _, e := range h.entries {
		if e.key == key {
			return e.value, true
		}
	}
	return "", false
}

// value returns the first value for key or "".
func (h *headerMap) value(key string) string {
	v, _ := h.get(key)
	return v
}

func (h *headerMap) has(key string) bool {
	_, ok := h.get(key)
	return ok
}

// all returns every value for key, in order.
func (h *headerMap) all(key string) []string {
	var out []string
	for _, e := range h.entries {
		if e.key == key {
			out = append(out, e.value)
		}
	}
	return out
}

// joined returns all values of key joined with ",", as Envoy's
// HeaderUtility::getAllOfHeaderAsString does for matching.
func (h *headerMap) joined(key string) (string, bool) {
	var out string
	found := false
	for _, e := range h.entries {
		if e.key != key {
			continue
		}
		if found {
			out += "," + e.value
		} else {
			out, found = e.value, true
		}
	}
	return out, found
}

// add appends a new entry (Envoy addCopy). Pseudo-headers go before the
// first regular header so the pseudo-header block stays first.
func (h *headerMap) add(key, value string) {
	if strings.HasPrefix(key, ":") {
		i := 0
		for i < len(h.entries) && strings.HasPrefix(h.entries[i].key, ":") {
			i++
		}
		h.entries = append(h.entries, header{})
		copy(h.entries[i+1:], h.entries[i:])
		h.entries[i] = header{key, value}
		return
	}
	h.entries = append(h.entries, header{key, value})
}

// set replaces every value of key with one value (Envoy setCopy): the first
// entry keeps its position, later duplicates are removed.
func (h *headerMap) set(key, value string) {
	found := false
	out := h.entries[:0]
	for _, e := range h.entries {
		if e.key == key {
			if found {
				continue
			}
			found = true
			e.value = value
		}
		out = append(out, e)
	}
	h.entries = out
	if !found {
		h.add(key, value)
	}
}

// appendValue comma-joins value onto the first entry of key, or adds it when
// absent (Envoy HeaderMapImpl::appendCopy).
func (h *headerMap) appendValue(key, value string) {
	for i, e := range h.entries {
		if e.key == key {
			if e.value == "" {
				h.entries[i].value = value
			} else {
				h.entries[i].value = e.value + "," + value
			}
			return
		}
	}
	h.add(key, value)
}

// remove deletes every entry of key.
func (h *headerMap) remove(key string) {
	out := h.entries[:0]
	for _, e := range h.entries {
		if e.key != key {
			out = append(out, e)
		}
	}
	h.entries = out
}

// isRemovableHeader follows Http::HeaderUtility::isRemovableHeader: neither
// ":"-prefixed pseudo-headers nor host may be removed.
func isRemovableHeader(key string) bool {
	return key != "" && !strings.HasPrefix(key, ":") && key != "host"
}

// sanitizeUTF8 follows MessageUtil::sanitizeUtf8String: every byte that is not
// part of a valid UTF-8 sequence becomes '!'.
func sanitizeUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteByte('!')
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// validHeaderName follows Http::HeaderUtility::headerNameIsValid (RFC 7230
// token characters, optionally with a leading ':' for pseudo-headers).
func validHeaderName(name string) bool {
	if strings.HasPrefix(name, ":") {
		name = name[1:]
	}
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if !isTokenChar(name[i]) {
			return false
		}
	}
	return true
}

func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// validHeaderValue follows Http::HeaderUtility::headerValueIsValid: no NUL,
// CR or LF.
func validHeaderValue(v string) bool {
	return !strings.ContainsAny(v, "\x00\r\n")
}
