package envoydriver

import (
	"errors"
	"fmt"
	"time"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/types/known/anypb"
)

// defaultMessageTimeout is ext_proc.proto message_timeout: "If not
// configured, default is 200 milliseconds."
const defaultMessageTimeout = 200 * time.Millisecond

// procConfig is a compiled ExternalProcessor filter config.
type procConfig struct {
	target               grpcTarget
	failureModeAllow     bool
	mode                 *extprocv3.ProcessingMode
	messageTimeout       time.Duration
	maxMessageTimeout    time.Duration
	rules                *mutationChecker
	allowModeOverride    bool
	allowedOverrideModes []*extprocv3.ProcessingMode
	disableImmediate     bool
	fwdUntyped, fwdTyped []string
	recvUntyped          []string
	routeCacheAction     extprocv3.ExternalProcessor_RouteCacheAction
	sendBodyNoWait       bool
	statusOnError        int
	allowContentLength   bool
	allowed, disallowed  listMatcher
}

func compileExtProc(tc *anypb.Any, c *compiled) (*procConfig, error) {
	m := &extprocv3.ExternalProcessor{}
	if err := tc.UnmarshalTo(m); err != nil {
		return nil, err
	}
	if err := m.ValidateAll(); err != nil {
		return nil, err
	}
	// ext_proc config.cc verifyFilterConfig: "One and only one of
	// grpc_service or http_service must be configured"; the driver speaks
	// gRPC only.
	if m.GetGrpcService() == nil || m.GetHttpService() != nil {
		return nil, errors.New("only grpc_service is supported (http_service is not)")
	}
	switch {
	case m.GetObservabilityMode():
		return nil, errors.New("observability_mode is not supported")
	case len(m.GetRequestAttributes()) > 0 || len(m.GetResponseAttributes()) > 0:
		return nil, errors.New("request_attributes / response_attributes are not supported")
	case m.GetProcessingRequestModifier() != nil || m.GetOnProcessingResponse() != nil:
		return nil, errors.New("processing_request_modifier / on_processing_response are not supported")
	case m.GetDisableClearRouteCache() && m.GetRouteCacheAction() != extprocv3.ExternalProcessor_DEFAULT:
		return nil, errors.New("disable_clear_route_cache and route_cache_action can not be set to none-default at the same time")
	}
	mode := m.GetProcessingMode()
	if mode == nil {
		mode = &extprocv3.ProcessingMode{}
	}
	if err := verifyProcessingMode(mode, m.GetFailureModeAllow()); err != nil {
		return nil, err
	}
	t, err := resolveGrpcService(m.GetGrpcService(), c)
	if err != nil {
		return nil, err
	}
	p := &procConfig{
		target:               t,
		failureModeAllow:     m.GetFailureModeAllow(),
		mode:                 mode,
		messageTimeout:       defaultMessageTimeout,
		allowModeOverride:    m.GetAllowModeOverride(),
		allowedOverrideModes: m.GetAllowedOverrideModes(),
		disableImmediate:     m.GetDisableImmediateResponse(),
		fwdUntyped:           m.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(),
		fwdTyped:             m.GetMetadataOptions().GetForwardingNamespaces().GetTyped(),
		recvUntyped:          m.GetMetadataOptions().GetReceivingNamespaces().GetUntyped(),
		routeCacheAction:     m.GetRouteCacheAction(),
		sendBodyNoWait:       m.GetSendBodyWithoutWaitingForHeaderResponse(),
		statusOnError:        errorStatus(m.GetStatusOnError().GetCode(), 500),
		allowContentLength:   m.GetAllowContentLengthHeader(),
	}
	if m.GetMessageTimeout() != nil {
		p.messageTimeout = m.GetMessageTimeout().AsDuration()
	}
	if m.GetMaxMessageTimeout() != nil {
		p.maxMessageTimeout = m.GetMaxMessageTimeout().AsDuration()
	}
	if m.GetDisableClearRouteCache() {
		p.routeCacheAction = extprocv3.ExternalProcessor_RETAIN
	}
	rules := m.GetMutationRules()
	if rules == nil {
		rules = &mutationv3.HeaderMutationRules{}
	}
	if p.rules, err = compileMutationRules(rules); err != nil {
		return nil, fmt.Errorf("mutation_rules: %w", err)
	}
	if p.allowed, err = compileListMatcher(m.GetForwardRules().GetAllowedHeaders()); err != nil {
		return nil, fmt.Errorf("forward_rules.allowed_headers: %w", err)
	}
	if p.disallowed, err = compileListMatcher(m.GetForwardRules().GetDisallowedHeaders()); err != nil {
		return nil, fmt.Errorf("forward_rules.disallowed_headers: %w", err)
	}
	return p, nil
}

// verifyProcessingMode follows ext_proc config.cc verifyProcessingModeConfig.
func verifyProcessingMode(mode *extprocv3.ProcessingMode, failureModeAllow bool) error {
	fd := extprocv3.ProcessingMode_FULL_DUPLEX_STREAMED
	if mode.GetRequestBodyMode() == extprocv3.ProcessingMode_GRPC || mode.GetResponseBodyMode() == extprocv3.ProcessingMode_GRPC {
		return errors.New("processing_mode body mode GRPC is not implemented in Envoy")
	}
	if mode.GetRequestBodyMode() == fd && mode.GetRequestTrailerMode() != extprocv3.ProcessingMode_SEND {
		return errors.New("if the ext_proc filter has the request_body_mode set to FULL_DUPLEX_STREAMED, then the request_trailer_mode has to be set to SEND")
	}
	if mode.GetResponseBodyMode() == fd && mode.GetResponseTrailerMode() != extprocv3.ProcessingMode_SEND {
		return errors.New("if the ext_proc filter has the response_body_mode set to FULL_DUPLEX_STREAMED, then the response_trailer_mode has to be set to SEND")
	}
	if (mode.GetRequestBodyMode() == fd || mode.GetResponseBodyMode() == fd) && failureModeAllow {
		return errors.New("if the ext_proc filter has either the request_body_mode or the response_body_mode set to FULL_DUPLEX_STREAMED, then the failure_mode_allow has to be left as false")
	}
	return nil
}

// checkExtProcPerRoute rejects ExtProcOverrides fields the driver does not
// implement.
func checkExtProcPerRoute(pr *extprocv3.ExtProcPerRoute) error {
	o := pr.GetOverrides()
	switch {
	case o == nil:
		return nil
	case o.GetGrpcService() != nil:
		return errors.New("overrides.grpc_service is not supported")
	case o.GetAsyncMode():
		return errors.New("overrides.async_mode is not supported")
	case len(o.GetRequestAttributes()) > 0 || len(o.GetResponseAttributes()) > 0:
		return errors.New("overrides.request_attributes / response_attributes are not supported")
	case o.GetProcessingRequestModifier() != nil:
		return errors.New("overrides.processing_request_modifier is not supported")
	}
	if o.GetProcessingMode() != nil {
		return verifyProcessingMode(o.GetProcessingMode(), false)
	}
	return nil
}
