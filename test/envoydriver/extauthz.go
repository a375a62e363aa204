package envoydriver

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/structpb"
)

// authzNamespace is where ext_authz dynamic metadata lives: external_auth.proto
// CheckResponse.dynamic_metadata is emitted under the filter's canonical
// name, "envoy.filters.http.ext_authz".
const authzNamespace = "envoy.filters.http.ext_authz"

// extAuthz is the ext_authz filter for one request
// (source/extensions/filters/http/ext_authz/ext_authz.cc).
type extAuthz struct {
	cfg     *authzConfig
	name    string
	s       *stream
	respOps []authzHeaderOp // OkHttpResponse.response_headers_to_add
}

// authzAction is how one HeaderValueOption from a CheckResponse applies.
type authzAction int

const (
	actSet               authzAction = iota // overwrite or add
	actAppend                               // comma-append, add if absent
	actAdd                                  // another entry
	actAddIfAbsent                          // only when absent
	actOverwriteIfExists                    // only when present
)

type authzHeaderOp struct {
	key, value string
	action     authzAction
}

// authzHeaderAction resolves a CheckResponse HeaderValueOption.
// external_auth.proto OkHttpResponse.headers: "the append field in
// HeaderValueOption defaults to false when used in this message. By setting
// the append field to true, the filter will append the correspondent header
// value to the matched request header. By leaving append as false, the
// filter will either add a new header, or override an existing one". The
// append_action enum's zero value cannot be told apart from "unset", so it
// also means overwrite (Envoy restored this after envoyproxy/envoy#43310);
// the other append_action values act as named. For response headers
// (response_headers_to_add, denied/error headers) append=true adds another
// entry.
func authzHeaderAction(o *corev3.HeaderValueOption, response bool) authzAction {
	if o.GetAppend() != nil {
		switch {
		case !o.GetAppend().GetValue():
			return actSet
		case response:
			return actAdd
		default:
			return actAppend
		}
	}
	switch o.GetAppendAction() {
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		return actAddIfAbsent
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		return actOverwriteIfExists
	default:
		return actSet
	}
}

func toAuthzOps(opts []*corev3.HeaderValueOption, response bool) []authzHeaderOp {
	out := make([]authzHeaderOp, 0, len(opts))
	for _, o := range opts {
		v := o.GetHeader().GetValue()
		if v == "" && o.GetHeader().GetRawValue() != nil {
			v = string(o.GetHeader().GetRawValue())
		}
		out = append(out, authzHeaderOp{key: strings.ToLower(o.GetHeader().GetKey()), value: v, action: authzHeaderAction(o, response)})
	}
	return out
}

func (op authzHeaderOp) apply(h *headerMap) {
	switch op.action {
	case actAppend:
		h.appendValue(op.key, op.value)
	case actAdd:
		h.add(op.key, op.value)
	case actAddIfAbsent:
		if !h.has(op.key) {
			h.add(op.key, op.value)
		}
	case actOverwriteIfExists:
		if h.has(op.key) {
			h.set(op.key, op.value)
		}
	default:
		h.set(op.key, op.value)
	}
}

// checkOutcome is Filters::Common::ExtAuthz::CheckStatus.
type checkOutcome int

const (
	outcomeOK checkOutcome = iota
	outcomeDenied
	outcomeError
)

