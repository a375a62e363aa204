package envoydriver

import (
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// defaultConnectTimeout is cluster.proto Cluster.connect_timeout: "The
// default is 5s."
const defaultConnectTimeout = 5 * time.Second

// cluster is a compiled Cluster with its endpoints.
type cluster struct {
	name           string
	endpoints      []endpoint
	connectTimeout time.Duration
	next           atomic.Uint64
	// tls is the cluster's TLS transport socket (upstreamtls.go), nil for
	// plaintext (Envoy's default raw_buffer).
	tls *upstreamTLS
	// breaker is the cluster's circuit breaker (circuitbreaker.go).
	breaker breaker
}

type endpoint struct {
	addr     string // host:port
	hostname string // Endpoint.hostname, used by auto_host_rewrite
}

// compileCluster accepts STATIC, STRICT_DNS and LOGICAL_DNS clusters whose
// load_assignment lists socket addresses; EDS and other discovery types need
// an xDS client and are rejected. A transport_socket may be the
// envoy.transport_sockets.tls subset upstreamtls.go implements (used by
// gRPC services and ADS); transport_socket_matches is refused.
func compileCluster(c *clusterv3.Cluster) (*cluster, error) {
	if err := c.ValidateAll(); err != nil {
		return nil, fmt.Errorf("cluster %q: %w", c.GetName(), err)
	}
	switch c.GetType() {
	case clusterv3.Cluster_STATIC, clusterv3.Cluster_STRICT_DNS, clusterv3.Cluster_LOGICAL_DNS:
	default:
		if c.GetClusterType() != nil {
			return nil, fmt.Errorf("cluster %q: cluster_type extensions are not supported", c.GetName())
		}
		return nil, fmt.Errorf("cluster %q: discovery type %s is not supported", c.GetName(), c.GetType())
	}
	if len(c.GetTransportSocketMatches()) > 0 {
		return nil, fmt.Errorf("cluster %q: transport_socket_matches is not supported", c.GetName())
	}
	cl := &cluster{name: c.GetName(), connectTimeout: defaultConnectTimeout}
	var err error
	if ts := c.GetTransportSocket(); ts != nil {
		t, err := compileTransportSocket(ts)
		if err != nil {
			return nil, fmt.Errorf("cluster %q: %w", c.GetName(), err)
		}
		cl.tls = t
	}
	if cl.breaker.limits, err = compileBreakers(c); err != nil {
		return nil, fmt.Errorf("cluster %q: %w", c.GetName(), err)
	}
	if c.GetConnectTimeout() != nil {
		cl.connectTimeout = c.GetConnectTimeout().AsDuration()
	}
	for i, lle := range c.GetLoadAssignment().GetEndpoints() {
		for j, lbe := range lle.GetLbEndpoints() {
			ep := lbe.GetEndpoint()
			if ep == nil {
				return nil, fmt.Errorf("cluster %q endpoints[%d].lb_endpoints[%d]: only endpoint is supported", c.GetName(), i, j)
			}
			sa := ep.GetAddress().GetSocketAddress()
			if sa == nil {
				return nil, fmt.Errorf("cluster %q endpoints[%d].lb_endpoints[%d]: address must be a socket_address", c.GetName(), i, j)
			}
			addr, err := socketAddr(sa)
			if err != nil {
				return nil, fmt.Errorf("cluster %q endpoints[%d].lb_endpoints[%d]: %w", c.GetName(), i, j, err)
			}
			cl.endpoints = append(cl.endpoints, endpoint{addr: addr, hostname: ep.GetHostname()})
		}
	}
	if len(cl.endpoints) == 0 {
		return nil, fmt.Errorf("cluster %q: load_assignment has no endpoints", c.GetName())
	}
	return cl, nil
}

func socketAddr(sa *corev3.SocketAddress) (string, error) {
	if sa.GetProtocol() != corev3.SocketAddress_TCP {
		return "", fmt.Errorf("socket address protocol %s is not supported", sa.GetProtocol())
	}
	port, ok := sa.GetPortSpecifier().(*corev3.SocketAddress_PortValue)
	if !ok {
		return "", fmt.Errorf("socket address %q needs port_value", sa.GetAddress())
	}
	return net.JoinHostPort(sa.GetAddress(), strconv.Itoa(int(port.PortValue))), nil
}

// pick chooses an endpoint round robin (cluster.proto lb_policy defaults to
// ROUND_ROBIN).
func (c *cluster) pick() endpoint {
	n := c.next.Add(1) - 1
	return c.endpoints[n%uint64(len(c.endpoints))]
}
