package browser

import (
	"context"
	"flag"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/test/peers"
)

// Erin audits and approves nothing; Bob approves and is no auditor; Fay
// approves and audits (her request card links to the session).
var (
	erin = peers.OIDCUser{Login: "00u-erin", PreferredUsername: "erin@example.com", Email: "erin@example.com", Groups: []string{"airlock-auditors"}}
	fay  = peers.OIDCUser{Login: "00u-fay", PreferredUsername: "fay@example.com", Email: "fay@example.com", Groups: []string{"airlock-approvers", "airlock-auditors"}}
)

const (
	session1  = "mcp-sess-7f3a" // alice's session: allowed, denied, held → approved
	session2  = "mcp-sess-51c0" // carol's: one allowed call through another agent
	awsKey    = "AKIAIOSFODNN7EXAMPLE"
	auditorsG = "airlock-auditors"
)

// consoleSystem is the approvals stack with the inbox and the console on,
// recording into an embedded audit store: the grant service records its
// request and grant steps as serve wires it; the test records the
// decisions and messages ext_authz and ext_proc would (masked with the
// default profile, as ext_proc masks them).
type consoleSystem struct {
	stack *approvalstest.Stack
	store *audit.Embedded
	mask  *mask.Profile
	base  string
}

func startConsoleSystem(t *testing.T, ctx context.Context) *consoleSystem {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	idp, err := peers.StartOIDCProvider(ctx, peers.OIDCOptions{
		WebClients: []peers.OIDCWebClient{{ID: "airlock-inbox", RedirectURIs: []string{base + approvals.CallbackPath}}},
		Users: []peers.OIDCUser{
			{Login: approvalstest.Bob.User, PreferredUsername: approvalstest.Bob.Subject, Email: approvalstest.Bob.Subject, Groups: []string{"airlock-approvers"}},
			erin, fay,
		},
	})
	if err != nil {
		_ = ln.Close()
		t.Fatalf("starting oidc-provider: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("oidc-provider output:\n%s", idp.Output())
		}
		_ = idp.Close()
	})
	acfg := audit.Defaults()
	acfg.Embedded.Dir = t.TempDir()
	store, err := audit.OpenEmbedded(acfg, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = store.Close(cctx)
	})
	gcfg := grants.Defaults()
	gcfg.HoldWindow = 90 * time.Second
	gcfg.PendingTTL = 10 * time.Minute
	s, err := approvalstest.Start(approvalstest.Options{
		Listener: ln, Grants: &gcfg, Auditor: serve.GrantAuditor(store, nil), Audit: store,
		Inbox: approvals.InboxConfig{Issuer: idp.Issuer(), ClientID: "airlock-inbox", RedirectURL: base + approvals.CallbackPath,
			AuditorGroups: []string{auditorsG}},
	})
	if err != nil {
		t.Fatalf("starting the approvals API: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	set, err := mask.NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	prof, err := set.Get("default")
	if err != nil {
		t.Fatal(err)
	}
	return &consoleSystem{stack: s, store: store, mask: prof, base: base}
}

// call records one call as the gateway would: its decision, and when it
// went through, the request and the (masked) response.
func (c *consoleSystem) call(t *testing.T, session string, p approvalstest.Person, id, tool, outcome, reason, result string, held *grants.HoldResult, waited time.Duration) {
	t.Helper()
	now := time.Now().UTC()
	d := &audit.Decision{DecisionID: "d-" + session + "-" + id, Time: now, SessionID: session, Principal: p.Subject, ClientID: p.ClientID,
		Issuer: c.stack.Issuer.URL(), Target: approvalstest.Target, Method: "tools/call", Tool: tool, JSONRPCID: id,
		Outcome: outcome, Reason: reason, PolicyVersion: "rules-v3", Status: 200, LatencyUS: 700 + waited.Microseconds()}
	if outcome != "allow" {
		d.Status = 403
	}
	if held != nil {
		d.RequestID, d.GrantID = held.Request.ID, held.Grant.ID
	}
	recs := []audit.Record{d}
	if outcome == "allow" {
		ev := func(dir audit.Direction, at time.Time, payload string) *audit.Event {
			return &audit.Event{Time: at, SessionID: session, Principal: p.Subject, ClientID: p.ClientID, Issuer: d.Issuer, Target: d.Target,
				Direction: dir, Method: "tools/call", Tool: tool, JSONRPCID: id, DecisionID: d.DecisionID, GrantID: d.GrantID,
				Status: 200, Outcome: "allow", Payload: payload}
		}
		req := ev(audit.DirRequest, now.Add(time.Millisecond), `{"jsonrpc":"2.0","id":`+id+`,"method":"tools/call","params":{"name":"`+tool+`","arguments":{}}}`)
		out, counts, err := c.mask.MaskJSON([]byte(`{"jsonrpc":"2.0","id":` + id + `,"result":{"content":[{"type":"text","text":` + result + `}]}}`))
		if err != nil {
			t.Fatal(err)
		}
		resp := ev(audit.DirResponse, now.Add(35*time.Millisecond), string(out))
		resp.LatencyMS, resp.Masked = 34, map[string]int(counts)
		recs = append(recs, req, resp)
	}
	for _, r := range recs {
		if err := c.store.Record(r); err != nil {
			t.Fatal(err)
		}
	}
}

func TestConsoleTellsARecordedSession(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	sys := startConsoleSystem(t, ctx)
	alice, carol := approvalstest.Alice, approvalstest.Person{Subject: "carol@example.com", ClientID: "0oa-other-agent"}

	// The session: an allowed call whose result held an AWS key, a call
	// the policy denied, then a call held for approval.
	sys.call(t, session1, alice, "1", "get_secret_config", "allow", "allowed: tools allow *", `"aws key `+awsKey+`"`, nil, 0)
	time.Sleep(60 * time.Millisecond) // after the first call's response
	sys.call(t, session1, alice, "2", "get_env", "deny", "denied: get_env is in tools.deny", "", nil, 0)
	sys.call(t, session2, carol, "1", "search_issues", "allow", "allowed: tools allow *", `"3 issues"`, nil, 0)

	// Bob approves the held call in the inbox; he is no auditor.
	bob := browser(t, ctx)
	step := stepper(t)
	step(bob, "bob opens the inbox", chromedp.Navigate(sys.base+approvals.InboxPrefix), chromedp.WaitVisible(`input[name="login"]`))
	step(bob, "bob signs in",
		chromedp.SendKeys(`input[name="login"]`, approvalstest.Bob.User),
		chromedp.SendKeys(`input[name="password"]`, "any password"),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(`#pending`),
		void(chromedp.Poll[bool](`document.getElementById('live-status').textContent === 'live'`)),
	)
	type held struct {
		res   *grants.HoldResult
		err   error
		start time.Time
	}
	done := make(chan held, 1)
	go func() {
		op := sys.stack.OpenParams(alice, "delete_repository", `{"repo":"acme/old-test"}`, "remove the test repo for OPS-1234")
		op.Session, op.DecisionID = session1, "d-"+session1+"-3"
		start := time.Now()
		res, err := sys.stack.Grants.Hold(ctx, op)
		done <- held{res, err, start}
	}()
	card := `#pending article.request`
	step(bob, "bob approves",
		chromedp.WaitVisible(card+` button.approve`),
		chromedp.SendKeys(card+` input[name="reason"]`, "checked OPS-1234"),
		chromedp.Click(card+` button.approve`),
		chromedp.WaitVisible(`p.notice`),
	)
	var h held
	select {
	case h = <-done:
		if h.err != nil || h.res.Outcome != grants.HoldAllowed {
			t.Fatalf("the held call: %+v, %v", h.res, h.err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held call was not released by the approval")
	}
	sys.call(t, session1, alice, "3", "delete_repository", "allow", "approved", `"deleted acme/old-test"`, h.res, time.Since(h.start))
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	defer dcancel()
	if err := sys.store.Drain(dctx); err != nil {
		t.Fatal(err)
	}
	// Approving does not make Bob an auditor.
	step(bob, "bob is refused the console", chromedp.Navigate(sys.base+approvals.AuditPrefix), chromedp.WaitVisible(`p.error`))
	if msg, _ := chromedp.Run(bob, chromedp.Text(`p.error`)); !strings.Contains(msg, "auditor group") {
		t.Errorf("bob at the console: %q", msg)
	}
	if n, _ := chromedp.Run(bob, chromedp.Evaluate[int](`document.querySelectorAll('table.sessions').length`)); n != 0 {
		t.Error("bob sees the sessions list")
	}

	// Erin, an auditor, opens the console in her own browser: she signs in
	// and comes back to it.
	b := browser(t, ctx)
	step(b, "erin opens the console", chromedp.Navigate(sys.base+approvals.AuditPrefix), chromedp.WaitVisible(`input[name="login"]`))
	step(b, "erin signs in",
		chromedp.SendKeys(`input[name="login"]`, erin.Login),
		chromedp.SendKeys(`input[name="password"]`, "any password"),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(`table.sessions`),
	)
	rows := func() []string {
		t.Helper()
		ids, err := chromedp.Run(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('table.sessions tbody tr')).map(r => r.dataset.session)`))
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	if got := rows(); len(got) != 2 || got[0] != session1 || got[1] != session2 {
		t.Errorf("sessions listed: %v, want %s then %s", got, session1, session2)
	}
	line, _ := chromedp.Run(b, chromedp.Text(`tr[data-session="`+session1+`"]`))
	for _, w := range []string{alice.Subject, alice.ClientID, approvalstest.Target} {
		if !strings.Contains(line, w) {
			t.Errorf("the session's row lacks %q: %q", w, line)
		}
	}
	// Messages, calls, decisions, denied, held, approved, errors, masked.
	counts, _ := chromedp.Run(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('tr[data-session="`+session1+`"] td.n')).map(c => c.textContent)`))
	if strings.Join(counts, " ") != "4 2 3 1 1 1 0 1" {
		t.Errorf("the session's counts: %v, want 4 messages, 2 calls, 3 decisions, 1 denied, 1 held, 1 approved, 0 errors, 1 masked", counts)
	}
	saveShot(t, b, "console-sessions.png")

	step(b, "filter by tool",
		chromedp.SendKeys(`form.filters input[name="tool"]`, "get_env"),
		chromedp.Click(`form.filters button[type="submit"]`),
		chromedp.WaitVisible(`form.filters input[name="tool"][value="get_env"]`),
	)
	if got := rows(); len(got) != 1 || got[0] != session1 {
		t.Errorf("tool get_env: %v, want only %s", got, session1)
	}
	step(b, "filter by client", chromedp.Navigate(sys.base+approvals.AuditPrefix+"?client="+carol.ClientID), chromedp.WaitVisible(`table.sessions`))
	if got := rows(); len(got) != 1 || got[0] != session2 {
		t.Errorf("client %s: %v, want only %s", carol.ClientID, got, session2)
	}
	exp, _ := chromedp.Run(b, chromedp.Evaluate[string](`(() => { const x = new XMLHttpRequest(); x.open('GET', document.getElementById('export-csv').href, false); x.send();
		return x.status + ' ' + x.getResponseHeader('Content-Type') + '\n' + x.responseText; })()`))
	if !strings.HasPrefix(exp, "200 text/csv") || !strings.Contains(exp, session2+","+carol.Subject) || strings.Contains(exp, session1) {
		t.Errorf("the filtered list's CSV export:\n%s", exp)
	}

	step(b, "open the timeline",
		chromedp.Navigate(sys.base+approvals.AuditPrefix),
		chromedp.WaitVisible(`table.sessions`),
		chromedp.Click(`tr[data-session="`+session1+`"] a`),
		chromedp.WaitVisible(`table.timeline`),
	)
	steps, err := chromedp.Run(b, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('table.timeline tbody tr')).map(r => r.querySelector('.what').textContent + ' ' + r.querySelector('.outcome').textContent.split(' ')[0])`))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"decision allow", "request allow", "response allow", // get_secret_config
		"decision deny", // get_env
		// delete_repository: held, Bob's vote, the approval, the grant
		// issued and used up by the call it let through.
		"request pending pending", "request still pending pending", "request pending → approved approved",
		"grant issued issued", "grant consumed consumed",
		"decision allow", "request allow", "response allow",
	}
	if strings.Join(steps, "|") != strings.Join(want, "|") {
		t.Errorf("timeline rows:\n%s\nwant:\n%s", strings.Join(steps, "\n"), strings.Join(want, "\n"))
	}
	text, _ := chromedp.Run(b, chromedp.Text(`table.timeline`))
	for _, w := range []string{
		"denied: get_env is in tools.deny",
		"held on " + h.res.Request.ID + ": approved by " + approvalstest.Bob.User,
		"(checked OPS-1234); the call waited",
		"masked: aws_access_key ×1",
		"1 use(s) left",
	} {
		if !strings.Contains(text, w) {
			t.Errorf("the timeline lacks %q:\n%s", w, text)
		}
	}
	page, _ := chromedp.Run(b, chromedp.OuterHTML(`html`))
	if strings.Contains(page, awsKey) {
		t.Error("the timeline holds the unmasked AWS key")
	}
	step(b, "open the masked message", void(chromedp.Evaluate[bool](`document.querySelector('tr.step-message .masked').closest('tr').querySelector('details').open = true`)))
	saveShot(t, b, "console-timeline.png")

	// From the held call's request to the inbox's request page, and back.
	step(b, "follow the request link",
		chromedp.Click(`tr.step-approval a[href="/airlock/inbox/requests/`+h.res.Request.ID+`"]`),
		chromedp.WaitVisible(`.audit-link a`), // on the request card since issue 15
	)
	if n, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('form.decide').length`)); n != 0 {
		t.Error("the auditor is offered a decision form")
	}
	step(b, "and back to the session", chromedp.Click(`.audit-link a`), chromedp.WaitVisible(`table.timeline`))
	if loc, _ := chromedp.Run(b, chromedp.Location()); !strings.HasSuffix(loc, "/airlock/audit/sessions/"+session1) {
		t.Errorf("back at %q, want the session", loc)
	}
}

// stepper runs a named browser step, with a screenshot when it fails.
func stepper(t *testing.T) func(b context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	return func(b context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(b, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot(t, b, what)
			t.Fatalf("%s: %v", what, err)
		}
	}
}

// updateDocs rewrites the console's and the inbox card's screenshots in
// docs/images (go test ./test/browser -run 'Console|Card' -update-docs);
// without it the test leaves the tree alone (times and ids differ from
// run to run).
var updateDocs = flag.Bool("update-docs", false, "save the console's and the request card's screenshots to docs/images")

// saveShot saves a PNG screenshot of the page to docs/images/name with
// -update-docs (the pictures docs/audit.md shows are the pages this test
// checked), else where shot saves its own.
func saveShot(t *testing.T, b context.Context, name string) {
	t.Helper()
	if !*updateDocs {
		shot(t, b, strings.TrimSuffix(name, ".png"))
		return
	}
	img, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "..", "docs", "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), img, 0o644); err != nil {
		t.Fatal(err)
	}
}
