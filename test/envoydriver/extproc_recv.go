package envoydriver

import (
	"net/http"
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// startPump streams a body to the processor chunk by chunk (STREAMED and
// FULL_DUPLEX_STREAMED); processed data comes out of d.out. Called with
// the filter lock held.
func (d *procDir) startPump(body bodySource) {
	d.out = newFrameQueue()
	go d.pump(body)
}

// pump follows Filter::handleDataStreamedModeBase: "Send the chunk on the
// gRPC stream", then (STREAMED) keep it queued until its BodyResponse
// arrives; FULL_DUPLEX_STREAMED "just drain[s] the data". Once processing
// is complete or the body was replaced, data passes through (or is
// dropped).
func (d *procDir) pump(body bodySource) {
	p := d.p
	for {
		f, err := body.next(p.s.abortCtx)
		if err != nil {
			d.out.fail(err)
			return
		}
		p.mu.Lock()
		streaming := !p.complete && (d.bodyMode == extprocv3.ProcessingMode_STREAMED || d.bodyMode == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED)
		if !streaming {
			replaced := d.bodyReplaced
			p.mu.Unlock()
			if !replaced {
				d.out.push(f)
			}
			if f.last() {
				return
			}
			continue
		}
		if f.trailers == nil || len(f.data) > 0 {
			d.sendChunkLocked(f.data, f.end)
		}
		if f.trailers != nil {
			d.streamTrailersLocked(f.trailers)
		}
		p.mu.Unlock()
		if f.last() {
			return
		}
	}
}

// sendChunkLocked sends one body chunk. While the header response is
// outstanding the state stays HeadersCallback.
func (d *procDir) sendChunkLocked(data []byte, end bool) {
	d.bodyReceived = true
	if d.bodyMode == extprocv3.ProcessingMode_STREAMED {
		d.queue = append(d.queue, queuedChunk{data: data, end: end})
	}
	next := stStreamedBody
	if d.state == stHeaders {
		next = stHeaders
	}
	d.startCall(next)
	d.p.sendLocked(d.bodyMessage(data, end))
}

// streamTrailersLocked follows Filter::onTrailers for streamed bodies: in
// STREAMED, trailers wait until every chunk was answered
// (finalizeBodyResponse); FULL_DUPLEX_STREAMED sends them at once.
func (d *procDir) streamTrailersLocked(t *headerMap) {
	d.trailers = t
	if d.bodyMode == extprocv3.ProcessingMode_STREAMED && (len(d.queue) > 0 || d.state != stIdle) {
		return
	}
	d.flushTrailersLocked()
}

// flushTrailersLocked sends held trailers to the processor, or releases
// them when the trailer mode is not SEND.
func (d *procDir) flushTrailersLocked() {
	if d.trailers == nil || d.trailersSent {
		return
	}
	if d.sendTrailers {
		d.sendTrailersLocked(d.trailers)
		return
	}
	d.out.push(frame{trailers: d.trailers})
	d.trailers = nil
}

// onMessage follows Filter::onReceiveMessage.
func (p *extProc) onMessage(resp *procsvc.ProcessingResponse) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.complete {
		// "Ignoring stream message received after processing complete".
		return
	}
	if t := resp.GetOverrideMessageTimeout(); t != nil {
		p.newTimeoutLocked(t.AsDuration())
		return
	}
	p.modeOverrideLocked(resp)
	var ok, lastBody bool
	reason := "spurious message"
	switch r := resp.GetResponse().(type) {
	case *procsvc.ProcessingResponse_RequestHeaders:
		p.receiveMetadataLocked(resp)
		ok = p.dec.headersResponseLocked(r.RequestHeaders)
	case *procsvc.ProcessingResponse_ResponseHeaders:
		p.receiveMetadataLocked(resp)
		ok = p.enc.headersResponseLocked(r.ResponseHeaders)
	case *procsvc.ProcessingResponse_RequestBody:
		p.receiveMetadataLocked(resp)
		ok, lastBody, reason = p.dec.bodyResponseLocked(r.RequestBody)
	case *procsvc.ProcessingResponse_ResponseBody:
		p.receiveMetadataLocked(resp)
		ok, lastBody, reason = p.enc.bodyResponseLocked(r.ResponseBody)
	case *procsvc.ProcessingResponse_RequestTrailers:
		p.receiveMetadataLocked(resp)
		ok = p.dec.trailersResponseLocked(r.RequestTrailers)
	case *procsvc.ProcessingResponse_ResponseTrailers:
		p.receiveMetadataLocked(resp)
		ok = p.enc.trailersResponseLocked(r.ResponseTrailers)
	case *procsvc.ProcessingResponse_ImmediateResponse:
		// ext_proc.proto disable_immediate_response: the message is treated
		// as spurious.
		if p.cfg.disableImmediate {
			reason = "unhandled immediate response due to config disabled it"
			break
		}
		p.receiveMetadataLocked(resp)
		p.immediateLocked(r.ImmediateResponse)
		return
	default:
		reason = "unhandled message"
	}
	if !ok {
		p.s.log.Debug("ext_proc spurious response", "filter", p.name, "reason", reason)
		p.onErrorResponseLocked(true, reason)
		return
	}
	p.closeIfLastLocked(resp, lastBody)
}

