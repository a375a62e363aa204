package cli_test

import (
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// An agent's token for the MCP target does not approve through the CLI,
// and the CLI says why.
func TestCLIRefusesAnAgentToken(t *testing.T) {
	f := newFixture(t)
	r, err := f.s.Open(t.Context(), approvalstest.Alice, "delete_repository", `{"repo":"acme/x"}`, "cleanup")
	if err != nil {
		t.Fatal(err)
	}
	b := approvalstest.Bob
	tok, err := f.s.Issuer.Mint(oidcissuer.Token{Subject: b.Subject, User: b.User, ClientID: "0oa-bobs-agent", Groups: b.Groups,
		Audience: []string{"http://gateway.test/mcp/github"}})
	if err != nil {
		t.Fatal(err)
	}
	code, _, stderr := f.runEnv(t, map[string]string{"AIRLOCK_SERVER": f.s.URL, "AIRLOCK_TOKEN": tok}, "approve", r.ID, "--reason", "ok")
	if code != 1 || !strings.Contains(stderr, "this token was minted for an MCP target (github, audience http://gateway.test/mcp/github), not for the approvals API") ||
		!strings.Contains(stderr, "(401 unauthorized)") {
		t.Errorf("approve with an agent token: exit %d, stderr %q", code, stderr)
	}
	got, err := f.s.Grants.Get(t.Context(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != "pending" {
		t.Errorf("request is %s after an agent token's approve, want pending", got.State)
	}
}
