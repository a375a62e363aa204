package envoydriver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// errUpstreamTimeout resets a stream whose route timeout fired after the
// response started.
var errUpstreamTimeout = errors.New("upstream request timeout after response started")

// transports keeps one HTTP/1.1 client transport per connect timeout.
type transports struct {
	mu sync.Mutex
	m  map[time.Duration]*http.Transport
}

func (t *transports) get(connectTimeout time.Duration) *http.Transport {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tr, ok := t.m[connectTimeout]; ok {
		return tr
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: connectTimeout}).DialContext,
		DisableCompression:  true, // Envoy does not add accept-encoding nor decompress
		MaxIdleConnsPerHost: 64,
		ForceAttemptHTTP2:   false,
	}
	if t.m == nil {
		t.m = map[time.Duration]*http.Transport{}
	}
	t.m[connectTimeout] = tr
	return tr
}

func (t *transports) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.m {
		tr.CloseIdleConnections()
	}
}

// headerOpsChain orders route-level header mutations as route.proto
// RouteConfiguration.most_specific_header_mutations_wins says: by default
// "headers that should be added/removed are evaluated from most to least
// specific", so the route configuration's own mutations are applied last.
func (r *route) headerOpsChain() []headerOps {
	return []headerOps{r.hdrOps, r.vh.headers, r.vh.table.headers}
}

// proxy is the router filter: it picks the route's cluster, sends the
// request upstream and returns the upstream response headers with a body
// streaming from the upstream connection.
func (s *stream) proxy(h *headerMap, body bodySource, rp *transports) (*response, error) {
	rt := s.route()
	if rt == nil {
		// Envoy's router answers "NR" (no route) with 404 and no body.
		drain(s.ctx, body)
		return nil, &localReply{status: http.StatusNotFound, details: "route_not_found"}
	}
	if rt.direct != nil {
		// route_components.proto DirectResponseAction: "Return an
		// arbitrary HTTP response directly, without proxying." The
		// route's response header mutations apply (finalizeResponseHeaders).
		drain(s.ctx, body)
		rh := &headerMap{}
		for _, ops := range rt.headerOpsChain() {
			applyHeaderParser(rh, ops.respAdd, ops.respRemove)
		}
		return nil, &localReply{status: rt.direct.status, body: rt.direct.body, headers: rh, details: "direct_response"}
	}
	name := rt.cluster
	if rt.clusterHeader != "" {
		name = h.value(rt.clusterHeader)
	}
	cl, ok := s.cfg.clusters[name]
	if !ok {
		drain(s.ctx, body)
		return nil, &localReply{status: rt.notFoundStatus, details: "cluster_not_found"}
	}
	if cl.tls != nil {
		// The router's HTTP/1 upstream does not implement TLS
		// (upstreamtls.go serves gRPC services and ADS only): fail closed.
		drain(s.ctx, body)
		s.log.Error("envoydriver: the router cannot reach a cluster with a TLS transport socket", "cluster", cl.name)
		return nil, &localReply{status: http.StatusServiceUnavailable, body: "upstream connect error or disconnect/reset before headers. reset reason: connection failure", details: "upstream_tls_not_supported_by_stand_in"}
	}
	// Circuit breakers (circuitbreaker.go): the request holds its slot
	// until the stream ends; an overflow is the router's 503 UO.
	release, err := cl.breaker.acquireHTTP1(s.abortCtx)
	if err != nil {
		drain(s.ctx, body)
		if errors.Is(err, errOverflow) {
			return nil, overflowReply(s.cfg.router.suppressEnvoyHeaders)
		}
		// Gave up waiting as pending: the stream failed or went away.
		if f := s.failure(); f != nil {
			return nil, f
		}
		return nil, err
	}
	context.AfterFunc(s.ctx, release)
	ep := cl.pick()
	up := s.upstreamHeaders(rt, h, ep)
	upCtx, upCancel := context.WithCancel(s.abortCtx)
	context.AfterFunc(s.ctx, upCancel)
	req, err := newUpstreamRequest(upCtx, up, ep.addr)
	if err != nil {
		upCancel()
		return nil, &localReply{status: http.StatusBadRequest, details: "invalid_upstream_request"}
	}
	bodyDone := make(chan struct{})
	if body == nil {
		req.ContentLength = 0
		close(bodyDone)
	} else {
		pr, pw := io.Pipe()
		req.Body = pr
		go s.pumpRequestBody(body, pw, bodyDone)
	}
	type result struct {
		resp *http.Response
		err  error
	}
	respCh := make(chan result, 1)
	sent := time.Now()
	go func() {
		resp, err := rp.get(cl.connectTimeout).RoundTrip(req)
		respCh <- result{resp, err}
	}()
	// route_components.proto RouteAction.timeout: "the timeout for the
	// entire request/response exchange ... starts when the downstream
	// request has been fully received"; 0 disables it. Before response
	// headers it yields a 504; after, the stream is reset.
	timedOut := make(chan struct{})
	var timer *time.Timer
	var mu sync.Mutex
	headersIn := false
	arm := func() {
		if rt.timeout <= 0 {
			return
		}
		timer = time.AfterFunc(rt.timeout, func() {
			mu.Lock()
			defer mu.Unlock()
			close(timedOut)
			if headersIn {
				s.fail(errUpstreamTimeout)
			}
		})
		context.AfterFunc(s.ctx, func() { timer.Stop() })
	}
	bodyDoneC := (<-chan struct{})(bodyDone)
	for {
		select {
		case <-bodyDoneC:
			bodyDoneC = nil
			arm()
			continue
		case <-timedOut:
			upCancel()
			return nil, &localReply{status: http.StatusGatewayTimeout, body: "upstream request timeout", details: "upstream_response_timeout"}
		case <-s.abortCtx.Done():
			upCancel()
			return nil, s.failure()
		case res := <-respCh:
			if res.err != nil {
				upCancel()
				if f := s.failure(); f != nil {
					return nil, f
				}
				s.log.Debug("upstream request failed", "err", res.err)
				// Envoy's local reply for a connection failure before
				// response headers (response flag UF, 503).
				return nil, &localReply{
					status:  http.StatusServiceUnavailable,
					body:    "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
					details: "upstream_reset_before_response_started{connection_failure}",
				}
			}
			mu.Lock()
			headersIn = true
			mu.Unlock()
			s.mu.Lock()
			s.upstreamHdr = true
			s.mu.Unlock()
			context.AfterFunc(s.ctx, func() { res.resp.Body.Close() })
			return s.upstreamResponse(rt, req, res.resp, time.Since(sent)), nil
		}
	}
}

