package envoydriver

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
)

// tlsTransportSocket is the name Envoy registers the TLS transport socket
// under (source/common/tls/config.cc UpstreamSslSocketFactory::name via
// source/extensions/transport_sockets/well_known_names).
const tlsTransportSocket = "envoy.transport_sockets.tls"

// upstreamTLS is a compiled envoy.transport_sockets.tls UpstreamTlsContext:
// the subset airlock renders for the clusters that reach its gRPC services
// (envoy/tls.go AirlockTransportSocket). Everything else in a transport
// socket is refused by compileTransportSocket with the field's name.
type upstreamTLS struct {
	conf *tls.Config
	// key identifies the configuration and the file contents read for it,
	// so a connection pool never reuses a connection made with other
	// credentials.
	key string
}

// compileTransportSocket compiles a Cluster.transport_socket. Envoy picks
// the factory by the typed_config's type URL
// (Config::Utility::getAndCheckFactory), so the type must be
// UpstreamTlsContext. Files are read now, as Envoy reads DataSource files
// when it creates the cluster (ClientContextConfigImpl, via
// Config::DataSource::read); a missing or broken file rejects the cluster
// (a NACK over ADS), as Envoy rejects it.
func compileTransportSocket(ts *corev3.TransportSocket) (*upstreamTLS, error) {
	tc := ts.GetTypedConfig()
	if tc == nil {
		return nil, fmt.Errorf("transport_socket %q: typed_config is required (the stand-in resolves transport sockets by type, as Envoy does first)", ts.GetName())
	}
	if tc.MessageName() != "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" {
		return nil, fmt.Errorf("transport_socket %q: typed_config %s is not supported (only envoy.transport_sockets.tls UpstreamTlsContext)", ts.GetName(), tc.MessageName())
	}
	var u tlsv3.UpstreamTlsContext
	if err := anypb.UnmarshalTo(tc, &u, proto.UnmarshalOptions{}); err != nil {
		return nil, fmt.Errorf("transport_socket %q: %w", ts.GetName(), err)
	}
	if err := u.ValidateAll(); err != nil {
		return nil, fmt.Errorf("transport_socket %q: %w", ts.GetName(), err)
	}
	t, err := compileUpstreamTLS(&u)
	if err != nil {
		return nil, fmt.Errorf("transport_socket %s: %w", tlsTransportSocket, err)
	}
	return t, nil
}

// Envoy's client defaults (source/common/tls/context_config_impl.cc,
// ClientContextConfigImpl): TLS 1.2 minimum and maximum, the cipher list
// DEFAULT_CIPHER_SUITES (non-FIPS build) and the curves X25519:P-256.
var (
	envoyClientCiphers = []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	}
	envoyClientCurves = []tls.CurveID{tls.X25519, tls.CurveP256}
)

const (
	envoyClientDefaultMin = tls.VersionTLS12
	envoyClientDefaultMax = tls.VersionTLS12
)

