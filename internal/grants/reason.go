package grants

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// Where an agent states why it makes a call. The _meta member wins over
// the header. The key follows MCP's _meta naming (a reverse-DNS prefix
// that is not reserved for MCP, a slash, a name).
const (
	// ReasonMetaKey is the member of params._meta that carries the reason:
	// {"name":"delete_repository","arguments":{…},"_meta":{"io.airlock/reason":"cleanup of the test repo, ticket OPS-12"}}
	ReasonMetaKey = wire.ReasonMetaKey
	// ReasonHeader is the HTTP request header that carries the reason when
	// the agent cannot set _meta.
	ReasonHeader = wire.HeaderReason
	// MaxReasonRunes bounds a reason (agent's or approver's); longer ones
	// are cut with an ellipsis.
	MaxReasonRunes = 500
)

// ReasonFromCall returns the agent's stated reason for a call: the string
// params._meta["io.airlock/reason"] of the JSON-RPC params, else the
// x-airlock-reason header (lower-case names, as extauthz keeps them),
// cleaned with CleanReason. It returns "" when neither is there or params
// is not a JSON object. The result is not masked yet: it goes to the grant
// service only (OpenParams.Reason), which masks it before anyone keeps,
// logs or shows it.
func ReasonFromCall(params []byte, headers map[string]string) string {
	if len(params) > 0 {
		var p struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		}
		if json.Unmarshal(params, &p) == nil {
			var s string
			if raw, ok := p.Meta[ReasonMetaKey]; ok && json.Unmarshal(raw, &s) == nil {
				if s = CleanReason(s); s != "" {
					return s
				}
			}
		}
	}
	return CleanReason(headers[ReasonHeader])
}

// CleanReason makes free text safe to store and show: invalid UTF-8 and
// control characters become spaces, invisible formatting characters
// (bidirectional overrides and the like, which can disguise text in an
// approval page) are dropped, runs of white space become one space, and
// the result is trimmed and cut to MaxReasonRunes.
//
// The result is not masked: only the grant service, which masks it
// (maskReason), may keep or pass on the agent's or an approver's reason.
func CleanReason(s string) string { return cleanText(s, MaxReasonRunes) }

// cleanText is CleanReason cutting at limit runes (0: no limit).
func cleanText(s string, limit int) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	if limit > 0 {
		b.Grow(min(len(s), 4*limit))
	}
	n := 0
	space := false
	for _, r := range s {
		switch {
		case r == utf8.RuneError || unicode.IsControl(r) || unicode.IsSpace(r):
			space = b.Len() > 0
			continue
		case unicode.Is(unicode.Cf, r):
			continue
		}
		if limit > 0 && n == limit {
			b.WriteRune('…')
			return b.String()
		}
		if space {
			if limit > 0 && n+1 == limit {
				b.WriteRune('…')
				return b.String()
			}
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}
