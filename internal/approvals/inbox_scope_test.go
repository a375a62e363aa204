package approvals

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// TestInboxStatesAndNarrowsScope: the card says what approving grants, the
// form offers only narrower scopes, and an approval narrowed in the inbox
// issues the narrower grant.
func TestInboxStatesAndNarrowsScope(t *testing.T) {
	f := newInboxFixture(t, nil)
	s := approver
	cookie := f.sessionCookie(t, &s)
	wide := terms
	wide.SingleUse, wide.GrantDuration = false, 15*time.Minute // any arguments for 15m
	req, _, err := f.g.Open(context.Background(), grants.OpenParams{
		Principal: requester, Target: "github", Kind: grants.KindTool, Tool: "delete_repository",
		Arguments: json.RawMessage(`{"repo":"acme/prod-db-backups"}`), Reason: "cleanup", Approval: wide,
	})
	if err != nil {
		t.Fatal(err)
	}
	_, page := get(t, f, "/airlock/inbox/requests/"+req.ID, cookie)
	for _, want := range []string{
		"Approving grants", "this tool with any arguments for 15m",
		`<option value="tool_any">`, `<option value="tool_args">`, `<option value="call_once">this exact call, once</option>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the request page lacks %q", want)
		}
	}

	form := url.Values{"reason": {"ok"}, "csrf": {s.CSRF}, "scope": {"call_once"}}
	hr, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/airlock/inbox/requests/"+req.ID+"/approve", strings.NewReader(form.Encode()))
	hr.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	hr.Header.Set("Origin", f.srv.URL)
	hr.AddCookie(cookie)
	resp, err := noRedirect.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve = %d, want 303", resp.StatusCode)
	}
	got, _ := f.g.Get(context.Background(), req.ID)
	if got.State != grants.RequestApproved || got.Scope().Kind != grants.ScopeCallOnce {
		t.Fatalf("request %s with scope %+v, want approved for this exact call once", got.State, got.Scope())
	}
	_, page = get(t, f, "/airlock/inbox/requests/"+req.ID, cookie)
	if !strings.Contains(page, "this exact call, once") {
		t.Errorf("the decided request does not say what was granted")
	}
}