func (f *extAuthz) decodeHeaders(h *headerMap, body bodySource) (bodySource, error) {
	rt := f.s.route()
	if rt == nil {
		// ext_authz.cc getPerRouteFlags: without a route the check is
		// skipped (the router then answers 404).
		return body, nil
	}
	// ExtAuthzPerRoute: the most specific config decides disabled and
	// check_settings; context_extensions merge from vhost to route, more
	// specific keys winning (FilterConfigPerRoute::merge).
	var most *extauthzv3.ExtAuthzPerRoute
	ctxExt := map[string]string{}
	for _, pc := range rt.perFilterChain(f.name) {
		if pc.authz == nil {
			continue
		}
		most = pc.authz
		for k, v := range pc.authz.GetCheckSettings().GetContextExtensions() {
			ctxExt[k] = v
		}
	}
	if most.GetDisabled() {
		return body, nil
	}
	cs := most.GetCheckSettings()
	maxBytes, allowPartial := f.cfg.maxRequestBytes, f.cfg.allowPartial
	if wb := cs.GetWithRequestBody(); wb != nil {
		maxBytes, allowPartial = int(wb.GetMaxRequestBytes()), wb.GetAllowPartialMessage()
	}
	// ext_authz.cc decodeHeaders: buffer when with_request_body is set
	// (filter or route), not disabled for the route, and the request has a
	// body (not end_stream on headers).
	buffering := (f.cfg.withBody || cs.GetWithRequestBody() != nil) && !cs.GetDisableRequestBodyBuffering() && body != nil
	var buffered []byte
	var bufferedFrames []frame
	if buffering {
		// ext_authz.cc decodeHeaders: "if (!allow_partial_message_)
		// decoder_callbacks_->setDecoderBufferLimit(max_request_bytes_)" —
		// the stream's one limit, which response buffering (ext_proc
		// BUFFERED) then meets too.
		if !allowPartial {
			f.s.setBufferLimit(maxBytes)
		}
		var err error
		buffered, bufferedFrames, err = f.buffer(body, maxBytes, allowPartial)
		if err != nil {
			return nil, err
		}
	}
	req := f.checkRequest(h, rt, ctxExt, buffering, buffered, maxBytes)
	start := time.Now()
	resp, callErr := f.call(req)
	outcome := classify(resp, callErr)
	f.ingestMetadata(resp, outcome, time.Since(start))

	next := body
	if buffering {
		last := bufferedFrames[len(bufferedFrames)-1]
		rest := body
		if last.last() {
			rest = nil
		}
		next = &sliceSource{frames: bufferedFrames, rest: rest}
	}
	switch outcome {
	case outcomeOK:
		if err := f.applyOK(h, resp.GetOkResponse()); err != nil {
			return nil, err
		}
		return next, nil
	case outcomeDenied:
		return nil, f.deniedReply(resp.GetDeniedResponse(), http.StatusForbidden, "ext_authz_denied")
	default:
		if f.cfg.failureModeAllow {
			// ext_authz.proto failure_mode_allow_header_add: "x-envoy-auth-
			// failure-mode-allowed: true will be added to request headers".
			if f.cfg.failureHeaderAdd {
				h.add("x-envoy-auth-failure-mode-allowed", "true")
			}
			return next, nil
		}
		// external_auth.proto CheckResponse.error_response: "The HTTP status
		// code, headers, and body are taken from the DeniedHttpResponse
		// message. If the status field is not set, Envoy sends the status
		// code configured via status_on_error".
		return nil, f.deniedReply(resp.GetErrorResponse(), f.cfg.statusOnError, "ext_authz_error")
	}
}

// buffer follows ext_authz.cc decodeData/isBufferFull. Without
// allow_partial_message the decoder buffer limit is max_request_bytes and
// exceeding it yields 413 before any check (BufferSettings.max_request_bytes
// "has precedence over failure_mode_allow"); with it, buffering stops once
// max_request_bytes are held and the check gets a partial body. It returns
// the bytes held and the frames to replay downstream.
func (f *extAuthz) buffer(body bodySource, maxBytes int, allowPartial bool) ([]byte, []frame, error) {
	var data []byte
	for {
		fr, err := body.next(f.s.ctx)
		if err != nil {
			return nil, nil, err
		}
		data = append(data, fr.data...)
		if !allowPartial && len(data) > maxBytes {
			return nil, nil, &localReply{status: http.StatusRequestEntityTooLarge, body: "Payload Too Large", details: "request_payload_too_large"}
		}
		if fr.last() {
			return data, []frame{{data: data, end: fr.end, trailers: fr.trailers}}, nil
		}
		if allowPartial && len(data) >= maxBytes {
			return data, []frame{{data: data}}, nil
		}
	}
}