// pumpRequestBody feeds the filtered request body to the upstream request.
func (s *stream) pumpRequestBody(body bodySource, pw *io.PipeWriter, done chan<- struct{}) {
	for {
		f, err := body.next(s.abortCtx)
		if err != nil {
			var lr *localReply
			if errors.As(err, &lr) {
				s.fail(lr)
			} else if s.ctx.Err() == nil {
				s.fail(errors.Join(errReset, err))
			}
			pw.CloseWithError(err)
			return
		}
		if len(f.data) > 0 {
			if _, err := pw.Write(f.data); err != nil {
				drain(s.ctx, body)
				close(done)
				return
			}
		}
		if f.last() {
			pw.Close()
			close(done)
			return
		}
	}
}

// upstreamHeaders applies the route to the request headers: path and host
// rewrites, the route's request header mutations and the router's
// x-envoy-* headers.
func (s *stream) upstreamHeaders(rt *route, h *headerMap, ep endpoint) *headerMap {
	up := h.clone()
	suppress := s.cfg.router.suppressEnvoyHeaders
	if p, ok := rt.rewritePath(up.value(":path")); ok {
		// x-envoy-original-path is added on rewrite unless the router
		// suppresses x-envoy headers (router.proto suppress_envoy_headers).
		if !suppress {
			up.set("x-envoy-original-path", up.value(":path"))
		}
		up.set(":path", p)
	}
	host := ""
	switch {
	case rt.hostLiteral != "":
		host = rt.hostLiteral
	case rt.autoHostRewrite && ep.hostname != "":
		// RouteAction.auto_host_rewrite: "the host header will be swapped
		// with the hostname of the upstream host" — only when it has one.
		host = ep.hostname
	}
	if host != "" {
		if rt.appendXFH {
			up.appendValue("x-forwarded-host", up.value(":authority"))
		}
		up.set(":authority", host)
	}
	for _, ops := range rt.headerOpsChain() {
		applyHeaderParser(up, ops.reqAdd, ops.reqRemove)
	}
	if rt.timeout > 0 && !suppress {
		// config_http_filters_router_x-envoy-expected-rq-timeout-ms.
		up.set("x-envoy-expected-rq-timeout-ms", strconv.FormatInt(rt.timeout.Milliseconds(), 10))
	}
	return up
}