func compileUpstreamTLS(u *tlsv3.UpstreamTlsContext) (*upstreamTLS, error) {
	if err := onlyFields(u, "upstream_tls_context", "common_tls_context", "sni"); err != nil {
		return nil, err
	}
	// ClientContextConfigImpl: "SNI names containing NULL-byte are not allowed".
	if strings.ContainsRune(u.GetSni(), 0) {
		return nil, errors.New("sni: SNI names containing NULL-byte are not allowed")
	}
	ctc := u.GetCommonTlsContext()
	if err := onlyFields(ctc, "common_tls_context", "tls_params", "tls_certificates", "validation_context", "alpn_protocols"); err != nil {
		return nil, err
	}
	h := sha256.New()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(u)
	if err != nil {
		return nil, err
	}
	h.Write(b)
	read := func(field string, ds *corev3.DataSource) ([]byte, error) {
		data, err := readDataSource(field, ds)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(h, "%d:", len(data))
		h.Write(data)
		return data, nil
	}

	conf := &tls.Config{
		// Envoy sends SNI only when sni is set (ClientContextImpl::newSsl:
		// SSL_set_tlsext_host_name with server_name_indication_); it does
		// not check the name against the certificate unless a SAN matcher
		// (or auto_sni_san_validation) says so. Go sends no SNI for "".
		ServerName:       u.GetSni(),
		MinVersion:       envoyClientDefaultMin,
		MaxVersion:       envoyClientDefaultMax,
		CipherSuites:     envoyClientCiphers,
		CurvePreferences: envoyClientCurves,
		NextProtos:       ctc.GetAlpnProtocols(),
		// Verification is ours (verifyServer), as DefaultCertValidator
		// does it: chain to trusted_ca, then the SAN matchers; never the
		// host name.
		InsecureSkipVerify: true,
		Renegotiation:      tls.RenegotiateNever, // allow_renegotiation defaults to false
	}

	if p := ctc.GetTlsParams(); p != nil {
		if err := onlyFields(p, "tls_params", "tls_minimum_protocol_version", "tls_maximum_protocol_version"); err != nil {
			return nil, err
		}
		conf.MinVersion = tlsVersion(p.GetTlsMinimumProtocolVersion(), envoyClientDefaultMin)
		conf.MaxVersion = tlsVersion(p.GetTlsMaximumProtocolVersion(), envoyClientDefaultMax)
		if conf.MinVersion > conf.MaxVersion {
			return nil, fmt.Errorf("tls_params: tls_minimum_protocol_version %s is above tls_maximum_protocol_version %s (Envoy's client maximum defaults to TLSv1_2)",
				p.GetTlsMinimumProtocolVersion(), p.GetTlsMaximumProtocolVersion())
		}
	}

	// ClientContextConfigImpl: "Multiple TLS certificates are not supported
	// for client contexts".
	switch certs := ctc.GetTlsCertificates(); len(certs) {
	case 0:
	case 1:
		c := certs[0]
		if err := onlyFields(c, "tls_certificates[0]", "certificate_chain", "private_key"); err != nil {
			return nil, err
		}
		// TlsCertificateConfigImpl: a chain without a key (or a key
		// without a chain) is "Failed to load incomplete certificate".
		if c.GetCertificateChain() == nil || c.GetPrivateKey() == nil {
			return nil, errors.New("tls_certificates[0]: Failed to load incomplete certificate: certificate_chain and private_key are both required")
		}
		chain, err := read("tls_certificates[0].certificate_chain", c.GetCertificateChain())
		if err != nil {
			return nil, err
		}
		key, err := read("tls_certificates[0].private_key", c.GetPrivateKey())
		if err != nil {
			return nil, err
		}
		pair, err := tls.X509KeyPair(chain, key)
		if err != nil {
			// Never quote the key; X509KeyPair's message does not.
			return nil, fmt.Errorf("tls_certificates[0]: %s / %s: %v", dataSourceName(c.GetCertificateChain()), dataSourceName(c.GetPrivateKey()), err)
		}
		conf.Certificates = []tls.Certificate{pair}
	default:
		return nil, errors.New("tls_certificates: Multiple TLS certificates are not supported for client contexts")
	}

	vc := ctc.GetValidationContext()
	if vc == nil || vc.GetTrustedCa() == nil {
		// Without trusted_ca Envoy verifies nothing about the server
		// (DefaultCertValidator sets SSL_VERIFY_NONE). The stand-in does
		// not model an unverified upstream: fail closed.
		return nil, errors.New("common_tls_context.validation_context.trusted_ca is required by the stand-in (without it Envoy would accept any server certificate)")
	}
	if err := onlyFields(vc, "validation_context", "trusted_ca", "match_typed_subject_alt_names"); err != nil {
		return nil, err
	}
	caPEM, err := read("validation_context.trusted_ca", vc.GetTrustedCa())
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		// DefaultCertValidator::initializeSslContexts: "Failed to load
		// trusted CA certificates from <path>".
		return nil, fmt.Errorf("validation_context.trusted_ca: Failed to load trusted CA certificates from %s", dataSourceName(vc.GetTrustedCa()))
	}
	var sans []sanMatcher
	for i, m := range vc.GetMatchTypedSubjectAltNames() {
		sm, err := compileSANMatcher(m)
		if err != nil {
			return nil, fmt.Errorf("validation_context.match_typed_subject_alt_names[%d]: %w", i, err)
		}
		sans = append(sans, sm)
	}
	conf.VerifyConnection = func(cs tls.ConnectionState) error { return verifyServer(cs, roots, sans) }
	return &upstreamTLS{conf: conf, key: hex.EncodeToString(h.Sum(nil))}, nil
}

// tlsVersion is ContextConfigImpl::tlsVersionFromProto.
func tlsVersion(v tlsv3.TlsParameters_TlsProtocol, def uint16) uint16 {
	switch v {
	case tlsv3.TlsParameters_TLSv1_0:
		return tls.VersionTLS10
	case tlsv3.TlsParameters_TLSv1_1:
		return tls.VersionTLS11
	case tlsv3.TlsParameters_TLSv1_2:
		return tls.VersionTLS12
	case tlsv3.TlsParameters_TLSv1_3:
		return tls.VersionTLS13
	}
	return def // TLS_AUTO
}

