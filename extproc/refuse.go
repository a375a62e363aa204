package extproc

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"

	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/mcp"
)

// jsonrpcInternalError is the JSON-RPC code of every response airlock
// withholds: the server's answer exists but cannot be delivered safely.
const jsonrpcInternalError = -32603

// noteRequestIDs keeps the JSON-RPC ids of the request body, in order, so
// that a withheld response can still answer each request by its id. Only
// ids that are JSON strings or numbers are kept (ext_authz refuses any
// other); a body that is not JSON leaves none.
func (s *Stream) noteRequestIDs(body []byte) {
	s.reqIDs, s.reqBatch = nil, false
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return
	}
	s.reqBatch = trimmed[0] == '['
	for _, raw := range messages(trimmed) {
		// A request: a method and an id (ReadRecorded reads them as
		// json.Unmarshal does, in one pass; its ID is a copy).
		m := mcp.ReadRecorded(raw)
		if m.Method == "" || !validID(m.ID) {
			continue
		}
		s.reqIDs = append(s.reqIDs, m.ID)
	}
}

// validID reports whether id is a JSON string or number, so it can be
// echoed verbatim in an error.
func validID(id json.RawMessage) bool {
	if len(id) == 0 || !json.Valid(id) {
		return false
	}
	c := id[0]
	return c == '"' || c == '-' || c >= '0' && c <= '9'
}

// requestIDs are the JSON-RPC ids of the exchange's request. A request
// body still coming when the response is withheld (Envoy streams it, or
// the response came first) is read as far as it came.
func (s *Stream) requestIDs() []json.RawMessage {
	if len(s.reqIDs) == 0 && len(s.reqBody) > 0 {
		s.noteRequestIDs(s.reqBody)
	}
	return s.reqIDs
}

// errorBody is the JSON-RPC error the agent gets instead of a withheld
// response: one error per request of the exchange, by its id (a batch
// gets an array), or a single error with a null id when the request's id
// could not be read.
func (s *Stream) errorBody(message string) []byte {
	return errorBodyFor(s.requestIDs(), s.reqBatch, message)
}

// errorBodyFor is errorBody for the given ids.
func errorBodyFor(ids []json.RawMessage, batch bool, message string) []byte {
	one := func(id json.RawMessage) string {
		if len(id) == 0 {
			id = json.RawMessage("null")
		}
		msg, _ := json.Marshal(message)
		return `{"jsonrpc":"2.0","id":` + string(id) + `,"error":{"code":` + strconv.Itoa(jsonrpcInternalError) + `,"message":` + string(msg) + `}}`
	}
	if len(ids) == 0 {
		return []byte(one(nil))
	}
	if !batch {
		return []byte(one(ids[0]))
	}
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = one(id)
	}
	return []byte("[" + strings.Join(parts, ",") + "]")
}

// refuse withholds the response: Envoy answers the agent with status and
// a JSON-RPC error naming why (never the server's bytes), and the audit
// trail gets one "error" record per request saying the same. details is
// Envoy's %RESPONSE_CODE_DETAILS% (no spaces).
func (s *Stream) refuse(status int, details, why string) *extprocv3.ProcessingResponse {
	s.failed = true
	s.p.metrics.streams.WithLabelValues("failed").Inc()
	s.p.log.Error("response withheld", "decision_id", s.meta.d.DecisionID, "target", s.meta.d.Target, "reason", why)
	body := s.errorBody(why + " (decision " + s.meta.d.DecisionID + ")")
	s.recordRefusal(status, body)
	s.refusal = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(status)},
		Headers: &extprocv3.HeaderMutation{SetHeaders: []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "content-type", RawValue: []byte("application/json")}}}},
		Body:    body,
		Details: details,
	}}}
	return s.refusal
}

// recordRefusal writes the withheld exchange to the audit trail: one
// "error" message per request (by id), carrying the error the agent got.
// It is written whatever the policy's record flag says: a refusal is an
// outcome, not captured traffic, and holds nothing of the server's answer.
func (s *Stream) recordRefusal(status int, body []byte) {
	s.recordRefusalCounts(status, body, nil)
}

// recordRefusalCounts is recordRefusal with counts on the first record
// (what was withheld, e.g. an SSE event over the limit).
func (s *Stream) recordRefusalCounts(status int, body []byte, counts mask.Counts) {
	if s.p.opts.Recorder == nil {
		return
	}
	for i, raw := range messages(body) {
		m := s.base()
		if i > 0 {
			counts = nil
		}
		s.describe(&m, raw, read(raw, false), counts, false, false, false)
		m.Direction, m.Status = "error", status
		s.emit(m)
	}
}

// contentEncoding is the response's content-encoding, normalized; "" for
// none or identity (RFC 9110 §8.4.1: identity is "no encoding").
func contentEncoding(h *extprocv3.HttpHeaders) string {
	var codings []string
	for _, hv := range h.GetHeaders().GetHeaders() {
		if !strings.EqualFold(hv.GetKey(), "content-encoding") {
			continue
		}
		v := string(hv.GetRawValue())
		if v == "" {
			v = hv.GetValue()
		}
		for _, c := range strings.Split(v, ",") {
			c = strings.ToLower(strings.TrimSpace(c))
			if c != "" && c != "identity" {
				codings = append(codings, c)
			}
		}
	}
	return strings.Join(codings, ", ")
}

// printable keeps what an error message may quote of a server's header:
// at most 40 characters of token characters, the rest replaced.
func printable(s string) string {
	if len(s) > 40 {
		s = s[:40] + "…"
	}
	return strings.Map(func(r rune) rune {
		if r == ',' || r == ' ' || r == '-' || r == '.' || r == '_' || r == '…' ||
			r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '?'
	}, s)
}
