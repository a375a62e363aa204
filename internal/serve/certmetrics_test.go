package serve

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
)

// The certificate expiry gauge reports the server certificate airlock
// serves now — a rotated one once it is loaded — and Envoy's client
// certificate only when its file is readable here and is a certificate.
func TestCertificateExpiryGauge(t *testing.T) {
	serverCA, clientCA := mtlstest.NewCA(t, "airlock-ca"), mtlstest.NewCA(t, "mesh-ca")
	first := time.Now().Add(20 * 24 * time.Hour).Truncate(time.Second)
	envoyExpiry := time.Now().Add(5 * 24 * time.Hour).Truncate(time.Second)
	envoyLeaf := clientCA.Issue(t, "gw", envoyExpiry, gatewayID)
	dir := t.TempDir()
	tests := []struct {
		name      string
		envoyFile string
		data      []byte // written to envoyFile when set
		want      string
	}{
		{"Envoy's file elsewhere", "/nonexistent/envoy/tls.crt", nil, ""},
		{"Envoy's file readable", filepath.Join(dir, "envoy.crt"), envoyLeaf.CertPEM, fmt.Sprintf("airlock_tls_certificate_expiry_timestamp_seconds{role=\"envoy_client\"} %d\n", envoyExpiry.Unix())},
		{"Envoy's file not a certificate", filepath.Join(dir, "envoy.key"), envoyLeaf.KeyPEM, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.data != nil {
				mtlstest.WriteAtomic(t, tt.envoyFile, tt.data)
			}
			f := mtlstest.WriteServerFiles(t, serverCA.Issue(t, "airlock", first, airlockName), clientCA)
			cfg := testConfig(t, fmt.Sprintf(`  authz: 127.0.0.1:0
  xds: 127.0.0.1:0
  tls:
    cert_file: %s
    key_file: %s
    client_ca_file: %s
    allowed_identities: [%s]
    envoy: {cert_file: %s, key_file: /etc/envoy/tls.key, ca_file: /etc/envoy/ca.crt, server_name: %s}`,
				f.Cert, f.Key, f.ClientCA, gatewayID, tt.envoyFile, airlockName), "")
			g := start(t, cfg)
			want := func(server time.Time) string {
				return "# HELP airlock_tls_certificate_expiry_timestamp_seconds " + certExpiryHelp + "\n# TYPE airlock_tls_certificate_expiry_timestamp_seconds gauge\n" +
					tt.want + fmt.Sprintf("airlock_tls_certificate_expiry_timestamp_seconds{role=\"server\"} %d\n", server.Unix())
			}
			if err := testutil.GatherAndCompare(g.Registry, strings.NewReader(want(first)), "airlock_tls_certificate_expiry_timestamp_seconds"); err != nil {
				t.Fatal(err)
			}
			// Rotation: new files, loaded (as the next handshake would).
			rotated := first.Add(60 * 24 * time.Hour)
			next := serverCA.Issue(t, "airlock", rotated, airlockName)
			mtlstest.WriteAtomic(t, f.Cert, next.CertPEM)
			mtlstest.WriteAtomic(t, f.Key, next.KeyPEM)
			if err := g.TLS.Reload(); err != nil {
				t.Fatal(err)
			}
			if err := testutil.GatherAndCompare(g.Registry, strings.NewReader(want(rotated)), "airlock_tls_certificate_expiry_timestamp_seconds"); err != nil {
				t.Fatal(err)
			}
		})
	}
	if _, err := os.Stat(tests[0].envoyFile); err == nil {
		t.Fatal("the unreadable case's file exists")
	}
}
