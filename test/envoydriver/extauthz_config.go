package envoydriver

import (
	"errors"
	"fmt"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// defaultAuthzTimeout is ext_authz.proto ExtAuthz.grpc_service: "The
// default timeout is 200ms" (GrpcService.timeout when unset).
const defaultAuthzTimeout = 200 * time.Millisecond

// authzConfig is a compiled ExtAuthz filter config.
type authzConfig struct {
	target  grpcTarget
	timeout time.Duration

	failureModeAllow  bool
	failureHeaderAdd  bool
	statusOnError     int
	withBody          bool
	maxRequestBytes   int
	allowPartial      bool
	packAsBytes       bool
	clearRouteCache   bool
	clearRouteHeaders map[string]bool
	validateMutations bool
	rules             *mutationChecker // decoder_header_mutation_rules, nil when unset
	encodeRaw         bool
	allowed           listMatcher
	disallowed        listMatcher
	ingestMetadata    bool
	maxDeniedBody     int

	metadataNS, typedMetadataNS           []string
	routeMetadataNS, routeTypedMetadataNS []string
}

func compileExtAuthz(tc *anypb.Any, c *compiled) (*authzConfig, error) {
	m := &extauthzv3.ExtAuthz{}
	if err := tc.UnmarshalTo(m); err != nil {
		return nil, err
	}
	if err := m.ValidateAll(); err != nil {
		return nil, err
	}
	if m.GetGrpcService() == nil {
		return nil, errors.New("only grpc_service is supported (http_service is not)")
	}
	// Config::Utility::checkTransportVersion: "V2 (and AUTO) xDS transport
	// protocol versions are deprecated"; Envoy rejects anything but V3.
	if m.GetTransportApiVersion() != corev3.ApiVersion_V3 {
		return nil, fmt.Errorf("transport_api_version is %s; Envoy requires V3", m.GetTransportApiVersion())
	}
	switch {
	case m.GetFilterEnabled() != nil || m.GetFilterEnabledMetadata() != nil || m.GetDenyAtDisable() != nil:
		return nil, errors.New("filter_enabled, filter_enabled_metadata and deny_at_disable are not supported")
	case m.GetShadowMode():
		return nil, errors.New("shadow_mode is not supported")
	case m.GetIncludePeerCertificate() || m.GetIncludeTlsSession():
		return nil, errors.New("include_peer_certificate / include_tls_session need TLS, which is not supported")
	}
	t, err := resolveGrpcService(m.GetGrpcService(), c)
	if err != nil {
		return nil, err
	}
	a := &authzConfig{
		target:            t,
		timeout:           defaultAuthzTimeout,
		failureModeAllow:  m.GetFailureModeAllow(),
		failureHeaderAdd:  m.GetFailureModeAllowHeaderAdd(),
		statusOnError:     errorStatus(m.GetStatusOnError().GetCode(), 403),
		clearRouteCache:   m.GetClearRouteCache(),
		validateMutations: m.GetValidateMutations(),
		encodeRaw:         m.GetEncodeRawHeaders(),
		// ext_authz.proto enable_dynamic_metadata_ingestion: "Defaults to true".
		ingestMetadata:       m.GetEnableDynamicMetadataIngestion() == nil || m.GetEnableDynamicMetadataIngestion().GetValue(),
		maxDeniedBody:        int(m.GetMaxDeniedResponseBodyBytes()),
		metadataNS:           m.GetMetadataContextNamespaces(),
		typedMetadataNS:      m.GetTypedMetadataContextNamespaces(),
		routeMetadataNS:      m.GetRouteMetadataContextNamespaces(),
		routeTypedMetadataNS: m.GetRouteTypedMetadataContextNamespaces(),
	}
	if m.GetGrpcService().GetTimeout() != nil {
		a.timeout = t.timeout
	}
	// FilterConfig: withRequestBody() is max_request_bytes_ > 0.
	if wb := m.GetWithRequestBody(); wb != nil && wb.GetMaxRequestBytes() > 0 {
		a.withBody = true
		a.maxRequestBytes = int(wb.GetMaxRequestBytes())
		a.allowPartial = wb.GetAllowPartialMessage()
		a.packAsBytes = wb.GetPackAsBytes()
	}
	if len(m.GetClearRouteCacheHeaders()) > 0 {
		a.clearRouteHeaders = map[string]bool{}
		for _, h := range m.GetClearRouteCacheHeaders() {
			a.clearRouteHeaders[strings.ToLower(h)] = true
		}
	}
	if r := m.GetDecoderHeaderMutationRules(); r != nil {
		if a.rules, err = compileMutationRules(r); err != nil {
			return nil, fmt.Errorf("decoder_header_mutation_rules: %w", err)
		}
	}
	if a.allowed, err = compileListMatcher(m.GetAllowedHeaders()); err != nil {
		return nil, fmt.Errorf("allowed_headers: %w", err)
	}
	if a.disallowed, err = compileListMatcher(m.GetDisallowedHeaders()); err != nil {
		return nil, fmt.Errorf("disallowed_headers: %w", err)
	}
	return a, nil
}

// errorStatus follows the filters' toErrorCode: a status_on_error outside
// 100..511 (including unset, 0) falls back to the filter's default.
func errorStatus(code typev3.StatusCode, def int) int {
	n := int(code)
	if n >= 100 && n <= 511 {
		return n
	}
	return def
}