func newUpstreamRequest(ctx context.Context, up *headerMap, addr string) (*http.Request, error) {
	pu, err := url.ParseRequestURI(up.value(":path"))
	if err != nil {
		return nil, err
	}
	u := &url.URL{Scheme: "http", Host: addr, Path: pu.Path, RawPath: pu.RawPath, RawQuery: pu.RawQuery}
	req, err := http.NewRequestWithContext(ctx, up.value(":method"), u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.URL = u
	req.Host = up.value(":authority")
	req.ContentLength = -1
	for _, e := range up.entries {
		switch {
		case strings.HasPrefix(e.key, ":"):
			continue
		case e.key == "content-length":
			if n, err := strconv.ParseInt(e.value, 10, 64); err == nil {
				req.ContentLength = n
			}
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(e.key)
		req.Header[k] = append(req.Header[k], e.value)
	}
	if _, ok := req.Header["User-Agent"]; !ok {
		// Keep net/http from adding its own user-agent.
		req.Header["User-Agent"] = nil
	}
	return req, nil
}

// upstreamResponse converts the upstream response for the encoder filters,
// applying the route's response header mutations and the router's
// x-envoy-upstream-service-time.
func (s *stream) upstreamResponse(rt *route, req *http.Request, resp *http.Response, took time.Duration) *response {
	h := &headerMap{entries: make([]header, 0, len(resp.Header)+2)}
	h.add(":status", strconv.Itoa(resp.StatusCode))
	keys := make([]string, 0, len(resp.Header))
	for k := range resp.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		if hopByHop[lk] {
			continue
		}
		for _, v := range resp.Header[k] {
			h.add(lk, v)
		}
	}
	if resp.ContentLength >= 0 && !h.has("content-length") && len(resp.TransferEncoding) == 0 {
		h.set("content-length", strconv.FormatInt(resp.ContentLength, 10))
	}
	for _, ops := range rt.headerOpsChain() {
		applyHeaderParser(h, ops.respAdd, ops.respRemove)
	}
	if !s.cfg.router.suppressEnvoyHeaders {
		h.set("x-envoy-upstream-service-time", strconv.FormatInt(took.Milliseconds(), 10))
	}
	r := &response{headers: h}
	noBody := req.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent ||
		resp.StatusCode == http.StatusNotModified || resp.ContentLength == 0
	if noBody {
		resp.Body.Close()
		return r
	}
	var trailers func() *headerMap
	if s.cfg.hcm.enableTrailers {
		trailers = func() *headerMap { return fromHTTPHeader(resp.Trailer) }
	}
	r.body = newReaderSource(resp.Body, trailers, nil)
	return r
}

// fromHTTPHeader converts a net/http header map, names lower-cased and
// sorted.
func fromHTTPHeader(hh http.Header) *headerMap {
	if len(hh) == 0 {
		return nil
	}
	keys := make([]string, 0, len(hh))
	for k := range hh {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := &headerMap{}
	for _, k := range keys {
		for _, v := range hh[k] {
			h.add(strings.ToLower(k), v)
		}
	}
	return h
}
