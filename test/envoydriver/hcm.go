package envoydriver

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strings"

	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
)

// hcmSettings are the HttpConnectionManager fields the driver honours.
type hcmSettings struct {
	useRemoteAddress      bool
	skipXffAppend         bool
	generateRequestID     bool
	alwaysSetRequestID    bool
	serverName            string
	serverTransform       hcmv3.HttpConnectionManager_ServerHeaderTransformation
	via                   string
	stripMatchingHostPort bool
	stripAnyHostPort      bool
	enableTrailers        bool
	preserveExternalID    bool
	internalCIDRs         []netip.Prefix
	paths                 pathPolicy
	early                 []earlyMutation
	localReply            []*replyMapper
}

func compileHCMSettings(h *hcmv3.HttpConnectionManager) (hcmSettings, error) {
	s := hcmSettings{
		useRemoteAddress:      h.GetUseRemoteAddress().GetValue(),
		skipXffAppend:         h.GetSkipXffAppend(),
		generateRequestID:     h.GetGenerateRequestId() == nil || h.GetGenerateRequestId().GetValue(),
		alwaysSetRequestID:    h.GetAlwaysSetRequestIdInResponse(),
		serverName:            h.GetServerName(),
		serverTransform:       h.GetServerHeaderTransformation(),
		via:                   h.GetVia(),
		stripMatchingHostPort: h.GetStripMatchingHostPort(),
		stripAnyHostPort:      h.GetStripAnyHostPort(),
		enableTrailers:        h.GetHttpProtocolOptions().GetEnableTrailers(),
		preserveExternalID:    h.GetPreserveExternalRequestId(),
		paths:                 compilePathPolicy(h),
	}
	if iac := h.GetInternalAddressConfig(); iac != nil && len(iac.GetCidrRanges()) > 0 {
		s.internalCIDRs = []netip.Prefix{}
		for _, c := range iac.GetCidrRanges() {
			p, err := netip.ParseAddr(c.GetAddressPrefix())
			if err != nil {
				return s, fmt.Errorf("http_connection_manager internal_address_config: %w", err)
			}
			s.internalCIDRs = append(s.internalCIDRs, netip.PrefixFrom(p, int(c.GetPrefixLen().GetValue())))
		}
	}
	// http_connection_manager.proto server_name: "If not set, the default
	// is 'envoy'".
	if s.serverName == "" {
		s.serverName = "envoy"
	}
	switch h.GetCodecType() {
	case hcmv3.HttpConnectionManager_AUTO, hcmv3.HttpConnectionManager_HTTP1:
	default:
		return s, fmt.Errorf("http_connection_manager codec_type %s is not supported (HTTP/1.1 only)", h.GetCodecType())
	}
	var err error
	if s.early, err = compileEarlyMutations(h.GetEarlyHeaderMutationExtensions()); err != nil {
		return s, fmt.Errorf("http_connection_manager %w", err)
	}
	if s.localReply, err = compileLocalReply(h.GetLocalReplyConfig()); err != nil {
		return s, fmt.Errorf("http_connection_manager %w", err)
	}
	switch {
	case h.GetXffNumTrustedHops() > 0 || len(h.GetOriginalIpDetectionExtensions()) > 0:
		return s, fmt.Errorf("http_connection_manager xff_num_trusted_hops / original_ip_detection_extensions are not supported")
	case h.GetRequestIdExtension() != nil:
		return s, fmt.Errorf("http_connection_manager request_id_extension is not supported")
	}
	return s, nil
}

// hopByHop are the connection-specific headers Envoy's HTTP/1 codec and
// ConnectionManagerUtility::mutateRequestHeaders strip ("Clean proxy
// headers"), with te, which Envoy drops unless it is "trailers".
var hopByHop = map[string]bool{
	"connection": true, "keep-alive": true, "proxy-connection": true,
	"transfer-encoding": true, "upgrade": true,
}

// envoyControlHeaders are removed from requests that are not internal
// (ConnectionManagerUtility::cleanInternalHeaders).
var envoyControlHeaders = []string{
	"x-envoy-retriable-status-codes", "x-envoy-retriable-header-names", "x-envoy-retry-on",
	"x-envoy-retry-grpc-on", "x-envoy-max-retries", "x-envoy-upstream-alt-stat-name",
	"x-envoy-upstream-rq-timeout-ms", "x-envoy-upstream-rq-per-try-timeout-ms",
	"x-envoy-upstream-rq-timeout-alt-response", "x-envoy-expected-rq-timeout-ms",
	"x-envoy-force-trace", "x-envoy-ip-tags", "x-envoy-original-url", "x-envoy-hedge-on-per-try-timeout",
}

