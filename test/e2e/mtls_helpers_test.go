package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
	"github.com/airlock-mcp/airlock/test/harness"
)

// startMTLSStack starts a stack whose gRPC listeners take mutual TLS only:
// airlock's certificate (for airlockName) from a fresh CA, clients' from
// clientCA, and only gatewayID allowed; the data path (fed over ADS when
// ads is set, else the static bootstrap) uses a certificate for gatewayID
// from clientCA. It returns the stack, airlock's CA and the gateway's
// certificate.
func startMTLSStack(t *testing.T, ads bool, airlockName string, clientCA *mtlstest.CA, gatewayID string) (*harness.Stack, *mtlstest.CA, mtlstest.Leaf) {
	t.Helper()
	serverCA := mtlstest.NewCA(t, "airlock-server-ca")
	srv := mtlstest.WriteServerFiles(t, serverCA.Issue(t, "airlock", time.Time{}, airlockName), clientCA)
	gw := clientCA.Issue(t, "gateway", time.Time{}, gatewayID)
	dir := t.TempDir()
	envoyCert, envoyKey, envoyCA := filepath.Join(dir, "gateway.crt"), filepath.Join(dir, "gateway.key"), filepath.Join(dir, "airlock-ca.crt")
	for p, b := range map[string][]byte{envoyCert: gw.CertPEM, envoyKey: gw.KeyPEM, envoyCA: serverCA.PEM} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := harness.Start(ctx, harness.Options{ADS: ads, ListenTLS: &config.ListenTLS{
		CertFile: srv.Cert, KeyFile: srv.Key, ClientCAFile: srv.ClientCA, AllowedIdentities: []string{gatewayID},
		Envoy: config.EnvoyTLS{CertFile: envoyCert, KeyFile: envoyKey, CAFile: envoyCA, ServerName: airlockName},
	}})
	if err != nil {
		t.Fatalf("the stack with mutual TLS on airlock's gRPC listeners (ADS %v): %v", ads, err)
	}
	t.Cleanup(func() { s.Close() })
	return s, serverCA, gw
}

// directCheck asks airlock's ext_authz, as Envoy would, to decide an echo
// call on target, and reports whether the answer carries the upstream
// credential.
func directCheck(s *harness.Stack, tok, target string, creds credentials.TransportCredentials) (bool, error) {
	conn, err := grpc.NewClient("passthrough:///"+s.AuthzAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return false, err
	}
	defer conn.Close()
	body := string(call("direct-1", "echo", `{"text":"x"}`))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Path: "/mcp/" + target, Host: "gw.test", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				"authorization": "Bearer " + tok, "content-type": "application/json", "accept": "application/json, text/event-stream",
				"mcp-protocol-version": "2025-11-25", "content-length": strconv.Itoa(len(body)),
			},
			Body: body, Size: int64(len(body)),
		}},
		ContextExtensions: map[string]string{"airlock_target": target},
	}})
	if err != nil {
		return false, err
	}
	for _, h := range resp.GetOkResponse().GetHeaders() {
		if h.GetHeader().GetKey() == "authorization" && h.GetHeader().GetValue() == "Bearer "+harness.UpstreamSecret {
			return true, nil
		}
	}
	return false, nil
}