// readDataSource reads a DataSource as Config::DataSource::read does for
// filename, inline_bytes and inline_string; environment_variable is
// refused. Errors name the file, never its contents.
func readDataSource(field string, ds *corev3.DataSource) ([]byte, error) {
	if err := onlyFields(ds, field, "filename", "inline_bytes", "inline_string"); err != nil {
		return nil, err
	}
	switch s := ds.GetSpecifier().(type) {
	case *corev3.DataSource_Filename:
		b, err := os.ReadFile(s.Filename)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", field, err)
		}
		if len(b) == 0 {
			// Config::DataSource::read: "file <path> is empty".
			return nil, fmt.Errorf("%s: file %s is empty", field, s.Filename)
		}
		return b, nil
	case *corev3.DataSource_InlineBytes:
		return s.InlineBytes, nil
	case *corev3.DataSource_InlineString:
		return []byte(s.InlineString), nil
	}
	return nil, fmt.Errorf("%s: a data source is required", field)
}

func dataSourceName(ds *corev3.DataSource) string {
	if f := ds.GetFilename(); f != "" {
		return f
	}
	return "<inline>"
}

// onlyFields refuses any populated field of m outside the supported ones,
// so that a setting the stand-in does not implement is an error naming it
// rather than silently ignored.
func onlyFields(m proto.Message, where string, supported ...string) error {
	var extra []string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		name := string(fd.Name())
		for _, s := range supported {
			if s == name {
				return true
			}
		}
		extra = append(extra, name)
		return true
	})
	if len(extra) > 0 {
		return fmt.Errorf("%s: %s not supported by the stand-in's TLS transport socket", where, strings.Join(extra, ", "))
	}
	return nil
}

// sanMatcher is one SubjectAltNameMatcher
// (source/common/tls/cert_validator/san_matcher.cc StringSanMatcher).
type sanMatcher struct {
	typ tlsv3.SubjectAltNameMatcher_SanType
	m   *matcherv3.StringMatcher
}

func compileSANMatcher(m *tlsv3.SubjectAltNameMatcher) (sanMatcher, error) {
	switch m.GetSanType() {
	case tlsv3.SubjectAltNameMatcher_DNS, tlsv3.SubjectAltNameMatcher_URI, tlsv3.SubjectAltNameMatcher_EMAIL, tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
	default:
		return sanMatcher{}, fmt.Errorf("san_type %s is not supported", m.GetSanType())
	}
	sm := m.GetMatcher()
	if err := onlyFields(sm, "matcher", "exact", "prefix", "suffix", "contains", "ignore_case"); err != nil {
		return sanMatcher{}, err
	}
	return sanMatcher{typ: m.GetSanType(), m: sm}, nil
}

// match is StringSanMatcher::match for one SAN of the matcher's type: a
// DNS SAN with an exact matcher follows DNS semantics
// (Utility::dnsNameMatch, source/common/tls/utility.cc: case-insensitive,
// a certificate wildcard covers one left-most label); everything else is
// the StringMatcher on the SAN's text.
func (s sanMatcher) match(san string) bool {
	if s.typ == tlsv3.SubjectAltNameMatcher_DNS {
		if e, ok := s.m.GetMatchPattern().(*matcherv3.StringMatcher_Exact); ok {
			return dnsNameMatch(e.Exact, san)
		}
	}
	return stringMatch(s.m, san)
}

