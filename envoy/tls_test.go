package envoy

import (
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/testing/protocmp"

	"github.com/airlock-mcp/airlock/internal/config"
)

func tlsConfig(t *testing.T) *config.Config {
	t.Helper()
	cfg := loadConfig(t)
	cfg.Listen.TLS = config.ListenTLS{
		CertFile: "/etc/airlock/tls.crt", KeyFile: "/etc/airlock/tls.key", ClientCAFile: "/etc/airlock/ca.crt",
		AllowedIdentities: []string{"spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway"},
		Envoy: config.EnvoyTLS{
			CertFile: "/etc/envoy/airlock/tls.crt", KeyFile: "/etc/envoy/airlock/tls.key",
			CAFile: "/etc/envoy/airlock/ca.crt", ServerName: "airlock.airlock-system.svc",
		},
	}
	return cfg
}

// upstreamTLS unpacks a cluster's TLS context (nil: plaintext).
func upstreamTLS(t *testing.T, c *clusterv3.Cluster) *tlsv3.UpstreamTlsContext {
	t.Helper()
	ts := c.GetTransportSocket()
	if ts == nil {
		return nil
	}
	if ts.GetName() != TLSTransportSocket {
		t.Fatalf("cluster %s: transport socket %q", c.GetName(), ts.GetName())
	}
	u := &tlsv3.UpstreamTlsContext{}
	if err := ts.GetTypedConfig().UnmarshalTo(u); err != nil {
		t.Fatal(err)
	}
	return u
}

// With listen.tls, every cluster for airlock's gRPC services — in the
// static resources, the ADS data path and the ADS bootstrap — carries
// Envoy's client certificate and checks airlock's name; the rest do not.
func TestAirlockClustersGetMutualTLS(t *testing.T) {
	cfg := tlsConfig(t)
	check := func(t *testing.T, cs []*clusterv3.Cluster, want map[string]bool) {
		t.Helper()
		seen := map[string]bool{}
		for _, c := range cs {
			u := upstreamTLS(t, c)
			secured := u != nil && u.GetSni() == "airlock.airlock-system.svc"
			if _, ours := want[c.GetName()]; ours {
				seen[c.GetName()] = true
				if !secured {
					t.Errorf("cluster %s: no mutual TLS to airlock: %v", c.GetName(), c.GetTransportSocket())
					continue
				}
				ctx := u.GetCommonTlsContext()
				got := []string{
					ctx.GetTlsCertificates()[0].GetCertificateChain().GetFilename(),
					ctx.GetTlsCertificates()[0].GetPrivateKey().GetFilename(),
					ctx.GetValidationContext().GetTrustedCa().GetFilename(),
					ctx.GetValidationContext().GetMatchTypedSubjectAltNames()[0].GetMatcher().GetExact(),
					ctx.GetValidationContext().GetMatchTypedSubjectAltNames()[0].GetSanType().String(),
					strings.Join(ctx.GetAlpnProtocols(), ","),
					ctx.GetTlsParams().GetTlsMinimumProtocolVersion().String(),
				}
				wantFields := []string{"/etc/envoy/airlock/tls.crt", "/etc/envoy/airlock/tls.key", "/etc/envoy/airlock/ca.crt", "airlock.airlock-system.svc", "DNS", "h2", "TLSv1_2"}
				if d := cmp.Diff(wantFields, got); d != "" {
					t.Errorf("cluster %s TLS (-want +got):\n%s", c.GetName(), d)
				}
			} else if secured {
				t.Errorf("cluster %s got airlock's client certificate", c.GetName())
			}
		}
		for name := range want {
			if !seen[name] {
				t.Errorf("no cluster %s", name)
			}
		}
	}
	t.Run("static", func(t *testing.T) {
		r, err := Build(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, r.Clusters, map[string]bool{ClusterAuthz: true, ClusterProc: true})
		b, err := StaticBootstrap(r, Node{ID: "n", Cluster: "c"})
		if err != nil {
			t.Fatal(err)
		}
		// The bootstrap as Envoy reads it (YAML) keeps it and validates deeply.
		out, err := YAML(b)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ParseBootstrap(out)
		if err != nil {
			t.Fatal(err)
		}
		check(t, back.GetStaticResources().GetClusters(), map[string]bool{ClusterAuthz: true, ClusterProc: true})
	})
	t.Run("ADS data path", func(t *testing.T) {
		d, err := BuildDynamic(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, d.Clusters, map[string]bool{ClusterAuthz: true, ClusterProc: true})
	})
	t.Run("ADS bootstrap", func(t *testing.T) {
		b, err := ADSBootstrap(Node{ID: "n", Cluster: "c"}, "airlock.airlock-system.svc:18000", ADSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := SecureADSBootstrap(b, cfg); err != nil {
			t.Fatal(err)
		}
		check(t, b.GetStaticResources().GetClusters(), map[string]bool{ClusterXDS: true})
	})
	t.Run("off", func(t *testing.T) {
		r, err := Build(loadConfig(t), Options{})
		if err != nil {
			t.Fatal(err)
		}
		check(t, r.Clusters, map[string]bool{})
		b, err := ADSBootstrap(Node{ID: "n", Cluster: "c"}, "127.0.0.1:18000", ADSOptions{})
		if err != nil {
			t.Fatal(err)
		}
		before := b.GetStaticResources().GetClusters()[0].GetTransportSocket()
		if err := SecureADSBootstrap(b, loadConfig(t)); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(before, b.GetStaticResources().GetClusters()[0].GetTransportSocket(), protocmp.Transform()); d != "" {
			t.Errorf("SecureADSBootstrap changed a plaintext bootstrap:\n%s", d)
		}
	})
}

// Without Envoy's side, airlock cannot render a configuration that
// reaches its own mutual-TLS listeners: an error naming the fields.
func TestAirlockTLSNeedsEnvoysSide(t *testing.T) {
	cfg := tlsConfig(t)
	cfg.Listen.TLS.Envoy = config.EnvoyTLS{CertFile: "/x"}
	_, err := Build(cfg, Options{})
	for _, w := range []string{"listen.tls.envoy.key_file is required", "listen.tls.envoy.ca_file", "listen.tls.envoy.server_name"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error %v lacks %q", err, w)
		}
	}
}
