package envoy

import (
	"fmt"
	"net"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// ListenerName names the listener agents connect to.
const ListenerName = "airlock"

// connectionManager is the HTTP connection manager without its route
// specifier: the static listener carries the routes inline, the ADS
// listener names its scoped routes (scopeRouting). ads selects the ADS
// flavour of the filters (httpFilters).
func (m *Model) connectionManager(ads bool) *hcmv3.HttpConnectionManager {
	return &hcmv3.HttpConnectionManager{
		StatPrefix: "airlock",
		CodecType:  hcmv3.HttpConnectionManager_AUTO,
		// Targets are chosen by path: normalize it before any route or policy
		// sees it, and refuse (400) a path with an escaped slash (%2F, %5C)
		// outright rather than redirect: no second reading of a path.
		NormalizePath:                wrapperspb.Bool(true),
		MergeSlashes:                 true,
		PathWithEscapedSlashesAction: hcmv3.HttpConnectionManager_REJECT_REQUEST,
		// SSE streams stay open; no whole-stream timeout, but idle ones end.
		StreamIdleTimeout: durationpb.New(5 * time.Minute),
		HttpFilters:       m.httpFilterChain(ads),
	}
}

// listener wraps an HTTP connection manager in the listener on m.Listen.
func (m *Model) listener(hcm *hcmv3.HttpConnectionManager) (*listenerv3.Listener, error) {
	host, portStr, err := net.SplitHostPort(m.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: %w", m.Listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("listen address %q: bad port", m.Listen)
	}
	return &listenerv3.Listener{
		Name: ListenerName,
		// Each stream's buffer limit, both ways: room for a whole request
		// or response body up to its limit (bufferLimit).
		PerConnectionBufferLimitBytes: wrapperspb.UInt32(m.BufferLimit),
		Address:                       socketAddress(host, port),
		FilterChains: []*listenerv3.FilterChain{{
			Filters: []*listenerv3.Filter{{
				Name:       "envoy.filters.network.http_connection_manager",
				ConfigType: &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(hcm)},
			}},
		}},
	}, nil
}

func socketAddress(host string, port int) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: host, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: uint32(port)},
	}}}
}
