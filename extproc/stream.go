package extproc

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"strconv"
	"strings"
	"time"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/wire"
)

type bodyKind uint8

const (
	kindNone bodyKind = iota // no body expected (202, HEAD …)
	kindJSON                 // labelled JSON: it must parse (as JSON, or JSON lines)
	kindSSE
	kindText // any other label: masked as JSON if it parses, else as text
)

// Stream is one HTTP exchange: Envoy opens one ext_proc stream per request
// and sends its phases in order (request headers, request body, request
// trailers, response headers, response body, response trailers), each only
// if the processing mode asks for it. Response phases can come without
// request phases: a local reply (an ext_authz denial) still runs the
// response side of the filter chain.
type Stream struct {
	p *Processor

	reqMode, respMode procmodev3.ProcessingMode_BodySendMode
	protocolSeen      bool
	// setLength: a whole (JSON or text) body may come in BUFFERED mode
	// with the headers held, where the processor must set a matching
	// content-length itself.
	setLength bool
	// partial: the body may come in BUFFERED_PARTIAL mode, where a chunk
	// without end_of_stream means the rest would pass unprocessed.
	partial bool
	// passthrough: nothing to mask (profile "off") and Envoy sends no body.
	passthrough bool
	// overLimit: partial came from airlock's own override
	// (wholeUpToLimit), so a chunk without end_of_stream is a body over
	// the response limit.
	overLimit bool
	// passPartial: nothing to mask (profile "off") and the body may come
	// BUFFERED_PARTIAL: a partial chunk passes as it is.
	passPartial bool

	meta     streamMeta
	start    time.Time
	session  string
	reqBody  []byte
	requests requestTable      // JSON-RPC id → what was asked
	reqIDs   []json.RawMessage // the request's JSON-RPC ids, in order
	reqBatch bool              // the request body was a batch

	status  int
	kind    bodyKind
	profile *mask.Profile
	sse     *mask.SSEMasker
	body    []byte // a JSON/text response being buffered
	ended   bool   // the response body has ended
	failed  bool
	refusal *extprocv3.ProcessingResponse // what a failed exchange answers
	// auditErr is set when the recorder refused a message (fail-closed
	// audit): the exchange is then failed.
	auditErr error
	// localReply: the response is ext_authz's local reply, not the
	// server's (see responseHeaders).
	localReply bool
	pending    []audit.Event // request messages, recorded at the response headers

	charsetLabel string  // the content-type's charset parameter
	cs           charset // how the body is encoded, once csKnown
	csKnown      bool
	head         []byte   // the first bytes of an event stream, until its charset is known
	dec          *decoder // a UTF-16 event stream's decoder
	answered     map[string]bool
}

type requestInfo struct{ method, tool string }

// requestTable maps a request's JSON-RPC id to what it asked, last entry
// for an id winning: the usual exchange has one request, kept without a
// map.
type requestTable struct {
	n     int // entries in first (0 or 1) while more is nil
	id    string
	first requestInfo
	more  map[string]requestInfo
}

func (t *requestTable) set(id string, q requestInfo) {
	switch {
	case t.more != nil:
		t.more[id] = q
	case t.n == 0 || t.id == id:
		t.n, t.id, t.first = 1, id, q
	default:
		t.more = map[string]requestInfo{t.id: t.first, id: q}
	}
}

func (t *requestTable) get(id string) (requestInfo, bool) {
	if t.more != nil {
		q, ok := t.more[id]
		return q, ok
	}
	if t.n == 1 && t.id == id {
		return t.first, true
	}
	return requestInfo{}, false
}

// NewStream starts processing one HTTP exchange.
func (p *Processor) NewStream() *Stream {
	return &Stream{p: p, meta: newStreamMeta(), start: p.opts.Now()}
}

// errProtocol is a message that breaks Envoy's ext_proc protocol.
var errProtocol = errors.New("ext_proc: unexpected message")

