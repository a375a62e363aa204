package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/rego"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

const (
	repoPolicies = "../../../policies"
	repoPeer     = "../peer"
	testSecret   = "ghp_benchTestUpstreamCredential0123456789"
)

// startGateway runs airlock's serve wiring in-process with the config the
// bench writes for `airlock serve`.
func startGateway(t testing.TB, iss *oidcissuer.Issuer) *serve.Gateway {
	t.Helper()
	if err := os.Setenv(credentialEnv, testSecret); err != nil { // t.Setenv is not for benchmarks
		t.Fatal(err)
	}
	path, err := writeAirlockConfig(t.TempDir(), "127.0.0.1:0", iss.URL(), repoPolicies)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatalf("the bench's airlock.yaml does not load: %v", err)
	}
	g, err := serve.Start(context.Background(), cfg, serve.Options{})
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

// startAirlock is startGateway with a gRPC client.
func startAirlock(t testing.TB, iss *oidcissuer.Issuer) authv3.AuthorizationClient {
	t.Helper()
	g := startGateway(t, iss)
	conn, err := grpc.NewClient(g.AuthzAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return authv3.NewAuthorizationClient(conn)
}

// peerPolicy prepares test/bench/peer's policy with the files and data
// the bench hands opa-envoy-plugin.
func peerPolicy(t testing.TB, iss *oidcissuer.Issuer) rego.PreparedEvalQuery {
	t.Helper()
	jwks, err := fetchJWKS(context.Background(), iss.JWKSURL())
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := peerFiles(dir, "127.0.0.1:1", "127.0.0.1:2", repoPeer, repoPolicies, benchPeerData(iss.URL(), jwks, "Bearer "+testSecret)); err != nil {
		t.Fatal(err)
	}
	files, err := peerPolicyFiles(repoPeer, repoPolicies)
	if err != nil {
		t.Fatal(err)
	}
	pq, err := rego.New(
		rego.Query("data."+strings.ReplaceAll(peerDecisionPath, "/", ".")),
		rego.Load(append(files, filepath.Join(dir, "data.json")), nil),
	).PrepareForEval(context.Background())
	if err != nil {
		t.Fatalf("peer policy: %v", err)
	}
	return pq
}

// pluginInput is the input opa-envoy-plugin builds from a CheckRequest
// (envoyauth.RequestToInput): the request's JSON form, the parsed path and
// query, and the JSON body parsed when the content type is JSON.
func pluginInput(t testing.TB, req *authv3.CheckRequest) map[string]any {
	t.Helper()
	b, err := protojson.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var in map[string]any
	if err := json.Unmarshal(b, &in); err != nil {
		t.Fatal(err)
	}
	h := req.GetAttributes().GetRequest().GetHttp()
	path, _, _ := strings.Cut(h.GetPath(), "?")
	in["parsed_path"] = strings.Split(strings.TrimLeft(path, "/"), "/")
	in["parsed_query"] = map[string]any{}
	in["truncated_body"] = false
	in["version"] = map[string]any{"ext_authz": "v3", "encoding": "protojson"}
	if strings.Contains(h.GetHeaders()["content-type"], "application/json") && len(h.GetRawBody()) > 0 {
		var body any
		if err := json.Unmarshal(h.GetRawBody(), &body); err != nil {
			t.Fatal(err)
		}
		in["parsed_body"] = body
	}
	return in
}

// verdict is what a client, Envoy and the upstream see of an answer.
type verdict struct {
	Allowed    bool
	HTTPStatus int
	Principal  string // x-airlock-principal on allow
	Credential bool   // the upstream credential replaced the agent's token
	RPCCode    int    // JSON-RPC error code of a denial body
	Challenge  string // WWW-Authenticate error= parameter, if any
}

func airlockVerdict(resp *authv3.CheckResponse) verdict {
	v := verdict{Allowed: resp.GetStatus().GetCode() == int32(code.Code_OK)}
	if ok := resp.GetOkResponse(); ok != nil {
		v.HTTPStatus = 200
		for _, h := range ok.GetHeaders() {
			switch h.GetHeader().GetKey() {
			case "x-airlock-principal":
				v.Principal = h.GetHeader().GetValue()
			case "authorization":
				v.Credential = h.GetHeader().GetValue() == "Bearer "+testSecret
			}
		}
		return v
	}
	d := resp.GetDeniedResponse()
	v.HTTPStatus = int(d.GetStatus().GetCode())
	for _, h := range d.GetHeaders() {
		if h.GetHeader().GetKey() == "www-authenticate" {
			v.Challenge = challengeError(h.GetHeader().GetValue())
		}
	}
	v.RPCCode = rpcCode(d.GetBody())
	return v
}

func peerVerdict(t testing.TB, res map[string]any) verdict {
	t.Helper()
	v := verdict{Allowed: res["allowed"] == true}
	hs, _ := res["headers"].(map[string]any)
	if v.Allowed {
		v.HTTPStatus = 200
		v.Principal, _ = hs["x-airlock-principal"].(string)
		v.Credential = hs["authorization"] == "Bearer "+testSecret
		return v
	}
	switch st := res["http_status"].(type) {
	case json.Number:
		n, _ := st.Int64()
		v.HTTPStatus = int(n)
	case float64:
		v.HTTPStatus = int(st)
	default:
		t.Errorf("peer denial without a numeric http_status: %T", st)
	}
	if c, ok := hs["www-authenticate"].(string); ok {
		v.Challenge = challengeError(c)
	}
	body, _ := res["body"].(string)
	v.RPCCode = rpcCode(body)
	return v
}

func challengeError(h string) string {
	_, rest, ok := strings.Cut(h, `error="`)
	if !ok {
		return "(none)"
	}
	e, _, _ := strings.Cut(rest, `"`)
	return e
}

func rpcCode(body string) int {
	var m struct {
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal([]byte(body), &m)
	return m.Error.Code
}

// TestPeerPolicyIsEquivalentToAirlock sends the same Envoy requests to
// airlock (in-process, over gRPC) and to the peer's Rego policy (with the
// input opa-envoy-plugin builds) and requires the same verdict: the bench
// compares equal work.
func TestPeerPolicyIsEquivalentToAirlock(t *testing.T) {
	iss := testIssuer(t)
	other := testIssuer(t)
	airlock := startAirlock(t, iss)
	peer := peerPolicy(t, iss)

	mint := func(i *oidcissuer.Issuer, tok oidcissuer.Token) string {
		if tok.Subject == "" {
			tok.Subject = "user007@acme.example"
		}
		if tok.Audience == nil {
			tok.Audience = []string{benchResource}
		}
		if tok.Scopes == nil {
			tok.Scopes = []string{benchScope, "openid"}
		}
		tok.ClientID = "0oa-agent"
		s, err := i.Mint(tok)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := mint(iss, oidcissuer.Token{Groups: []string{"engineering"}})
	shape := Shape{Host: benchHost, Path: benchPath, Target: benchTarget}
	call := func(name string) string { return ToolCall(9, name, `{"owner":"acme","repo":"payments-1"}`) }

	tests := []struct {
		name  string
		req   *authv3.CheckRequest
		allow bool
	}{
		{"tools/call allowed", EnvoyCheckRequest(shape, 1, good, call("search_issues")), true},
		{"tools/list allowed", EnvoyCheckRequest(shape, 2, good, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`), true},
		{"tool held for approval", EnvoyCheckRequest(shape, 3, good, call("delete_branch")), false},
		{"tool held for approval (suffix)", EnvoyCheckRequest(shape, 4, good, call("repo_delete")), false},
		{"token for another resource", EnvoyCheckRequest(shape, 5, mint(iss, oidcissuer.Token{Audience: []string{"https://gw.bench/mcp/jira"}}), call("search_issues")), false},
		{"token signed by another issuer", EnvoyCheckRequest(shape, 6, mint(other, oidcissuer.Token{Issuer: iss.URL()}), call("search_issues")), false},
		{"expired token", EnvoyCheckRequest(shape, 7, mint(iss, oidcissuer.Token{IssuedAt: time.Now().Add(-2 * time.Hour), TTL: time.Hour}), call("search_issues")), false},
		{"missing scope", EnvoyCheckRequest(shape, 8, mint(iss, oidcissuer.Token{Scopes: []string{"openid"}}), call("search_issues")), false},
		{"no token", EnvoyCheckRequest(shape, 9, "", call("search_issues")), false},
	}
	// An empty token leaves "Bearer " alone; Envoy would send no header.
	delete(tests[len(tests)-1].req.Attributes.Request.Http.Headers, "authorization")

	allowed := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := airlock.Check(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			want := airlockVerdict(resp)
			rs, err := peer.Eval(context.Background(), rego.EvalInput(pluginInput(t, tc.req)))
			if err != nil {
				t.Fatalf("peer eval: %v", err)
			}
			if len(rs) != 1 {
				t.Fatalf("peer policy: %d results, want 1 (undefined decision?)", len(rs))
			}
			res, ok := rs[0].Expressions[0].Value.(map[string]any)
			if !ok {
				t.Fatalf("peer decision is %T, want an object", rs[0].Expressions[0].Value)
			}
			got := peerVerdict(t, res)
			if want.Allowed != tc.allow {
				t.Fatalf("airlock allowed=%v, the case expects %v (%+v)", want.Allowed, tc.allow, want)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("peer differs from airlock (-airlock +peer):\n%s", diff)
			}
			if got.Allowed {
				allowed++
			}
		})
	}
	if allowed != 2 {
		t.Errorf("%d cases allowed by both, want 2", allowed)
	}
}

// TestAirlockAllowsTheWholeWorkload: every request of the bench pool is
// an allow for airlock with the default policy, so the bench measures
// the allow path (and a regression to deny shows up as errors).
func TestAirlockAllowsTheWholeWorkload(t *testing.T) {
	iss := testIssuer(t)
	airlock := startAirlock(t, iss)
	users, err := MintUsers(iss, 5, benchResource, benchScope)
	if err != nil {
		t.Fatal(err)
	}
	shape := testShape
	// More requests than the workload has session ids per cycle (997), so
	// that a session id shared between users would show (ext_authz binds
	// a session to the principal that first used it).
	shape.Requests = 1000
	shape.Fresh = true
	w, err := NewWorkload(users, shape)
	if err != nil {
		t.Fatal(err)
	}
	exp := ExpectAirlockAllow{Credential: "Bearer " + testSecret}
	for i := range w.Items {
		var req authv3.CheckRequest
		if err := (wireCodec{}).Unmarshal(w.encode(&w.Items[i], nil), &req); err != nil {
			t.Fatal(err)
		}
		resp, err := airlock.Check(context.Background(), &req)
		if err != nil {
			t.Fatal(err)
		}
		if err := exp.Check(resp, &w.Items[i]); err != nil {
			t.Errorf("item %d (%s): %v", i, w.Items[i].Tool, err)
		}
	}
}

func unmarshalItem(it Item, req *authv3.CheckRequest) error {
	if err := (wireCodec{}).Unmarshal(it.Raw, req); err != nil {
		return fmt.Errorf("decode item: %w", err)
	}
	return nil
}
