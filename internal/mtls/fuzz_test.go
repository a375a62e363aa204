package mtls

import (
	"crypto/x509"
	"net/url"
	"strings"
	"testing"
)

// An allowed identity lets in exactly what it names: the same DNS name
// (any case), the same URI, or — for a "/*" pattern — a URI strictly
// below that path; never a parse that slips past.
func FuzzAllowedIdentities(f *testing.F) {
	for _, s := range [][2]string{
		{gatewaySPID, gatewaySPID},
		{"spiffe://cluster.local/ns/gw/sa/*", "spiffe://cluster.local/ns/gw/sa/edge"},
		{"spiffe://cluster.local/ns/gw/sa/*", "spiffe://cluster.local/ns/gw/sa"},
		{"spiffe://cluster.local/ns/gw/sa/*", "spiffe://cluster.local/ns/gw/sa/../../x/sa/y"},
		{"Envoy.Gateway.Internal", "envoy.gateway.internal"},
		{"gw.internal", "gw.internal."},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, id, san string) {
		ids, err := parseIdentities([]string{id})
		if err != nil {
			return
		}
		leaf := &x509.Certificate{}
		if u, err := url.Parse(san); err == nil && strings.Contains(san, "://") {
			leaf.URIs = []*url.URL{u}
		} else {
			leaf.DNSNames = []string{san}
		}
		if !ids.match(leaf) {
			return
		}
		for _, d := range leaf.DNSNames {
			if strings.EqualFold(d, id) {
				return
			}
		}
		for _, u := range leaf.URIs {
			s := u.String()
			if s == id {
				return
			}
			if p, ok := strings.CutSuffix(id, "*"); ok && strings.HasSuffix(p, "/") && strings.HasPrefix(s, p) && len(s) > len(p) && !strings.Contains(s[len(p):], "..") {
				return
			}
		}
		t.Fatalf("identity %q let in %q", id, san)
	})
}