// Handle answers one ProcessingRequest. Except in FULL_DUPLEX_STREAMED
// mode it returns exactly one response of the matching type (Envoy's rule:
// one response per message); in full duplex a body chunk may get none (the
// bytes are held until an SSE event or the JSON body is complete) and
// trailers may get the final body chunk first.
func (s *Stream) Handle(req *extprocv3.ProcessingRequest) ([]*extprocv3.ProcessingResponse, error) {
	if pc := req.GetProtocolConfig(); pc != nil && !s.protocolSeen {
		// protocol_config comes only in the first message.
		s.protocolSeen = true
		s.reqMode, s.respMode = pc.GetRequestBodyMode(), pc.GetResponseBodyMode()
	}
	s.meta.merge(req.GetMetadataContext())
	switch r := req.GetRequest().(type) {
	case *extprocv3.ProcessingRequest_RequestHeaders:
		return one(s.requestHeaders(r.RequestHeaders))
	case *extprocv3.ProcessingRequest_RequestBody:
		return one(s.requestBody(r.RequestBody))
	case *extprocv3.ProcessingRequest_RequestTrailers:
		return one(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestTrailers{RequestTrailers: &extprocv3.TrailersResponse{}}})
	case *extprocv3.ProcessingRequest_ResponseHeaders:
		return one(s.responseHeaders(r.ResponseHeaders))
	case *extprocv3.ProcessingRequest_ResponseBody:
		return s.responseBody(r.ResponseBody)
	case *extprocv3.ProcessingRequest_ResponseTrailers:
		return s.responseTrailers()
	default:
		return nil, fmt.Errorf("%w: %T", errProtocol, req.GetRequest())
	}
}

func one(r *extprocv3.ProcessingResponse) ([]*extprocv3.ProcessingResponse, error) {
	return []*extprocv3.ProcessingResponse{r}, nil
}

func (s *Stream) requestHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	if v := header(h, "mcp-session-id"); v != "" {
		s.session = v
	}
	return requestHeadersAnswer()
}

func (s *Stream) requestBody(b *extprocv3.HttpBody) *extprocv3.ProcessingResponse {
	if b.GetEndOfStream() && len(s.reqBody) == 0 && len(b.GetBody()) <= max(s.p.opts.MaxBodyBytes, s.p.opts.MaxRequestBytes) {
		// The whole body in one message (BUFFERED, the mode airlock
		// renders): read where it is, no copy.
		s.noteRequestIDs(b.GetBody())
		s.recordRequest(b.GetBody())
		return requestBodyAnswer()
	}
	if len(s.reqBody)+len(b.GetBody()) <= max(s.p.opts.MaxBodyBytes, s.p.opts.MaxRequestBytes) {
		s.reqBody = append(s.reqBody, b.GetBody()...)
	}
	if b.GetEndOfStream() {
		s.noteRequestIDs(s.reqBody)
		s.recordRequest(s.reqBody)
		s.reqBody = nil
	}
	return requestBodyAnswer()
}

func (s *Stream) responseHeaders(h *extprocv3.HttpHeaders) *extprocv3.ProcessingResponse {
	s.status = atoi(headerBytes(h, ":status"))
	if s.session == "" {
		s.session = header(h, "mcp-session-id")
	}
	// ext_authz's own reply (a denial, a held call's -32042) carries its
	// decision id but no allow metadata: ext_authz recorded that decision
	// in its session itself, so ext_proc masks this reply but does not
	// record it again (as an anonymous "allow" error).
	s.localReply = s.meta.d.DecisionID == "" && len(headerBytes(h, wire.HeaderDecisionID)) > 0
	s.flushRequests()
	if s.auditErr != nil {
		return s.fail(503, s.auditErr)
	}
	var ct string
	ct, s.charsetLabel = mediaType(headerBytes(h, "content-type"))
	switch {
	case h.GetEndOfStream():
		s.kind = kindNone
	case ct == "text/event-stream":
		s.kind = kindSSE
	case ct == "application/json" || strings.HasSuffix(ct, "+json"):
		s.kind = kindJSON
	default:
		s.kind = kindText
	}
	var err error
	if s.profile, err = s.p.opts.Profiles.Get(s.meta.d.MaskingProfile); err != nil {
		// An unknown profile must not mean "no masking".
		return s.fail(500, err)
	}
	resp := responseHeadersAnswer()
	if s.kind == kindNone {
		s.finish()
		return resp
	}
	// Plaintext or nothing: airlock masks (and records) only what it can
	// read, so a compressed body is refused, never passed or decompressed
	// (see the package doc).
	if ce := contentEncoding(h); ce != "" {
		return s.refuse(502, "airlock_response_encoding_refused",
			"airlock refused the server's response: it is compressed (content-encoding "+printable(ce)+") and airlock passes only plaintext responses it has masked")
	}
	// A JSON or text body announced over the response limit is refused
	// now, before Envoy buffers any of it.
	if s.kind == kindJSON || s.kind == kindText {
		if n, err := parseInt(headerBytes(h, "content-length")); err == nil && n > int64(s.p.opts.MaxBodyBytes) {
			return s.refuseTooLarge(strconv.FormatInt(n, 10) + " bytes (content-length), over")
		}
	}
	override, why := s.planBody()
	if why != "" {
		return s.refuse(502, "airlock_response_body_mode_refused", why)
	}
	if override != procmodev3.ProcessingMode_NONE {
		resp.ModeOverride = &procmodev3.ProcessingMode{ResponseBodyMode: override}
	}
	if s.kind == kindSSE {
		s.sse = mask.NewSSEMasker(s.profile, s.p.opts.MaxEventBytes)
		s.sse.OnEvent(s.onEvent)
		s.sse.OnOversize(s.oversize)
	}
	if s.passthrough {
		s.finish()
	}
	return resp
}

