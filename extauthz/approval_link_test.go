package extauthz_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// With the inbox on, the -32042 URL elicitation names the inbox's page
// for the request, and airlock serves that page: fetching it asks the
// approver to sign in (a redirect), it is not a 404 (issue 15, "links
// always work"; the inbox-off case is in TestCheckErrorCases).
func TestApprovalURLIsServedByTheInbox(t *testing.T) {
	e := startEnvWith(t, func(issuer string) string {
		return "inbox: {issuer: " + issuer + ", client_id: inbox, redirect_url: https://gw.test/airlock/inbox/callback}\n"
	})
	good := e.token(t, oidcissuer.Token{})
	req := envoyRequest{method: "POST", path: "/mcp/github", target: "github", body: toolCall(10, "delete_repository", `{"repo":"a/c"}`),
		headers: map[string]string{"authorization": "Bearer " + good, "mcp-protocol-version": "2025-11-25", "x-airlock-reason": "cleanup"}}
	resp, err := e.client.Check(context.Background(), req.proto())
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Error struct {
			Code int `json:"code"`
			Data struct {
				Elicitations []struct {
					Mode string `json:"mode"`
					URL  string `json:"url"`
				} `json:"elicitations"`
			} `json:"data"`
		} `json:"error"`
	}
	raw := resp.GetDeniedResponse().GetBody()
	if err := json.Unmarshal([]byte(raw), &body); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	if body.Error.Code != -32042 || len(body.Error.Data.Elicitations) != 1 || body.Error.Data.Elicitations[0].Mode != "url" {
		t.Fatalf("want one URL elicitation (-32042), got %s", raw)
	}
	link, err := url.Parse(body.Error.Data.Elicitations[0].URL)
	if err != nil || link.Host != "gw.test" || !strings.HasPrefix(link.Path, "/airlock/inbox/requests/req_") {
		t.Fatalf("approval URL %q: want the inbox's page on public_url", body.Error.Data.Elicitations[0].URL)
	}
	// Fetch it as Envoy forwards it: to airlock's HTTP listener, Host kept.
	page, err := http.NewRequest("GET", "http://"+e.http.String()+link.Path, nil)
	if err != nil {
		t.Fatal(err)
	}
	page.Host = link.Host
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	r, err := c.Do(page)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusFound && r.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET %s: %d, want a redirect to sign in", link.Path, r.StatusCode)
	}
	if loc := r.Header.Get("Location"); !strings.Contains(loc, "/airlock/inbox/") && !strings.HasPrefix(loc, e.iss.URL()) {
		t.Errorf("redirected to %q, want the inbox's sign-in", loc)
	}
}
