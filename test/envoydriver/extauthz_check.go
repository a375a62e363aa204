package envoydriver

import (
	"net"
	"strconv"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// partialBodyHeader is Envoy's x-envoy-auth-partial-body
// (Filters::Common::ExtAuthz::Headers::EnvoyAuthPartialBody).
const partialBodyHeader = "x-envoy-auth-partial-body"

// checkRequest builds the CheckRequest as CheckRequestUtils::createHttpCheck
// does (source/extensions/filters/common/ext_authz/check_request_utils.cc).
func (f *extAuthz) checkRequest(h *headerMap, rt *route, ctxExt map[string]string, buffered bool, body []byte, maxBytes int) *authv3.CheckRequest {
	httpReq := &authv3.AttributeContext_HttpRequest{
		// setHttpRequest: id is the stream id; method, path (with the
		// query), host and scheme come from the pseudo-headers; size is
		// the bytes received so far; query and fragment stay empty.
		Id:       strconv.FormatUint(f.s.id, 10),
		Method:   sanitizeUTF8(h.value(":method")),
		Path:     sanitizeUTF8(h.value(":path")),
		Host:     sanitizeUTF8(h.value(":authority")),
		Scheme:   sanitizeUTF8(h.value(":scheme")),
		Size:     f.s.bytesReceived.Load(),
		Protocol: "HTTP/1.1",
	}
	if f.cfg.encodeRaw {
		// ext_authz.proto encode_raw_headers: HttpRequest.header_map with
		// raw values, one entry per header (no comma join).
		httpReq.HeaderMap = &corev3.HeaderMap{}
	} else {
		httpReq.Headers = make(map[string]string, len(h.entries)+1)
	}
	for _, e := range h.entries {
		// A client-sent x-envoy-auth-partial-body is skipped: it "could
		// interfere with internal use".
		if e.key == partialBodyHeader {
			continue
		}
		// disallowed_headers wins over allowed_headers; with neither set
		// every header is sent to a gRPC server.
		if f.cfg.disallowed != nil && f.cfg.disallowed.match(e.key) {
			continue
		}
		if f.cfg.allowed != nil && !f.cfg.allowed.match(e.key) {
			continue
		}
		if f.cfg.encodeRaw {
			httpReq.HeaderMap.Headers = append(httpReq.HeaderMap.Headers, &corev3.HeaderValue{Key: e.key, RawValue: []byte(e.value)})
			continue
		}
		// "Merge duplicate headers" with ",", values UTF-8 sanitized.
		v := sanitizeUTF8(e.value)
		if prev, ok := httpReq.Headers[e.key]; ok {
			httpReq.Headers[e.key] = prev + "," + v
		} else {
			httpReq.Headers[e.key] = v
		}
	}
	if buffered {
		// The body is the first max_request_bytes buffered; BufferSettings
		// pack_as_bytes selects raw_body over body; the partial-body header
		// says whether the body was cut.
		n := len(body)
		if n > maxBytes {
			n = maxBytes
		}
		if f.cfg.packAsBytes {
			httpReq.RawBody = append([]byte(nil), body[:n]...)
		} else {
			httpReq.Body = sanitizeUTF8(string(body[:n]))
		}
		partial := "false"
		if n != len(body) {
			partial = "true"
		}
		if f.cfg.encodeRaw {
			httpReq.HeaderMap.Headers = append(httpReq.HeaderMap.Headers, &corev3.HeaderValue{Key: partialBodyHeader, RawValue: []byte(partial)})
		} else {
			httpReq.Headers[partialBodyHeader] = partial
		}
	}
	attrs := &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: tcpAddress(f.s.remote), Service: sanitizeUTF8(h.value("x-envoy-downstream-service-cluster"))},
		Destination: &authv3.AttributeContext_Peer{Address: tcpAddress(f.s.local)},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(f.s.start),
			Http: httpReq,
		},
		ContextExtensions:    ctxExt,
		MetadataContext:      f.metadataContext(),
		RouteMetadataContext: routeMetadata(rt.metadata, f.cfg.routeMetadataNS, f.cfg.routeTypedMetadataNS),
	}
	return &authv3.CheckRequest{Attributes: attrs}
}

// metadataContext follows ext_authz.proto metadata_context_namespaces /
// typed_metadata_context_namespaces: matching request dynamic metadata is
// forwarded (the driver has no connection-level metadata).
func (f *extAuthz) metadataContext() *corev3.Metadata {
	md := &corev3.Metadata{}
	for _, ns := range f.cfg.metadataNS {
		if v := f.s.dynamicMetadata(ns); v != nil {
			if md.FilterMetadata == nil {
				md.FilterMetadata = map[string]*structpb.Struct{}
			}
			md.FilterMetadata[ns] = v
		}
	}
	return md
}

// routeMetadata follows ext_authz.proto route_metadata_context_namespaces
// and route_typed_metadata_context_namespaces: the selected route's
// metadata under those namespaces goes to AttributeContext.route_metadata_context.
func routeMetadata(m *corev3.Metadata, untyped, typed []string) *corev3.Metadata {
	out := &corev3.Metadata{}
	for _, ns := range untyped {
		if v, ok := m.GetFilterMetadata()[ns]; ok {
			if out.FilterMetadata == nil {
				out.FilterMetadata = map[string]*structpb.Struct{}
			}
			out.FilterMetadata[ns] = v
		}
	}
	for _, ns := range typed {
		if v, ok := m.GetTypedFilterMetadata()[ns]; ok {
			if out.TypedFilterMetadata == nil {
				out.TypedFilterMetadata = map[string]*anypb.Any{}
			}
			out.TypedFilterMetadata[ns] = v
		}
	}
	return out
}

// tcpAddress renders a peer as config.core.v3.Address
// (Network::Utility::addressToProtobufAddress).
func tcpAddress(a *net.TCPAddr) *corev3.Address {
	if a == nil {
		return nil
	}
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address:       a.IP.String(),
		PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(a.Port)},
	}}}
}
