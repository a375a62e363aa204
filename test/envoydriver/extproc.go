package envoydriver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// procNamespace is the ext_proc filter's canonical name.
const procNamespace = "envoy.filters.http.ext_proc"

// errProcessingDone tells a waiting phase that the processor is out of the
// picture (clean close, or an error under failure_mode_allow): continue with
// the data unprocessed.
var errProcessingDone = errors.New("ext_proc: processing complete, continuing without the processor")

// extProc is the ext_proc filter for one request
// (source/extensions/filters/http/ext_proc/ext_proc.cc). One gRPC stream
// serves both directions: "one gRPC stream per HTTP request".
type extProc struct {
	cfg  *procConfig
	name string
	s    *stream

	mu           sync.Mutex
	merged       bool
	fma          bool
	fwdUntyped   []string
	fwdTyped     []string
	recvUntyped  []string
	target       grpcTarget
	opened       bool
	cancel       context.CancelFunc
	recvDone     chan struct{}
	sendq        *sendQueue
	complete     bool // Envoy's processing_complete_
	protocolSent bool
	dec, enc     *procDir
}

func newExtProc(s *stream, ff *filterFactory) *extProc {
	p := &extProc{cfg: ff.proc, name: ff.name, s: s, fma: ff.proc.failureModeAllow,
		fwdUntyped: ff.proc.fwdUntyped, fwdTyped: ff.proc.fwdTyped, recvUntyped: ff.proc.recvUntyped, target: ff.proc.target}
	p.dec = newProcDir(p, true)
	p.enc = newProcDir(p, false)
	p.dec.setMode(ff.proc.mode)
	p.enc.setMode(ff.proc.mode)
	return p
}

// mergePerRoute follows Filter::mergePerRouteConfig, once per request,
// with the route current at that moment: ExtProcPerRoute.disabled turns
// every phase off; overrides.processing_mode, metadata_options,
// failure_mode_allow and grpc_initial_metadata take the most specific value.
func (p *extProc) mergePerRoute() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.merged {
		return
	}
	p.merged = true
	var disabled bool
	var mode *extprocv3.ProcessingMode
	var md []string
	for _, pc := range p.s.route().perFilterChain(p.name) {
		if pc.proc == nil {
			continue
		}
		disabled = pc.proc.GetDisabled()
		o := pc.proc.GetOverrides()
		if disabled {
			mode = nil
			continue
		}
		if o.GetProcessingMode() != nil {
			mode = o.GetProcessingMode()
		}
		if fo := o.GetMetadataOptions().GetForwardingNamespaces(); fo != nil {
			p.fwdUntyped, p.fwdTyped = fo.GetUntyped(), fo.GetTyped()
		}
		if ro := o.GetMetadataOptions().GetReceivingNamespaces(); ro != nil {
			p.recvUntyped = ro.GetUntyped()
		}
		if o.GetFailureModeAllow() != nil {
			p.fma = o.GetFailureModeAllow().GetValue()
		}
		md = mergeInitialMetadata(md, o.GetGrpcInitialMetadata())
	}
	switch {
	case disabled:
		off := &extprocv3.ProcessingMode{RequestHeaderMode: extprocv3.ProcessingMode_SKIP, ResponseHeaderMode: extprocv3.ProcessingMode_SKIP}
		p.dec.setMode(off)
		p.enc.setMode(off)
	case mode != nil:
		p.dec.setMode(mode)
		p.enc.setMode(mode)
	}
	if len(md) > 0 {
		merged := append([]string(nil), p.target.metadata...)
		for i := 0; i < len(md); i += 2 {
			merged = setMetadataPair(merged, md[i], md[i+1])
		}
		p.target.metadata = merged
	}
}

func mergeInitialMetadata(md []string, hvs []*corev3.HeaderValue) []string {
	for _, hv := range hvs {
		md = setMetadataPair(md, hv.GetKey(), hv.GetValue())
	}
	return md
}

// setMetadataPair replaces every entry with the same key or appends one
// (ext_proc.cc mergeHeaderValues).
func setMetadataPair(md []string, k, v string) []string {
	found := false
	for i := 0; i < len(md); i += 2 {
		if md[i] == k {
			md[i+1] = v
			found = true
		}
	}
	if !found {
		md = append(md, k, v)
	}
	return md
}

// failureModeAllow follows Filter::failureModeAllow: never once a
// FULL_DUPLEX_STREAMED body has started.
func (p *extProc) failureModeAllow() bool {
	fd := extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED
	if (p.dec.bodyMode == fd && p.dec.bodyReceived) || (p.enc.bodyMode == fd && p.enc.bodyReceived) {
		return false
	}
	return p.fma
}

