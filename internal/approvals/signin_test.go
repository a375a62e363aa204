package approvals

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// The inbox signs in only with ID tokens issued to its own client: go-oidc
// checks that aud holds client_id; an ID token for several audiences, or
// naming an authorized party, must name the inbox as azp.
func TestSignInTakesOnlyTheInboxsIDTokens(t *testing.T) {
	f := newInboxFixture(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := f.h.inbox.provider(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		aud     []string
		azp     any // nil: no azp claim
		wantErr string
	}{
		{name: "the inbox's own", aud: []string{"inbox"}},
		{name: "the inbox's own, azp set", aud: []string{"inbox"}, azp: "inbox"},
		{name: "several audiences, azp the inbox", aud: []string{"inbox", "0oa-agent"}, azp: "inbox"},
		{name: "another client's token listing the inbox", aud: []string{"inbox", "0oa-agent"}, azp: "0oa-agent", wantErr: `issued to another client (azp "0oa-agent"), not to the inbox (inbox)`},
		{name: "several audiences, no azp", aud: []string{"0oa-agent", "inbox"}, wantErr: `issued to another client (azp ""), not to the inbox`},
		{name: "azp another client", aud: []string{"inbox"}, azp: "0oa-agent", wantErr: "issued to another client"},
		{name: "azp not a string", aud: []string{"inbox"}, azp: []string{"inbox"}, wantErr: "issued to another client"},
		{name: "another client's token", aud: []string{"0oa-agent"}, wantErr: "expected audience"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			extra := map[string]any{"preferred_username": "bob@example.com"}
			if tc.azp != nil {
				extra["azp"] = tc.azp
			}
			raw, err := f.iss.Mint(oidcissuer.Token{Subject: "00u-bob", Audience: tc.aud, Extra: extra})
			if err != nil {
				t.Fatal(err)
			}
			idt, err := p.ids.Verify(ctx, raw)
			var s *session
			if err == nil {
				s, err = f.h.inbox.sessionFrom(idt)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if s.Issuer != f.iss.URL() || s.Subject != "00u-bob" || s.User != "bob@example.com" {
				t.Errorf("session %+v: want issuer %s, subject 00u-bob", s, f.iss.URL())
			}
		})
	}
}

// A session sealed before sessions kept the issuer is not a sign-in.
func TestSessionWithoutIssuerSignsInAgain(t *testing.T) {
	f := newInboxFixture(t, nil)
	old := f.sessionCookie(t, &session{Subject: "00u-bob", Groups: approver.Groups})
	if resp, _ := get(t, f, "/airlock/inbox/", old); resp.StatusCode != 303 || !strings.Contains(resp.Header.Get("Location"), "/airlock/inbox/login") {
		t.Errorf("GET /airlock/inbox/ with an issuer-less session = %d to %q, want a redirect to sign in", resp.StatusCode, resp.Header.Get("Location"))
	}
	a := approver
	good := f.sessionCookie(t, &a)
	if resp, _ := get(t, f, "/airlock/inbox/", good); resp.StatusCode != 200 {
		t.Errorf("GET /airlock/inbox/ signed in = %d, want 200", resp.StatusCode)
	}
}

// In the inbox, the requester is the pair (issuer, subject): the same
// subject signed in through another issuer does not see the request as
// its own, while another spelling of the requester's issuer URL does.
func TestInboxRequesterIsIssuerAndSubject(t *testing.T) {
	f := newInboxFixture(t, nil)
	req := f.open(t, "delete_repository", `{"repo":"acme/x"}`)
	tests := []struct {
		issuer string
		status int
	}{
		{requester.Issuer, 200},
		{"HTTPS://IDP.example:443/oauth2/default/", 200},
		{"https://corp.example", 404},
		{"https://idp.example/oauth2/other", 404},
	}
	for _, tc := range tests {
		c := f.sessionCookie(t, &session{Issuer: tc.issuer, Subject: requester.Subject})
		if resp, _ := get(t, f, "/airlock/inbox/requests/"+req.ID, c); resp.StatusCode != tc.status {
			t.Errorf("%s as %s: request page = %d, want %d", requester.Subject, tc.issuer, resp.StatusCode, tc.status)
		}
	}
	// Whatever the issuer, the requester's subject or user id is refused a
	// decision (the inbox's sign-in issuer is often not the API's).
	for _, sub := range []string{requester.Subject, requester.User} {
		v := viewer{Issuer: "https://corp.example", Subject: sub, Groups: []string{"airlock-approvers"}}
		r, err := f.g.Get(context.Background(), req.ID)
		if err != nil {
			t.Fatal(err)
		}
		if canDecide(v, r) || !asked(v, r) {
			t.Errorf("%s of another issuer may decide the request of %s", sub, requester.Subject)
		}
	}
}
