// Package mtls secures airlock's gRPC listeners (ext_authz, ext_proc, ADS)
// with mutual TLS. Those listeners hand out upstream credentials (in
// ext_authz answers) and the data-path configuration, so only the gateway
// may reach them: every caller must present a client certificate that
// chains to the configured CA and carries one of the allowed identities
// (a DNS or URI SAN, e.g. a SPIFFE ID). The certificate, key and CA files
// are re-read when they change (rotation), checked at most once per
// Options.CheckInterval on new handshakes; a broken new file is logged and
// the last good set keeps serving.
//
// The package also decides which listen addresses count as loopback:
// airlock refuses to serve a gRPC listener anywhere else without TLS
// unless the configuration says insecure explicitly.
package mtls

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/credentials"

	"github.com/airlock-mcp/airlock/internal/config"
)

// Config names the files and the identities allowed to connect. Paths are
// read by airlock (the server side).
type Config struct {
	CertFile     string // PEM certificate chain airlock presents
	KeyFile      string // PEM private key of CertFile
	ClientCAFile string // PEM CA bundle client certificates must chain to
	// AllowedIdentities are the SANs a client certificate may carry, at
	// least one: DNS names (exact, case-insensitive) and URIs (exact), e.g.
	// the SPIFFE ID spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway.
	// A URI ending in "/*" allows every URI below that path
	// (spiffe://cluster.local/ns/istio-system/sa/*). The certificate's
	// subject common name is never looked at.
	AllowedIdentities []string
}

// Options tune the server.
type Options struct {
	// Logger receives reload errors and refused handshakes (never file
	// contents or keys). Default: discard.
	Logger *slog.Logger
	// CheckInterval is the least time between two looks at the files;
	// default 1s. Negative checks on every handshake.
	CheckInterval time.Duration
	// Now is the clock (tests).
	Now func() time.Time
}

// DefaultCheckInterval is how often, at most, the files are looked at.
const DefaultCheckInterval = time.Second

// Server serves TLS configurations that follow the files on disk.
type Server struct {
	cfg      Config
	allowed  identities
	log      *slog.Logger
	interval time.Duration
	now      func() time.Time

	cur atomic.Pointer[loaded]

	mu        sync.Mutex // one reload at a time
	lastCheck time.Time
	lastSeen  [sha256.Size]byte // digest of the files last tried, good or not
}

type loaded struct {
	conf   *tls.Config
	digest [sha256.Size]byte
	leaf   *x509.Certificate
}

// ValidateConfig checks the fields without touching the files. Errors
// name the field (cert_file, key_file, client_ca_file, allowed_identities).
func ValidateConfig(c Config) error {
	var errs []error
	for _, f := range []struct{ name, v string }{{"cert_file", c.CertFile}, {"key_file", c.KeyFile}, {"client_ca_file", c.ClientCAFile}} {
		if f.v == "" {
			errs = append(errs, &FieldError{Field: f.name, Msg: "is required for mutual TLS"})
		}
	}
	if len(c.AllowedIdentities) == 0 {
		errs = append(errs, &FieldError{Field: "allowed_identities", Msg: "name at least one identity (DNS or URI SAN, e.g. the gateway's SPIFFE ID): a CA usually signs more certificates than the gateway's"})
	}
	if _, err := parseIdentities(c.AllowedIdentities); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// FieldError is a problem with one field of Config.
type FieldError struct {
	Field string // cert_file, key_file, client_ca_file, allowed_identities[i]
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

// New loads the files once (an error names the file that is wrong) and
// returns a server whose configurations follow later changes.
func New(cfg Config, opts Options) (*Server, error) {
	if err := ValidateConfig(cfg); err != nil {
		return nil, err
	}
	ids, _ := parseIdentities(cfg.AllowedIdentities)
	s := &Server{cfg: cfg, allowed: ids, log: opts.Logger, interval: opts.CheckInterval, now: opts.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.interval == 0 {
		s.interval = DefaultCheckInterval
	}
	if s.now == nil {
		s.now = time.Now
	}
	raw, digest, err := s.read()
	if err != nil {
		return nil, err
	}
	l, err := s.build(raw, digest)
	if err != nil {
		return nil, err
	}
	s.cur.Store(l)
	s.lastSeen, s.lastCheck = digest, s.now()
	return s, nil
}

// TLSConfig is the listener configuration: each handshake gets the
// configuration of the files as last loaded.
func (s *Server) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			s.maybeReload()
			return s.cur.Load().conf, nil
		},
	}
}

