package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/grants"
)

// Issue 15: `airlock approve --scope/--for` narrows what approving grants
// and never widens it.
func TestApproveScope(t *testing.T) {
	f := newFixture(t)
	openWide := func(t *testing.T, args string) *grants.Request {
		t.Helper()
		p := f.s.OpenParams(approvalstest.Alice, "delete_repository", args, "")
		p.Approval.SingleUse, p.Approval.GrantDuration = false, 15*time.Minute
		r, _, err := f.s.Grants.Open(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	r := openWide(t, `{"repo":"acme/prod-db-backups"}`)
	code, out, errOut := f.run(t, approvalstest.Bob, "requests", r.ID)
	if code != 0 || !strings.Contains(out, "Scope:      this tool with any arguments for 15m") {
		t.Fatalf("requests ID (exit %d): %s%s", code, out, errOut)
	}
	code, out, errOut = f.run(t, approvalstest.Bob, "approve", r.ID, "--scope", "args", "--for", "5m")
	if code != 0 || !strings.HasSuffix(out, "for this tool with these arguments for 5m\n") {
		t.Fatalf("approve --scope args --for 5m: exit %d %q %q", code, out, errOut)
	}
	got, _ := f.s.Grants.Get(context.Background(), r.ID)
	g, _ := f.s.Grants.GetGrant(context.Background(), got.GrantID)
	if g.ArgumentsHash == "" || g.Expiry.Sub(g.CreatedAt) != 5*time.Minute {
		t.Fatalf("grant %+v: want arguments pinned for 5m", g)
	}

	once := f.open(t, "delete_repository", `{"repo":"acme/once"}`, "")
	code, _, errOut = f.run(t, approvalstest.Bob, "approve", once.ID, "--scope", "any")
	if code != 1 || !strings.Contains(errOut, "scope wider than the policy allows") || !strings.Contains(errOut, "(400 scope_wider)") {
		t.Fatalf("widening: exit %d %q", code, errOut)
	}
	wide := openWide(t, `{"repo":"acme/longer"}`)
	if code, _, errOut = f.run(t, approvalstest.Bob, "approve", wide.ID, "--for", "1h"); code != 1 || !strings.Contains(errOut, "(400 scope_wider)") {
		t.Fatalf("a longer duration: exit %d %q", code, errOut)
	}
	if code, _, errOut = f.run(t, approvalstest.Bob, "approve", wide.ID, "--scope", "everything"); code == 0 || !strings.Contains(errOut, "--scope") {
		t.Fatalf("an unknown scope: exit %d %q", code, errOut)
	}
	if cur, _ := f.s.Grants.Get(context.Background(), wide.ID); cur.State != grants.RequestPending {
		t.Fatalf("a refused approve changed the request: %s", cur.State)
	}
}
