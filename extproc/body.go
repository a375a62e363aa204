package extproc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/mcp"
)

// What a response body is masked as is decided by its bytes, not its
// content-type: a body that parses as JSON is masked as JSON whatever its
// label (text/plain, text/html, application/json-rpc, none), a body whose
// every non-blank line is a JSON value (application/x-ndjson, JSON lines)
// line by line, anything else as text. A body labelled JSON must be JSON
// (or JSON lines): one that is not is refused, as a truncated or corrupt
// answer. Only text/event-stream is read by its label, as it streams.
// Every kind is recorded, masked, in the audit trail.

// charsetRefusal is a body airlock will not read as text.
type charsetRefusal struct{ why string }

func (c charsetRefusal) Error() string { return c.why }

// maskWhole masks a buffered body and records its messages.
func (s *Stream) maskWhole(body []byte) ([]byte, error) {
	if len(body) == 0 {
		return body, nil
	}
	cs, why := sniffCharset(body, s.charsetLabel)
	if why != "" {
		return nil, charsetRefusal{why}
	}
	text := decodeWhole(body, cs)
	out, err := s.maskContent(text)
	if err != nil {
		return nil, err
	}
	if cs == csUTF8 {
		return out, nil
	}
	if bytes.Equal(out, text) {
		return body, nil // nothing masked: the bytes as they came
	}
	return encodeWhole(out, cs), nil
}

// maskContent masks UTF-8 text by what it holds (see above).
func (s *Stream) maskContent(text []byte) ([]byte, error) {
	out, counts, jerr := s.profile.MaskJSON(text)
	if jerr == nil {
		s.countMasked(counts)
		// Something masked: out and counts are MaskJSON's new ones, which
		// nothing changes again (they are sent, and read for the record).
		s.recordResponse(out, counts, len(counts) > 0 && !sameStart(out, text))
		return out, nil
	}
	if out, ok := s.maskJSONLines(text); ok {
		return out, nil
	}
	if s.kind == kindJSON {
		return nil, fmt.Errorf("masking the JSON response: %w", jerr)
	}
	out, counts = s.profile.MaskText(text)
	s.countMasked(counts)
	s.recordText(out, counts)
	return out, nil
}

// maskJSONLines masks text whose non-blank lines (two or more) are each a
// JSON value, line by line; ok is false when it is not such text.
func (s *Stream) maskJSONLines(text []byte) (out []byte, ok bool) {
	type line struct {
		masked []byte
		counts mask.Counts
	}
	var lines []line
	var result []byte
	dirty := false
	for rest := text; len(rest) > 0; {
		l := rest
		if k := bytes.IndexByte(rest, '\n'); k >= 0 {
			l, rest = rest[:k+1], rest[k+1:]
		} else {
			rest = nil
		}
		body := bytes.TrimRight(l, "\r\n")
		if len(bytes.TrimSpace(body)) == 0 {
			result = append(result, l...)
			continue
		}
		m, c, err := s.profile.MaskJSON(body)
		if err != nil {
			return nil, false
		}
		dirty = dirty || len(c) > 0
		lines = append(lines, line{m, c})
		result = append(append(result, m...), l[len(body):]...)
	}
	if len(lines) < 2 {
		return nil, false
	}
	for _, l := range lines {
		s.countMasked(l.counts)
		s.recordResponse(l.masked, l.counts, false)
	}
	if !dirty {
		return text, true
	}
	return result, true
}

// recordText records a response that is not JSON, masked, as the answer
// to the exchange's request (when it had exactly one id).
func (s *Stream) recordText(masked []byte, counts mask.Counts) {
	if s.p.opts.Recorder == nil || !s.meta.d.Record {
		return
	}
	m := s.base()
	s.describe(&m, masked, read(masked, false), counts, false, false, false)
	if m.JSONRPCID == "" && len(s.reqIDs) == 1 && !s.reqBatch {
		m.JSONRPCID = string(s.reqIDs[0])
		if q, ok := s.requests.get(m.JSONRPCID); ok {
			m.Method, m.Tool = q.method, q.tool
		}
	}
	s.emit(m)
}

