package audit

import (
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/airlock-mcp/airlock/internal/jsontext"
)

// appendDecisionJSON appends d as encoding/json.Marshal encodes it (same
// field order, escaping and time format), without reflection: the
// embedded store encodes one Decision per Check on the Check's goroutine,
// and json.Marshal was a sixth of that Check's CPU. ok is false when the
// time is one MarshalJSON refuses (year outside 0..9999); the caller then
// falls back to json.Marshal, which reports the error.
func appendDecisionJSON(b []byte, d *Decision) ([]byte, bool) {
	if y := d.Time.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, `{"decision_id":`...)
	b = appendJSONString(b, d.DecisionID)
	b = append(b, `,"time":"`...)
	b = d.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","session_id":`...)
	b = appendJSONString(b, d.SessionID)
	b = append(b, `,"principal":`...)
	b = appendJSONString(b, d.Principal)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, d.ClientID)
	b = append(b, `,"issuer":`...)
	b = appendJSONString(b, d.Issuer)
	b = append(b, `,"target":`...)
	b = appendJSONString(b, d.Target)
	b = append(b, `,"method":`...)
	b = appendJSONString(b, d.Method)
	b = append(b, `,"tool":`...)
	b = appendJSONString(b, d.Tool)
	b = append(b, `,"jsonrpc_id":`...)
	b = appendJSONString(b, d.JSONRPCID)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, d.Outcome)
	b = append(b, `,"reason":`...)
	b = appendJSONString(b, d.Reason)
	b = append(b, `,"policy_version":`...)
	b = appendJSONString(b, d.PolicyVersion)
	b = append(b, `,"grant_id":`...)
	b = appendJSONString(b, d.GrantID)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, d.RequestID)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(d.Status), 10)
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendInt(b, d.LatencyUS, 10)
	b = append(b, `,"trace_id":`...)
	b = appendJSONString(b, d.TraceID)
	b = append(b, '}')
	return b, true
}

// jsonSizeHint is the length of d's JSON line when no string needs
// escaping (field names, punctuation, time and numbers: under 300 bytes):
// one allocation of about the right size for the common case.
func (d *Decision) jsonSizeHint() int {
	return 300 + len(d.DecisionID) + len(d.SessionID) + len(d.Principal) + len(d.ClientID) +
		len(d.Issuer) + len(d.Target) + len(d.Method) + len(d.Tool) + len(d.JSONRPCID) +
		len(d.Outcome) + len(d.Reason) + len(d.PolicyVersion) + len(d.GrantID) +
		len(d.RequestID) + len(d.TraceID)
}

// appendEventJSON appends e as encoding/json.Marshal encodes it, without
// reflection: the embedded store encodes one Event per MCP message, on
// the ext_proc stream's goroutine. ok is false for what json.Marshal
// refuses (a year outside 0..9999, a latency that is NaN or infinite);
// the caller then falls back to it.
func appendEventJSON(b []byte, e *Event) ([]byte, bool) {
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return b, false
	}
	b = append(b, `{"event_id":`...)
	b = appendJSONString(b, e.EventID)
	b = append(b, `,"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","session_id":`...)
	b = appendJSONString(b, e.SessionID)
	b = append(b, `,"principal":`...)
	b = appendJSONString(b, e.Principal)
	b = append(b, `,"client_id":`...)
	b = appendJSONString(b, e.ClientID)
	b = append(b, `,"issuer":`...)
	b = appendJSONString(b, e.Issuer)
	b = append(b, `,"target":`...)
	b = appendJSONString(b, e.Target)
	b = append(b, `,"direction":`...)
	b = appendJSONString(b, string(e.Direction))
	b = append(b, `,"method":`...)
	b = appendJSONString(b, e.Method)
	b = append(b, `,"tool":`...)
	b = appendJSONString(b, e.Tool)
	b = append(b, `,"jsonrpc_id":`...)
	b = appendJSONString(b, e.JSONRPCID)
	b = append(b, `,"decision_id":`...)
	b = appendJSONString(b, e.DecisionID)
	b = append(b, `,"grant_id":`...)
	b = appendJSONString(b, e.GrantID)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"outcome":`...)
	b = appendJSONString(b, e.Outcome)
	b = append(b, `,"latency_ms":`...)
	var ok bool
	if b, ok = appendJSONFloat(b, e.LatencyMS); !ok {
		return b, false
	}
	if len(e.Masked) > 0 {
		b = append(b, `,"masked":{`...)
		keys := make([]string, 0, len(e.Masked))
		for k := range e.Masked {
			keys = append(keys, k)
		}
		slices.Sort(keys) // json.Marshal sorts map keys
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, k)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(e.Masked[k]), 10)
		}
		b = append(b, '}')
	}
	b = append(b, `,"payload":`...)
	b = appendJSONString(b, e.Payload)
	if e.Truncated {
		b = append(b, `,"truncated":true`...)
	} else {
		b = append(b, `,"truncated":false`...)
	}
	b = append(b, `,"bytes":`...)
	b = strconv.AppendInt(b, e.Bytes, 10)
	return append(b, '}'), true
}

// jsonSizeHint is the length of e's JSON line when no string needs
// escaping, plus room for the payload's quotes escaped (a JSON payload
// has many).
func (e *Event) jsonSizeHint() int {
	return 400 + len(e.EventID) + len(e.SessionID) + len(e.Principal) + len(e.ClientID) + len(e.Issuer) +
		len(e.Target) + len(e.Direction) + len(e.Method) + len(e.Tool) + len(e.JSONRPCID) + len(e.DecisionID) +
		len(e.GrantID) + len(e.Outcome) + 32*len(e.Masked) + len(e.Payload) + len(e.Payload)/4
}

// appendJSONFloat appends f as encoding/json encodes a float64: the
// shortest decimal, exponent form below 1e-6 and from 1e21 with a
// one-digit negative exponent written without its leading zero. ok is
// false for NaN and infinities, which json.Marshal refuses.
func appendJSONFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9, as encoding/json writes it.
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

// appendJSONString appends s quoted as json.Marshal quotes it.
func appendJSONString(b []byte, s string) []byte { return jsontext.AppendQuoted(b, s) }