// Credentials are the gRPC server credentials (grpc.Creds).
func (s *Server) Credentials() credentials.TransportCredentials {
	return credentials.NewTLS(s.TLSConfig())
}

// Certificate is the leaf certificate currently served.
func (s *Server) Certificate() *x509.Certificate { return s.cur.Load().leaf }

// Reload looks at the files now, whatever the interval, and reports why a
// changed set was not taken (nil when nothing changed or it was taken).
func (s *Server) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *Server) maybeReload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.interval > 0 && s.now().Sub(s.lastCheck) < s.interval {
		return
	}
	if err := s.reloadLocked(); err != nil {
		s.log.Error("TLS files changed but cannot be used; the previous certificate, key and CA keep serving", "error", err)
	}
}

func (s *Server) reloadLocked() error {
	s.lastCheck = s.now()
	raw, digest, err := s.read()
	if err != nil {
		// A file missing for a moment (mid-rotation) is retried next time.
		return err
	}
	if digest == s.lastSeen {
		return nil // unchanged, or the same broken set already reported
	}
	s.lastSeen = digest
	if digest == s.cur.Load().digest {
		return nil
	}
	l, err := s.build(raw, digest)
	if err != nil {
		return err
	}
	s.cur.Store(l)
	s.log.Info("TLS files reloaded", "certificate_serial", l.leaf.SerialNumber.String(), "not_after", l.leaf.NotAfter)
	return nil
}

type files struct{ cert, key, ca []byte }

func (s *Server) read() (files, [sha256.Size]byte, error) {
	var f files
	var err error
	if f.cert, err = os.ReadFile(s.cfg.CertFile); err != nil {
		return f, [sha256.Size]byte{}, fmt.Errorf("cert_file: %w", err)
	}
	if f.key, err = os.ReadFile(s.cfg.KeyFile); err != nil {
		return f, [sha256.Size]byte{}, fmt.Errorf("key_file: %w", err)
	}
	if f.ca, err = os.ReadFile(s.cfg.ClientCAFile); err != nil {
		return f, [sha256.Size]byte{}, fmt.Errorf("client_ca_file: %w", err)
	}
	h := sha256.New()
	for _, b := range [][]byte{f.cert, f.key, f.ca} {
		fmt.Fprintf(h, "%d:", len(b))
		h.Write(b)
	}
	var d [sha256.Size]byte
	copy(d[:], h.Sum(nil))
	return f, d, nil
}

// build parses the files; its errors never quote them (the key is secret).
func (s *Server) build(f files, digest [sha256.Size]byte) (*loaded, error) {
	cert, err := tls.X509KeyPair(f.cert, f.key)
	if err != nil {
		return nil, fmt.Errorf("cert_file %s / key_file %s: not a matching PEM certificate and key (%s)", s.cfg.CertFile, s.cfg.KeyFile, keyPairReason(err))
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("cert_file %s: %v", s.cfg.CertFile, err)
		}
	}
	if now := s.now(); now.After(leaf.NotAfter) {
		return nil, fmt.Errorf("cert_file %s: certificate expired at %s", s.cfg.CertFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(f.ca) {
		return nil, fmt.Errorf("client_ca_file %s: no PEM certificate in it", s.cfg.ClientCAFile)
	}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		NextProtos:   []string{"h2"},
		// Go picks TLS 1.3 when the client offers it; for 1.2 only AEAD
		// ECDHE suites (Go's defaults) are used.
		VerifyConnection: s.verify,
	}
	return &loaded{conf: conf, digest: digest, leaf: leaf}, nil
}

// keyPairReason keeps tls.X509KeyPair's message, which names what is
// wrong (no PEM block, mismatched key) without quoting the data.
func keyPairReason(err error) string {
	return strings.TrimPrefix(err.Error(), "tls: ")
}

// verify runs after the chain was verified against the client CA: the
// leaf must carry an allowed identity.
func (s *Server) verify(cs tls.ConnectionState) error {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return errors.New("airlock: a client certificate signed by the configured CA is required")
	}
	leaf := cs.VerifiedChains[0][0]
	if s.allowed.match(leaf) {
		return nil
	}
	s.log.Warn("refused a TLS client: its certificate carries no allowed identity", "dns_sans", leaf.DNSNames, "uri_sans", uriStrings(leaf.URIs))
	return fmt.Errorf("airlock: client certificate identity %v is not allowed", append(leaf.DNSNames, uriStrings(leaf.URIs)...))
}

