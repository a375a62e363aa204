package browser

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
)

// TestInboxRequestCard: an approver who also audits opens a held
// destructive call with a long argument and sees, on one card, the whole
// argument (folded, opened with a click, never cut; the AWS key only as
// its placeholder), the rule and policy version that held it, the
// destructive verb, the time left on the hold apart from the request's
// expiry, the agent's reason, the session timeline link and the
// principal's earlier requests for the tool.
func TestInboxRequestCard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sys := startConsoleSystem(t, ctx)
	alice := approvalstest.Alice
	const sess, decision = "mcp-sess-card", "d-card-1"

	// Alice asked for the tool twice before: one denied, one approved.
	for i, v := range []grants.Verdict{grants.VerdictDeny, grants.VerdictApprove} {
		r, err := sys.stack.Open(ctx, alice, "delete_repository", `{"repo":"acme/earlier-`+string(rune('a'+i))+`"}`, "earlier")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := sys.stack.Grants.Decide(ctx, r.ID, approvalstest.Bob.Actor(), v, "decided before"); err != nil {
			t.Fatal(err)
		}
	}
	rule := `tool "delete_repository" on target "` + approvalstest.Target + `" requires approval ("delete" is in the destructive verbs)`
	// The server declared the tool destructive in the session's tools/list.
	if err := sys.store.Record(&audit.Event{Time: time.Now().UTC().Add(-time.Second), SessionID: sess, Principal: alice.Subject,
		ClientID: alice.ClientID, Target: approvalstest.Target, Direction: audit.DirResponse, Method: "tools/list", JSONRPCID: "2",
		Outcome: "allow", Status: 200,
		Payload: `{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"delete_repository","annotations":{"destructiveHint":true,"idempotentHint":true}}]}}`}); err != nil {
		t.Fatal(err)
	}
	if err := sys.store.Record(&audit.Decision{DecisionID: decision, Time: time.Now().UTC(), SessionID: sess, Principal: alice.Subject,
		ClientID: alice.ClientID, Target: approvalstest.Target, Method: "tools/call", Tool: "delete_repository",
		Outcome: "approval_required", Reason: rule, PolicyVersion: "rules-v3", Status: 403}); err != nil {
		t.Fatal(err)
	}
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	if err := sys.store.Drain(dctx); err != nil {
		t.Fatal(err)
	}

	b := browser(t, ctx)
	step := stepper(t)
	step(b, "fay opens the inbox", chromedp.Navigate(sys.base+approvals.InboxPrefix), chromedp.WaitVisible(`input[name="login"]`))
	step(b, "fay signs in",
		chromedp.SendKeys(`input[name="login"]`, fay.Login),
		chromedp.SendKeys(`input[name="password"]`, "any password"),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(`#pending`),
		void(chromedp.Poll[bool](`document.getElementById('live-status').textContent === 'live'`)),
	)

	long := strings.Repeat("DELETE FROM backups WHERE kept = false; ", 80) + "-- the end of the statement"
	type held struct {
		res *grants.HoldResult
		err error
	}
	done := make(chan held, 1)
	go func() {
		op := sys.stack.OpenParams(alice, "delete_repository", `{"repo":"acme/prod-db-backups","sql":"`+long+`","aws_key":"`+awsKey+`"}`, "drop stale backups for OPS-77")
		op.Session, op.DecisionID = sess, decision
		res, err := sys.stack.Grants.Hold(ctx, op)
		done <- held{res, err}
	}()

	card := `#pending article.request`
	step(b, "see the request in the list", chromedp.WaitVisible(card+` dd.hold .hold-left`))
	entry, _ := chromedp.Run(b, chromedp.Text(card))
	for _, w := range []string{"destructive verb in the name: delete", "left", "Request expires", "drop stale backups for OPS-77"} {
		if !strings.Contains(entry, w) {
			t.Errorf("the list entry lacks %q:\n%s", w, entry)
		}
	}

	step(b, "open the request", chromedp.Click(card+` h2 a`), chromedp.WaitVisible(`#request dd.rule`))
	text, _ := chromedp.Run(b, chromedp.Text(`#request`))
	for _, w := range []string{
		rule, "policy version rules-v3",
		"destructive verb in the name: delete", "destructiveHint: true (may destroy or overwrite data)",
		"drop stale backups for OPS-77",
		"the agent's call is held until", "left", "Request expires",
		"1 approved", "1 denied",
		"show all",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("the card lacks %q:\n%s", w, text)
		}
	}
	// The hold counts down on the page, between live updates.
	first, _ := chromedp.Run(b, chromedp.Text(`#request .hold-left`))
	step(b, "see the hold count down", void(chromedp.Poll[bool](`(t => { const x = document.querySelector('#request .hold-left').textContent; return x !== t && /^\d+(m\d+)?s left$/.test(x); })(`+strconvQuote(first)+`)`)))
	if href, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector('#request .audit-link a').getAttribute('href')`)); href != "/airlock/audit/sessions/"+sess {
		t.Errorf("the session link is %q", href)
	}
	if n, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('#request table.prior tbody tr a[href^="/airlock/inbox/requests/"]').length`)); n != 2 {
		t.Errorf("%d earlier requests linked, want 2", n)
	}
	// The long arguments start folded; a click shows all of them.
	if open, _ := chromedp.Run(b, chromedp.Evaluate[bool](`document.querySelector('#request details.args').open`)); open {
		t.Error("the long arguments are not folded")
	}
	step(b, "show all the arguments", chromedp.Click(`#request details.args summary`), chromedp.WaitVisible(`#request pre.args`))
	argsText, _ := chromedp.Run(b, chromedp.Evaluate[string](`document.querySelector('#request pre.args').textContent`))
	if !strings.Contains(argsText, long) || !strings.Contains(argsText, `"aws_key": "[MASKED:aws_access_key]"`) {
		t.Errorf("the arguments are not shown whole (%d characters shown)", len(argsText))
	}
	// A live update (another request opening) keeps them open.
	step(b, "count live updates", void(chromedp.Evaluate[bool](`window.__updates = 0; document.addEventListener('airlock:updated', () => window.__updates++); true`)))
	if _, err := sys.stack.Open(ctx, alice, "search_issues", `{"q":"x"}`, "unrelated"); err != nil {
		t.Fatal(err)
	}
	step(b, "see the live update", void(chromedp.Poll[bool](`window.__updates > 0`)))
	if open, _ := chromedp.Run(b, chromedp.Evaluate[bool](`document.querySelector('#request details.args').open`)); !open {
		t.Error("a live update folded the arguments the approver opened")
	}
	if page, _ := chromedp.Run(b, chromedp.OuterHTML(`html`)); strings.Contains(page, awsKey) {
		t.Error("the page holds the unmasked AWS key")
	}
	saveShot(t, b, "inbox-card.png")

	step(b, "deny it", chromedp.Click(`#request button.deny`), chromedp.WaitVisible(`p.notice`))
	select {
	case h := <-done:
		if h.err != nil || h.res.Outcome != grants.HoldDenied {
			t.Fatalf("the held call: %+v, %v", h.res, h.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held call was not released by the denial")
	}
}

// strconvQuote is s as a JavaScript string literal.
func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