func (p *extProc) decodeHeaders(h *headerMap, body bodySource) (bodySource, error) {
	p.mergePerRoute()
	return p.onHeaders(p.dec, h, body)
}

func (p *extProc) encodeHeaders(r *response) error {
	if r.local && !p.s.cfg.version.localRepliesToExtProc() {
		// Envoy 1.34–1.36: the ext_proc filter does not send a local
		// reply to the processor; envoyproxy/envoy#41769 ("re-enable
		// sending local replies to the ext_proc server", first released
		// in 1.37.0) restored it (ext_proc.cc onLocalReply/encodeHeaders).
		return nil
	}
	// ext_proc.cc encodeHeaders merges again "in case the decodeHeaders()
	// is not called when processing local reply".
	p.mergePerRoute()
	body, err := p.onHeaders(p.enc, r.headers, r.body)
	if err != nil {
		return err
	}
	r.body = body
	return nil
}

// onDestroy follows Filter::onDestroy → closeStreamMaybeGraceful: the
// stream is half-closed and torn down once the server closes it, or after
// the remote close timeout (runtime
// envoy.filters.http.ext_proc.remote_close_timeout_milliseconds, 1000ms).
func (p *extProc) onDestroy() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.completeLocked()
	if p.cancel == nil {
		return
	}
	cancel, done := p.cancel, p.recvDone
	go func() {
		t := time.NewTimer(remoteCloseTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
		}
		cancel()
	}()
}

// remoteCloseTimeout is ext_proc.cc DefaultRemoteCloseTimeoutMilliseconds.
const remoteCloseTimeout = time.Second

// openLocked opens the gRPC stream on first use (Filter::openStream).
func (p *extProc) openLocked() error {
	if p.opened {
		if p.sendq == nil {
			return errors.New("ext_proc: gRPC stream failed to open")
		}
		return nil
	}
	p.opened = true
	// The stream holds a request slot of the processor's cluster for its
	// whole life; an overflow is a failed stream (onGrpcError:
	// failure_mode_allow, or a 500 local reply).
	release, err := p.target.acquire(p.s.cfg)
	if err != nil {
		return err
	}
	cc, err := p.s.pool.get(p.target)
	if err != nil {
		release()
		return err
	}
	// The side stream outlives the HTTP stream briefly (graceful close),
	// so it is not tied to the request context; onDestroy ends it.
	ctx, cancel := context.WithCancel(p.target.outgoing(context.Background()))
	p.cancel = cancel
	p.recvDone = make(chan struct{})
	go func(done <-chan struct{}) {
		<-done
		release()
	}(p.recvDone)
	client, err := procsvc.NewExternalProcessorClient(cc).Process(ctx)
	if err != nil {
		close(p.recvDone)
		return err
	}
	p.sendq = newSendQueue(client)
	go p.sendq.run()
	go p.receive(client, p.recvDone)
	return nil
}

// sendLocked queues a message, opening the stream first if needed:
// protocol_config goes only in the first message of the stream,
// metadata_context in every one (Filter::encodeProtocolConfig,
// Filter::addDynamicMetadata). When the stream cannot be opened it follows
// Filter::openStream, which reports the failure through onGrpcError; the
// outcome is then waiting in the directions' event channels.
func (p *extProc) sendLocked(req *procsvc.ProcessingRequest) bool {
	if err := p.openLocked(); err != nil {
		p.streamErrorLocked(err)
		return false
	}
	if !p.protocolSent {
		p.protocolSent = true
		req.ProtocolConfig = &procsvc.ProtocolConfiguration{
			RequestBodyMode:                         p.dec.bodyMode,
			ResponseBodyMode:                        p.enc.bodyMode,
			SendBodyWithoutWaitingForHeaderResponse: p.cfg.sendBodyNoWait,
		}
	}
	md := &corev3.Metadata{}
	for _, ns := range p.fwdUntyped {
		if v := p.s.dynamicMetadata(ns); v != nil {
			if md.FilterMetadata == nil {
				md.FilterMetadata = map[string]*structpb.Struct{}
			}
			md.FilterMetadata[ns] = v
		}
	}
	req.MetadataContext = md
	p.sendq.push(req)
	return true
}

// receive reads ProcessingResponses until the stream ends.
func (p *extProc) receive(client procsvc.ExternalProcessor_ProcessClient, done chan<- struct{}) {
	defer close(done)
	for {
		resp, err := client.Recv()
		if errors.Is(err, io.EOF) {
			p.onGrpcClose()
			return
		}
		if err != nil {
			p.onGrpcError(err)
			return
		}
		p.onMessage(resp)
	}
}

