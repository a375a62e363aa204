package extproc

import (
	"bytes"
	"encoding/json"
	"maps"
	"unsafe"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/mcp"
)

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

// base is the audit event of a message of this exchange, before the
// message is described: who, to what target, under which decision. Every
// message ext_proc sees was allowed by ext_authz (a refusal is recorded
// with direction "error").
func (s *Stream) base() audit.Event {
	d := &s.meta.d
	return audit.Event{
		Time:       s.p.opts.Now(),
		SessionID:  s.session,
		Principal:  d.Principal,
		ClientID:   d.ClientID,
		Issuer:     d.Issuer,
		Target:     d.Target,
		DecisionID: d.DecisionID,
		GrantID:    d.Grant,
		Outcome:    "allow",
	}
}

// recordRequest records the client's messages, masked like responses are
// (arguments may hold secrets too).
func (s *Stream) recordRequest(body []byte) {
	if s.p.opts.Recorder == nil || len(body) == 0 || !s.meta.d.Record {
		return
	}
	prof, err := s.p.opts.Profiles.Get(s.meta.d.MaskingProfile)
	if err != nil {
		return // the response side fails the exchange for the same reason
	}
	for _, raw := range messages(body) {
		masked, counts, err := prof.MaskJSON(raw)
		valid := err == nil
		if !valid {
			masked, counts = prof.MaskText(raw)
		}
		m := s.base()
		s.describe(&m, masked, read(masked, valid), counts, false, true, false)
		if m.Method != "" && len(m.JSONRPCID) > 0 {
			s.requests.set(m.JSONRPCID, requestInfo{method: m.Method, tool: m.Tool})
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
// so totals per exchange stay exact. frozen: masked and counts are new
// (MaskJSON's output) and nothing changes them again, so the records
// may share them (describe).
func (s *Stream) recordResponse(masked []byte, counts mask.Counts, frozen bool) {
	if s.p.opts.Recorder == nil || !s.meta.d.Record {
		return
	}
	for i, raw := range messages(masked) {
		m := s.base()
		if i > 0 {
			counts = nil
		}
		// masked came out of MaskJSON, and so did each message of a batch
		// (messages splits it with json.Unmarshal): valid JSON.
		s.describe(&m, raw, read(raw, true), counts, false, false, frozen)
		s.emit(m)
	}
}

// recording: the messages of this exchange go to the audit trail.
func (s *Stream) recording() bool { return s.p.opts.Recorder != nil && s.meta.d.Record }

// recordEvent records one SSE event's message, r being what it is (read
// once, in onEvent). An event over the limit is recorded by oversize, as
// the error the client got instead.
func (s *Stream) recordEvent(ev mask.Event, r mcp.Message) {
	m := s.base()
	// describe copies what it keeps of ev.Data (the masker's buffer),
	// unless it is the event's own (MaskJSON's new output).
	s.describe(&m, ev.Data, r, ev.Counts, true, false, ev.Own)
	s.emit(m)
}

// read is what a recorded message is (internal/mcp's classifier); valid
// says the bytes are known to be JSON (mask.MaskJSON accepted or returned
// them), which spares scanning them once more to validate them.
func read(payload []byte, valid bool) mcp.Message {
	if valid {
		return mcp.ReadValidRecorded(payload)
	}
	return mcp.ReadRecorded(payload)
}

// describe fills what the message is from its JSON-RPC shape r (read from
// payload): the tool column holds what the call acts on (tool name,
// prompt name or resource URI). It keeps nothing of payload, counts or r
// (what the event holds is copied) unless frozen: payload and counts are
// then new and never changed again, and the event shares them.
func (s *Stream) describe(m *audit.Event, payload []byte, r mcp.Message, counts mask.Counts, sse, fromClient, frozen bool) {
	m.JSONRPCID = string(r.ID)
	switch {
	case r.Kind == mcp.KindRequest:
		m.Direction, m.Method, m.Tool = audit.DirRequest, r.Method, r.Subject()
	case r.Kind == mcp.KindNotification:
		m.Direction, m.Method = audit.DirNotification, r.Method
	case len(r.RPCError) > 0:
		m.Direction = audit.DirError
	case fromClient && len(r.Result) == 0:
		// What the client sent that is no JSON-RPC message at all (or
		// could not be read back once masked) is still its request.
		m.Direction = audit.DirRequest
	default:
		m.Direction = audit.DirResponse
	}
	if m.Direction == audit.DirResponse || m.Direction == audit.DirError {
		if q, ok := s.requests.get(m.JSONRPCID); ok {
			m.Method, m.Tool = q.method, q.tool
		}
		m.Status = s.status
		m.LatencyMS = float64(s.p.opts.Now().Sub(s.start).Microseconds()) / 1000
	}
	if m.Tool == "" && mcp.HasSubject(m.Method) && m.Method == s.meta.d.Method {
		// The recorded bytes did not say (cut, or masked as text): what
		// ext_authz read of the call does.
		m.Tool = s.meta.d.Tool
	}
	if sse && m.Direction != audit.DirRequest {
		m.Status = s.status
	}
	m.Bytes = int64(len(payload))
	if len(payload) > s.p.opts.MaxRecordBytes {
		payload, m.Truncated = payload[:s.p.opts.MaxRecordBytes], true
	}
	if frozen && !m.Truncated {
		// Bytes and counts nothing changes again: the record shares them
		// rather than copying (a cut payload is copied, so that a record
		// kept by the sink does not hold the whole body).
		m.Masked, m.Payload = counts, unsafe.String(unsafe.SliceData(payload), len(payload))
		return
	}
	m.Masked = maps.Clone(counts)
	m.Payload = string(payload)
}

// sameStart says a and b begin at the same byte in memory (one is, or
// starts, the other).
func sameStart(a, b []byte) bool {
	return len(a) > 0 && len(b) > 0 && unsafe.SliceData(a) == unsafe.SliceData(b)
}

func (s *Stream) emit(m audit.Event) {
	if s.localReply {
		return // recorded by ext_authz as its decision (see responseHeaders)
	}
	s.p.metrics.messages.WithLabelValues(string(m.Direction)).Inc()
	if err := s.p.opts.Recorder.Record(&m); err != nil && s.auditErr == nil {
		// The audit trail is full and configured to fail closed: this
		// exchange must not complete unrecorded.
		s.auditErr = err
	}
}