// sseChunk masks the next chunk of an event stream. A UTF-16 stream is
// decoded for the masker and its output encoded back; held is set while
// the first bytes that say which it is have not all come.
func (s *Stream) sseChunk(chunk []byte, eos bool) (out []byte, held bool, refused *extprocv3.ProcessingResponse) {
	if !s.csKnown {
		if len(s.head) > 0 || len(chunk) < sniffLen && !eos {
			s.head = append(s.head, chunk...)
			if len(s.head) < sniffLen && !eos {
				return nil, true, nil
			}
			chunk = s.head
		} // else the first chunk says it all: read where it is, no copy
		cs, why := sniffCharset(chunk, s.charsetLabel)
		if why != "" {
			return nil, false, s.refuse(502, "airlock_response_charset_refused", "airlock refused the server's event stream: "+why)
		}
		s.cs, s.csKnown = cs, true
		if cs.utf16() {
			s.dec = &decoder{be: cs.bigEndian()}
		}
		s.head = nil
	}
	in := chunk
	if s.dec != nil {
		in = s.dec.decode(nil, chunk)
		if eos {
			in = s.dec.flush(in)
		}
	}
	// The masked bytes are written once, into the buffer that goes out:
	// about the chunk's size (a masked event differs by its masks), if
	// the chunk can end an event at all (a line ending in it).
	if eos || bytes.IndexByte(in, '\n') >= 0 || bytes.IndexByte(in, '\r') >= 0 {
		out = make([]byte, 0, len(in)+128)
	}
	out, err := s.sse.AppendWrite(out, in)
	if err != nil {
		return nil, false, s.fail(500, err)
	}
	if eos {
		if out, err = s.sse.AppendFlush(out); err != nil {
			return nil, false, s.fail(500, err)
		}
		s.countMasked(s.sse.Counts())
	}
	if s.dec != nil {
		out = encodeUTF16(nil, out, s.dec.be)
	}
	return out, false, nil
}

// onEvent notes which of the request's ids an event answers (so that an
// event over the limit answers only the others) and records it.
//
// The event's data is read once for both (a batch is read message by
// message for the ids it answers).
func (s *Stream) onEvent(ev mask.Event) {
	if !ev.HasData || len(ev.Data) == 0 || ev.Dropped > 0 {
		return
	}
	track, record := len(s.reqIDs) > 0, s.recording()
	if !track && !record {
		return
	}
	r := read(ev.Data, ev.JSON)
	if track {
		if d := bytes.TrimLeft(ev.Data, " \t\r\n"); len(d) > 0 && d[0] == '[' {
			for _, raw := range messages(ev.Data) {
				s.noteAnswer(mcp.ReadRecorded(raw))
			}
		} else {
			s.noteAnswer(r)
		}
	}
	if record {
		s.recordEvent(ev, r)
	}
}

// noteAnswer notes the request id a message of the event stream answers
// (a response or an error by a non-null id).
func (s *Stream) noteAnswer(r mcp.Message) {
	if r.Kind != mcp.KindResponse || r.ID == nil {
		return
	}
	if s.answered == nil {
		s.answered = map[string]bool{}
	}
	s.answered[string(r.ID)] = true
}

// oversize answers an event over the limit (masking.max_event_bytes): it
// cannot be masked, so it is not passed on, and the request it most
// likely answers would wait for its timeout. It gets, as an event the
// client reads, a JSON-RPC error by each of the request's ids not yet
// answered, and an "error" record in the audit trail; the stream then
// ends there (what follows is read and discarded). A stream without
// such ids (the GET stream of server messages) gets an error with a null
// id and goes on.
func (s *Stream) oversize(size int) []byte {
	var pending []json.RawMessage
	for _, id := range s.requestIDs() {
		if !s.answered[string(id)] {
			pending = append(pending, id)
		}
	}
	why := "airlock withheld the server's response: an event of " + strconv.Itoa(size) +
		" bytes is over the limit of " + strconv.Itoa(s.p.opts.MaxEventBytes) + " (masking.max_event_bytes) (decision " + s.meta.d.DecisionID + ")"
	s.p.log.Error("response withheld", "decision_id", s.meta.d.DecisionID, "target", s.meta.d.Target, "reason", why)
	body := errorBodyFor(pending, s.reqBatch, why)
	s.recordRefusalCounts(s.status, body, mask.Counts{mask.DroppedType: 1})
	if len(pending) > 0 {
		s.p.metrics.streams.WithLabelValues("failed").Inc()
		s.sse.Stop()
	}
	return append(append([]byte("event: message\ndata: "), body...), "\n\n"...)
}
