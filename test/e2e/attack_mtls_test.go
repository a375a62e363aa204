package e2e

import (
	"testing"
	"time"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
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
	meshCA, otherCA := mtlstest.NewCA(t, "mesh-ca"), mtlstest.NewCA(t, "other-ca")
	s, serverCA, gw := startMTLSStack(t, true, airlockName, meshCA, gatewayID)
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
	if got, err := directCheck(s, tok, "jsonapi", credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &gw))); err != nil {
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
			credential, err := directCheck(s, tok, "jsonapi", creds)
			if err == nil {
				t.Errorf("Check answered (credential handed out: %v)", credential)
			}
		})
	}
}
