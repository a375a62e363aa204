package serve

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
)

const (
	airlockName = "airlock.airlock-system.svc"
	gatewayID   = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway"
)

// testConfig parses airlock.yaml with listen: set to listen (YAML lines
// under listen:) and an allow-all policy.
func testConfig(t *testing.T, listen, extra string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := os.Mkdir(pol, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pol, "p.rego"), []byte("package airlock\n\ndecision := {\"outcome\": \"allow\", \"reason\": \"ok\"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
listen:
%s
issuers: [{name: okta, url: "https://example.okta.com/oauth2/default"}]
targets: [{name: github, upstream: "http://127.0.0.1:1/mcp"}]
policy: {dir: %s, reload_interval: 0s}
%s`, listen, pol, extra)
	cfg, err := config.Parse(strings.NewReader(src), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func start(t *testing.T, cfg *config.Config) *Gateway {
	t.Helper()
	g, err := Start(context.Background(), cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Stop(ctx)
	})
	return g
}

func healthCheck(t *testing.T, addr string, creds credentials.TransportCredentials) error {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// With listen.tls every gRPC listener (ext_authz, ext_proc, ADS) serves
// mutual TLS: the gateway's certificate gets in; no certificate, another
// identity, or plaintext do not.
func TestGRPCListenersRequireClientCertificates(t *testing.T) {
	serverCA, clientCA := mtlstest.NewCA(t, "airlock-ca"), mtlstest.NewCA(t, "mesh-ca")
	f := mtlstest.WriteServerFiles(t, serverCA.Issue(t, "airlock", time.Time{}, airlockName), clientCA)
	cfg := testConfig(t, fmt.Sprintf(`  authz: 127.0.0.1:0
  proc: 127.0.0.1:0
  xds: 127.0.0.1:0
  http: 127.0.0.1:0
  tls:
    cert_file: %s
    key_file: %s
    client_ca_file: %s
    allowed_identities: [%s]
    envoy: {cert_file: /etc/envoy/tls.crt, key_file: /etc/envoy/tls.key, ca_file: /etc/envoy/ca.crt, server_name: %s}`,
		f.Cert, f.Key, f.ClientCA, gatewayID, airlockName), "")
	g := start(t, cfg)
	if g.TLS == nil {
		t.Fatal("listen.tls set but the gateway serves plaintext")
	}
	gw := clientCA.Issue(t, "gw", time.Time{}, gatewayID)
	other := clientCA.Issue(t, "gw", time.Time{}, "spiffe://cluster.local/ns/default/sa/curl")
	for _, l := range []struct {
		name string
		addr string
	}{{"authz", g.AuthzAddr.String()}, {"proc", g.ProcAddr.String()}, {"xds", g.XDSAddr.String()}} {
		t.Run(l.name, func(t *testing.T) {
			if err := healthCheck(t, l.addr, credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &gw))); err != nil {
				t.Fatalf("the gateway's certificate: %v", err)
			}
			for name, creds := range map[string]credentials.TransportCredentials{
				"another identity":      credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &other)),
				"no client certificate": credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, nil)),
				"plaintext":             insecure.NewCredentials(),
			} {
				if err := healthCheck(t, l.addr, creds); err == nil {
					t.Errorf("%s got an answer", name)
				}
			}
		})
	}
}

// Without listen.tls, serve refuses a gRPC listener that is not on
// loopback, before binding anything, and says why; listen.insecure lets
// it start.
func TestPlaintextOffLoopbackRefused(t *testing.T) {
	for _, field := range []string{"authz", "proc", "xds"} {
		t.Run(field, func(t *testing.T) {
			cfg := testConfig(t, "  authz: 127.0.0.1:0\n  proc: ''\n  xds: ''\n  http: ''", "")
			addr := "0.0.0.0:0"
			switch field {
			case "authz":
				cfg.Listen.Authz = addr
			case "proc":
				cfg.Listen.Proc = addr
			case "xds":
				cfg.Listen.XDS = addr
			}
			_, err := Start(context.Background(), cfg, Options{})
			if err == nil {
				t.Fatal("started")
			}
			for _, w := range []string{"listen." + field, "not a loopback address", "ext_authz answers carry the upstream credential", "listen.insecure: true"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	t.Run("insecure", func(t *testing.T) {
		cfg := testConfig(t, "  authz: 0.0.0.0:0\n  proc: ''\n  xds: ''\n  http: ''\n  insecure: true", "")
		g := start(t, cfg)
		if g.TLS != nil || g.AuthzAddr == nil {
			t.Fatalf("tls %v authz %v", g.TLS, g.AuthzAddr)
		}
	})
	t.Run("localhost", func(t *testing.T) {
		cfg := testConfig(t, "  authz: localhost:0\n  proc: ''\n  xds: ''\n  http: ''", "")
		start(t, cfg)
	})
}

// A broken TLS file stops serve before anything listens, naming the field.
func TestTLSFilesCheckedAtStart(t *testing.T) {
	serverCA, clientCA := mtlstest.NewCA(t, "airlock-ca"), mtlstest.NewCA(t, "mesh-ca")
	f := mtlstest.WriteServerFiles(t, serverCA.Issue(t, "airlock", time.Time{}, airlockName), clientCA)
	cfg := testConfig(t, fmt.Sprintf("  authz: 127.0.0.1:0\n  proc: ''\n  xds: ''\n  http: ''\n  tls: {cert_file: %s, key_file: %s, client_ca_file: %s, allowed_identities: [%s]}",
		f.Cert, f.Key+".missing", f.ClientCA, gatewayID), "")
	_, err := Start(context.Background(), cfg, Options{})
	if err == nil || !strings.Contains(err.Error(), "listen.tls.key_file") {
		t.Fatalf("error %v, want one naming listen.tls.key_file", err)
	}
}

// A body within limits.max_request_bytes but above gRPC's default 4 MiB
// receive limit reaches airlock, which answers it: not a bare gRPC error
// (which Envoy would turn into a 403 with no reason).
func TestCheckTakesBodiesUpToTheLimit(t *testing.T) {
	cfg := testConfig(t, "  authz: 127.0.0.1:0\n  proc: ''\n  xds: ''\n  http: ''", "limits: {max_request_bytes: 8388608}\n")
	g := start(t, cfg)
	if got, want := AuthzMaxRecvMsgSize(cfg), 9<<20; got != want {
		t.Errorf("AuthzMaxRecvMsgSize = %d, want %d", got, want)
	}
	if got := ProcMaxRecvMsgSize(cfg); got != 10<<20 {
		t.Errorf("ProcMaxRecvMsgSize = %d, want %d (the stream buffer limit, max of the two body limits, plus an upstream chunk and 1 MiB)", got, 10<<20)
	}
	conn, err := grpc.NewClient(g.AuthzAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"pad":"` + strings.Repeat("a", 5<<20) + `"}}}`
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Path: "/mcp/github", Host: "127.0.0.1:10000", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: map[string]string{"content-type": "application/json", "accept": "application/json, text/event-stream"},
			RawBody: []byte(body), Size: int64(len(body)),
		}},
		ContextExtensions: map[string]string{"airlock_target": "github"},
	}})
	if err != nil {
		t.Fatalf("a 5 MiB body with max_request_bytes 8 MiB: bare gRPC error %v", err)
	}
	// No token: airlock's own 401, with a body saying why.
	if d := resp.GetDeniedResponse(); d == nil || d.GetStatus().GetCode() != 401 || d.GetBody() == "" {
		t.Fatalf("want airlock's 401 with a reason, got %v", resp)
	}
}

// The gRPC receive limits follow the body limits: the ext_authz server
// takes a whole request body up to limits.max_request_bytes, the ext_proc
// server whatever Envoy's stream buffer (the larger body limit) can send
// in one message.
func TestGRPCReceiveLimitsFollowBodyLimits(t *testing.T) {
	for _, tc := range []struct {
		name            string
		req, resp       int
		wantAuthz, want int
	}{
		{"defaults", 1 << 20, 8 << 20, 2 << 20, 10 << 20},
		{"request larger", 16 << 20, 8 << 20, 17 << 20, 18 << 20},
		{"small limits keep Envoy's 1 MiB buffer", 64 << 10, 64 << 10, 64<<10 + 1<<20, 3 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config.Defaults()
			cfg.Limits.MaxRequestBytes, cfg.Limits.MaxResponseBytes = tc.req, tc.resp
			if got := AuthzMaxRecvMsgSize(&cfg); got != tc.wantAuthz {
				t.Errorf("AuthzMaxRecvMsgSize = %d, want %d", got, tc.wantAuthz)
			}
			if got := ProcMaxRecvMsgSize(&cfg); got != tc.want {
				t.Errorf("ProcMaxRecvMsgSize = %d, want %d", got, tc.want)
			}
		})
	}
}
