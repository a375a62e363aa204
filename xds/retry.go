package xds

import (
	"context"
	"sync"
	"time"

	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
)

// Retrying what Envoy rejected.
//
// Envoy keeps its previous configuration when it rejects (NACKs) a
// response, and asks again only when the server sends something new:
// source/extensions/config_subscription/grpc/grpc_mux_impl.cc
// (GrpcMuxImpl::onDiscoveryResponse) catches the rejection, sets
// error_detail, leaves version_info at the last accepted version and
// sends that one request; the xDS protocol
// (api/envoy/service/discovery/v3/discovery.proto) has the client NACK a
// delta response the same way, per response. A
// server that resends the rejected state at once loops (Envoy rejects it
// again); one that never resends it wedges: the rejected resource stays
// missing even after what made it fail is fixed (an inline scope naming
// a cluster Envoy did not have yet, say). So a NACKed response is held
// back, then resent:
//   - after a backoff: DefaultNACKRetry, doubling per consecutive NACK of
//     that stream and type, up to DefaultNACKRetryMax, reset by an ACK;
//   - at once when the configuration changes (SetModel: new clusters or
//     listener may be what the rejected resource needed);
//   - for a delta stream, with the next response of that type: the
//     rejected resources are marked unknown to the client, so the
//     response after that change carries them again.
//
// SotW: the server's callbacks set the NACK's version_info to the
// rejected version, so the caches hold the watch until the next change;
// a retry asks the caches again with no version, which resends the
// current state. Delta: go-control-plane's subscription believes the
// client holds what it was sent; a retry marks the rejected resources'
// versions unknown in that subscription, so the caches send them again.

// Defaults of Options.NACKRetry and Options.NACKRetryMax.
const (
	DefaultNACKRetry    = time.Second
	DefaultNACKRetryMax = time.Minute
)

// hold is what the callbacks tell the cache about a NACK request: when
// to retry, and (delta) which resources the rejected response carried.
type hold struct {
	stream int64
	delay  time.Duration
	names  []string
}

// retryDelay is the backoff after the streak-th consecutive NACK.
func retryDelay(base, maxDelay time.Duration, streak int) time.Duration {
	d := base
	for i := 1; i < streak && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

// retryCache is the cache go-control-plane's server sees: the Server's
// caches, with NACK requests held and retried as above.
type retryCache struct {
	inner cache.Cache
	s     *Server
}

// takeHold returns (and forgets) the hold the callbacks noted for req.
// go-control-plane hands the callbacks and then the cache the same
// request value (pkg/server/sotw/v3/ads.go, pkg/server/delta/v3/server.go).
func (r *retryCache) takeHold(req any) (hold, bool) {
	v, ok := r.s.holds.LoadAndDelete(req)
	if !ok {
		return hold{}, false
	}
	return v.(hold), true
}

// CreateWatch holds a SotW NACK until its retry.
func (r *retryCache) CreateWatch(req *cache.Request, sub cache.Subscription, ch chan cache.Response) (func(), error) {
	h, ok := r.takeHold(req)
	if !ok {
		return r.inner.CreateWatch(req, sub, ch)
	}
	w := &heldWatch[cache.Response]{stop: make(chan struct{}), mid: make(chan cache.Response, 1), out: ch}
	w.retry = func() (func(), error) {
		again := proto.Clone(req).(*discovery.DiscoveryRequest)
		again.VersionInfo = "" // as if the client held nothing: the current state is sent
		return r.inner.CreateWatch(again, sub, w.mid)
	}
	return w.start(r.s, h.delay, func() (func(), error) { return r.inner.CreateWatch(req, sub, w.mid) })
}

// CreateDeltaWatch holds a delta NACK until its retry.
func (r *retryCache) CreateDeltaWatch(req *cache.DeltaRequest, sub cache.Subscription, ch chan cache.DeltaResponse) (func(), error) {
	h, ok := r.takeHold(req)
	if !ok {
		return r.inner.CreateDeltaWatch(req, sub, ch)
	}
	forget := func(known map[string]string, except map[string]bool) {
		for _, n := range h.names {
			if !except[n] {
				known[n] = "" // no resource has this version: it is sent again
			}
		}
		delete(known, cursorKey) // the scope cache compares everything, once
	}
	w := &heldWatch[cache.DeltaResponse]{stop: make(chan struct{}), mid: make(chan cache.DeltaResponse, 1), out: ch}
	w.retry = func() (func(), error) {
		forget(sub.ReturnedResources(), nil)
		return r.inner.CreateDeltaWatch(req, sub, w.mid)
	}
	// A change that comes first goes out at once, and the rejected
	// resources go with the response after it.
	w.before = func(resp cache.DeltaResponse) {
		d, err := resp.GetDeltaDiscoveryResponse()
		if err != nil {
			return
		}
		sent := map[string]bool{}
		for _, res := range d.GetResources() {
			sent[res.GetName()] = true
		}
		for _, n := range d.GetRemovedResources() {
			sent[n] = true
		}
		forget(resp.GetNextVersionMap(), sent)
	}
	return w.start(r.s, h.delay, func() (func(), error) { return r.inner.CreateDeltaWatch(req, sub, w.mid) })
}

// Fetch is not served (REST).
func (r *retryCache) Fetch(ctx context.Context, req *cache.Request) (cache.Response, error) {
	return r.inner.Fetch(ctx, req)
}

// heldWatch is one held NACK: it forwards the inner watch's response,
// or at the retry (timer or configuration change) replaces the inner
// watch by one that answers at once. mu orders forwarding and retrying
// against close, after which nothing is sent: go-control-plane changes
// the subscription right after it cancels a watch.
type heldWatch[T any] struct {
	mid    chan T // the inner watch answers here
	out    chan T // the server's channel
	retry  func() (func(), error)
	before func(T) // adjusts a response before it is forwarded (nil: none)

	mu     sync.Mutex
	closed bool
	cancel func()
	stop   chan struct{}
}

func (w *heldWatch[T]) start(s *Server, delay time.Duration, create func() (func(), error)) (func(), error) {
	cancel, err := create()
	if err != nil {
		return nil, err
	}
	w.cancel = orNop(cancel)
	go w.run(s, delay)
	return w.close, nil
}

func (w *heldWatch[T]) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.closed = true
	w.cancel()
	close(w.stop)
}

// forward sends resp on, unless the watch was closed.
func (w *heldWatch[T]) forward(resp T) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if w.before != nil {
		w.before(resp)
	}
	w.out <- resp // buffered by the server: one pending response per type
}

func (w *heldWatch[T]) run(s *Server, delay time.Duration) {
	timer := time.NewTimer(delay)
	defer timer.Stop()
	changed := s.configChanged()
	select {
	case <-w.stop:
		return
	case resp := <-w.mid:
		w.forward(resp)
		return
	case <-timer.C:
	case <-changed:
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return
	}
	w.cancel()
	select {
	case resp := <-w.mid:
		// The inner watch answered as the retry came due: that answer
		// (built against the subscription already) goes out instead.
		w.mu.Unlock()
		w.forward(resp)
		return
	default:
	}
	cancel, err := w.retry()
	if err != nil {
		w.cancel = func() {}
		w.mu.Unlock()
		s.log.Warn("xds: resending a rejected response", "err", err)
		return
	}
	w.cancel = orNop(cancel)
	w.mu.Unlock()
	select {
	case <-w.stop:
	case resp := <-w.mid:
		w.forward(resp)
	}
}

// orNop: go-control-plane's snapshot cache returns no cancel function
// when it answered at once.
func orNop(cancel func()) func() {
	if cancel == nil {
		return func() {}
	}
	return cancel
}