// call sends the CheckRequest with the grpc_service timeout.
func (f *extAuthz) call(req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	// A Check holds a request slot of the authorization cluster while it
	// runs (a held call holds one); an overflow fails the call, which is
	// an error outcome: status_on_error or failure_mode_allow
	// (ext_authz_grpc_impl.cc onFailure).
	release, err := f.cfg.target.acquire(f.s.cfg)
	if err != nil {
		return nil, err
	}
	defer release()
	cc, err := f.s.pool.get(f.cfg.target)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(f.cfg.target.outgoing(f.s.ctx), f.cfg.timeout)
	defer cancel()
	return authv3.NewAuthorizationClient(cc).Check(ctx, req)
}

// classify follows ext_authz_grpc_impl.cc GrpcClientImpl::onSuccess /
// onFailure: a failed call is an error; status OK allows; error_response
// is an error; anything else denies.
func classify(resp *authv3.CheckResponse, err error) checkOutcome {
	switch {
	case err != nil:
		return outcomeError
	case resp.GetStatus().GetCode() == int32(codes.OK):
		return outcomeOK
	case resp.GetErrorResponse() != nil:
		return outcomeError
	default:
		return outcomeDenied
	}
}

// ingestMetadata follows ext_authz.cc onComplete: non-empty dynamic
// metadata (OkHttpResponse.dynamic_metadata, deprecated, overrides
// CheckResponse.dynamic_metadata) is stored under envoy.filters.http.ext_authz,
// with ext_authz_duration (ms) added on OK, unless
// enable_dynamic_metadata_ingestion is false.
func (f *extAuthz) ingestMetadata(resp *authv3.CheckResponse, outcome checkOutcome, took time.Duration) {
	md := resp.GetDynamicMetadata()
	if ok := resp.GetOkResponse(); ok != nil && ok.GetDynamicMetadata() != nil { //nolint:staticcheck // deprecated field still honoured by Envoy
		md = ok.GetDynamicMetadata() //nolint:staticcheck
	}
	if len(md.GetFields()) == 0 || !f.cfg.ingestMetadata {
		return
	}
	v := &structpb.Struct{Fields: map[string]*structpb.Value{}}
	for k, fv := range md.GetFields() {
		v.Fields[k] = fv
	}
	if outcome == outcomeOK {
		v.Fields["ext_authz_duration"] = structpb.NewNumberValue(float64(took.Milliseconds()))
	}
	f.s.setDynamicMetadata(authzNamespace, v)
}

// applyOK applies an OkHttpResponse (ext_authz.cc onComplete, case OK).
func (f *extAuthz) applyOK(h *headerMap, ok *authv3.OkHttpResponse) error {
	invalid := &localReply{status: http.StatusInternalServerError, details: "ext_authz_invalid"}
	ops := toAuthzOps(ok.GetHeaders(), false)
	if f.cfg.clearRouteCache && f.routeAffecting(ok, ops) {
		// ext_authz.proto clear_route_cache: cleared when the field is true,
		// the status is OK and the response sets, appends or removes a
		// request header or mutates a query parameter (only the headers in
		// clear_route_cache_headers count when that list is set).
		defer f.s.clearRouteCache()
	}
	for _, op := range ops {
		if f.cfg.validateMutations && (!validHeaderName(op.key) || !validHeaderValue(op.value)) {
			return invalid
		}
		if f.cfg.rules != nil {
			cop := opSet
			if op.action == actAppend && h.has(op.key) {
				cop = opAppend
			}
			switch f.cfg.rules.check(cop, op.key, op.value) {
			case checkIgnore:
				continue
			case checkFail:
				return invalid
			}
		}
		op.apply(h)
	}
	for _, k := range ok.GetHeadersToRemove() {
		k = strings.ToLower(k)
		if f.cfg.validateMutations && !validHeaderName(k) {
			continue
		}
		// OkHttpResponse.headers_to_remove: "Pseudo headers (such as
		// :authority, :method, :path etc), as well as the header Host, may
		// not be removed ... these special headers will be ignored."
		if f.cfg.rules == nil {
			if isRemovableHeader(k) {
				h.remove(k)
			}
			continue
		}
		switch f.cfg.rules.check(opRemove, k, "") {
		case checkOK:
			h.remove(k)
		case checkFail:
			return invalid
		}
	}
	f.respOps = toAuthzOps(ok.GetResponseHeadersToAdd(), true)
	if f.cfg.validateMutations {
		for _, op := range f.respOps {
			if !validHeaderName(op.key) || !validHeaderValue(op.value) {
				return invalid
			}
		}
	}
	if len(ok.GetQueryParametersToSet()) > 0 || len(ok.GetQueryParametersToRemove()) > 0 {
		h.set(":path", mutateQuery(h.value(":path"), ok))
	}
	return nil
}

