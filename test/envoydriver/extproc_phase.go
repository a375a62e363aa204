package envoydriver

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// onHeaders runs the headers phase of one direction and returns the body
// source the next filter reads (Filter::onHeaders plus
// ProcessorState::handleHeadersResponse).
func (p *extProc) onHeaders(d *procDir, h *headerMap, body bodySource) (bodySource, error) {
	p.mu.Lock()
	if p.complete {
		p.mu.Unlock()
		return body, nil
	}
	// decodeHeaders/encodeHeaders remove content-length after sending the
	// headers when the body mode calls for it (processing_mode.proto
	// BodySendMode), unless allow_content_length_header.
	removeCL := !p.cfg.allowContentLength && d.shouldRemoveContentLength()
	if !d.sendHeaders {
		p.mu.Unlock()
		if removeCL {
			h.remove("content-length")
		}
		if body == nil {
			return nil, nil
		}
		return p.bodyPhase(d, h, body, false, false)
	}
	d.noBody = body == nil
	d.startCall(stHeaders)
	sent := p.sendLocked(d.headersMessage(h, body == nil))
	// FULL_DUPLEX_STREAMED (and STREAMED with
	// send_body_without_waiting_for_header_response) send body chunks
	// while the header response is outstanding (Filter::onData).
	early := sent && body != nil && (d.bodyMode == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED ||
		(d.bodyMode == extprocv3.ProcessingMode_STREAMED && p.cfg.sendBodyNoWait))
	if early {
		d.startPump(body)
	}
	p.mu.Unlock()
	if removeCL {
		h.remove("content-length")
	}
	ev := d.await()
	if ev.err != nil {
		if errors.Is(ev.err, errProcessingDone) {
			if early {
				return d.out, nil
			}
			return body, nil
		}
		return nil, ev.err
	}
	common := ev.headers.GetResponse()
	p.mu.Lock()
	removeCL = !p.cfg.allowContentLength && d.shouldRemoveContentLength()
	p.mu.Unlock()
	replace := common.GetStatus() == procsvc.CommonResponse_CONTINUE_AND_REPLACE
	if hm := common.GetHeaderMutation(); hm != nil {
		if err := p.applyHeaderMutation(hm, h, replace, removeCL); err != nil {
			return nil, p.errorResponse(err.Error())
		}
	}
	if d.request {
		p.clearRouteCache(common)
	}
	if replace {
		return p.replaceBody(d, h, body, common, early)
	}
	if body == nil {
		return nil, nil
	}
	return p.bodyPhase(d, h, body, true, early)
}

// replaceBody follows CONTINUE_AND_REPLACE in handleHeadersResponse: a
// body_mutation replaces the whole body (content-length removed, later data
// discarded); either way nothing more of this direction goes to the
// processor.
func (p *extProc) replaceBody(d *procDir, h *headerMap, body bodySource, common *procsvc.CommonResponse, early bool) (bodySource, error) {
	p.mu.Lock()
	d.bodyMode = extprocv3.ProcessingMode_NONE
	d.sendTrailers = false
	d.queue = nil
	bm := common.GetBodyMutation()
	if bm != nil {
		d.bodyReplaced = true
	}
	p.mu.Unlock()
	if bm == nil {
		if early {
			return d.out, nil
		}
		return body, nil
	}
	h.remove("content-length")
	if !early {
		drain(p.s.ctx, body)
	}
	return &sliceSource{frames: []frame{{data: applyBodyMutation(bm, nil), end: true}}}, nil
}

