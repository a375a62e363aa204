package envoydriver

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// streamFilter is one HTTP filter instance for one request (Envoy's
// StreamFilter). decodeHeaders may consume request body before returning and
// returns the body source the next filter reads; encodeHeaders may replace
// r.headers and r.body. A *localReply error stops the chain.
type streamFilter interface {
	decodeHeaders(h *headerMap, body bodySource) (bodySource, error)
	encodeHeaders(r *response) error
	onDestroy()
}

// response is a response on its way through the encoder filters.
type response struct {
	headers *headerMap // with ":status"
	body    bodySource
	// local marks a local reply travelling through the encoder filters.
	local bool
}

func (r *response) status() int {
	n, err := strconv.Atoi(r.headers.value(":status"))
	if err != nil {
		return http.StatusInternalServerError
	}
	return n
}

// stream is one downstream request (Envoy's ActiveStream).
type stream struct {
	cfg    *compiled
	pool   *connPool
	log    *slog.Logger
	w      http.ResponseWriter
	req    *http.Request
	id     uint64
	start  time.Time
	remote *net.TCPAddr
	local  *net.TCPAddr

	// ctx lives as long as the stream; abortCtx is cancelled by fail.
	ctx         context.Context
	cancel      context.CancelFunc
	abortCtx    context.Context
	abortCancel context.CancelFunc

	reqHeaders    *headerMap
	requestID     string
	bytesReceived atomic.Int64
	filters       []streamFilter

	mu          sync.Mutex
	routeCached bool
	route_      *route
	dynMeta     map[string]*structpb.Struct
	failErr     error
	upstreamHdr bool // upstream response headers received

	// bufLimit is the stream's one buffer limit (FilterManager::buffer_limit_),
	// the listener's per_connection_buffer_limit_bytes until a filter sets
	// it; it bounds request and response buffering alike.
	bufLimit atomic.Int64

	written atomic.Bool // downstream response headers written
	// downstreamDone is set once the downstream request body was read to
	// its end (or there was none).
	downstreamDone atomic.Bool
}

func newStream(cfg *compiled, pool *connPool, log *slog.Logger, w http.ResponseWriter, r *http.Request) *stream {
	s := &stream{cfg: cfg, pool: pool, log: log, w: w, req: r, start: time.Now(), dynMeta: map[string]*structpb.Struct{}}
	var b [8]byte
	_, _ = rand.Read(b[:])
	s.id = binary.BigEndian.Uint64(b[:])
	s.bufLimit.Store(int64(cfg.bufferLimit))
	s.ctx, s.cancel = context.WithCancel(r.Context())
	s.abortCtx, s.abortCancel = context.WithCancel(s.ctx)
	if a, err := net.ResolveTCPAddr("tcp", r.RemoteAddr); err == nil {
		s.remote = a
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		s.local, _ = la.(*net.TCPAddr)
	}
	return s
}

// route returns the route for the current request headers, matching again
// after clearRouteCache (Envoy's route cache).
func (s *stream) route() *route {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.routeCached {
		t := s.cfg.routes
		if s.cfg.scopes != nil {
			scopes := s.cfg.scopes
			// SRDS scopes are updated in place on Envoy's workers
			// (scoped_rds.cc applyConfigUpdate), so the stream reads the
			// live table of its subscription, not the one it started with.
			if scopes.srds != "" && s.cfg.live != nil {
				if cur := s.cfg.live.Load(); cur != nil && cur.srds == scopes.srds {
					scopes = cur
				}
			}
			t = scopes.find(s.reqHeaders)
		}
		s.route_ = t.match(s.reqHeaders)
		s.routeCached = true
	}
	return s.route_
}

// bufferLimit is the limit buffering filters apply now, in both
// directions: source/common/http/filter_manager.cc keeps one buffer_limit_
// per stream for buffered request and response data.
func (s *stream) bufferLimit() int { return int(s.bufLimit.Load()) }

// setBufferLimit follows StreamDecoderFilterCallbacks::setDecoderBufferLimit
// → FilterManager::setBufferLimit, which sets the stream's one limit, so
// it also bounds response buffering (filter_manager.cc
// ActiveStreamEncoderFilter::responseDataTooLarge: 500 while the response
// headers are not yet sent, a reset after).
func (s *stream) setBufferLimit(n int) { s.bufLimit.Store(int64(n)) }

