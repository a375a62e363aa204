package approvals_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// Approvers are people: the API accepts only tokens minted for it (its
// own audience, never a target's or an issuer-level one) and, when
// configured, with the approver scopes from an allowed client. An agent's
// token, valid for the MCP target, never approves.
func TestOnlyApproverTokensApprove(t *testing.T) {
	s := startStack(t, approvalstest.Options{
		API:             approvals.APIConfig{ApproverScopes: []string{"airlock:approve"}, ClientIDs: []string{"airlock-cli"}},
		IssuerAudiences: []string{"api://default"},
	})
	const targetAud = "http://gateway.test/mcp/github"
	bobTok := func(mod func(*oidcissuer.Token)) string {
		tk := oidcissuer.Token{Subject: bob.Subject, User: bob.User, ClientID: "airlock-cli", Groups: bob.Groups,
			Scopes: []string{"airlock:approve"}, Audience: []string{s.Audience}}
		if mod != nil {
			mod(&tk)
		}
		tok, err := s.Issuer.Mint(tk)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name          string
		token         string
		status        int
		code          string
		wantMsg       string
		wantChallenge string
	}{
		{name: "the approver's CLI token", token: bobTok(nil), status: 200},
		{name: "the approver's agent token for the target", token: bobTok(func(tk *oidcissuer.Token) {
			tk.ClientID, tk.Audience = "0oa-bobs-agent", []string{targetAud}
		}), status: 401, code: "unauthorized", wantMsg: "this token was minted for an MCP target (github, audience " + targetAud + "), not for the approvals API: use a token for audience " + s.Audience, wantChallenge: `error="invalid_token"`},
		{name: "a token for the target and the API at once", token: bobTok(func(tk *oidcissuer.Token) {
			tk.Audience = []string{s.Audience, targetAud}
		}), status: 401, code: "unauthorized", wantMsg: "this token was minted for an MCP target (github", wantChallenge: `error="invalid_token"`},
		{name: "a token for the issuer-level audience", token: bobTok(func(tk *oidcissuer.Token) {
			tk.Audience = []string{"api://default"}
		}), status: 401, code: "unauthorized", wantMsg: "token audience [api://default] is the issuer's own audience, which is not accepted here", wantChallenge: `error="invalid_token"`},
		{name: "no approver scope", token: bobTok(func(tk *oidcissuer.Token) { tk.Scopes = []string{"openid"} }),
			status: 403, code: "insufficient_scope", wantMsg: "the token lacks the approver scope(s) airlock:approve (api.approver_scopes)",
			wantChallenge: `error="insufficient_scope", scope="airlock:approve"`},
		{name: "a client not allowed", token: bobTok(func(tk *oidcissuer.Token) { tk.ClientID = "0oa-bobs-agent" }),
			status: 403, code: "client_not_allowed", wantMsg: `issued to the OAuth client \"0oa-bobs-agent\", which is not one of the approvals API's clients (api.client_ids)`},
		{name: "no client id at all", token: bobTok(func(tk *oidcissuer.Token) { tk.ClientID = "" }),
			status: 403, code: "client_not_allowed", wantMsg: "api.client_ids"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := open(t, s, "delete_repository", `{"repo":"acme/`+strings.ReplaceAll(tc.name, " ", "-")+`"}`)
			r := callToken(t, s, tc.token, http.MethodPost, "/airlock/v1/requests/"+req.ID+"/approve", `{"reason":"ok"}`)
			if r.status != tc.status || r.code() != tc.code {
				t.Fatalf("approve = %d %s, want %d %q", r.status, r.body, tc.status, tc.code)
			}
			if !strings.Contains(string(r.body), tc.wantMsg) {
				t.Errorf("message %s lacks %q", r.body, tc.wantMsg)
			}
			if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, tc.wantChallenge) {
				t.Errorf("WWW-Authenticate %q lacks %q", ch, tc.wantChallenge)
			}
			got, err := s.Grants.Get(t.Context(), req.ID)
			if err != nil {
				t.Fatal(err)
			}
			if want := map[bool]string{true: "approved", false: "pending"}[tc.status == 200]; string(got.State) != want {
				t.Errorf("request is %s, want %s", got.State, want)
			}
		})
	}
}

// The API's audience is its own: a target sharing it is refused when the
// handler is built.
func TestAPIAudienceIsNotATargets(t *testing.T) {
	_, err := approvals.New(approvals.Options{
		Grants: nil, Verifier: nil, Policy: nil, PublicURL: "https://gw.example",
		API:     approvals.APIConfig{Audience: "https://gw.example/mcp/github"},
		Targets: []approvals.Target{{Name: "github", Resource: "https://gw.example/mcp/github", MaskingProfile: "default"}},
	})
	if err == nil || !strings.Contains(err.Error(), `api.audience: "https://gw.example/mcp/github" is also the resource URI of target github`) {
		t.Fatalf("New = %v, want the api.audience error", err)
	}
}

func TestAPIConfigValidate(t *testing.T) {
	tests := []struct {
		cfg  approvals.APIConfig
		want string // "" valid
	}{
		{approvals.APIConfig{ApproverScopes: []string{"airlock:approve"}, ClientIDs: []string{"0oa-cli"}}, ""},
		{approvals.APIConfig{ApproverScopes: []string{""}}, `api.approver_scopes[0]: "" is empty or holds white space`},
		{approvals.APIConfig{ClientIDs: []string{"a", "b c"}}, `api.client_ids[1]: "b c" is empty or holds white space`},
		{approvals.APIConfig{Audience: " x"}, `api.audience: " x" has surrounding white space`},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: %v", tc.cfg, err)
		case tc.want != "" && (err == nil || err.Error() != tc.want):
			t.Errorf("%+v: err = %v, want %s", tc.cfg, err, tc.want)
		}
	}
}
