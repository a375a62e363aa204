package extproc

import (
	"bytes"
	"encoding/json"
	"maps"

	"github.com/airlock-mcp/airlock/internal/mask"
)

// rpcShape is what recording reads of a (masked) JSON-RPC message.
type rpcShape struct {
	Method string          `json:"method"`
	ID     json.RawMessage `json:"id"`
	Params struct {
		Name string `json:"name"`
	} `json:"params"`
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
}

// messages splits a JSON-RPC body (one message or a batch) into messages.
func messages(body []byte) []json.RawMessage {
	body = bytes.TrimSpace(body)
	if len(body) > 0 && body[0] == '[' {
		var batch []json.RawMessage
		if json.Unmarshal(body, &batch) == nil {
			return batch
		}
	}
	return []json.RawMessage{body}
}

func (s *Stream) base() Message {
	return Message{
		Time:       s.p.opts.Now(),
		SessionID:  s.session,
		Principal:  s.meta.str("principal"),
		ClientID:   s.meta.str("client_id"),
		Issuer:     s.meta.str("issuer"),
		Target:     s.meta.str("target"),
		DecisionID: s.meta.str("decision_id"),
		GrantID:    s.meta.str("grant"),
	}
}

// recordRequest records the client's messages, masked like responses are
// (arguments may hold secrets too).
func (s *Stream) recordRequest(body []byte) {
	if s.p.opts.Recorder == nil || len(body) == 0 || !s.meta.record() {
		return
	}
	prof, err := s.p.opts.Profiles.Get(s.meta.str("masking_profile"))
	if err != nil {
		return // the response side fails the exchange for the same reason
	}
	for _, raw := range messages(body) {
		masked, counts, err := prof.MaskJSON(raw)
		if err != nil {
			masked, counts = prof.MaskText(raw)
		}
		m := s.base()
		s.describe(&m, masked, counts, false)
		if m.Method != "" && len(m.JSONRPCID) > 0 {
			s.requests[m.JSONRPCID] = requestInfo{method: m.Method, tool: m.Tool}
		}
		// Held until the response headers: an initialize request learns
		// its session id only from the response.
		s.pending = append(s.pending, m)
	}
}

// flushRequests records the held request messages, with the session id
// the exchange ended up with.
func (s *Stream) flushRequests() {
	for _, m := range s.pending {
		if m.SessionID == "" {
			m.SessionID = s.session
		}
		s.emit(m)
	}
	s.pending = nil
}

// Close ends the stream: request messages whose response never came are
// still recorded.
func (s *Stream) Close() { s.flushRequests() }

// recordResponse records the messages of a JSON response body. The
// body's mask counts go with its first message (a batch is masked whole),
// so totals per exchange stay exact.
func (s *Stream) recordResponse(masked []byte, counts mask.Counts) {
	if s.p.opts.Recorder == nil || !s.meta.record() {
		return
	}
	for i, raw := range messages(masked) {
		m := s.base()
		if i > 0 {
			counts = nil
		}
		s.describe(&m, raw, counts, false)
		s.emit(m)
	}
}

// recordEvent records one SSE event's message.
func (s *Stream) recordEvent(ev mask.Event) {
	if s.p.opts.Recorder == nil || !s.meta.record() || (!ev.HasData && ev.Dropped == 0) || (len(ev.Data) == 0 && ev.Dropped == 0) {
		return
	}
	m := s.base()
	if ev.Dropped > 0 {
		m.Direction, m.Bytes = "sse_event", ev.Dropped
		m.Masked = mask.Counts{mask.DroppedType: 1}
		s.emit(m)
		return
	}
	s.describe(&m, bytes.Clone(ev.Data), ev.Counts, true)
	s.emit(m)
}

// describe fills what the message is from its JSON-RPC shape.
func (s *Stream) describe(m *Message, payload []byte, counts mask.Counts, sse bool) {
	var r rpcShape
	_ = json.Unmarshal(payload, &r)
	m.JSONRPCID = string(r.ID)
	if m.JSONRPCID == "null" {
		m.JSONRPCID = ""
	}
	switch {
	case r.Method != "" && m.JSONRPCID != "":
		m.Direction, m.Method, m.Tool = "request", r.Method, r.Params.Name
	case r.Method != "":
		m.Direction, m.Method = "notification", r.Method
	case len(r.Error) > 0:
		m.Direction = "error"
	default:
		m.Direction = "response"
	}
	if m.Direction == "response" || m.Direction == "error" {
		if q, ok := s.requests[m.JSONRPCID]; ok {
			m.Method, m.Tool = q.method, q.tool
		}
		m.Status = s.status
		m.Latency = s.p.opts.Now().Sub(s.start)
	}
	if m.Tool == "" && m.Method == "tools/call" {
		m.Tool = s.meta.str("tool")
	}
	if sse && m.Direction != "request" {
		m.Status = s.status
	}
	m.Masked = maps.Clone(counts)
	m.Bytes = len(payload)
	if len(payload) > s.p.opts.MaxRecordBytes {
		payload, m.Truncated = payload[:s.p.opts.MaxRecordBytes], true
	}
	m.Payload = payload
}

func (s *Stream) emit(m Message) {
	s.p.metrics.messages.WithLabelValues(m.Direction).Inc()
	if err := s.p.opts.Recorder.Record(m); err != nil && s.auditErr == nil {
		// The audit trail is full and configured to fail closed: this
		// exchange must not complete unrecorded.
		s.auditErr = err
	}
}