func (f *extAuthz) routeAffecting(ok *authv3.OkHttpResponse, ops []authzHeaderOp) bool {
	if len(ok.GetQueryParametersToSet()) > 0 || len(ok.GetQueryParametersToRemove()) > 0 {
		return true
	}
	if f.cfg.clearRouteHeaders == nil {
		return len(ops) > 0 || len(ok.GetHeadersToRemove()) > 0
	}
	for _, op := range ops {
		if f.cfg.clearRouteHeaders[op.key] {
			return true
		}
	}
	for _, k := range ok.GetHeadersToRemove() {
		if f.cfg.clearRouteHeaders[strings.ToLower(k)] {
			return true
		}
	}
	return false
}

// mutateQuery follows ext_authz.cc: query_parameters_to_set overwrite and
// query_parameters_to_remove drop parameters of :path, which is then
// regenerated (Http::Utility::QueryParamsMulti, keys in sorted order).
func mutateQuery(path string, ok *authv3.OkHttpResponse) string {
	base, raw, _ := strings.Cut(path, "?")
	params := map[string][]string{}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		params[k] = append(params[k], v)
	}
	for _, q := range ok.GetQueryParametersToSet() {
		params[q.GetKey()] = []string{q.GetValue()}
	}
	for _, k := range ok.GetQueryParametersToRemove() {
		delete(params, k)
	}
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		for _, v := range params[k] {
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		return base
	}
	return base + "?" + strings.Join(parts, "&")
}

// deniedReply builds the local reply for a DeniedHttpResponse (denied or
// error): its status (or def), body (truncated to
// max_denied_response_body_bytes) and headers — ext_authz.cc first removes
// every named header from the reply, then adds each value.
func (f *extAuthz) deniedReply(d *authv3.DeniedHttpResponse, def int, details string) error {
	status := def
	if c := int(d.GetStatus().GetCode()); c > 0 {
		status = c
	}
	body := d.GetBody()
	if f.cfg.maxDeniedBody > 0 && len(body) > f.cfg.maxDeniedBody {
		body = body[:f.cfg.maxDeniedBody]
	}
	hdrs := &headerMap{}
	for _, op := range toAuthzOps(d.GetHeaders(), true) {
		if f.cfg.validateMutations && (!validHeaderName(op.key) || !validHeaderValue(op.value)) {
			return &localReply{status: http.StatusInternalServerError, details: "ext_authz_invalid"}
		}
		hdrs.add(op.key, op.value)
	}
	return &localReply{status: status, body: body, headers: hdrs, details: details}
}

// encodeHeaders adds OkHttpResponse.response_headers_to_add to the
// downstream response (ext_authz.cc encodeHeaders).
func (f *extAuthz) encodeHeaders(r *response) error {
	for _, op := range f.respOps {
		op.apply(r.headers)
	}
	return nil
}

func (f *extAuthz) onDestroy() {}
