package config

import (
	"net"
	"strings"
)

// ListenTLS secures airlock's gRPC listeners (listen.authz, listen.proc,
// listen.xds) with mutual TLS: the caller (the gateway's Envoy) must
// present a client certificate signed by ClientCAFile that carries one of
// AllowedIdentities. The files are re-read when they change.
type ListenTLS struct {
	CertFile     string `yaml:"cert_file"`      // airlock's certificate chain (PEM)
	KeyFile      string `yaml:"key_file"`       // its private key (PEM)
	ClientCAFile string `yaml:"client_ca_file"` // CA bundle client certificates must chain to
	// AllowedIdentities are the client certificate SANs let in: DNS names
	// and URIs such as SPIFFE IDs, exact; a URI ending in "/*" allows every
	// URI below that path.
	AllowedIdentities []string `yaml:"allowed_identities"`
	// Envoy is what airlock's generated Envoy configuration (the bootstrap
	// and the clusters served over ADS) tells Envoy to use to reach these
	// listeners. Required with listen.tls when airlock renders Envoy's
	// configuration (listen.xds or `airlock envoy bootstrap`).
	Envoy EnvoyTLS `yaml:"envoy"`
}

// EnvoyTLS are paths on Envoy's side, and the name airlock's certificate
// is checked against.
type EnvoyTLS struct {
	CertFile string `yaml:"cert_file"` // Envoy's client certificate (PEM), carrying one of allowed_identities
	KeyFile  string `yaml:"key_file"`  // its private key
	CAFile   string `yaml:"ca_file"`   // the CA that signed airlock's cert_file
	// ServerName is sent as SNI and must be a DNS SAN of airlock's
	// certificate (e.g. airlock.airlock-system.svc).
	ServerName string `yaml:"server_name"`
}

// Enabled reports whether mutual TLS is configured (any field set).
func (t ListenTLS) Enabled() bool {
	return t.CertFile != "" || t.KeyFile != "" || t.ClientCAFile != "" || len(t.AllowedIdentities) > 0
}

// Configured reports whether Envoy's side is set (any field).
func (e EnvoyTLS) Configured() bool {
	return e.CertFile != "" || e.KeyFile != "" || e.CAFile != "" || e.ServerName != ""
}

// GRPCListeners are the gRPC listen fields and their addresses ("" = off).
func (l Listen) GRPCListeners() []struct{ Field, Addr string } {
	return []struct{ Field, Addr string }{{"listen.authz", l.Authz}, {"listen.proc", l.Proc}, {"listen.xds", l.XDS}}
}

// InsecureListenerError explains why a gRPC listener off loopback needs TLS.
func InsecureListenerError(field, addr string) error {
	return fieldErr(field, "%q is not a loopback address and listen.tls is not set: ext_authz answers carry the upstream credential and ADS serves the data path, so any caller that reaches this port could take them and skip the gateway; set listen.tls (mutual TLS, only the gateway's certificate is let in), listen on 127.0.0.1, or set listen.insecure: true if something else (a service mesh sidecar) authenticates callers", addr)
}

// checkListenTLS validates listen.insecure and listen.tls's Envoy side.
// The server side (the files, which must all be set, and
// allowed_identities) is package mtls's to judge: serve.Check and serve
// load them. A gRPC listener whose address is known without a lookup not
// to be loopback needs TLS or insecure; host names are resolved by serve.
func (c *Config) checkListenTLS() []error {
	var errs []error
	t := c.Listen.TLS
	if !t.Enabled() {
		if t.Envoy.Configured() {
			errs = append(errs, fieldErr("listen.tls.envoy", "is set but listen.tls is not: airlock would serve plaintext"))
		}
		if !c.Listen.Insecure {
			for _, l := range c.Listen.GRPCListeners() {
				if l.Addr == "" {
					continue
				}
				if lo, known := LoopbackLiteral(l.Addr); known && !lo {
					errs = append(errs, InsecureListenerError(l.Field, l.Addr))
				}
			}
		}
		return errs
	}
	if c.Listen.Insecure {
		errs = append(errs, fieldErr("listen.insecure", "true contradicts listen.tls; remove one of them"))
	}
	if e := t.Envoy; e.Configured() {
		for _, f := range []struct{ name, v string }{{"cert_file", e.CertFile}, {"key_file", e.KeyFile}, {"ca_file", e.CAFile}, {"server_name", e.ServerName}} {
			if f.v == "" {
				errs = append(errs, fieldErr("listen.tls.envoy."+f.name, "is required: Envoy needs a client certificate, its key, the CA of airlock's certificate and the name on it"))
			}
		}
	} else if c.Listen.XDS != "" {
		errs = append(errs, fieldErr("listen.tls.envoy", "is required with listen.tls and listen.xds: the clusters airlock serves Envoy over ADS must carry Envoy's client certificate (cert_file, key_file, ca_file, server_name)"))
	}
	return errs
}

// LoopbackLiteral reports whether a listen address (host:port) is
// loopback without name resolution: ok is false when the answer needs a
// lookup (a host name other than localhost). An empty host (all
// interfaces) is not loopback. Package mtls resolves the rest.
func LoopbackLiteral(addr string) (loopback, ok bool) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, false
	}
	if host == "" {
		return false, true
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback(), true
	}
	if strings.EqualFold(host, "localhost") {
		return true, true
	}
	return false, false
}

// resolveTLSPaths makes the TLS file paths relative to the config file.
// Envoy's paths too: when Envoy runs elsewhere they are absolute anyway.
func (t *ListenTLS) resolvePaths(abs func(string) string) {
	t.CertFile, t.KeyFile, t.ClientCAFile = abs(t.CertFile), abs(t.KeyFile), abs(t.ClientCAFile)
	t.Envoy.CertFile, t.Envoy.KeyFile, t.Envoy.CAFile = abs(t.Envoy.CertFile), abs(t.Envoy.KeyFile), abs(t.Envoy.CAFile)
}
