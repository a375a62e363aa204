package approvals

import (
	"context"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
)

// TestDestructiveVerbsMatchPolicyData: the card's risk signal flags the
// words the shipped policy holds on, no more and no fewer.
func TestDestructiveVerbsMatchPolicyData(t *testing.T) {
	b, err := os.ReadFile("../../policies/data.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var data struct {
		Airlock struct {
			Rules map[string]struct {
				Tools struct {
					DestructiveVerbs []string `yaml:"destructive_verbs"`
				} `yaml:"tools"`
			} `yaml:"rules"`
		} `yaml:"airlock"`
	}
	if err := yaml.Unmarshal(b, &data); err != nil {
		t.Fatal(err)
	}
	got := data.Airlock.Rules["*"].Tools.DestructiveVerbs
	if len(got) == 0 || !slices.Equal(got, destructiveVerbs) {
		t.Errorf("policies/data.yaml destructive verbs %v, the card's %v", got, destructiveVerbs)
	}
}

func TestNameRisks(t *testing.T) {
	tests := []struct {
		kind grants.Kind
		name string
		want []string
	}{
		{grants.KindTool, "delete_repository", []string{"destructive verb in the name: delete"}},
		{grants.KindTool, "forceDeleteRepo", []string{"destructive verb in the name: force, delete"}},
		{grants.KindTool, "send_payment", []string{"destructive verb in the name: payment, send_payment"}},
		{grants.KindTool, "search_issues", nil},
		{grants.KindTool, "dеlete_repo", []string{"the name cannot be trusted: letters of different scripts (Latin and Cyrillic)"}},
		// Resources have no destructive verbs by default.
		{grants.KindResource, "file:///tmp/delete-me", nil},
	}
	for _, tc := range tests {
		r := &grants.Request{Kind: tc.kind, Tool: tc.name, Resource: tc.name}
		got := nameRisks(r)
		if tc.name == "dеlete_repo" {
			if len(got) != 1 || !strings.HasPrefix(got[0], "the name cannot be trusted: ") {
				t.Errorf("nameRisks(%q) = %q", tc.name, got)
			}
			continue
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("nameRisks(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestHoldLeft(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	if ends, left := holdLeft(t0, 25*time.Second, t0.Add(10*time.Second)); ends != "2026-12-07 12:00:25 UTC" || left != "15s" {
		t.Errorf("during the hold: %q, %q", ends, left)
	}
	if ends, left := holdLeft(t0, 25*time.Second, t0.Add(time.Minute)); ends != "2026-12-07 12:00:25 UTC" || left != "" {
		t.Errorf("after the hold: %q, %q", ends, left)
	}
	if ends, left := holdLeft(t0, 0, t0); ends != "" || left != "" {
		t.Errorf("no hold window: %q, %q", ends, left)
	}
}

// TestRequestCard: the request page shows, for a held destructive call
// with a long argument, the whole argument, the rule and policy version
// from the audit decision, the name's risk, the hold apart from the
// expiry, the session link for an auditor, and the principal's earlier
// requests for the tool with links.
func TestRequestCard(t *testing.T) {
	f := newConsoleFixture(t)
	ctx := context.Background()
	denied := f.open(t, "delete_repository", `{"repo":"acme/denied"}`)
	if _, err := f.g.Decide(ctx, denied.ID, grants.Actor{Subject: "00u-bob", User: "bob@example.com", Groups: []string{"airlock-approvers"}}, grants.VerdictDeny, "no ticket"); err != nil {
		t.Fatal(err)
	}
	other := f.open(t, "search_issues", `{"q":"x"}`) // another tool: not counted
	long := strings.Repeat("0123456789", 250)
	held, _, err := f.g.Open(ctx, grants.OpenParams{
		Principal: requester, Target: "github", Kind: grants.KindTool, Tool: "delete_repository",
		Arguments: json.RawMessage(`{"repo":"acme/prod","sql":"` + long + `","aws":"AKIAIOSFODNN7EXAMPLE"}`),
		Reason:    "drop the stale copy for OPS-77", Approval: terms, Session: "s1", DecisionID: "d-card",
	})
	if err != nil {
		t.Fatal(err)
	}
	// The server declared the tool's annotations in the session's
	// tools/list answer, recorded before the call.
	if err := f.store.Record(&audit.Event{Time: held.CreatedAt.Add(-time.Minute), SessionID: "s1", Principal: requester.Subject, Target: "github",
		Direction: audit.DirResponse, Method: "tools/list", JSONRPCID: "2", Outcome: "allow", Status: 200,
		Payload: `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"search_issues","annotations":{"readOnlyHint":true}},` +
			`{"name":"delete_repository","annotations":{"destructiveHint":true,"openWorldHint":false}}]}}`}); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Record(&audit.Decision{DecisionID: "d-card", Time: time.Now().UTC(), SessionID: "s1", Principal: requester.Subject,
		Target: "github", Method: "tools/call", Tool: "delete_repository", Outcome: "approval_required",
		Reason: `tool "delete_repository" on target "github" requires approval ("delete" is in the destructive verbs)`, PolicyVersion: "sha256:pv-42",
		RequestID: held.ID, Status: 200}); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := f.store.Drain(dctx); err != nil {
		t.Fatal(err)
	}

	s := approverAuditor
	resp, body := get(t, f.inboxFixture, "/airlock/inbox/requests/"+held.ID, f.sessionCookie(t, &s))
	if resp.StatusCode != 200 {
		t.Fatalf("request page = %d", resp.StatusCode)
	}
	for _, want := range []string{
		long, "[MASKED:aws_access_key]", `<details class="args">`, "show all",
		"drop the stale copy for OPS-77",
		`requires approval (&#34;delete&#34; is in the destructive verbs)`, `<code class="policy-version">sha256:pv-42</code>`,
		"destructive verb in the name: delete",
		"The server declares (hints, not guarantees):", "destructiveHint: true (may destroy or overwrite data)", "openWorldHint: false (a closed domain)",
		`class="hold-left"`, "Request expires", stamp(held.ExpiresAt), stamp(held.CreatedAt.Add(f.g.HoldWindow())),
		`<a href="/airlock/audit/sessions/s1">`,
		`<span class="prior-approved">1 approved</span>`, `<span class="prior-denied">1 denied</span>`, "1 other",
		`href="/airlock/inbox/requests/` + denied.ID + `"`, `href="/airlock/inbox/requests/` + f.held.ID + `"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the card lacks %q", want)
		}
	}
	for _, bad := range []string{"AKIAIOSFODNN7EXAMPLE", "more characters", "readOnlyHint: true", `href="/airlock/inbox/requests/` + other.ID + `"`} {
		if strings.Contains(body, bad) {
			t.Errorf("the card shows %q", bad)
		}
	}

	// An approver who is not an auditor gets no session link; the list
	// entry has the risk and the hold too.
	a := approver
	_, body = get(t, f.inboxFixture, "/airlock/inbox/", f.sessionCookie(t, &a))
	if strings.Contains(body, "/airlock/audit/sessions/") {
		t.Error("a non-auditor's inbox links to the console")
	}
	for _, want := range []string{"destructive verb in the name: delete", `class="hold-left"`, long} {
		if !strings.Contains(body, want) {
			t.Errorf("the list entry lacks %.40q", want)
		}
	}
}

func TestToolAnnotations(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	list := func(at time.Time, payload string, cut bool) audit.Event {
		return audit.Event{Time: at, Direction: audit.DirResponse, Method: "tools/list", Payload: payload, Truncated: cut}
	}
	events := []audit.Event{
		list(t0, `{"result":{"tools":[{"name":"rm","annotations":{"readOnlyHint":true}}]}}`, false),
		list(t0.Add(time.Second), `{"result":{"tools":[{"name":"rm","annotations":{"destructiveHint":true}}]}}`, false),
		list(t0.Add(2*time.Second), `{"result":{"tools":[{"name":"rm","annot`, true),                                   // cut: skipped
		list(t0.Add(time.Hour), `{"result":{"tools":[{"name":"rm","annotations":{"destructiveHint":false}}]}}`, false), // after the request
	}
	got, ok := toolAnnotations(events, "rm", t0.Add(time.Minute))
	if !ok || !slices.Equal(got, []string{"destructiveHint: true (may destroy or overwrite data)"}) {
		t.Errorf("annotations %q, %v", got, ok)
	}
	if got, ok := toolAnnotations(events, "other", t0.Add(time.Minute)); ok || got != nil {
		t.Errorf("an undeclared tool: %q, %v", got, ok)
	}
	events = append(events, list(t0.Add(3*time.Second), `{"result":{"tools":[{"name":"plain"}]}}`, false))
	if got, ok := toolAnnotations(events, "plain", t0.Add(time.Minute)); !ok || len(got) != 0 {
		t.Errorf("a tool listed without annotations: %q, %v", got, ok)
	}
}