// planBody decides, at the response headers, how the body must reach
// airlock so that every byte the agent gets has been masked: which
// mode_override to ask for (NONE: none), or why the response must be
// refused. The mode Envoy uses is the response_body_mode of
// protocol_config (sent on a stream's first message since Envoy 1.34);
// a mode_override is honoured only when Envoy's allow_mode_override is on,
// which the processor cannot see, so it is relied on only when
// Options.ModeOverride says so.
//
//   - STREAMED, FULL_DUPLEX_STREAMED: SSE is masked event by event, a
//     JSON or text body gathered until its end. From STREAMED a JSON or
//     text body asks for BUFFERED_PARTIAL when the override is relied on
//     (wholeUpToLimit: one over Envoy's buffer then reaches airlock and is
//     answered by id, not with Envoy's 500), else for BUFFERED (either
//     way every chunk is held until the end).
//   - BUFFERED: the whole body in one message.
//   - BUFFERED_PARTIAL: kept; a chunk without end_of_stream means the body
//     outgrew Envoy's buffer and the rest would pass unprocessed, so the
//     response is refused. SSE is switched to STREAMED when the override
//     is relied on, else treated the same way.
//
// Whatever the mode, a JSON or text body over the response limit
// (Options.MaxBodyBytes) is refused by id: at the headers when its
// content-length says so, else when it grows past the limit.
//   - NONE (or no protocol_config): no body would reach airlock; the
//     override to BUFFERED (JSON, text) or STREAMED (SSE) is asked for
//     when relied on, else the response is refused.
//
// A target whose masking profile is "off" has nothing to mask: its body
// passes in any mode.
func (s *Stream) planBody() (override procmodev3.ProcessingMode_BodySendMode, why string) {
	const (
		none     = procmodev3.ProcessingMode_NONE
		streamed = procmodev3.ProcessingMode_STREAMED
		buffered = procmodev3.ProcessingMode_BUFFERED
		partial  = procmodev3.ProcessingMode_BUFFERED_PARTIAL
		duplex   = procmodev3.ProcessingMode_FULL_DUPLEX_STREAMED
	)
	want := buffered
	if s.kind == kindSSE {
		want = streamed
	}
	trust := s.p.opts.ModeOverride
	off := s.profile.Off()
	mode := s.respMode
	if !s.protocolSeen {
		mode = none // unknown: assume the worst
	}
	switch mode {
	case streamed:
		if want == buffered {
			if trust {
				return s.wholeUpToLimit()
			}
			// Not relied on: if Envoy ignores it, STREAMED still brings
			// every chunk, each held until the end.
			s.setLength = true
			return buffered, ""
		}
		return none, ""
	case duplex:
		return none, ""
	case buffered:
		// The whole body, SSE included, in one message with the headers
		// held: its masked length goes in content-length.
		s.setLength = true
		return none, ""
	case partial:
		if want == streamed && trust {
			return streamed, ""
		}
		s.partial, s.passPartial = !off, off
		if want == buffered {
			// Stay BUFFERED_PARTIAL: a switch to BUFFERED would turn a
			// body over Envoy's buffer into Envoy's plain-text 500.
			s.setLength = true
		}
		return none, ""
	default: // NONE, or not told
		if trust {
			// BUFFERED, not BUFFERED_PARTIAL: with NONE Envoy keeps the
			// content-length (processor_state.h shouldRemoveContentLength),
			// which only BUFFERED lets airlock correct.
			s.setLength = want == buffered
			return want, ""
		}
		if off {
			s.passthrough = true
			return none, ""
		}
		if !s.protocolSeen {
			return none, "airlock refused the server's response: Envoy did not say how it sends the response body (protocol_config, Envoy 1.34 or later), so airlock cannot be sure to mask all of it"
		}
		return none, "airlock refused the server's response: Envoy is configured not to send the response body to airlock (response_body_mode " + mode.String() + "), so it cannot be masked"
	}
}