// clearRouteCache follows StreamDecoderFilterCallbacks::clearRouteCache:
// the next route() call matches again with the (mutated) headers.
func (s *stream) clearRouteCache() {
	s.mu.Lock()
	s.routeCached = false
	s.mu.Unlock()
}

// setDynamicMetadata follows StreamInfo::setDynamicMetadata: fields are
// merged into the namespace's struct.
func (s *stream) setDynamicMetadata(ns string, v *structpb.Struct) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.dynMeta[ns]
	if !ok {
		s.dynMeta[ns] = proto.Clone(v).(*structpb.Struct)
		return
	}
	for k, f := range v.GetFields() {
		if cur.Fields == nil {
			cur.Fields = map[string]*structpb.Value{}
		}
		cur.Fields[k] = proto.Clone(f).(*structpb.Value)
	}
}

// dynamicMetadata returns a copy of one namespace, or nil.
func (s *stream) dynamicMetadata(ns string) *structpb.Struct {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.dynMeta[ns]; ok {
		return proto.Clone(v).(*structpb.Struct)
	}
	return nil
}

// fail records the first failure of a body-phase filter or the upstream
// and aborts everything waiting on abortCtx.
func (s *stream) fail(err error) {
	s.mu.Lock()
	if s.failErr == nil {
		s.failErr = err
	}
	s.mu.Unlock()
	s.abortCancel()
}

func (s *stream) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.failErr
}

// localResponse renders a local reply as Envoy's Utility::sendLocalReply
// does: the status, the filter's header mutations, then content-length and
// a text/plain content-type when there is a body and none was set.
func localResponse(lr *localReply) *response {
	h := &headerMap{}
	h.add(":status", strconv.Itoa(lr.status))
	if lr.headers != nil {
		for _, e := range lr.headers.entries {
			if e.key != ":status" {
				h.add(e.key, e.value)
			}
		}
	}
	h.set("content-length", strconv.Itoa(len(lr.body)))
	if lr.body != "" && !h.has("content-type") {
		h.set("content-type", "text/plain")
	}
	r := &response{headers: h}
	if lr.body != "" {
		r.body = &sliceSource{frames: []frame{{data: []byte(lr.body), end: true}}}
	}
	return r
}

// respond ends a stream whose decoding stopped with err. A local reply sent
// before upstream response headers travels through every encoder filter
// (FilterManager::sendLocalReplyViaFilterChain); once upstream headers were
// received it bypasses them (sendDirectLocalReply); once downstream headers
// were written the stream is reset.
func (s *stream) respond(err error) {
	var lr *localReply
	if !errors.As(err, &lr) {
		if f := s.failure(); f != nil && errors.As(f, &lr) {
			err = f
		} else {
			s.reset(err)
			return
		}
	}
	// A local reply sent before the request finished arriving closes the
	// HTTP/1 connection (ConnectionManagerImpl: a response completed
	// before the request is complete sets "connection: close" and drains),
	// so a client never reuses a connection with body bytes left on it.
	if !s.downstreamDone.Load() && !s.written.Load() {
		s.w.Header().Set("Connection", "close")
	}
	lr = rewriteLocalReply(s.cfg.hcm.localReply, s.reqHeaders, lr)
	s.mu.Lock()
	direct := s.upstreamHdr
	s.mu.Unlock()
	if direct {
		s.write(localResponse(lr))
		return
	}
	r := localResponse(lr)
	r.local = true
	s.encode(r)
}

// encode runs the encoder filters in reverse HCM order, then writes.
func (s *stream) encode(r *response) {
	for i := len(s.filters) - 1; i >= 0; i-- {
		if err := s.filters[i].encodeHeaders(r); err != nil {
			var lr *localReply
			if errors.As(err, &lr) || errors.As(s.failure(), &lr) {
				// A local reply from an encoder filter (e.g. a buffered
				// response over the stream's buffer limit, filter_manager.cc
				// responseDataTooLarge) goes out directly, through the
				// local reply mappers (sendDirectLocalReply →
				// LocalReply::rewrite).
				s.write(localResponse(rewriteLocalReply(s.cfg.hcm.localReply, s.reqHeaders, lr)))
				return
			}
			s.reset(err)
			return
		}
	}
	s.write(r)
}

// reset aborts the downstream connection (an HTTP/1 stream reset).
func (s *stream) reset(err error) {
	s.log.Debug("resetting stream", "err", err)
	panic(http.ErrAbortHandler)
}