// requestHeaders builds the HCM's view of the downstream request: lower-cased
// names, pseudo-headers first, then what ConnectionManagerUtility::
// mutateRequestHeaders does. Regular headers are ordered by name (Go's
// net/http server does not keep arrival order across names).
func (s *hcmSettings) requestHeaders(r *http.Request, path, listenerPort string) *headerMap {
	h := &headerMap{entries: make([]header, 0, len(r.Header)+8)}
	host := r.Host
	if s.stripAnyHostPort {
		host = stripPort(host)
	} else if s.stripMatchingHostPort {
		if _, p, err := net.SplitHostPort(host); err == nil && p == listenerPort {
			host = stripPort(host)
		}
	}
	h.add(":authority", host)
	h.add(":path", path)
	h.add(":method", r.Method)
	keys := make([]string, 0, len(r.Header))
	for k := range r.Header {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		lk := strings.ToLower(k)
		// A client cannot claim x-envoy-internal ("Clean proxy headers").
		if hopByHop[lk] || lk == "host" || lk == "x-envoy-internal" {
			continue
		}
		for _, v := range r.Header[k] {
			switch {
			case lk == "te" && !strings.EqualFold(v, "trailers"):
				// Envoy keeps TE only as "trailers".
				continue
			case lk == "expect" && strings.EqualFold(v, "100-continue"):
				// Without proxy_100_continue Envoy answers 100-continue
				// itself and does not forward the expectation.
				continue
			}
			h.add(lk, v)
		}
	}
	remoteIP, _, _ := net.SplitHostPort(r.RemoteAddr)
	internal := false
	if s.useRemoteAddress {
		// use_remote_address: the connection's peer is the client; "if the
		// remote is loopback the local address is appended" — for this
		// loopback-only driver that is 127.0.0.1 as well.
		trusted := !h.has("x-forwarded-for")
		if !s.skipXffAppend {
			h.appendValue("x-forwarded-for", remoteIP)
		}
		h.set("x-forwarded-proto", "http")
		internal = trusted && s.isInternal(remoteIP)
	}
	// "If the x-forwarded-proto header is not set, set it here".
	if !h.has("x-forwarded-proto") {
		h.set("x-forwarded-proto", "http")
	}
	// :scheme comes from x-forwarded-proto when that is a valid scheme.
	scheme := h.value("x-forwarded-proto")
	if scheme != "http" && scheme != "https" {
		scheme = "http"
	}
	h.set(":scheme", scheme)
	edge := !internal && s.useRemoteAddress
	if internal {
		h.set("x-envoy-internal", "true")
	} else {
		if edge {
			h.remove("x-envoy-decorator-operation")
			h.remove("x-envoy-downstream-service-cluster")
			h.remove("x-envoy-downstream-service-node")
		}
		for _, k := range envoyControlHeaders {
			h.remove(k)
		}
	}
	if s.via != "" {
		h.appendValue("via", s.via)
	}
	if edge {
		h.set("x-envoy-external-address", remoteIP)
	}
	// generate_request_id: "Generate x-request-id for all edge requests,
	// or if there is none" (unless preserve_external_request_id).
	if s.generateRequestID && (!h.has("x-request-id") || (edge && !s.preserveExternalID)) {
		h.set("x-request-id", newUUID())
	}
	return h
}

// isInternal follows http_connection_manager.proto InternalAddressConfig:
// cidr_ranges when configured, otherwise RFC1918, RFC4193 and loopback
// addresses are internal.
func (s *hcmSettings) isInternal(ip string) bool {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	if s.internalCIDRs != nil {
		for _, p := range s.internalCIDRs {
			if p.Contains(addr) {
				return true
			}
		}
		return false
	}
	return addr.IsLoopback() || addr.IsPrivate()
}

// responseServerHeaders applies what ConnectionManagerImpl adds to every
// response after the encoder filters: the server header per
// server_header_transformation, and x-request-id when
// always_set_request_id_in_response.
func (s *hcmSettings) responseServerHeaders(h *headerMap, requestID string) {
	switch s.serverTransform {
	case hcmv3.HttpConnectionManager_OVERWRITE:
		h.set("server", s.serverName)
	case hcmv3.HttpConnectionManager_APPEND_IF_ABSENT:
		if !h.has("server") {
			h.set("server", s.serverName)
		}
	}
	if s.alwaysSetRequestID && requestID != "" {
		h.set("x-request-id", requestID)
	}
	if s.via != "" {
		h.appendValue("via", s.via)
	}
}

// newUUID returns a random RFC 4122 version 4 UUID, the format of Envoy's
// default request ID extension.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
