package serve

import (
	"crypto/x509"
	"encoding/pem"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-mcp/airlock/internal/mtls"
)

const certExpiryHelp = "When a listen.tls certificate expires (Unix seconds): role server is the certificate airlock's gRPC listeners serve now (rotation included), envoy_client Envoy's client certificate (listen.tls.envoy.cert_file) when airlock can read it."

var descCertExpiry = prometheus.NewDesc("airlock_tls_certificate_expiry_timestamp_seconds", certExpiryHelp, []string{"role"}, nil)

// certCollector reports the expiry of listen.tls's certificates, read at
// scrape time: the server's from what mtls serves now (it follows
// rotation), Envoy's client certificate from its file when that path is
// readable here (it is a path on Envoy's side; absent, no series). Only
// the leaf's NotAfter leaves the collector, never a key or a file's
// contents.
type certCollector struct {
	tls       *mtls.Server
	envoyCert string
}

func (c certCollector) Describe(ch chan<- *prometheus.Desc) { ch <- descCertExpiry }

func (c certCollector) Collect(ch chan<- prometheus.Metric) {
	if c.tls != nil {
		if leaf := c.tls.Certificate(); leaf != nil {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), "server")
		}
	}
	if c.envoyCert == "" {
		return
	}
	b, err := os.ReadFile(c.envoyCert)
	if err != nil {
		return
	}
	if blk, _ := pem.Decode(b); blk != nil && blk.Type == "CERTIFICATE" {
		if leaf, err := x509.ParseCertificate(blk.Bytes); err == nil {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(leaf.NotAfter.Unix()), "envoy_client")
		}
	}
}
