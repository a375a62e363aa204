package e2e

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/peers"
)

// TestMTLSStaticBootstrap: with listen.tls, the static bootstrap airlock
// renders (`airlock envoy bootstrap`, no ADS) gives the data path's
// ext_authz and ext_proc clusters the mutual-TLS transport socket, and a
// Go SDK client's allowed tools/call reaches the Go SDK server through
// them (Check and the ext_proc stream over TLS, the gateway's DNS
// identity allowed). Anyone else who reaches airlock's gRPC ports with a
// valid agent token — plaintext, TLS without a client certificate, a
// certificate of the gateway's CA whose SAN is not allowed, or the
// gateway's SAN from another CA — gets neither a Check answer (the
// upstream credential) nor an ext_proc stream.
func TestMTLSStaticBootstrap(t *testing.T) {
	const (
		airlockName = "airlock.airlock-system.svc.cluster.local"
		gatewayName = "envoy-gateway.airlock-system.svc.cluster.local"
	)
	serverCA, gatewayCA, otherCA := mtlstest.NewCA(t, "airlock-server-ca"), mtlstest.NewCA(t, "gateway-ca"), mtlstest.NewCA(t, "other-ca")
	srv := mtlstest.WriteServerFiles(t, serverCA.Issue(t, "airlock", time.Time{}, airlockName), gatewayCA)
	gw := gatewayCA.Issue(t, "gateway", time.Time{}, gatewayName)
	dir := t.TempDir()
	envoyCert, envoyKey, envoyCA := filepath.Join(dir, "gateway.crt"), filepath.Join(dir, "gateway.key"), filepath.Join(dir, "airlock-ca.crt")
	for p, b := range map[string][]byte{envoyCert: gw.CertPEM, envoyKey: gw.KeyPEM, envoyCA: serverCA.PEM} {
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := harness.Start(ctx, harness.Options{ListenTLS: &config.ListenTLS{
		CertFile: srv.Cert, KeyFile: srv.Key, ClientCAFile: srv.ClientCA, AllowedIdentities: []string{gatewayName},
		Envoy: config.EnvoyTLS{CertFile: envoyCert, KeyFile: envoyKey, CAFile: envoyCA, ServerName: airlockName},
	}})
	if err != nil {
		t.Fatalf("the stack with mutual TLS on airlock's gRPC listeners (static bootstrap): %v", err)
	}
	defer s.Close()
	t.Logf("data path: %s", s.DataPath.Kind())
	const sub = "00u-mtls-agent"
	tok, err := s.Token(sub, "github")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("MCP call through the gateway", func(t *testing.T) {
		s.GoServer.Reset()
		cs, err := peers.ConnectGoClientWith(ctx, s.TargetURL("github"), tok, peers.GoClientOptions{ProtocolVersion: "2025-11-25"})
		if err != nil {
			t.Fatalf("connect through the data path: %v", err)
		}
		defer cs.Close()
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: peers.ToolEcho, Arguments: map[string]any{"text": "over mutual TLS"}})
		if err != nil || res.IsError {
			t.Fatalf("tools/call echo: %v %+v", err, res)
		}
		if tc, ok := res.Content[0].(*mcp.TextContent); !ok || tc.Text != "over mutual TLS" {
			t.Errorf("echo answered %+v", res.Content)
		}
		calls := s.GoServer.ToolCalls()
		if len(calls) != 1 || calls[0].Name != peers.ToolEcho {
			t.Fatalf("the Go SDK server ran %+v, want one echo", calls)
		}
		var args map[string]any
		if err := json.Unmarshal(calls[0].Arguments, &args); err != nil || args["text"] != "over mutual TLS" {
			t.Errorf("echo arguments %s", calls[0].Arguments)
		}
	})

	// Control: the gateway's own identity gets an answer carrying the
	// credential, so the refusals below are not vacuous.
	gwCreds := credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &gw))
	if got, err := mtlsCheck(s, tok, gwCreds); err != nil || !got {
		t.Fatalf("control: Check with the gateway's certificate: credential=%v err=%v", got, err)
	}
	if err := mtlsProcStream(s, gwCreds); status.Code(err) == codes.Unavailable {
		t.Fatalf("control: ext_proc stream with the gateway's certificate: %v", err)
	}

	notAllowed := gatewayCA.Issue(t, "pod", time.Time{}, "curl.default.svc.cluster.local")
	foreign := otherCA.Issue(t, "gateway", time.Time{}, gatewayName)
	for name, creds := range map[string]credentials.TransportCredentials{
		"plaintext":                      insecure.NewCredentials(),
		"no client certificate":          credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, nil)),
		"client SAN not allowed":         credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &notAllowed)),
		"the gateway's SAN, another CA":  credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &foreign)),
		"the gateway's certificate, URI": credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, ptr(gatewayCA.Issue(t, "gateway", time.Time{}, "spiffe://"+gatewayName)))),
	} {
		t.Run(name, func(t *testing.T) {
			got, err := mtlsCheck(s, tok, creds)
			if err == nil {
				t.Fatalf("Check answered (credential handed out: %v)", got)
			}
			if c := status.Code(err); c != codes.Unavailable {
				t.Errorf("Check failed with %v, want the connection refused (Unavailable): %v", c, err)
			}
			if err := mtlsProcStream(s, creds); status.Code(err) != codes.Unavailable {
				t.Errorf("ext_proc stream: %v, want the connection refused (Unavailable)", err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// mtlsCheck asks airlock's ext_authz, as Envoy would, to decide an echo
// call on target github, and reports whether the answer carries the
// upstream credential.
func mtlsCheck(s *harness.Stack, tok string, creds credentials.TransportCredentials) (bool, error) {
	conn, err := grpc.NewClient("passthrough:///"+s.AuthzAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return false, err
	}
	defer conn.Close()
	body := string(call("mtls-1", peers.ToolEcho, `{"text":"x"}`))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 40000}}}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Path: "/mcp/github", Host: "gw.test", Scheme: "http", Protocol: "HTTP/1.1",
			Headers: map[string]string{
				"authorization": "Bearer " + tok, "content-type": "application/json", "accept": "application/json, text/event-stream",
				"mcp-protocol-version": "2025-11-25", "content-length": strconv.Itoa(len(body)),
			},
			Body: body, Size: int64(len(body)),
		}},
		ContextExtensions: map[string]string{"airlock_target": "github"},
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

// mtlsProcStream opens an ext_proc stream, sends request headers and
// reads airlock's answer: nil or an error of airlock's when the stream
// reached it, Unavailable when the connection was refused.
func mtlsProcStream(s *harness.Stack, creds credentials.TransportCredentials) error {
	conn, err := grpc.NewClient("passthrough:///"+s.ProcAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := procv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		return err
	}
	if err := st.Send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_RequestHeaders{RequestHeaders: &procv3.HttpHeaders{
		Headers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: ":path", RawValue: []byte("/mcp/github")}, {Key: ":method", RawValue: []byte("GET")}}},
	}}}); err != nil && err != io.EOF {
		return err
	}
	_, err = st.Recv()
	return err
}
