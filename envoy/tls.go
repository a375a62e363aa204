package envoy

import (
	"errors"
	"fmt"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"

	"github.com/airlock-mcp/airlock/internal/config"
)

// TLSTransportSocket is the name of Envoy's TLS transport socket.
const TLSTransportSocket = "envoy.transport_sockets.tls"

// envoyTLS is Envoy's side of listen.tls; nil when listen.tls is off, an
// error naming the missing fields when Envoy's side is incomplete.
func envoyTLS(cfg *config.Config) (*TLS, error) {
	t := cfg.Listen.TLS
	if !t.Enabled() {
		return nil, nil
	}
	e := t.Envoy
	var missing []error
	for _, f := range []struct{ name, v string }{{"cert_file", e.CertFile}, {"key_file", e.KeyFile}, {"ca_file", e.CAFile}, {"server_name", e.ServerName}} {
		if f.v == "" {
			missing = append(missing, fmt.Errorf("listen.tls.envoy.%s is required: airlock's gRPC listeners take mutual TLS, and the Envoy configuration airlock renders must carry Envoy's side", f.name))
		}
	}
	if err := errors.Join(missing...); err != nil {
		return nil, err
	}
	return &TLS{CertFile: e.CertFile, KeyFile: e.KeyFile, CAFile: e.CAFile, ServerName: e.ServerName}, nil
}

// AirlockTransportSocket is the transport socket Envoy's clusters for
// airlock's gRPC services (ext_authz, ext_proc, ADS) use when airlock
// serves them with mutual TLS (listen.tls): Envoy presents its client
// certificate (listen.tls.envoy.cert_file / key_file), trusts only the CA
// of airlock's certificate (ca_file), sends server_name as SNI and checks
// it is a DNS SAN of airlock's certificate, offers HTTP/2 by ALPN (gRPC
// servers require it) and speaks TLS 1.2 or later. nil when listen.tls is
// off.
//
// Envoy reads these files when it creates the cluster. Clusters delivered
// over ADS are re-created when airlock's configuration changes; otherwise
// a rotated Envoy certificate takes effect when Envoy restarts (or
// hot-restarts). See docs/envoy.md.
func AirlockTransportSocket(cfg *config.Config) (*corev3.TransportSocket, error) {
	t, err := envoyTLS(cfg)
	if err != nil || t == nil {
		return nil, err
	}
	return t.transportSocket(), nil
}

func (t *TLS) transportSocket() *corev3.TransportSocket {
	file := func(p string) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: p}}
	}
	return &corev3.TransportSocket{
		Name: TLSTransportSocket,
		ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(&tlsv3.UpstreamTlsContext{
			Sni: t.ServerName,
			CommonTlsContext: &tlsv3.CommonTlsContext{
				TlsParams: &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_2},
				TlsCertificates: []*tlsv3.TlsCertificate{{
					CertificateChain: file(t.CertFile),
					PrivateKey:       file(t.KeyFile),
				}},
				AlpnProtocols: []string{"h2"},
				ValidationContextType: &tlsv3.CommonTlsContext_ValidationContext{ValidationContext: &tlsv3.CertificateValidationContext{
					TrustedCa: file(t.CAFile),
					MatchTypedSubjectAltNames: []*tlsv3.SubjectAltNameMatcher{{
						SanType: tlsv3.SubjectAltNameMatcher_DNS,
						Matcher: &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_Exact{Exact: t.ServerName}},
					}},
				}},
			},
		})},
	}
}

// SecureADSBootstrap gives the bootstrap's ADS cluster (ClusterXDS) the
// mutual-TLS transport socket when listen.tls is set, and validates the
// result deeply. `airlock envoy bootstrap` calls it on ADSBootstrap's
// output.
func SecureADSBootstrap(b *bootstrapv3.Bootstrap, cfg *config.Config) error {
	t, err := envoyTLS(cfg)
	if err != nil {
		return err
	}
	if t != nil {
		for _, c := range b.GetStaticResources().GetClusters() {
			if c.GetName() == ClusterXDS {
				c.TransportSocket = t.transportSocket()
			}
		}
	}
	if err := ValidateDeep(b); err != nil {
		return fmt.Errorf("bootstrap does not validate: %w", err)
	}
	return nil
}