// PeerIdentities returns the SANs (DNS and URI) of a verified client
// certificate, e.g. for logs.
func PeerIdentities(cs tls.ConnectionState) []string {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return nil
	}
	leaf := cs.VerifiedChains[0][0]
	return append(append([]string(nil), leaf.DNSNames...), uriStrings(leaf.URIs)...)
}

func uriStrings(us []*url.URL) []string {
	out := make([]string, 0, len(us))
	for _, u := range us {
		out = append(out, u.String())
	}
	return out
}

// identities are the parsed allowed_identities.
type identities struct {
	dns        map[string]bool // lower-case
	uris       map[string]bool
	uriPrefixs []string // "spiffe://td/ns/x/sa/" from "…/sa/*"
}

func parseIdentities(list []string) (identities, error) {
	ids := identities{dns: map[string]bool{}, uris: map[string]bool{}}
	var errs []error
	for i, id := range list {
		field := fmt.Sprintf("allowed_identities[%d]", i)
		bad := func(msg string) { errs = append(errs, &FieldError{Field: field, Msg: fmt.Sprintf("%q %s", id, msg)}) }
		if strings.Contains(id, "://") {
			pattern := strings.HasSuffix(id, "/*")
			u, err := url.Parse(strings.TrimSuffix(id, "*"))
			switch {
			case err != nil || u.Scheme == "" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
				bad("is not a URI SAN such as spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway")
			case strings.Contains(strings.TrimSuffix(id, "/*"), "*"):
				bad("may hold * only as a final /* (every URI below that path)")
			case pattern && strings.Count(u.Path, "/") < 2:
				bad("allows a whole trust domain; name at least one path segment before /*")
			case pattern:
				ids.uriPrefixs = append(ids.uriPrefixs, strings.TrimSuffix(id, "*"))
			default:
				ids.uris[id] = true
			}
			continue
		}
		if !validDNSName(id) {
			bad("is neither a DNS name (exact, no wildcards) nor a URI SAN")
			continue
		}
		ids.dns[strings.ToLower(id)] = true
	}
	return ids, errors.Join(errs...)
}

func validDNSName(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return false
			}
		}
	}
	return true
}

func (ids identities) match(leaf *x509.Certificate) bool {
	for _, d := range leaf.DNSNames {
		if ids.dns[strings.ToLower(d)] {
			return true
		}
	}
	for _, u := range leaf.URIs {
		s := u.String()
		if ids.uris[s] {
			return true
		}
		for _, p := range ids.uriPrefixs {
			// Below the path, one or more segments; never "..", which a
			// URI SAN should not hold anyway.
			if rest, ok := strings.CutPrefix(s, p); ok && rest != "" && !strings.Contains(rest, "..") && u.RawQuery == "" && u.Fragment == "" {
				return true
			}
		}
	}
	return false
}

// Loopback reports whether a listen address (host:port) accepts
// connections from this machine only: a loopback IP, "localhost", or a
// host name that resolves to loopback addresses only. An empty host (all
// interfaces), 0.0.0.0 and :: are not. A host name is looked up with
// resolver (nil: net.DefaultResolver).
func Loopback(ctx context.Context, addr string, resolver *net.Resolver) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, err
	}
	if host == "" {
		return false, nil
	}
	if ip := net.ParseIP(strings.Trim(host, "[]")); ip != nil {
		return ip.IsLoopback(), nil
	}
	if strings.EqualFold(host, "localhost") {
		return true, nil
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	ips, err := resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return false, fmt.Errorf("resolving %s: %w", host, err)
	}
	for _, ip := range ips {
		if !ip.IP.IsLoopback() {
			return false, nil
		}
	}
	return len(ips) > 0, nil
}

// LoopbackLiteral is Loopback without name resolution: ok is false when
// the answer needs a lookup (a host name other than localhost). It is
// config.LoopbackLiteral, which configuration validation uses too.
func LoopbackLiteral(addr string) (loopback, ok bool) { return config.LoopbackLiteral(addr) }
