package mcp

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// Headers that mirror body values (2026-07-28 streamable-http.mdx,
// "Standard Request Headers" and "Server Validation").
const (
	headerMethod = "mcp-method"
	headerName   = "mcp-name"

	sentinelPrefix = "=?base64?"
	sentinelSuffix = "?="
)

var metaVersionField = "params._meta[" + strconv.Quote(metaVersionKey) + "]"

// headerCheck validates, per message, the headers that mirror body values.
type headerCheck struct {
	h           map[string]string
	version     string // effective protocol version
	versionSent bool   // MCP-Protocol-Version was present
}

func (hc headerCheck) mismatch(msg *Message, where, format string, args ...any) *Error {
	return invalid(400, CodeHeaderMismatch, msg.ID, "%s"+format, append([]any{where}, args...)...)
}

// check runs the header-body rules for one parsed message.
func (hc headerCheck) check(s *scanner, m *rawMsg, msg *Message, where string) *Error {
	modern := hc.version == Version20260728
	if modern && msg.Kind == KindResponse {
		return invalid(400, CodeInvalidRequest, msg.ID,
			"%sprotocol 2026-07-28 does not let a client POST a JSON-RPC response; answer input requests by retrying the original request with inputResponses", where)
	}
	if err := hc.bodyVersion(s, m, msg, where); err != nil {
		return err
	}

	hm, has := hc.h[headerMethod]
	switch {
	case !has && modern:
		return hc.mismatch(msg, where, "Mcp-Method header is required under protocol 2026-07-28; it must equal the body method %s", quoteClip(msg.Method))
	case has && msg.Kind == KindResponse:
		return hc.mismatch(msg, where, "Mcp-Method header %s is present but the body is a response, which has no method", quoteClip(hm))
	case has && hm != msg.Method:
		return hc.mismatch(msg, where, "Mcp-Method header %s does not match the body method %s", quoteClip(hm), quoteClip(msg.Method))
	}

	hn, has := hc.h[headerName]
	field, want := nameSource(msg)
	if field == "" {
		if has {
			what := "a " + string(msg.Kind)
			if msg.Method != "" {
				what += " " + quoteClip(msg.Method)
			}
			return hc.mismatch(msg, where, "Mcp-Name header is defined only for tools/call, resources/read and prompts/get requests, not for %s", what)
		}
		return nil
	}
	if !has {
		if modern {
			return hc.mismatch(msg, where, "Mcp-Name header is required for %s under protocol 2026-07-28; it must equal %s %s", msg.Method, field, quoteClip(want))
		}
		return nil
	}
	var buf [128]byte
	decoded, encoded, problem := decodeMirrored(hn, buf[:0])
	switch {
	case problem != "":
		return hc.mismatch(msg, where, "Mcp-Name header %s %s", quoteClip(hn), problem)
	case encoded && string(decoded) != want:
		return hc.mismatch(msg, where, "Mcp-Name header (base64-decoded) %s does not match %s %s", quoteClip(string(decoded)), field, quoteClip(want))
	case !encoded && hn != want:
		return hc.mismatch(msg, where, "Mcp-Name header %s does not match %s %s", quoteClip(hn), field, quoteClip(want))
	}
	return nil
}

// bodyVersion checks params._meta's protocol version against the header.
// Under 2026-07-28 every request must carry it (RequestMetaObject); under
// any version, one that is present must equal the header, so that a
// dual-era server cannot be steered into 2026-07-28 semantics the gateway
// did not apply.
func (hc headerCheck) bodyVersion(s *scanner, m *rawMsg, msg *Message, where string) *Error {
	if !m.metaVersion.present() {
		if hc.version == Version20260728 && msg.Kind == KindRequest {
			return hc.mismatch(msg, where, "under protocol 2026-07-28 a request must carry %s equal to the MCP-Protocol-Version header %s",
				metaVersionField, quoteClip(hc.version))
		}
		return nil
	}
	bv, ok := s.text(m.metaVersion)
	switch {
	case !ok:
		return hc.mismatch(msg, where, "%s must be a string, not a JSON %s", metaVersionField, jsonType(s.b[m.metaVersion.s]))
	case !hc.versionSent:
		return hc.mismatch(msg, where, "%s is %s but the MCP-Protocol-Version header is missing", metaVersionField, quoteClip(string(bv)))
	case string(bv) != hc.version:
		return hc.mismatch(msg, where, "MCP-Protocol-Version header %s does not match %s %s", quoteClip(hc.version), metaVersionField, quoteClip(string(bv)))
	}
	return nil
}

// nameSource says which body value Mcp-Name mirrors for msg, if any.
func nameSource(msg *Message) (field, value string) {
	if msg.Kind != KindRequest {
		return "", ""
	}
	switch msg.Method {
	case "tools/call":
		return "params.name", msg.Tool
	case "prompts/get":
		return "params.name", msg.Prompt
	case "resources/read":
		return "params.uri", msg.URI
	}
	return "", ""
}

// decodeMirrored reads a mirrored header value v. In the =?base64?{value}?=
// sentinel form (markers case-sensitive, padding optional) it returns the
// decoded bytes and encoded true; otherwise v itself is the value, which
// must be visible ASCII, space or tab. problem says what is wrong with v,
// if anything.
func decodeMirrored(v string, buf []byte) (decoded []byte, encoded bool, problem string) {
	if len(v) >= len(sentinelPrefix)+len(sentinelSuffix) && strings.HasPrefix(v, sentinelPrefix) && strings.HasSuffix(v, sentinelSuffix) {
		enc := v[len(sentinelPrefix) : len(v)-len(sentinelSuffix)]
		if strings.ContainsAny(enc, "\r\n") {
			return nil, true, "is not valid base64 inside =?base64?...?="
		}
		codec := base64.StdEncoding
		if len(enc)%4 != 0 {
			codec = base64.RawStdEncoding
		}
		if n := codec.DecodedLen(len(enc)); n > cap(buf) {
			buf = make([]byte, 0, n)
		}
		out := buf[:codec.DecodedLen(len(enc))]
		n, err := codec.Decode(out, []byte(enc))
		if err != nil {
			return nil, true, "is not valid base64 inside =?base64?...?="
		}
		return out[:n], true, ""
	}
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < 0x20 || c > 0x7e) && c != '\t' {
			return nil, false, "has a character outside visible ASCII at byte " + strconv.Itoa(i) + "; such values must use the =?base64?...?= form"
		}
	}
	return nil, false, ""
}