// bodyPhase picks the body handling for the (possibly overridden) body
// mode. headersHeld is true when the headers wait for the body response
// (they were sent and may still be mutated).
func (p *extProc) bodyPhase(d *procDir, h *headerMap, body bodySource, headersHeld, pumping bool) (bodySource, error) {
	p.mu.Lock()
	if p.complete {
		p.mu.Unlock()
		if pumping {
			return d.out, nil
		}
		return body, nil
	}
	mode := d.bodyMode
	sendTrailers := d.sendTrailers
	switch mode {
	case extprocv3.ProcessingMode_STREAMED, extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED:
		if !pumping {
			d.startPump(body)
		}
		p.mu.Unlock()
		return d.out, nil
	}
	p.mu.Unlock()
	if !headersHeld {
		// With header mode SKIP the headers continue at once; the body is
		// processed when it is read (Filter::onData).
		h = nil
	}
	switch mode {
	case extprocv3.ProcessingMode_BUFFERED:
		if h == nil {
			return &lazySource{open: func() (bodySource, error) { return p.bufferedBody(d, nil, body) }}, nil
		}
		return p.bufferedBody(d, h, body)
	case extprocv3.ProcessingMode_BUFFERED_PARTIAL:
		if h == nil {
			return &lazySource{open: func() (bodySource, error) { return p.partialBody(d, nil, body) }}, nil
		}
		return p.partialBody(d, h, body)
	}
	if sendTrailers {
		return &trailerSource{p: p, d: d, inner: body}, nil
	}
	return body, nil
}

// overflowReply is what Envoy answers when a buffering filter exceeds the
// buffer limit: 413 on the request path, 500 on the response path
// (processing_mode.proto BUFFERED: "the downstream system will receive an
// error").
func (d *procDir) overflowReply() *localReply {
	if d.request {
		return &localReply{status: http.StatusRequestEntityTooLarge, body: "Payload Too Large", details: "request_payload_too_large"}
	}
	return &localReply{status: http.StatusInternalServerError, body: "Internal Server Error", details: "response_payload_too_large"}
}

// bufferedBody follows BUFFERED: the whole body (up to the stream's
// buffer limit, stream.bufferLimit) goes in one message; in a reply to it header mutations
// apply only while the headers are held, and with a content-length header
// the mutated body must match it (ProcessorState::validateContentLength).
func (p *extProc) bufferedBody(d *procDir, h *headerMap, body bodySource) (bodySource, error) {
	data, trailers, err := readAll(p.s.abortCtx, body, p.s.bufferLimit(), d.overflowReply())
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.complete {
		p.mu.Unlock()
		return &sliceSource{frames: []frame{{data: data, end: trailers == nil, trailers: trailers}}}, nil
	}
	d.bodyReceived = true
	d.startCall(stBufferedBody)
	p.sendLocked(d.bodyMessage(data, trailers == nil))
	p.mu.Unlock()
	data, err = p.awaitBodyResponse(d, h, data)
	if err != nil {
		return nil, err
	}
	if trailers != nil {
		if trailers, err = p.processTrailers(d, trailers); err != nil {
			return nil, err
		}
	}
	return &sliceSource{frames: []frame{{data: data, end: trailers == nil, trailers: trailers}}}, nil
}

// partialBody follows BUFFERED_PARTIAL: data is held until the end of the
// body or until more than the buffer limit is held, then sent in one
// message; the rest of the body passes unprocessed.
func (p *extProc) partialBody(d *procDir, h *headerMap, body bodySource) (bodySource, error) {
	var data []byte
	var last frame
	for {
		f, err := body.next(p.s.abortCtx)
		if err != nil {
			return nil, err
		}
		data = append(data, f.data...)
		if f.last() {
			last = f
			break
		}
		if len(data) > p.s.bufferLimit() {
			break
		}
	}
	ended := last.last()
	p.mu.Lock()
	if p.complete {
		p.mu.Unlock()
		return &sliceSource{frames: []frame{{data: data, end: last.end, trailers: last.trailers}}, rest: restOf(ended, body)}, nil
	}
	d.bodyReceived = true
	d.startCall(stPartialBody)
	p.sendLocked(d.bodyMessage(data, last.end))
	p.mu.Unlock()
	data, err := p.awaitBodyResponse(d, h, data)
	if err != nil {
		return nil, err
	}
	trailers := last.trailers
	if trailers != nil {
		if trailers, err = p.processTrailers(d, trailers); err != nil {
			return nil, err
		}
	}
	out := &sliceSource{frames: []frame{{data: data, end: last.end, trailers: trailers}}}
	if !ended {
		p.mu.Lock()
		sendTrailers := d.sendTrailers && !p.complete
		p.mu.Unlock()
		out.rest = body
		if sendTrailers {
			out.rest = &trailerSource{p: p, d: d, inner: body}
		}
	}
	return out, nil
}

