package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

func testIssuer(t testing.TB) *oidcissuer.Issuer {
	t.Helper()
	iss, err := oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { iss.Close() })
	return iss
}

var testShape = Shape{Host: benchHost, Path: benchPath, Target: benchTarget, Requests: 24}

func TestNewWorkloadBuildsEnvoyShapedRequests(t *testing.T) {
	iss := testIssuer(t)
	users, err := MintUsers(iss, 3, benchResource, benchScope)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewWorkload(users, testShape)
	if err != nil {
		t.Fatal(err)
	}
	if len(w.Items) != 24 {
		t.Fatalf("%d items, want 24", len(w.Items))
	}
	subjects := map[string]bool{}
	tools := map[string]bool{}
	ids := map[string]bool{}
	for i, it := range w.Items {
		var req authv3.CheckRequest
		if err := proto.Unmarshal(it.Raw, &req); err != nil {
			t.Fatalf("item %d does not decode: %v", i, err)
		}
		h := req.GetAttributes().GetRequest().GetHttp()
		got := map[string]string{
			"method": h.GetMethod(), ":method": h.GetHeaders()[":method"], ":path": h.GetHeaders()[":path"],
			"path": h.GetPath(), "target": req.GetAttributes().GetContextExtensions()["airlock_target"],
			"partial": h.GetHeaders()["x-envoy-auth-partial-body"], "content-type": h.GetHeaders()["content-type"],
		}
		want := map[string]string{
			"method": "POST", ":method": "POST", ":path": benchPath, "path": benchPath, "target": benchTarget,
			"partial": "false", "content-type": "application/json",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("item %d (-want +got):\n%s", i, diff)
		}
		if h.GetBody() != "" || len(h.GetRawBody()) == 0 {
			t.Fatalf("item %d: the body must travel as raw_body (pack_as_bytes)", i)
		}
		var body struct {
			JSONRPC string `json:"jsonrpc"`
			Method  string `json:"method"`
			Params  struct {
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments"`
			} `json:"params"`
		}
		if err := json.Unmarshal(h.GetRawBody(), &body); err != nil {
			t.Fatalf("item %d: body is not JSON: %v", i, err)
		}
		if body.JSONRPC != "2.0" || body.Method != "tools/call" || body.Params.Name != it.Tool || !json.Valid(body.Params.Arguments) {
			t.Fatalf("item %d: body %s is not a tools/call of %s", i, h.GetRawBody(), it.Tool)
		}
		tok, ok := strings.CutPrefix(h.GetHeaders()["authorization"], "Bearer ")
		if !ok {
			t.Fatalf("item %d: no bearer token", i)
		}
		if sub, err := TokenSubject(tok); err != nil || sub != it.Subject {
			t.Fatalf("item %d: token subject %q (%v), item says %q", i, sub, err, it.Subject)
		}
		subjects[it.Subject], tools[it.Tool], ids[h.GetId()] = true, true, true
	}
	if len(subjects) != 3 || len(tools) != len(benchTools) || len(ids) != 24 {
		t.Errorf("pool not varied: %d subjects (want 3), %d tools (want %d), %d request ids (want 24)", len(subjects), len(tools), len(benchTools), len(ids))
	}
}

func TestBenchToolsNeedNoApproval(t *testing.T) {
	// The default policy holds tools matching these shapes (policies/data.yaml).
	for _, tool := range benchTools {
		for _, bad := range []string{"delete", "remove", "drop", "exec", "shell", "transfer", "revoke", "push", "purge", "wipe", "destroy", "truncate"} {
			if strings.Contains(tool.name, bad) {
				t.Errorf("bench tool %s looks like one the default policy holds for approval", tool.name)
			}
		}
	}
}

