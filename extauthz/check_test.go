package extauthz_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

const upstreamSecret = "ghp_upstreamSecretValue0123456789abcdef"

// env is a running gateway (real gRPC on loopback) with a real OIDC issuer.
type env struct {
	iss    *oidcissuer.Issuer
	cfg    *config.Config
	client authv3.AuthorizationClient
	http   net.Addr // airlock's HTTP listener (API, inbox)
	g      *serve.Gateway
}

// policyDir is the shipped decision policy with the test rules above.
func policyDir(t testing.TB) string {
	dir := t.TempDir()
	rego, err := os.ReadFile("../policies/airlock/decision.rego")
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/policy/data.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"decision.rego": rego, "data.yaml": data} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func startEnv(t testing.TB) *env {
	t.Helper()
	return startEnvWith(t, func(string) string { return "" })
}

// startEnvWith starts the gateway with extra airlock.yaml sections
// appended (e.g. an inbox), given the test issuer's URL.
func startEnvWith(t testing.TB, extra func(issuer string) string) *env {
	t.Helper()
	return startEnvOpts(t, extra, serve.Options{})
}

// startEnvOpts is startEnvWith with serve's options (a span exporter, the
// decision log's writer).
func startEnvOpts(t testing.TB, extra func(issuer string) string, opts serve.Options) *env {
	t.Helper()
	iss, err := oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	t.Setenv("AIRLOCK_TEST_GITHUB_TOKEN", upstreamSecret)
	src := fmt.Sprintf(`
public_url: https://gw.test
listen: {authz: "127.0.0.1:0", http: "127.0.0.1:0", proc: "", xds: ""}
issuers:
  - name: test
    url: %s
    audiences: [api://default]
targets:
  - name: github
    upstream: http://127.0.0.1:1/mcp
    scopes_required: [mcp.github]
    credential: {prefix: "Bearer ", env: AIRLOCK_TEST_GITHUB_TOKEN}
  - name: everything
    upstream: http://127.0.0.1:2/mcp
  - name: okta
    upstream: http://127.0.0.1:3/mcp
    scopes_required: [mcp.okta]
    accept_issuer_audiences: true
policy: {dir: %s, reload_interval: 0s}
grants: {dir: %s, hold_window: 0s}
audit: {spool: {dir: %s}, embedded: {dir: %s}}
log: {level: error}
%s`, iss.URL(), policyDir(t), t.TempDir(), t.TempDir(), t.TempDir(), extra(iss.URL()))
	cfg, err := config.Parse(strings.NewReader(src), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	g, err := serve.Start(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Stop(ctx)
	})
	conn, err := grpc.NewClient(g.AuthzAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &env{iss: iss, cfg: cfg, client: authv3.NewAuthorizationClient(conn), http: g.HTTPAddr, g: g}
}

func (e *env) token(t testing.TB, tok oidcissuer.Token) string {
	t.Helper()
	if tok.Subject == "" {
		tok.Subject = "00u1alice"
	}
	if tok.ClientID == "" {
		tok.ClientID = "0oa-agent"
	}
	if tok.Audience == nil {
		tok.Audience = []string{"https://gw.test/mcp/github"}
	}
	if tok.Scopes == nil {
		tok.Scopes = []string{"mcp.github"}
	}
	s, err := e.iss.Mint(tok)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// envoyRequest builds a CheckRequest the way Envoy's ext_authz filter does
// (attribute_context.proto): lower-case header names with pseudo-headers,
// duplicate headers comma-joined, x-envoy-auth-partial-body from the
// buffer, raw_body when pack_as_bytes is set, context_extensions from the
// route's ExtAuthzPerRoute.
type envoyRequest struct {
	method, path, target string
	headers              map[string]string
	body                 string
	partial              bool
	stringBody           bool // pack_as_bytes off: body goes in the UTF-8 "body" field
}

func (r envoyRequest) proto() *authv3.CheckRequest {
	h := map[string]string{
		":authority":        "gw.test",
		":method":           r.method,
		":path":             r.path,
		":scheme":           "https",
		"x-forwarded-proto": "https",
		"x-request-id":      "5f1e0c2a-4b8e-4e1a-9a53-0d7b2f3c9e11",
		"user-agent":        "mcp-client/1.0",
		"accept":            "application/json, text/event-stream",
	}
	if r.method == "POST" {
		h["content-type"] = "application/json"
		h["content-length"] = strconv.Itoa(len(r.body))
		h["x-envoy-auth-partial-body"] = strconv.FormatBool(r.partial)
	}
	for k, v := range r.headers {
		h[k] = v
	}
	hr := &authv3.AttributeContext_HttpRequest{
		Id: h["x-request-id"], Method: r.method, Path: r.path, Host: "gw.test", Scheme: "https",
		Protocol: "HTTP/1.1", Headers: h, Size: int64(len(r.body)),
	}
	if r.stringBody {
		hr.Body = r.body
	} else {
		hr.RawBody = []byte(r.body)
	}
	ext := map[string]string{}
	if r.target != "" {
		ext["airlock_target"] = r.target
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 53412}}}}},
		Request:           &authv3.AttributeContext_Request{Http: hr},
		ContextExtensions: ext,
	}}
}

func toolCall(id any, name string, args string) string {
	idj, _ := json.Marshal(id)
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":%q,"arguments":%s}}`, idj, name, args)
}

func headers(hs []*corev3.HeaderValueOption) map[string]string {
	m := map[string]string{}
	for _, h := range hs {
		m[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return m
}

type rpcError struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Data    map[string]any `json:"data"`
	} `json:"error"`
}
