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
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
	"github.com/airlock-mcp/airlock/test/harness"
)

// Finding 7: the ext_authz answer carries the upstream credential. With
// listen.tls, only the gateway's identity reaches airlock's gRPC
// listeners: the data path (fed over ADS, itself over mutual TLS) works,
// while a pod holding a valid agent token — plaintext, without a client
// certificate, with another identity of the same mesh CA, or with a
// certificate of another CA — gets no answer to Check, so never the
// credential.
func TestAttackDirectCheckNeedsTheGatewayIdentity(t *testing.T) {
	const (
		airlockName = "airlock.airlock-system.svc"
		gatewayID   = "spiffe://cluster.local/ns/gateway/sa/envoy"
	)
	serverCA, meshCA, otherCA := mtlstest.NewCA(t, "airlock-ca"), mtlstest.NewCA(t, "mesh-ca"), mtlstest.NewCA(t, "other-ca")
	f := mtlstest.WriteServerFiles(t, serverCA.Issue(t, "airlock", time.Time{}, airlockName), meshCA)
	gw := meshCA.Issue(t, "envoy", time.Time{}, gatewayID)
	dir := t.TempDir()
	envoyCert, envoyKey, envoyCA := filepath.Join(dir, "envoy.crt"), filepath.Join(dir, "envoy.key"), filepath.Join(dir, "airlock-ca.crt")
	for p, b := range map[string][]byte{envoyCert: gw.CertPEM, envoyKey: gw.KeyPEM, envoyCA: serverCA.PEM} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := harness.Start(ctx, harness.Options{ADS: true, ListenTLS: &config.ListenTLS{
		CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.ClientCA, AllowedIdentities: []string{gatewayID},
		Envoy: config.EnvoyTLS{CertFile: envoyCert, KeyFile: envoyKey, CAFile: envoyCA, ServerName: airlockName},
	}})
	if err != nil {
		t.Fatalf("the stack with mutual TLS on airlock's gRPC listeners: %v", err)
	}
	defer s.Close()
	tok, err := s.Token("00u-atk-pod", "jsonapi")
	if err != nil {
		t.Fatal(err)
	}

	// Control: the data path reaches airlock with its certificate.
	s.JSONServer.Reset()
	r := send(t, s.BaseURL, rawRequest{Target: "/mcp/jsonapi", Header: mcpHeaders(tok), Body: call("m-1", "echo", `{"text":"x"}`)})
	if r.resultFor(`"m-1"`) == nil || len(s.JSONServer.ToolCalls()) != 1 {
		t.Fatalf("control: a call through the data path over mutual TLS: %s", r)
	}
	// Control: with the gateway's own identity, Check answers (and would
	// hand out the credential): the refusals below are not vacuous.
	if got, err := directCheck(t, s, tok, credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &gw))); err != nil {
		t.Fatalf("control: Check with the gateway's identity: %v", err)
	} else if !got {
		t.Fatal("control: Check with the gateway's identity allowed nothing")
	}

	other := meshCA.Issue(t, "curl", time.Time{}, "spiffe://cluster.local/ns/default/sa/curl")
	foreign := otherCA.Issue(t, "envoy", time.Time{}, gatewayID)
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext":                     insecure.NewCredentials(),
		"TLS without a client cert":     credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, nil)),
		"another identity of the mesh":  credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &other)),
		"the gateway's SAN, another CA": credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &foreign)),
	} {
		t.Run(name, func(t *testing.T) {
			credential, err := directCheck(t, s, tok, creds)
			if err == nil {
				t.Errorf("Check answered (credential handed out: %v)", credential)
			}
		})
	}
}

// directCheck asks airlock's ext_authz for a decision on an echo call as
// Envoy would, and reports whether the answer carried the upstream
// credential.
func directCheck(t *testing.T, s *harness.Stack, tok string, creds credentials.TransportCredentials) (bool, error) {
	t.Helper()
	conn, err := grpc.NewClient(s.AuthzAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return false, err
	}
	defer conn.Close()
	body := string(call("m-2", "echo", `{"text":"x"}`))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Path: "/mcp/jsonapi", Host: "gw.test", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				"authorization": "Bearer " + tok, "content-type": "application/json", "accept": "application/json, text/event-stream",
				"mcp-protocol-version": "2025-11-25", "content-length": strconv.Itoa(len(body)),
			},
			Body: body, Size: int64(len(body)),
		}},
		ContextExtensions: map[string]string{"airlock_target": "jsonapi"},
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