// headersResponseLocked follows handleHeadersResponse's state check and
// getCallbackStateAfterHeaderResp; the waiting phase applies the response.
func (d *procDir) headersResponseLocked(r *procsvc.HeadersResponse) bool {
	if d.state != stHeaders {
		return false
	}
	next := stIdle
	if r.GetResponse().GetStatus() != procsvc.CommonResponse_CONTINUE_AND_REPLACE {
		switch {
		case d.bodyMode == extprocv3.ProcessingMode_STREAMED && d.p.cfg.sendBodyNoWait && len(d.queue) > 0:
			next = stStreamedBody
		case d.bodyMode == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED && d.bodyReceived:
			next = stStreamedBody
		case d.bodyMode == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED && d.trailers != nil:
			next = stTrailers
		}
	}
	d.finishCall(next)
	d.deliver(dirEvent{headers: r})
	if next == stIdle && d.bodyMode == extprocv3.ProcessingMode_STREAMED {
		d.flushTrailersLocked()
	}
	return true
}

// bodyResponseLocked follows handleBodyResponse: it must answer a body
// message of this direction. Buffered and partial replies go to the
// waiting phase; streamed replies release data at once, in order.
func (d *procDir) bodyResponseLocked(r *procsvc.BodyResponse) (ok, last bool, reason string) {
	reason = "spurious message"
	switch d.state {
	case stBufferedBody, stPartialBody:
		d.finishCall(stIdle)
		d.deliver(dirEvent{body: r})
		return true, false, ""
	case stStreamedBody:
	default:
		return false, false, reason
	}
	bm := r.GetResponse().GetBodyMutation()
	if sr := bm.GetStreamedResponse(); sr != nil {
		if d.bodyMode != extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED {
			return false, false, "spurious message: streamed_response is received while body_mode_ is not FULL_DUPLEX_STREAMED"
		}
		// handleDuplexStreamedBodyResponse: inject the body; end_of_stream
		// ends the direction's body.
		eos := sr.GetEndOfStream()
		if len(sr.GetBody()) > 0 || (eos && d.trailers == nil) {
			d.out.push(frame{data: sr.GetBody(), end: eos && d.trailers == nil})
		}
		if eos {
			d.finishCall(stIdle)
		} else {
			d.finishCall(stStreamedBody)
		}
		return true, eos, ""
	}
	if d.bodyMode == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return false, false, "spurious message: Normal body mutation response is received while body_mode_ is FULL_DUPLEX_STREAMED"
	}
	if len(d.queue) == 0 {
		return false, false, reason
	}
	// handleStreamedBodyResponse: the oldest chunk gets the mutation (a
	// header_mutation here is ignored) and is released.
	c := d.queue[0]
	d.queue = d.queue[1:]
	data := c.data
	if bm != nil {
		data = applyBodyMutation(bm, data)
	}
	if len(data) > 0 || c.end {
		d.out.push(frame{data: data, end: c.end})
	}
	if len(d.queue) == 0 {
		d.finishCall(stIdle)
		d.flushTrailersLocked()
	} else {
		d.finishCall(stStreamedBody)
	}
	return true, c.end, ""
}

