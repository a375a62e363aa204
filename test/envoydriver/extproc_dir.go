package envoydriver

import (
	"time"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// cbState is ProcessorState::CallbackState: what response the direction
// is waiting for.
type cbState int

const (
	stIdle cbState = iota
	stHeaders
	stBufferedBody
	stStreamedBody
	stPartialBody
	stTrailers
)

// procDir is one direction of an ext_proc filter (DecodingProcessorState /
// EncodingProcessorState in processor_state.cc). Its fields are guarded by
// the filter's mutex.
type procDir struct {
	p       *extProc
	request bool

	sendHeaders  bool
	sendTrailers bool
	bodyMode     extprocv3.ProcessingMode_BodySendMode

	state             cbState
	timer             *time.Timer
	timerGen          uint64
	timerActive       bool
	timeoutOverridden bool

	// waitCh carries the response (or failure) a blocked phase waits for:
	// headers, buffered body, partial body or trailers.
	waitCh chan dirEvent

	noBody       bool
	bodyReceived bool
	out          *frameQueue   // streamed output (STREAMED, FULL_DUPLEX_STREAMED)
	queue        []queuedChunk // STREAMED chunks awaiting their response
	trailers     *headerMap    // trailers being processed by the streamed path
	trailersSent bool
	bodyReplaced bool
}

type queuedChunk struct {
	data []byte
	end  bool
}

type dirEvent struct {
	headers  *procsvc.HeadersResponse
	body     *procsvc.BodyResponse
	trailers *procsvc.TrailersResponse
	err      error
}

func newProcDir(p *extProc, request bool) *procDir {
	return &procDir{p: p, request: request, waitCh: make(chan dirEvent, 1)}
}

// setMode follows {Decoding,Encoding}ProcessorState::setProcessingModeInternal:
// headers are sent unless SKIP, trailers only when SEND
// (processing_mode.proto HeaderSendMode defaults).
func (d *procDir) setMode(m *extprocv3.ProcessingMode) {
	if d.request {
		d.sendHeaders = m.GetRequestHeaderMode() != extprocv3.ProcessingMode_SKIP
		d.sendTrailers = m.GetRequestTrailerMode() == extprocv3.ProcessingMode_SEND
		d.bodyMode = m.GetRequestBodyMode()
		return
	}
	d.sendHeaders = m.GetResponseHeaderMode() != extprocv3.ProcessingMode_SKIP
	d.sendTrailers = m.GetResponseTrailerMode() == extprocv3.ProcessingMode_SEND
	d.bodyMode = m.GetResponseBodyMode()
}

// noExternalProcess follows ProcessorState::noExternalProcess.
func (d *procDir) noExternalProcess() bool {
	return !d.sendHeaders && !d.sendTrailers && d.bodyMode == extprocv3.ProcessingMode_NONE
}

// shouldRemoveContentLength follows processing_mode.proto BodySendMode:
// content-length is removed for STREAMED, BUFFERED_PARTIAL, BUFFERED with
// SKIP headers and FULL_DUPLEX_STREAMED.
func (d *procDir) shouldRemoveContentLength() bool {
	switch d.bodyMode {
	case extprocv3.ProcessingMode_STREAMED, extprocv3.ProcessingMode_BUFFERED_PARTIAL, extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED:
		return true
	case extprocv3.ProcessingMode_BUFFERED:
		return !d.sendHeaders
	}
	return false
}

// startCall follows ProcessorState::onStartProcessorCall: the state moves
// on and the message timer (re)starts — except in FULL_DUPLEX_STREAMED,
// where ext_proc.proto message_timeout says there is no timeout.
func (d *procDir) startCall(st cbState) {
	d.state = st
	d.timeoutOverridden = false
	if d.bodyMode == extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED {
		return
	}
	d.armTimer(d.p.cfg.messageTimeout)
}

func (d *procDir) armTimer(timeout time.Duration) {
	d.stopTimer()
	gen := d.timerGen
	d.timerActive = true
	d.timer = time.AfterFunc(timeout, func() { d.p.onTimeout(d, gen) })
}

// finishCall follows ProcessorState::onFinishProcessorCall: the timer
// stops and the state becomes next.
func (d *procDir) finishCall(next cbState) {
	d.stopTimer()
	d.state = next
}

func (d *procDir) stopTimer() {
	if d.timer != nil {
		d.timer.Stop()
	}
	d.timerGen++
	d.timerActive = false
}

func (d *procDir) deliver(ev dirEvent) {
	select {
	case d.waitCh <- ev:
	default:
	}
}

// await blocks the calling phase until its response, a failure, or the
// stream aborting.
func (d *procDir) await() dirEvent {
	select {
	case ev := <-d.waitCh:
		return ev
	case <-d.p.s.abortCtx.Done():
		if f := d.p.s.failure(); f != nil {
			return dirEvent{err: f}
		}
		return dirEvent{err: d.p.s.abortCtx.Err()}
	}
}

func (d *procDir) fail(lr *localReply) {
	d.deliver(dirEvent{err: lr})
	if d.out != nil {
		d.out.fail(lr)
	}
}

// clearAsyncState follows ProcessorState::clearAsyncState: queued chunks
// are released unprocessed and any waiting phase continues.
func (d *procDir) clearAsyncState() {
	d.finishCall(stIdle)
	if d.out != nil {
		var data []byte
		end := false
		for _, c := range d.queue {
			data = append(data, c.data...)
			end = c.end
		}
		if len(d.queue) > 0 {
			d.out.push(frame{data: data, end: end})
		}
		if d.trailers != nil {
			d.out.push(frame{trailers: d.trailers})
			d.trailers = nil
		}
	}
	d.queue = nil
	d.deliver(dirEvent{err: errProcessingDone})
}

// headersMessage builds request_headers / response_headers.
func (d *procDir) headersMessage(hm *headerMap, endOfStream bool) *procsvc.ProcessingRequest {
	hh := &procsvc.HttpHeaders{Headers: d.p.headersToProto(hm), EndOfStream: endOfStream}
	if d.request {
		return &procsvc.ProcessingRequest{Request: &procsvc.ProcessingRequest_RequestHeaders{RequestHeaders: hh}}
	}
	return &procsvc.ProcessingRequest{Request: &procsvc.ProcessingRequest_ResponseHeaders{ResponseHeaders: hh}}
}

// bodyMessage builds request_body / response_body (Filter::setupBodyChunk).
func (d *procDir) bodyMessage(data []byte, endOfStream bool) *procsvc.ProcessingRequest {
	b := &procsvc.HttpBody{Body: data, EndOfStream: endOfStream}
	if d.request {
		return &procsvc.ProcessingRequest{Request: &procsvc.ProcessingRequest_RequestBody{RequestBody: b}}
	}
	return &procsvc.ProcessingRequest{Request: &procsvc.ProcessingRequest_ResponseBody{ResponseBody: b}}
}

// trailersMessage builds request_trailers / response_trailers.
func (d *procDir) trailersMessage(t *headerMap) *procsvc.ProcessingRequest {
	tt := &procsvc.HttpTrailers{Trailers: d.p.headersToProto(t)}
	if d.request {
		return &procsvc.ProcessingRequest{Request: &procsvc.ProcessingRequest_RequestTrailers{RequestTrailers: tt}}
	}
	return &procsvc.ProcessingRequest{Request: &procsvc.ProcessingRequest_ResponseTrailers{ResponseTrailers: tt}}
}

// sendTrailersLocked follows Filter::sendTrailers: the state becomes
// TrailersCallback unless a body callback is still running.
func (d *procDir) sendTrailersLocked(t *headerMap) bool {
	d.trailersSent = true
	st := d.state
	if st == stIdle {
		st = stTrailers
	}
	d.startCall(st)
	return d.p.sendLocked(d.trailersMessage(t))
}
