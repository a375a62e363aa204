package config

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const tlsBlock = `
  tls:
    cert_file: tls/airlock.crt
    key_file: tls/airlock.key
    client_ca_file: tls/ca.crt
    allowed_identities: [spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway]
    envoy: {cert_file: /etc/envoy/airlock/tls.crt, key_file: /etc/envoy/airlock/tls.key, ca_file: /etc/envoy/airlock/ca.crt, server_name: airlock.airlock-system.svc}
`

func TestListenTLS(t *testing.T) {
	cases := []struct {
		name   string
		listen string
		want   []string // substrings of the error; none: valid
	}{
		{"loopback without TLS", "listen: {authz: 127.0.0.1:9001, proc: '[::1]:9002', xds: localhost:18000}", nil},
		{"all interfaces without TLS", "listen: {authz: 0.0.0.0:9001}", []string{`listen.authz: "0.0.0.0:9001" is not a loopback address`, "ext_authz answers carry the upstream credential"}},
		{"empty host without TLS", "listen: {proc: ':9002'}", []string{`listen.proc: ":9002" is not a loopback address`}},
		{"pod IP without TLS", "listen: {xds: 10.2.3.4:18000}", []string{`listen.xds: "10.2.3.4:18000"`}},
		{"IPv6 any without TLS", "listen: {authz: '[::]:9001'}", []string{`listen.authz: "[::]:9001"`}},
		{"explicit insecure", "listen: {authz: 0.0.0.0:9001, insecure: true}", nil},
		{"host name is left to serve", "listen: {authz: airlock.internal:9001}", nil},
		{"TLS off loopback", "listen:\n  authz: 0.0.0.0:9001\n  xds: 0.0.0.0:18000" + tlsBlock, nil},
		{"TLS and insecure", "listen:\n  authz: 0.0.0.0:9001\n  insecure: true" + tlsBlock, []string{"listen.insecure: true contradicts listen.tls"}},
		{"TLS and ADS without Envoy's side", "listen:\n  tls: {cert_file: a, key_file: b, client_ca_file: c, allowed_identities: [gw.internal]}", []string{"listen.tls.envoy: is required with listen.tls and listen.xds"}},
		{"Envoy's side incomplete", "listen:\n  tls: {cert_file: a, key_file: b, client_ca_file: c, allowed_identities: [gw.internal], envoy: {cert_file: x, key_file: y, ca_file: z}}", []string{"listen.tls.envoy.server_name: is required"}},
		{"Envoy's side without listen.tls", "listen:\n  tls: {envoy: {cert_file: x, key_file: y, ca_file: z, server_name: s}}", []string{"listen.tls.envoy: is set but listen.tls is not"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePolicyDir(t)
			_, err := Parse(strings.NewReader(minimal+tc.listen+"\n"), filepath.Join(dir, "airlock.yaml"))
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "airlock.yaml:") {
				t.Errorf("error has no file position: %v", err)
			}
		})
	}
}

func TestListenTLSPathsResolved(t *testing.T) {
	dir := writePolicyDir(t)
	cfg, err := Parse(strings.NewReader(minimal+"listen:\n  authz: 0.0.0.0:9001"+tlsBlock), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	want := ListenTLS{
		CertFile:          filepath.Join(dir, "tls/airlock.crt"),
		KeyFile:           filepath.Join(dir, "tls/airlock.key"),
		ClientCAFile:      filepath.Join(dir, "tls/ca.crt"),
		AllowedIdentities: []string{"spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway"},
		Envoy:             EnvoyTLS{CertFile: "/etc/envoy/airlock/tls.crt", KeyFile: "/etc/envoy/airlock/tls.key", CAFile: "/etc/envoy/airlock/ca.crt", ServerName: "airlock.airlock-system.svc"},
	}
	if d := cmp.Diff(want, cfg.Listen.TLS); d != "" {
		t.Errorf("listen.tls (-want +got):\n%s", d)
	}
	if !cfg.Listen.TLS.Enabled() || cfg.Listen.Insecure {
		t.Errorf("enabled %v insecure %v", cfg.Listen.TLS.Enabled(), cfg.Listen.Insecure)
	}
}