// stringMatch is Matchers::StringMatcherImpl for exact, prefix, suffix and
// contains (source/common/common/matchers.h), ignore_case lower-casing
// both sides ASCII-only as absl does.
func stringMatch(m *matcherv3.StringMatcher, v string) bool {
	fold := func(s string) string { return s }
	if m.GetIgnoreCase() {
		fold = asciiLower
	}
	v = fold(v)
	switch p := m.GetMatchPattern().(type) {
	case *matcherv3.StringMatcher_Exact:
		return v == fold(p.Exact)
	case *matcherv3.StringMatcher_Prefix:
		return strings.HasPrefix(v, fold(p.Prefix))
	case *matcherv3.StringMatcher_Suffix:
		return strings.HasSuffix(v, fold(p.Suffix))
	case *matcherv3.StringMatcher_Contains:
		return strings.Contains(v, fold(p.Contains))
	}
	return false
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// dnsNameMatch is Utility::dnsNameMatch(dns_name, pattern) with the
// configured name and the certificate's SAN as pattern: equal ignoring
// ASCII case, or the pattern's left-most label (not an A-label "xn--")
// holds the only '*' and the rest of both names are equal, with
// labelWildcardMatch on the first label.
func dnsNameMatch(dnsName, pattern string) bool {
	name, pat := asciiLower(dnsName), asciiLower(pattern)
	if name == pat {
		return true
	}
	pl, pr, ok1 := strings.Cut(pat, ".")
	nl, nr, ok2 := strings.Cut(name, ".")
	if !ok1 || !ok2 {
		return false
	}
	if strings.Contains(pl, "*") && !strings.Contains(pr, "*") && !strings.HasPrefix(pl, "xn--") {
		return nr == pr && labelWildcardMatch(nl, pl)
	}
	return false
}

// labelWildcardMatch is Utility::labelWildcardMatch.
func labelWildcardMatch(label, pattern string) bool {
	if pattern == "*" {
		return true
	}
	if strings.Count(pattern, "*") != 1 {
		return false
	}
	before, after, _ := strings.Cut(pattern, "*")
	return len(pattern) <= len(label)+1 && strings.HasPrefix(label, before) && strings.HasSuffix(label, after)
}

// verifyServer is DefaultCertValidator::verifyCertificate for an upstream:
// the chain must verify against trusted_ca (X509_verify_cert; Envoy sets
// no purpose, so extended key usage is not checked), then, when SAN
// matchers are configured, some SAN of the leaf must match one of them
// ("verify cert failed: SAN matcher").
func verifyServer(cs tls.ConnectionState, roots *x509.CertPool, sans []sanMatcher) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("envoydriver upstream TLS: the server sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		return fmt.Errorf("envoydriver upstream TLS: verify cert failed: %w", err)
	}
	if len(sans) == 0 {
		return nil
	}
	for _, m := range sans {
		for _, san := range leafSANs(leaf, m.typ) {
			if m.match(san) {
				return nil
			}
		}
	}
	return fmt.Errorf("envoydriver upstream TLS: verify cert failed: SAN matcher, certificate SANs are %v", allSANs(leaf))
}

// leafSANs are the certificate's SANs of one type as
// Utility::generalNameAsString writes them.
func leafSANs(c *x509.Certificate, typ tlsv3.SubjectAltNameMatcher_SanType) []string {
	var out []string
	switch typ {
	case tlsv3.SubjectAltNameMatcher_DNS:
		out = append(out, c.DNSNames...)
	case tlsv3.SubjectAltNameMatcher_URI:
		for _, u := range c.URIs {
			out = append(out, u.String())
		}
	case tlsv3.SubjectAltNameMatcher_EMAIL:
		out = append(out, c.EmailAddresses...)
	case tlsv3.SubjectAltNameMatcher_IP_ADDRESS:
		for _, ip := range c.IPAddresses {
			out = append(out, ip.String())
		}
	}
	return out
}

func allSANs(c *x509.Certificate) []string {
	var out []string
	for _, t := range []tlsv3.SubjectAltNameMatcher_SanType{tlsv3.SubjectAltNameMatcher_DNS, tlsv3.SubjectAltNameMatcher_URI, tlsv3.SubjectAltNameMatcher_EMAIL, tlsv3.SubjectAltNameMatcher_IP_ADDRESS} {
		out = append(out, leafSANs(c, t)...)
	}
	return out
}

// credentials are gRPC transport credentials that make exactly the
// handshake Envoy's TLS transport socket makes. grpc-go's own
// credentials.NewTLS would send the authority as SNI when sni is unset and
// always offer h2 by ALPN; Envoy does neither, and a server that insists
// on ALPN h2 (grpc-go does) must see what the configuration offers.
func (u *upstreamTLS) credentials() credentials.TransportCredentials {
	return &tlsCreds{conf: u.conf}
}

type tlsCreds struct{ conf *tls.Config }

func (c *tlsCreds) ClientHandshake(ctx context.Context, _ string, raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn := tls.Client(raw, c.conf.Clone())
	if err := conn.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, nil, err
	}
	return conn, credentials.TLSInfo{
		State:          conn.ConnectionState(),
		CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity},
	}, nil
}

func (c *tlsCreds) ServerHandshake(net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("envoydriver: upstream TLS credentials are client-side only")
}

func (c *tlsCreds) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls", SecurityVersion: "1.2"}
}

func (c *tlsCreds) Clone() credentials.TransportCredentials { return &tlsCreds{conf: c.conf} }

// OverrideServerName is deprecated in grpc-go; SNI comes from sni only.
func (c *tlsCreds) OverrideServerName(string) error { return nil }
