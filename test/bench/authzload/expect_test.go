package main

import (
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
)

const testCredential = "Bearer ghp_testUpstreamCredential"

func okWith(headers map[string]string) *authv3.CheckResponse {
	ok := &authv3.OkHttpResponse{}
	for k, v := range headers {
		ok.Headers = append(ok.Headers, &corev3.HeaderValueOption{Header: &corev3.HeaderValue{Key: k, Value: v}})
	}
	return &authv3.CheckResponse{
		Status:       &rpcstatus.Status{Code: int32(code.Code_OK)},
		HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
	}
}

func TestExpect(t *testing.T) {
	it := &Item{Subject: "user001@acme.example"}
	good := map[string]string{"x-airlock-principal": it.Subject, "authorization": testCredential}
	denied := &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code.Code_PERMISSION_DENIED), Message: "tool \"x\" requires approval"},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
		}},
	}
	tests := []struct {
		name    string
		exp     Expect
		resp    *authv3.CheckResponse
		wantErr string // "" = accepted
	}{
		{"noop accepts an empty allow", ExpectOK{}, okWith(nil), ""},
		{"noop refuses a denial", ExpectOK{}, denied, "denied: grpc status PERMISSION_DENIED, http 403"},
		{"OK without ok_response", ExpectOK{}, &authv3.CheckResponse{Status: &rpcstatus.Status{}}, "without an ok_response"},
		{"airlock allow", ExpectAirlockAllow{Credential: testCredential}, okWith(good), ""},
		{"airlock denial", ExpectAirlockAllow{Credential: testCredential}, denied, "requires approval"},
		{"allow without principal", ExpectAirlockAllow{}, okWith(map[string]string{"authorization": testCredential}), "without an x-airlock-principal"},
		{"allow for someone else", ExpectAirlockAllow{}, okWith(map[string]string{"x-airlock-principal": "mallory"}), `principal "mallory"`},
		{"allow without credential", ExpectAirlockAllow{Credential: testCredential}, okWith(map[string]string{"x-airlock-principal": it.Subject}), "does not set the upstream authorization"},
		{"allow with the wrong credential", ExpectAirlockAllow{Credential: testCredential}, okWith(map[string]string{"x-airlock-principal": it.Subject, "authorization": "Bearer agent-token"}), "not the upstream credential"},
		{"credential not checked when unknown", ExpectAirlockAllow{}, okWith(map[string]string{"x-airlock-principal": it.Subject}), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.exp.Check(tc.resp, it)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("refused a right answer: %v", err)
			case tc.wantErr != "" && err == nil:
				t.Fatalf("accepted a wrong answer, want error containing %q", tc.wantErr)
			case err != nil && !strings.Contains(err.Error(), tc.wantErr):
				t.Fatalf("error %q, want it to contain %q", err, tc.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "ghp_") || strings.Contains(err.Error(), "agent-token")) {
				t.Errorf("error message carries a header value: %q", err)
			}
		})
	}
}
