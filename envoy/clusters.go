package envoy

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	endpointv3 "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Names of the clusters (ClusterProc is in ext_proc.go).
const (
	ClusterAuthz = "airlock_authz"
	ClusterHTTP  = "airlock_http"
	// ClusterXDS is the bootstrap's static cluster for airlock's ADS server.
	ClusterXDS = "airlock_xds"
	// TargetClusterPref + a target's name is the target's cluster.
	TargetClusterPref = "mcp_"
)

// httpProtocolOptions is the typed_extension_protocol_options key of
// upstream HTTP settings.
const httpProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"

// clusters are a cluster per airlock service that is on, then one per
// target; airlock's gRPC services get mutual TLS when m.TLS is set.
func (m *Model) clusters() ([]*clusterv3.Cluster, error) {
	var cs []*clusterv3.Cluster
	streams := m.Breakers.Streams
	for _, s := range []struct {
		name, field, addr string
		grpc              bool
		breaker           uint32
	}{
		{ClusterAuthz, "listen.authz", m.Services.Authz, true, m.Breakers.Authz},
		{ClusterProc, "listen.proc", m.Services.Proc, true, streams},
		{ClusterHTTP, "listen.http", m.Services.HTTP, false, streams},
	} {
		if s.addr == "" && s.name != ClusterAuthz {
			continue
		}
		c, err := cluster(s.name, "http://"+s.addr, s.grpc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.field, err)
		}
		if s.grpc && m.TLS != nil {
			c.TransportSocket = m.TLS.transportSocket() // mutual TLS to airlock (tls.go)
		}
		c.CircuitBreakers = circuitBreakers(s.breaker)
		cs = append(cs, c)
	}
	for _, t := range m.Targets {
		c, err := cluster(TargetClusterPref+t.Name, t.Upstream.String(), false)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		c.CircuitBreakers = circuitBreakers(streams)
		cs = append(cs, c)
	}
	return cs, nil
}

// Envoy's circuit-breaker defaults, for a cluster none is configured on
// (source/common/upstream/upstream_impl.cc,
// ClusterInfoImpl::ResourceManagers::load: 1024 connections, pending
// requests and requests, 3 retries).
const (
	envoyDefaultBreaker = 1024
	envoyDefaultRetries = 3
)

// circuitBreakers sizes a cluster's default-priority breaker to n: at
// most n requests in flight, n connections and n requests waiting for a
// connection (an HTTP/1 upstream needs a connection per request; airlock's
// gRPC clusters multiplex on few, but all of a burst wait as pending for
// the first). Past it Envoy refuses at once: the router answers 503 with
// x-envoy-overloaded (response flag UO) and counts upstream_rq_overflow /
// upstream_rq_pending_overflow; for ext_authz's and ext_proc's gRPC
// clients the overflow is a failed call, which airlock's fail-closed
// filters turn into a refusal (source/common/router/router.cc,
// source/common/upstream/resource_manager_impl.h). Retries keep Envoy's
// default (airlock configures none). track_remaining exports
// circuit_breakers.default.remaining_rq (and _cx, _pending) so an
// operator can alert before a breaker trips.
func circuitBreakers(n uint32) *clusterv3.CircuitBreakers {
	return &clusterv3.CircuitBreakers{Thresholds: []*clusterv3.CircuitBreakers_Thresholds{{
		Priority:           corev3.RoutingPriority_DEFAULT,
		MaxConnections:     wrapperspb.UInt32(n),
		MaxPendingRequests: wrapperspb.UInt32(n),
		MaxRequests:        wrapperspb.UInt32(n),
		MaxRetries:         wrapperspb.UInt32(envoyDefaultRetries),
		TrackRemaining:     true,
	}}}
}

// cluster is a STRICT_DNS cluster for one URL; grpc clusters speak HTTP/2.
func cluster(name, rawURL string, grpc bool) (*clusterv3.Cluster, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	port, err := strconv.Atoi(portOf(u))
	if err != nil {
		return nil, fmt.Errorf("%q: bad port", rawURL)
	}
	c := &clusterv3.Cluster{
		Name:                 name,
		ConnectTimeout:       durationpb.New(2 * time.Second),
		ClusterDiscoveryType: &clusterv3.Cluster_Type{Type: clusterv3.Cluster_STRICT_DNS},
		DnsLookupFamily:      clusterv3.Cluster_V4_PREFERRED,
		LoadAssignment: &endpointv3.ClusterLoadAssignment{
			ClusterName: name,
			Endpoints: []*endpointv3.LocalityLbEndpoints{{LbEndpoints: []*endpointv3.LbEndpoint{{
				HostIdentifier: &endpointv3.LbEndpoint_Endpoint{Endpoint: &endpointv3.Endpoint{Address: socketAddress(host, port)}},
			}}}},
		},
	}
	if grpc {
		c.TypedExtensionProtocolOptions = map[string]*anypb.Any{
			httpProtocolOptions: mustAny(http2Options(nil)),
		}
	}
	if u.Scheme == "https" {
		c.TransportSocket = &corev3.TransportSocket{
			Name: TLSTransportSocket,
			ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{
				Sni: host,
				CommonTlsContext: &tlsv3.CommonTlsContext{ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{
					ValidationContext: &tlsv3.CertificateValidationContext{
						TrustedCa: &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: "/etc/ssl/certs/ca-certificates.crt"}},
						MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
							SanType: tlsv3.SubjectAltNameMatcher_DNS,
							Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: host}},
						}},
					},
				}},
			})},
		}
	}
	return c, nil
}

// http2Options make a cluster speak HTTP/2 (gRPC), with keepalive if set.
func http2Options(keepalive *corev3.KeepaliveSettings) *httpv3.HttpProtocolOptions {
	return &httpv3.HttpProtocolOptions{
		UpstreamProtocolOptions: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_{ExplicitHttpConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig{
			ProtocolConfig: &httpv3.HttpProtocolOptions_ExplicitHttpConfig_Http2ProtocolOptions{Http2ProtocolOptions: &corev3.Http2ProtocolOptions{
				ConnectionKeepalive: keepalive,
			}},
		}},
	}
}