func restOf(ended bool, body bodySource) bodySource {
	if ended {
		return nil
	}
	return body
}

// awaitBodyResponse waits for the reply to a buffered or partial body and
// applies it (ProcessorState::handleBufferedBodyCallback).
func (p *extProc) awaitBodyResponse(d *procDir, h *headerMap, data []byte) ([]byte, error) {
	ev := d.await()
	if ev.err != nil {
		if errors.Is(ev.err, errProcessingDone) {
			return data, nil
		}
		return nil, ev.err
	}
	common := ev.body.GetResponse()
	if hm := common.GetHeaderMutation(); hm != nil && h != nil {
		p.mu.Lock()
		removeCL := !p.cfg.allowContentLength && d.shouldRemoveContentLength()
		p.mu.Unlock()
		if err := p.applyHeaderMutation(hm, h, false, removeCL); err != nil {
			return nil, p.errorResponse(err.Error())
		}
	}
	if bm := common.GetBodyMutation(); bm != nil {
		if h != nil {
			if cl, ok := h.get("content-length"); ok {
				if n, err := strconv.Atoi(cl); err == nil && n != len(bm.GetBody()) {
					return nil, p.errorResponse("mismatch between content length and the length of the mutated body")
				}
			}
		}
		data = applyBodyMutation(bm, data)
	}
	if d.request {
		p.clearRouteCache(common)
	}
	return data, nil
}

// processTrailers sends trailers when the mode says SEND and applies the
// reply (ProcessorState::handleTrailersResponse).
func (p *extProc) processTrailers(d *procDir, t *headerMap) (*headerMap, error) {
	p.mu.Lock()
	if p.complete || !d.sendTrailers {
		p.mu.Unlock()
		return t, nil
	}
	d.sendTrailersLocked(t)
	p.mu.Unlock()
	ev := d.await()
	if ev.err != nil {
		if errors.Is(ev.err, errProcessingDone) {
			return t, nil
		}
		return nil, ev.err
	}
	if hm := ev.trailers.GetHeaderMutation(); hm != nil {
		if err := p.applyHeaderMutation(hm, t, false, false); err != nil {
			return nil, p.errorResponse(err.Error())
		}
	}
	return t, nil
}

// errorResponse follows Filter::handleErrorResponse: a local reply with
// status_on_error, whatever failure_mode_allow says.
func (p *extProc) errorResponse(reason string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	lr := &localReply{status: p.cfg.statusOnError, details: reason}
	if p.complete {
		return lr
	}
	p.failLocked(lr, true)
	return lr
}

// lazySource opens its real source on first read.
type lazySource struct {
	open  func() (bodySource, error)
	inner bodySource
}

func (l *lazySource) next(ctx context.Context) (frame, error) {
	if l.inner == nil {
		src, err := l.open()
		if err != nil {
			return frame{}, err
		}
		l.inner = src
	}
	return l.inner.next(ctx)
}

// trailerSource passes a body through and processes its trailers
// (body mode NONE, or after a partial body, with trailer mode SEND).
type trailerSource struct {
	p     *extProc
	d     *procDir
	inner bodySource
}

func (t *trailerSource) next(ctx context.Context) (frame, error) {
	f, err := t.inner.next(ctx)
	if err != nil || f.trailers == nil {
		return f, err
	}
	f.trailers, err = t.p.processTrailers(t.d, f.trailers)
	return f, err
}