// trailersResponseLocked follows handleTrailersResponse: valid in
// TrailersCallback, or any time in FULL_DUPLEX_STREAMED.
func (d *procDir) trailersResponseLocked(r *procsvc.TrailersResponse) bool {
	if d.state != stTrailers && d.bodyMode != extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return false
	}
	if d.out == nil || d.trailers == nil {
		// A buffered, partial or NONE-mode phase is waiting for it.
		if d.state != stTrailers {
			return false
		}
		d.finishCall(stIdle)
		d.deliver(dirEvent{trailers: r})
		return true
	}
	t := d.trailers
	if hm := r.GetHeaderMutation(); hm != nil {
		if err := d.p.applyHeaderMutation(hm, t, false, false); err != nil {
			d.finishCall(stIdle)
			d.p.failLocked(&localReply{status: d.p.cfg.statusOnError, details: err.Error()}, true)
			return true
		}
	}
	d.trailers = nil
	d.finishCall(stIdle)
	d.out.push(frame{trailers: t})
	return true
}

// immediateLocked follows Filter::sendImmediateResponse: the status
// defaults to 200 (and so does one below 200), the headers mutate the local
// reply, and "we won't be sending anything more to the stream".
func (p *extProc) immediateLocked(ir *procsvc.ImmediateResponse) {
	status := http.StatusOK
	if c := int(ir.GetStatus().GetCode()); c >= 200 {
		status = c
	}
	hdrs := &headerMap{}
	if hm := ir.GetHeaders(); hm != nil {
		if err := p.applyHeaderMutation(hm, hdrs, false, false); err != nil {
			p.s.log.Debug("immediate response header mutation failed", "err", err)
		}
	}
	p.failLocked(&localReply{status: status, headers: hdrs, body: string(ir.GetBody()), details: ir.GetDetails()}, false)
}

// receiveMetadataLocked follows Filter::setDynamicMetadata: only namespaces
// listed in metadata_options.receiving_namespaces.untyped are taken.
func (p *extProc) receiveMetadataLocked(resp *procsvc.ProcessingResponse) {
	for ns, v := range resp.GetDynamicMetadata().GetFields() {
		for _, allowed := range p.recvUntyped {
			if ns == allowed && v.GetStructValue() != nil {
				p.s.setDynamicMetadata(ns, v.GetStructValue())
			}
		}
	}
}

// closeIfLastLocked follows Filter::closeGrpcStreamIfLastRespReceived: when
// no further message will be sent the stream is half-closed and processing
// is complete.
func (p *extProc) closeIfLastLocked(resp *procsvc.ProcessingResponse, lastBody bool) {
	none := extprocv3.ProcessingMode_NONE
	var last bool
	switch resp.GetResponse().(type) {
	case *procsvc.ProcessingResponse_RequestHeaders:
		last = (p.dec.noBody || (p.dec.bodyMode == none && !p.dec.sendTrailers)) && p.enc.noExternalProcess()
	case *procsvc.ProcessingResponse_RequestBody:
		last = lastBody && p.enc.noExternalProcess()
	case *procsvc.ProcessingResponse_RequestTrailers:
		last = p.enc.noExternalProcess()
	case *procsvc.ProcessingResponse_ResponseHeaders:
		last = p.enc.noBody || (p.enc.bodyMode == none && !p.enc.sendTrailers)
	case *procsvc.ProcessingResponse_ResponseBody:
		last = lastBody
	case *procsvc.ProcessingResponse_ResponseTrailers:
		last = true
	}
	if last && p.dec.trailers == nil && p.enc.trailers == nil {
		p.completeLocked()
	}
}