// onGrpcClose follows Filter::onGrpcClose: a clean close by the server
// means "the data plane proceeds without consulting the server".
func (p *extProc) onGrpcClose() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.complete {
		return
	}
	p.closeHardLocked()
	p.clearAsyncStateLocked()
}

// onGrpcError follows Filter::onGrpcError: continue under
// failure_mode_allow, otherwise a local reply with status_on_error
// (default 500).
func (p *extProc) onGrpcError(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.streamErrorLocked(err)
}

func (p *extProc) streamErrorLocked(err error) {
	if p.complete {
		return
	}
	p.s.log.Debug("ext_proc stream error", "filter", p.name, "err", err)
	if p.failureModeAllow() {
		p.closeHardLocked()
		p.clearAsyncStateLocked()
		return
	}
	p.failLocked(&localReply{status: p.cfg.statusOnError, details: "ext_proc_error_gRPC_error"}, true)
}

// onTimeout follows Filter::onMessageTimeout: under failure_mode_allow the
// processor is ignored for the rest of the request; otherwise a 504 local
// reply.
func (p *extProc) onTimeout(d *procDir, gen uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.complete || d.timerGen != gen {
		return
	}
	p.s.log.Debug("ext_proc message timeout", "filter", p.name, "request", d.request)
	if p.failureModeAllow() {
		p.closeHardLocked()
		p.clearAsyncStateLocked()
		return
	}
	p.failLocked(&localReply{status: http.StatusGatewayTimeout, details: "ext_proc_error_per-message_timeout_exceeded"}, true)
}

// onErrorResponse follows the end of Filter::onReceiveMessage: a spurious
// message is ignored under failure_mode_allow (the stream is dropped),
// other errors (rejected mutations) always end in a local reply with
// status_on_error (Filter::handleErrorResponse).
func (p *extProc) onErrorResponseLocked(spurious bool, reason string) {
	if spurious && p.failureModeAllow() {
		p.closeHardLocked()
		p.clearAsyncStateLocked()
		return
	}
	p.failLocked(&localReply{status: p.cfg.statusOnError, details: reason}, true)
}

// closeHardLocked follows Filter::closeStream on error paths (stream
// error, timeout, spurious message, clean close by the server): processing
// completes and the stream is reset.
func (p *extProc) closeHardLocked() {
	p.completeLocked()
	if p.cancel != nil {
		p.cancel()
	}
}

// completeLocked marks processing complete and half-closes the gRPC stream
// (closeStreamMaybeGraceful).
func (p *extProc) completeLocked() {
	p.complete = true
	p.dec.stopTimer()
	p.enc.stopTimer()
	if p.sendq != nil {
		p.sendq.closeSend()
	}
}

// clearAsyncStateLocked follows Filter::clearAsyncState: every direction
// resumes with its data unprocessed.
func (p *extProc) clearAsyncStateLocked() {
	p.dec.clearAsyncState()
	p.enc.clearAsyncState()
}

// failLocked ends processing with a local reply: the waiting phase gets
// it, streamed bodies stop with it, and the HTTP stream is aborted so
// whatever the request is waiting on notices. The side stream is reset on
// errors and half-closed after an immediate response.
func (p *extProc) failLocked(lr *localReply, reset bool) {
	if reset {
		p.closeHardLocked()
	} else {
		p.completeLocked()
	}
	p.dec.fail(lr)
	p.enc.fail(lr)
	p.s.fail(lr)
}

// sendQueue serializes Send calls on the gRPC stream in the order the
// filter produced them, without holding the filter lock during I/O.
type sendQueue struct {
	client procsvc.ExternalProcessor_ProcessClient
	mu     sync.Mutex
	items  []*procsvc.ProcessingRequest
	closed bool
	notify chan struct{}
}

func newSendQueue(c procsvc.ExternalProcessor_ProcessClient) *sendQueue {
	return &sendQueue{client: c, notify: make(chan struct{}, 1)}
}

func (q *sendQueue) push(r *procsvc.ProcessingRequest) {
	q.mu.Lock()
	if !q.closed {
		q.items = append(q.items, r)
	}
	q.mu.Unlock()
	q.wake()
}

func (q *sendQueue) closeSend() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	q.wake()
}

func (q *sendQueue) wake() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

func (q *sendQueue) run() {
	ctx := q.client.Context()
	for {
		q.mu.Lock()
		items := q.items
		q.items = nil
		closed := q.closed
		q.mu.Unlock()
		for _, r := range items {
			if err := q.client.Send(r); err != nil {
				return
			}
		}
		if closed {
			_ = q.client.CloseSend()
			return
		}
		select {
		case <-q.notify:
		case <-ctx.Done():
			return
		}
	}
}
