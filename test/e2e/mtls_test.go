package e2e

import (
	"context"
	"encoding/json"
	"io"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

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
	gatewayCA, otherCA := mtlstest.NewCA(t, "gateway-ca"), mtlstest.NewCA(t, "other-ca")
	s, serverCA, gw := startMTLSStack(t, false, airlockName, gatewayCA, gatewayName)
	t.Logf("data path: %s", s.DataPath.Kind())
	ctx := ctxT(t, 60*time.Second)
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
	if got, err := directCheck(s, tok, "github", gwCreds); err != nil || !got {
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
			got, err := directCheck(s, tok, "github", creds)
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
