package envoy

import (
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/airlock-mcp/airlock/internal/config"
)

// Model is everything the rendered Envoy configuration depends on, free
// of Envoy types: built once (NewModel) from the configuration and the
// addresses actually bound, then rendered as the static resources
// (Static), the ADS data path (Dynamic) or one grant's scope
// (GrantScope). The renderer reads nothing else, so two equal models
// render the same bytes.
type Model struct {
	// Listen is where Envoy accepts agents' HTTP (host:port).
	Listen string
	// Services are airlock's own listeners Envoy reaches.
	Services Services
	// TLS is Envoy's side of mutual TLS to airlock's gRPC services
	// (listen.tls.envoy); nil when listen.tls is off.
	TLS *TLS
	// AuthzTimeout is how long Envoy waits for Check.
	AuthzTimeout time.Duration
	// MaxRequestBytes is the most of a request body ext_authz is sent
	// (limits.max_request_bytes).
	MaxRequestBytes uint32
	// BufferLimit is the listener's per_connection_buffer_limit_bytes,
	// which is also each stream's buffer limit, for the request and the
	// response alike (bufferLimit).
	BufferLimit uint32
	// Breakers size the clusters' circuit breakers (limits.max_held_calls,
	// limits.max_streams).
	Breakers Breakers
	// Targets are the MCP targets, in configuration order.
	Targets []Target
}

// Services are the host:port addresses of airlock's services Envoy
// reaches; "" means the service is off (Authz is always on).
type Services struct {
	Authz, Proc, HTTP string
}

// TLS names Envoy's files for mutual TLS to airlock (paths on Envoy's
// side) and the name airlock's certificate is checked against.
type TLS struct {
	CertFile, KeyFile, CAFile, ServerName string
}

// Target is one MCP target as Envoy routes it.
type Target struct {
	Name string
	// Path is the gateway path of the MCP endpoint, matched exactly.
	Path string
	// Upstream is the MCP server's URL (validated by config).
	Upstream *url.URL
}

// Breakers are the circuit-breaker sizes of the generated clusters: the
// most requests (and connections, and requests waiting for one) Envoy
// keeps open to each at once before it refuses more (clusters.go).
type Breakers struct {
	// Authz: concurrent Checks (held calls plus those answered at once).
	Authz uint32
	// Streams: concurrent MCP exchanges, SSE included — each keeps an
	// ext_proc stream (airlock_proc) and an upstream request (the
	// target's cluster) open for its life; airlock_http gets the same.
	Streams uint32
}

// Bound are the addresses the rendered configuration must point at where
// they differ from the configuration: where Envoy accepts agents, and
// where airlock's services are actually bound (a config may ask for port
// 0). Empty fields keep what the configuration says.
type Bound struct {
	// ListenAddress is where Envoy accepts agents' HTTP (default: 0.0.0.0
	// and public_url's port).
	ListenAddress string
	// Authz, Proc and HTTP are where airlock's services listen.
	Authz, Proc, HTTP string
}

// Options is Bound by its earlier name, for callers that only set
// ListenAddress.
type Options = Bound

// defaultBufferLimit is Envoy's per_connection_buffer_limit_bytes when
// unset (listener.proto).
const defaultBufferLimit = 1 << 20

// bufferLimit is the listener's per_connection_buffer_limit_bytes for a
// request limit req and a response limit resp: room for the larger body.
//
// Envoy gives each HTTP stream one buffer limit, the connection's
// (conn_manager_impl.cc newStream: ActiveStream(..., the stream's
// bufferLimit())), and uses it both ways (filter_manager.cc:
// decoderBufferLimit and encoderBufferLimit both return buffer_limit_).
// ext_authz lowers it to max_request_bytes only without
// allow_partial_message (ext_authz.cc decodeHeaders); airlock sets
// allow_partial_message, so the limit stays the listener's. Over it a
// buffered request gets Envoy's 413 and a buffered response Envoy's
// plain-text 500 (filter_manager.cc requestDataTooLarge /
// responseDataTooLarge), and ext_proc's BUFFERED_PARTIAL sends what it
// holds once its queue is over it (ext_proc.cc, processor_state.h
// queueOverHighLimit). So the limit must hold a whole request body up to
// max_request_bytes (ext_proc buffers it after ext_authz) and a whole
// response up to the response limit (masked whole); a response beyond is
// seen by airlock, which answers it with a JSON-RPC error (extproc).
// Never below Envoy's own default.
func bufferLimit(req, resp int) uint32 {
	return uint32(max(defaultBufferLimit, req, resp))
}

// StreamBufferLimit is the buffer limit of each HTTP stream Envoy
// renders for cfg (the listener's per_connection_buffer_limit_bytes, see
// bufferLimit): the most of a body Envoy holds, and so the most of one it
// sends airlock in one ext_proc message.
func StreamBufferLimit(cfg *config.Config) uint32 {
	return bufferLimit(cfg.Limits.MaxRequestBytes, cfg.ResponseLimit())
}

// NewModel builds the model of cfg as served with the addresses in b.
func NewModel(cfg *config.Config, b Bound) (*Model, error) {
	addr := b.ListenAddress
	if addr == "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil {
			return nil, fmt.Errorf("public_url: %w", err)
		}
		addr = net.JoinHostPort("0.0.0.0", portOf(u))
	}
	tls, err := envoyTLS(cfg)
	if err != nil {
		return nil, err
	}
	m := &Model{
		Listen: addr,
		Services: Services{
			Authz: advertised(cfg.Listen.Advertise, or(b.Authz, cfg.Listen.Authz)),
			Proc:  advertised(cfg.Listen.Advertise, or(b.Proc, cfg.Listen.Proc)),
			HTTP:  advertised(cfg.Listen.Advertise, or(b.HTTP, cfg.Listen.HTTP)),
		},
		TLS: tls,
		// Longer than the approval hold window, so a held call can still
		// be allowed once a human approves it.
		AuthzTimeout:    max(AuthzTimeout, cfg.Grants.HoldWindow+5*time.Second),
		MaxRequestBytes: uint32(cfg.Limits.MaxRequestBytes),
		BufferLimit:     StreamBufferLimit(cfg),
		Breakers: Breakers{
			Authz:   uint32(cfg.Limits.AuthzBreaker()),
			Streams: uint32(cfg.Limits.MaxStreams),
		},
	}
	for _, t := range cfg.Targets {
		u, err := url.Parse(t.Upstream)
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		m.Targets = append(m.Targets, Target{Name: t.Name, Path: t.PathPrefix, Upstream: u})
	}
	return m, nil
}

// target is the target named name.
func (m *Model) target(name string) (Target, bool) {
	for _, t := range m.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}

// advertised is addr with its host replaced by host (listen.advertise):
// airlock binds 0.0.0.0:9001 and Envoy, elsewhere, dials
// airlock.airlock-system.svc:9001. The clusters are STRICT_DNS, so a name
// works. An empty host or addr leaves addr as it is.
func advertised(host, addr string) string {
	if host == "" || addr == "" {
		return addr
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	return net.JoinHostPort(host, port)
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// portOf is u's port, or its scheme's default.
func portOf(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	return map[string]string{"http": "80", "https": "443"}[u.Scheme]
}