// wholeUpToLimit asks for a JSON or text body in BUFFERED_PARTIAL rather
// than BUFFERED, relying on mode_override being honoured. Both hold the
// headers and bring a body that fits Envoy's stream buffer whole, with
// end_of_stream. A bigger one differs: BUFFERED makes Envoy answer its own
// plain-text 500 (filter_manager.cc responseDataTooLarge), BUFFERED_PARTIAL
// sends what its queue holds once over the buffer limit, without
// end_of_stream (ext_proc.cc, BUFFERED_PARTIAL in onData;
// processor_state.h queueOverHighLimit), with the headers still held —
// so airlock sees the overflow and answers it with a JSON-RPC error by
// the request's id. airlock's listener buffer is at least the response
// limit (envoy.StreamBufferLimit), so such a chunk is always over it.
func (s *Stream) wholeUpToLimit() (procmodev3.ProcessingMode_BodySendMode, string) {
	s.setLength, s.partial, s.overLimit = true, true, true
	return procmodev3.ProcessingMode_BUFFERED_PARTIAL, ""
}

// refuseTooLarge withholds a response whose body is over the response
// limit: the agent gets a JSON-RPC error by its request's id.
func (s *Stream) refuseTooLarge(size string) *extprocv3.ProcessingResponse {
	s.p.metrics.tooLarge.Inc()
	return s.refuse(502, "airlock_response_too_large",
		"airlock refused the server's response: its body is "+size+" the limit of "+strconv.Itoa(s.p.opts.MaxBodyBytes)+
			" bytes airlock masks whole (limits.max_response_bytes)")
}

func (s *Stream) responseBody(b *extprocv3.HttpBody) ([]*extprocv3.ProcessingResponse, error) {
	if s.failed {
		// Envoy sends nothing after an immediate response; if it did, the
		// answer stays the same (recorded once).
		return one(s.refusal)
	}
	if s.ended {
		return nil, fmt.Errorf("%w: response body after its end", errProtocol)
	}
	eos := b.GetEndOfStream()
	var out []byte
	switch s.kind {
	case kindSSE:
		if s.partial && !eos {
			return one(s.refuse(502, "airlock_response_body_mode_refused",
				"airlock refused the server's event stream: Envoy sends only its first part to airlock (response_body_mode BUFFERED_PARTIAL), so the rest cannot be masked"))
		}
		var refused *extprocv3.ProcessingResponse
		var held bool
		out, held, refused = s.sseChunk(b.GetBody(), eos)
		if refused != nil {
			return one(refused)
		}
		if held {
			return s.hold()
		}
	default:
		if s.passPartial && !eos {
			// Only the first part comes; the rest passes unprocessed
			// anyway, and there is nothing to mask.
			s.finish()
			return one(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}})
		}
		if s.partial && !eos && s.overLimit {
			// The override to BUFFERED_PARTIAL: Envoy's buffer, at least
			// the response limit, is full before the end.
			return one(s.refuseTooLarge("over"))
		}
		if s.partial && !eos {
			// BUFFERED_PARTIAL: this is all Envoy's buffer held; the rest
			// would reach the agent without airlock seeing it.
			return one(s.refuse(502, "airlock_response_body_mode_refused",
				"airlock refused the server's response: it is larger than Envoy's buffer and Envoy sends only its first part to airlock (response_body_mode BUFFERED_PARTIAL), so it cannot be masked whole"))
		}
		if len(s.body)+len(b.GetBody()) > s.p.opts.MaxBodyBytes {
			return one(s.refuseTooLarge("over"))
		}
		whole := b.GetBody()
		if len(s.body) > 0 || !eos {
			s.body = append(s.body, whole...)
			if !eos {
				return s.hold()
			}
			whole = s.body
		} // else the whole body in one message: masked where it is, no copy
		masked, err := s.maskWhole(whole)
		if err != nil {
			if cr, ok := err.(charsetRefusal); ok {
				return one(s.refuse(502, "airlock_response_charset_refused", "airlock refused the server's response: "+cr.why))
			}
			return one(s.fail(502, err))
		}
		out = masked
	}
	if s.auditErr != nil {
		return one(s.fail(503, s.auditErr))
	}
	if eos {
		s.finish()
	}
	return one(s.bodyResponse(out, eos))
}

// hold keeps a chunk of a body that must be masked whole.
func (s *Stream) hold() ([]*extprocv3.ProcessingResponse, error) {
	if s.respMode == procmodev3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return nil, nil // M:N: answer when the body is complete
	}
	return one(&extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
		Response: &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}}},
	}}})
}