func TestWorkloadErrors(t *testing.T) {
	if _, err := NewWorkload(nil, testShape); err == nil {
		t.Error("a workload without tokens was accepted")
	}
	if _, err := NewWorkload([]UserToken{{Token: "a.b.c", Subject: "s"}}, Shape{}); err == nil {
		t.Error("a workload of 0 requests was accepted")
	}
	if _, err := MintUsers(nil, 0, benchResource, benchScope); err == nil {
		t.Error("0 users was accepted")
	}
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestTokenSubject(t *testing.T) {
	tests := []struct {
		name, tok, want, wantErr string
	}{
		{"okta token", "h." + b64(`{"sub":"user@acme.example","cid":"0oa1"}`) + ".s", "user@acme.example", ""},
		{"two parts", "h." + b64(`{"sub":"x"}`), "", "want 3"},
		{"not base64", "h.!!!.s", "", "not base64url"},
		{"not an object", "h." + b64(`[1]`) + ".s", "", "not a JSON object"},
		{"no sub", "h." + b64(`{"cid":"0oa1"}`) + ".s", "", "no sub claim"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := TokenSubject(tc.tok)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("TokenSubject = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func FuzzTokenSubject(f *testing.F) {
	f.Add("h." + b64(`{"sub":"user@acme.example"}`) + ".s")
	f.Add("h." + b64(`{"sub":""}`) + ".s")
	f.Add("..")
	f.Add("a.b")
	f.Add("h." + b64(`{"sub":1}`) + ".s")
	f.Fuzz(func(t *testing.T, tok string) {
		sub, err := TokenSubject(tok)
		if err == nil && sub == "" {
			t.Fatal("no error and no subject")
		}
		if err != nil && len(tok) > 8 && strings.Contains(err.Error(), tok) {
			t.Fatalf("error %q quotes the token", err)
		}
	})
}

func decodeItem(t *testing.T, raw []byte) (*authv3.CheckRequest, map[string]any) {
	t.Helper()
	var req authv3.CheckRequest
	if err := proto.Unmarshal(raw, &req); err != nil {
		t.Fatalf("does not decode: %v", err)
	}
	var body map[string]any
	if err := json.Unmarshal(req.GetAttributes().GetRequest().GetHttp().GetRawBody(), &body); err != nil {
		t.Fatalf("body is not JSON: %v", err)
	}
	return &req, body
}

func TestFreshRequestsAreNewEachTime(t *testing.T) {
	users := []UserToken{{Token: "h." + b64(`{"sub":"u"}`) + ".s", Subject: "u"}}
	shape := testShape
	shape.Fresh = true
	w, err := NewWorkload(users, shape)
	if err != nil {
		t.Fatal(err)
	}
	it := &w.Items[3]
	type seen struct{ ID, RequestID, HeaderID, After string }
	var got []seen
	for range 3 {
		raw := w.encode(it, nil)
		if len(raw) != len(it.Raw) {
			t.Fatalf("fresh request is %d bytes, the pool's is %d: lengths must not change", len(raw), len(it.Raw))
		}
		req, body := decodeItem(t, raw)
		h := req.GetAttributes().GetRequest().GetHttp()
		args := body["params"].(map[string]any)["arguments"].(map[string]any)
		got = append(got, seen{
			ID: fmt.Sprint(body["id"]), RequestID: h.GetId(), HeaderID: h.GetHeaders()["x-request-id"], After: args["after"].(string),
		})
		if cl := h.GetHeaders()["content-length"]; cl != strconv.Itoa(len(h.GetRawBody())) {
			t.Errorf("content-length %s, body %d bytes", cl, len(h.GetRawBody()))
		}
	}
	want := []seen{
		{"1.000000001e+09", "6f1e0c2a-4b8e-4e1a-9a53-000000000001", "6f1e0c2a-4b8e-4e1a-9a53-000000000001", "c00000000001"},
		{"1.000000002e+09", "6f1e0c2a-4b8e-4e1a-9a53-000000000002", "6f1e0c2a-4b8e-4e1a-9a53-000000000002", "c00000000002"},
		{"1.000000003e+09", "6f1e0c2a-4b8e-4e1a-9a53-000000000003", "6f1e0c2a-4b8e-4e1a-9a53-000000000003", "c00000000003"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("fresh values (-want +got):\n%s", diff)
	}
	if _, body := decodeItem(t, it.Raw); fmt.Sprint(body["id"]) != "1.000000003e+09" {
		t.Errorf("the pool item itself changed: id %v", body["id"])
	}
	w.Fresh = false
	if raw := w.encode(it, nil); &raw[0] != &it.Raw[0] {
		t.Error("without Fresh the pool's bytes must be sent as they are")
	}
}