// newTimeoutLocked follows Filter::onNewTimeout: override_message_timeout
// between 1ms and max_message_timeout restarts the running timer, once per
// call.
func (p *extProc) newTimeoutLocked(t time.Duration) {
	if p.cfg.maxMessageTimeout <= 0 || t < time.Millisecond || t > p.cfg.maxMessageTimeout {
		return
	}
	for _, d := range []*procDir{p.dec, p.enc} {
		if d.timerActive && !d.timeoutOverridden {
			d.armTimer(t)
			d.timeoutOverridden = true
		}
	}
}

// modeOverrideLocked follows Filter::onReceiveMessage: mode_override is
// honoured only with allow_mode_override, never with
// send_body_without_waiting_for_header_response or a FULL_DUPLEX_STREAMED
// filter mode, only while a header response is awaited, and only when
// allowed_override_modes (if set) lists it — request_header_mode ignored.
func (p *extProc) modeOverrideLocked(resp *procsvc.ProcessingResponse) {
	fd := extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED
	m := p.cfg.mode
	if !p.cfg.allowModeOverride || p.cfg.sendBodyNoWait || m.GetRequestBodyMode() == fd || m.GetResponseBodyMode() == fd {
		return
	}
	if resp.GetModeOverride() == nil || (p.dec.state != stHeaders && p.enc.state != stHeaders) {
		return
	}
	mo := effectiveModeOverride(resp.GetModeOverride(), m)
	if len(p.cfg.allowedOverrideModes) > 0 {
		allowed := false
		for _, a := range p.cfg.allowedOverrideModes {
			if mo.GetRequestBodyMode() == a.GetRequestBodyMode() && mo.GetRequestTrailerMode() == a.GetRequestTrailerMode() &&
				mo.GetResponseHeaderMode() == a.GetResponseHeaderMode() && mo.GetResponseBodyMode() == a.GetResponseBodyMode() &&
				mo.GetResponseTrailerMode() == a.GetResponseTrailerMode() {
				allowed = true
				break
			}
		}
		if !allowed {
			return
		}
	}
	p.dec.setMode(mo)
	p.enc.setMode(mo)
}

// effectiveModeOverride: DEFAULT header modes in a mode_override mean "no
// change" from the filter's processing_mode; body modes are always taken.
func effectiveModeOverride(target, base *extprocv3.ProcessingMode) *extprocv3.ProcessingMode {
	out := &extprocv3.ProcessingMode{
		RequestHeaderMode:   base.GetRequestHeaderMode(),
		ResponseHeaderMode:  base.GetResponseHeaderMode(),
		RequestTrailerMode:  base.GetRequestTrailerMode(),
		ResponseTrailerMode: base.GetResponseTrailerMode(),
		RequestBodyMode:     target.GetRequestBodyMode(),
		ResponseBodyMode:    target.GetResponseBodyMode(),
	}
	if v := target.GetRequestHeaderMode(); v != extprocv3.ProcessingMode_DEFAULT {
		out.RequestHeaderMode = v
	}
	if v := target.GetResponseHeaderMode(); v != extprocv3.ProcessingMode_DEFAULT {
		out.ResponseHeaderMode = v
	}
	if v := target.GetRequestTrailerMode(); v != extprocv3.ProcessingMode_DEFAULT {
		out.RequestTrailerMode = v
	}
	if v := target.GetResponseTrailerMode(); v != extprocv3.ProcessingMode_DEFAULT {
		out.ResponseTrailerMode = v
	}
	return out
}
