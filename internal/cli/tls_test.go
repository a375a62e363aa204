package cli_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
)

const gatewayID = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway"

// tlsFiles writes airlock's certificate, key and the client CA next to
// the config, returning the listen: block that uses them.
func tlsListen(t *testing.T, envoySide bool) map[string]string {
	t.Helper()
	serverCA, clientCA := mtlstest.NewCA(t, "airlock-ca"), mtlstest.NewCA(t, "mesh-ca")
	srv := serverCA.Issue(t, "airlock", time.Time{}, "airlock.airlock-system.svc")
	listen := `
listen:
  authz: 0.0.0.0:9001
  proc: 0.0.0.0:9002
  xds: ""
  tls:
    cert_file: tls/tls.crt
    key_file: tls/tls.key
    client_ca_file: tls/ca.crt
    allowed_identities: [` + gatewayID + `]
`
	if envoySide {
		listen = strings.Replace(listen, `  xds: ""`, `  xds: 0.0.0.0:18000`, 1) +
			"    envoy: {cert_file: /etc/envoy/airlock/tls.crt, key_file: /etc/envoy/airlock/tls.key, ca_file: /etc/envoy/airlock/ca.crt, server_name: airlock.airlock-system.svc}\n"
	}
	return map[string]string{
		"airlock.yaml":    goodConfig + listen,
		"policies/p.rego": goodPolicy,
		"tls/tls.crt":     string(srv.CertPEM),
		"tls/tls.key":     string(srv.KeyPEM),
		"tls/ca.crt":      string(clientCA.PEM),
	}
}

func TestValidateListeners(t *testing.T) {
	withTLS := tlsListen(t, true)
	brokenKey := tlsListen(t, true)
	brokenKey["tls/tls.key"] = "-----BEGIN PRIVATE KEY-----\nSECRETBYTES\n-----END PRIVATE KEY-----\n"
	noEnvoy := tlsListen(t, false)
	cases := []struct {
		name     string
		files    map[string]string
		wantCode int
		wantOut  []string
		notOut   []string
	}{
		{"loopback", map[string]string{"airlock.yaml": goodConfig, "policies/p.rego": goodPolicy}, 0, []string{"gRPC listeners plaintext on loopback"}, nil},
		{"all interfaces, no TLS", map[string]string{"airlock.yaml": goodConfig + "listen: {authz: 0.0.0.0:9001}\n", "policies/p.rego": goodPolicy}, 1,
			[]string{"airlock.yaml:", `listen.authz: "0.0.0.0:9001" is not a loopback address`, "ext_authz answers carry the upstream credential"}, nil},
		{"explicitly insecure", map[string]string{"airlock.yaml": goodConfig + "listen: {authz: 0.0.0.0:9001, insecure: true}\n", "policies/p.rego": goodPolicy}, 0,
			[]string{"gRPC listeners plaintext (listen.insecure)"}, nil},
		{"mutual TLS", withTLS, 0, []string{"gRPC listeners mutual TLS"}, nil},
		{"TLS key unusable", brokenKey, 1, []string{"listen.tls.cert_file", "not a matching PEM certificate and key"}, []string{"SECRETBYTES"}},
		{"TLS without Envoy's side", noEnvoy, 0, []string{"Envoy config not checked", "gRPC listeners mutual TLS"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			var out, errOut bytes.Buffer
			code := run([]string{"validate", "--config", filepath.Join(dir, "airlock.yaml")}, &out, &errOut)
			all := out.String() + errOut.String()
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d: %s", code, tc.wantCode, all)
			}
			for _, w := range tc.wantOut {
				if !strings.Contains(all, w) {
					t.Errorf("output %q lacks %q", all, w)
				}
			}
			for _, w := range tc.notOut {
				if strings.Contains(all, w) {
					t.Errorf("output %q holds %q", all, w)
				}
			}
		})
	}
}

// With listen.tls, both bootstraps reach airlock's gRPC services with
// Envoy's client certificate; the output parses and validates deeply.
func TestEnvoyBootstrapWithMutualTLS(t *testing.T) {
	dir := writeFiles(t, tlsListen(t, true))
	for _, tc := range []struct {
		flags    []string
		clusters []string
	}{
		{nil, []string{envoy.ClusterXDS}},
		{[]string{"--static"}, []string{envoy.ClusterAuthz, envoy.ClusterProc}},
	} {
		t.Run(fmt.Sprint(tc.flags), func(t *testing.T) {
			var out, errOut bytes.Buffer
			args := append([]string{"envoy", "bootstrap", "--config", filepath.Join(dir, "airlock.yaml")}, tc.flags...)
			if code := run(args, &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			b, err := envoy.ParseBootstrap(out.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			secured := map[string]bool{}
			for _, c := range b.GetStaticResources().GetClusters() {
				u := &tlsv3.UpstreamTlsContext{}
				if ts := c.GetTransportSocket(); ts != nil && ts.GetTypedConfig().UnmarshalTo(u) == nil &&
					u.GetSni() == "airlock.airlock-system.svc" &&
					u.GetCommonTlsContext().GetTlsCertificates()[0].GetCertificateChain().GetFilename() == "/etc/envoy/airlock/tls.crt" {
					secured[c.GetName()] = true
				}
			}
			for _, name := range tc.clusters {
				if !secured[name] {
					t.Errorf("cluster %s has no mutual TLS to airlock", name)
				}
			}
		})
	}
}
