package extauthz

import (
	"context"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// PartialBodyHeader is set by Envoy's ext_authz filter on the check request
// when with_request_body is on: "true" when the body was cut at
// max_request_bytes (allow_partial_message).
const PartialBodyHeader = "x-envoy-auth-partial-body"

// Server adapts the Authorizer to envoy.service.auth.v3.Authorization.
// airlock serves it through Register (the request and response read and
// written straight from their bytes); as an authv3.AuthorizationServer
// (the generated messages) it answers the same.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	A *Authorizer
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// Check implements the ext_authz gRPC service.
func (s *Server) Check(ctx context.Context, in *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	defer s.A.enter()()
	req := FromCheckRequest(in)
	ctx = s.A.tracing.Incoming(ctx, req.Headers)
	return toCheckResponse(s.A.Check(ctx, req)), nil
}

// FromCheckRequest reads the HTTP request out of Envoy's AttributeContext:
// the headers map (lower-cased, pseudo-headers, duplicates joined), or
// header_map when encode_raw_headers is on; body or raw_body (pack_as_bytes).
// decodeCheckRequest reads the same from a CheckRequest's bytes.
func FromCheckRequest(in *authv3.CheckRequest) *Request {
	h := in.GetAttributes().GetRequest().GetHttp()
	req := &Request{
		Method:            h.GetMethod(),
		Path:              h.GetPath(),
		Host:              h.GetHost(),
		Scheme:            h.GetScheme(),
		Headers:           h.GetHeaders(),
		ContextExtensions: in.GetAttributes().GetContextExtensions(),
	}
	if hm := h.GetHeaderMap(); req.Headers == nil && hm != nil {
		req.Headers = make(map[string]string, len(hm.GetHeaders()))
		for _, hv := range hm.GetHeaders() {
			v := string(hv.GetRawValue())
			if v == "" {
				v = hv.GetValue()
			}
			if prev, ok := req.Headers[hv.GetKey()]; ok {
				v = prev + "," + v
			}
			req.Headers[hv.GetKey()] = v
		}
	}
	if req.Headers == nil {
		req.Headers = map[string]string{}
	}
	if raw := h.GetRawBody(); len(raw) > 0 {
		req.Body = raw
	} else if b := h.GetBody(); b != "" {
		req.Body = []byte(b)
	}
	req.Truncated = req.Headers[PartialBodyHeader] == "true"
	if req.Method == "" {
		req.Method = req.Headers[":method"]
	}
	if req.Path == "" {
		req.Path = req.Headers[":path"]
	}
	return req
}

// toCheckResponse is the CheckResponse for r, which appendCheckResponse
// writes straight from r.
func toCheckResponse(r *Result) *authv3.CheckResponse {
	resp := &authv3.CheckResponse{}
	if r.Metadata != nil {
		// As structpb.NewStruct did: a value protobuf cannot carry
		// (invalid UTF-8) leaves the metadata out rather than fail the
		// answer.
		if md, err := r.Metadata.Struct(); err == nil {
			resp.DynamicMetadata = md
		}
	}
	if r.Status == 200 && !r.Denied {
		resp.Status = &rpcstatus.Status{Code: int32(code.Code_OK)}
		ok := &authv3.OkHttpResponse{HeadersToRemove: r.RemoveHeaders, Headers: headerOptions(r.SetHeaders, 0)}
		resp.HttpResponse = &authv3.CheckResponse_OkResponse{OkResponse: ok}
		return resp
	}
	resp.Status = &rpcstatus.Status{Code: int32(deniedCode(r.Status)), Message: r.Reason}
	denied := &authv3.DeniedHttpResponse{
		Status: &typev3.HttpStatus{Code: typev3.StatusCode(r.Status)},
		Body:   string(r.Body),
	}
	denied.Headers = headerOptions(r.ResponseHeaders, 1)
	denied.Headers = append(denied.Headers, headerOption(Header{wire.HeaderDecisionID, r.DecisionID}))
	resp.HttpResponse = &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied}
	return resp
}

// deniedCode is the gRPC status of a denial with HTTP status status
// (Envoy answers the client with the HTTP status; the code is for logs
// and metrics).
func deniedCode(status int) code.Code {
	switch status {
	case 401:
		return code.Code_UNAUTHENTICATED
	case 400, 405, 413, 415:
		return code.Code_INVALID_ARGUMENT
	case 404:
		return code.Code_NOT_FOUND
	}
	return code.Code_PERMISSION_DENIED
}

// headerOptions is headerOption of each of hs, allocated together (three
// allocations rather than two per header), with room for extra more.
func headerOptions(hs []Header, extra int) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		if extra == 0 {
			return nil
		}
		return make([]*corev3.HeaderValueOption, 0, extra)
	}
	opts := make([]corev3.HeaderValueOption, len(hs))
	vals := make([]corev3.HeaderValue, len(hs))
	out := make([]*corev3.HeaderValueOption, len(hs), len(hs)+extra)
	for i, h := range hs {
		vals[i].Key, vals[i].Value = h.Name, h.Value
		opts[i].Header = &vals[i]
		opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		out[i] = &opts[i]
	}
	return out
}

// headerOption overwrites the header (OkHttpResponse's append defaults to
// false, which Envoy treats as overwrite-if-exists-or-add).
func headerOption(h Header) *corev3.HeaderValueOption {
	return &corev3.HeaderValueOption{
		Header:       &corev3.HeaderValue{Key: h.Name, Value: h.Value},
		AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
	}
}