// bodyResponse replaces the chunk Envoy sent with out: in full duplex as a
// streamed response (end_of_stream on the last), otherwise as the chunk's
// body mutation. A buffered body whose length changed gets a matching
// content-length (ext_proc: in BUFFERED mode with headers sent, the
// processor sets it).
func (s *Stream) bodyResponse(out []byte, eos bool) *extprocv3.ProcessingResponse {
	resp, cr := responseBodyAnswer()
	if s.respMode == procmodev3.ProcessingMode_FULL_DUPLEX_STREAMED {
		cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_StreamedResponse{StreamedResponse: &extprocv3.StreamedBodyResponse{Body: out, EndOfStream: eos}}}
	} else {
		if len(out) == 0 {
			cr.BodyMutation = &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_ClearBody{ClearBody: true}}
		} else {
			cr.BodyMutation = bodyMutation(out)
		}
		if s.setLength && eos {
			cr.HeaderMutation = contentLength(len(out))
		}
	}
	return resp
}

// responseTrailers ends a body that had no end_of_stream chunk (full duplex
// sends trailers; the body's last bytes must go out with end_of_stream).
func (s *Stream) responseTrailers() ([]*extprocv3.ProcessingResponse, error) {
	var out []*extprocv3.ProcessingResponse
	if !s.ended && s.kind != kindNone && !s.failed {
		rs, err := s.responseBody(&extprocv3.HttpBody{EndOfStream: true})
		if err != nil {
			return nil, err
		}
		if s.respMode == procmodev3.ProcessingMode_FULL_DUPLEX_STREAMED {
			out = append(out, rs...)
		}
	}
	return append(out, &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &extprocv3.TrailersResponse{}}}), nil
}

// fail ends the response with an error instead of passing anything
// unmasked (failure_mode_allow stays off). err is logged, never sent: it
// may quote what the server sent.
func (s *Stream) fail(status int, err error) *extprocv3.ProcessingResponse {
	s.p.log.Error("masking failed", "decision_id", s.meta.d.DecisionID, "target", s.meta.d.Target, "error", err)
	return s.refuse(status, "airlock_masking_failed", "airlock could not safely process the server's response")
}

// finish runs once when the response has ended.
func (s *Stream) finish() {
	if s.ended {
		return
	}
	s.ended = true
	if s.sse != nil && s.sse.Stopped() {
		return // counted as failed when it was stopped
	}
	s.p.metrics.streams.WithLabelValues("ok").Inc()
}

func (s *Stream) countMasked(c mask.Counts) {
	if len(c) == 0 {
		return
	}
	target := s.p.targetLabel(s.meta.d.Target)
	for typ, n := range c {
		s.p.metrics.masked.WithLabelValues(target, typ).Add(float64(n))
	}
}

// headerBytes is header's value as bytes, without copying a raw value.
func headerBytes(h *extprocv3.HttpHeaders, name string) []byte {
	for _, hv := range h.GetHeaders().GetHeaders() {
		if hv.GetKey() == name {
			if v := hv.GetRawValue(); len(v) > 0 {
				return v
			}
			return []byte(hv.GetValue())
		}
	}
	return nil
}

// atoi is strconv.Atoi's value (errors ignored), without a string for the
// usual status code.
func atoi(b []byte) int {
	if len(b) > 0 && len(b) <= 9 {
		n := 0
		for _, c := range b {
			if c < '0' || c > '9' {
				n = -1
				break
			}
			n = n*10 + int(c-'0')
		}
		if n >= 0 {
			return n
		}
	}
	n, _ := strconv.Atoi(string(b))
	return n
}

// parseInt is strconv.ParseInt(b, 10, 64), without a string for plain
// digits.
func parseInt(b []byte) (int64, error) {
	if len(b) > 0 && len(b) <= 18 {
		var n int64
		for _, c := range b {
			if c < '0' || c > '9' {
				return strconv.ParseInt(string(b), 10, 64)
			}
			n = n*10 + int64(c-'0')
		}
		return n, nil
	}
	return strconv.ParseInt(string(b), 10, 64)
}

// mediaType is the media type and charset parameter of a content-type as
// mime.ParseMediaType reads them (the usual values without parsing).
func mediaType(v []byte) (ct, charset string) {
	switch string(v) {
	case "application/json":
		return "application/json", ""
	case "text/event-stream":
		return "text/event-stream", ""
	case "application/json; charset=utf-8":
		return "application/json", "utf-8"
	case "text/event-stream; charset=utf-8":
		return "text/event-stream", "utf-8"
	}
	ct, params, _ := mime.ParseMediaType(string(v))
	return ct, params["charset"]
}

func header(h *extprocv3.HttpHeaders, name string) string {
	for _, hv := range h.GetHeaders().GetHeaders() {
		if hv.GetKey() == name {
			if v := hv.GetRawValue(); len(v) > 0 {
				return string(v)
			}
			return hv.GetValue()
		}
	}
	return ""
}
