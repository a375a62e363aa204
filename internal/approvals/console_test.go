package approvals

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
)

var (
	// auditor reads the console and approves nothing.
	auditor = session{Issuer: "https://idp.example", Subject: "00u-erin", User: "erin@example.com", Groups: []string{"airlock-auditors"}}
	// approverAuditor is in both groups: the inbox's request page links
	// them to the session.
	approverAuditor = session{Issuer: "https://idp.example", Subject: "00u-fay", User: "fay@example.com", Groups: []string{"airlock-approvers", "airlock-auditors"}}
)

// consoleFixture is the inbox with the console on, reading an embedded
// audit store that holds two sessions: s1 (alice through agent-1 on
// github: an allowed call with a masked result, a policy denial, and a
// call held, approved in the inbox and let through on its grant), and
// s2 (a principal whose name is markup, through agent-2, on jira).
type consoleFixture struct {
	*inboxFixture
	store *audit.Embedded
	held  *grants.Request
	grant string
	plain *grants.Request // opened outside a session (no session id)
}

func newConsoleFixture(t *testing.T) *consoleFixture {
	t.Helper()
	cfg := audit.Defaults()
	cfg.Embedded.Dir = t.TempDir()
	store, err := audit.OpenEmbedded(cfg, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = store.Close(ctx)
	})
	f := &consoleFixture{store: store}
	f.inboxFixture = newInboxFixture(t, func(o *Options) {
		o.Inbox.AuditorGroups = []string{"airlock-auditors"}
		o.Audit = store
	})
	ctx := context.Background()
	if f.held, _, err = f.g.Open(ctx, grants.OpenParams{
		Principal: requester, Target: "github", Kind: grants.KindTool, Tool: "delete_repository",
		Arguments: json.RawMessage(`{"repo":"acme/old"}`), Reason: "cleanup", Approval: terms, Session: "s1", DecisionID: "d-held",
	}); err != nil {
		t.Fatal(err)
	}
	approved, err := f.g.Decide(ctx, f.held.ID, grants.Actor{Subject: "00u-bob", User: "bob@example.com", Groups: []string{"airlock-approvers"}}, grants.VerdictApprove, "ticket OPS-1")
	if err != nil {
		t.Fatal(err)
	}
	f.grant = approved.GrantID
	f.plain = f.open(t, "delete_repository", `{"repo":"acme/other"}`)

	t0 := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	dec := func(id string, ms int, tool, outcome, reason, request, grant string, us int64) *audit.Decision {
		return &audit.Decision{DecisionID: id, Time: at(ms), SessionID: "s1", Principal: requester.Subject, ClientID: "agent-1",
			Target: "github", Method: "tools/call", Tool: tool, Outcome: outcome, Reason: reason, PolicyVersion: "v7",
			RequestID: request, GrantID: grant, Status: 200, LatencyUS: us}
	}
	recs := []audit.Record{
		dec("d-ok", 0, "search_issues", "allow", "allowed by rule", "", "", 800),
		&audit.Event{Time: at(1), SessionID: "s1", Principal: requester.Subject, ClientID: "agent-1", Target: "github",
			Direction: audit.DirRequest, Method: "tools/call", Tool: "search_issues", JSONRPCID: "1", DecisionID: "d-ok", Outcome: "allow",
			Payload: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_issues","arguments":{"q":"<script>alert(1)</script>"}}}`},
		&audit.Event{Time: at(40), SessionID: "s1", Principal: requester.Subject, ClientID: "agent-1", Target: "github",
			Direction: audit.DirResponse, Method: "tools/call", Tool: "search_issues", JSONRPCID: "1", DecisionID: "d-ok", Outcome: "allow",
			Status: 200, LatencyMS: 39, Masked: map[string]int{"aws_access_key": 1},
			Payload: `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"key [MASKED:aws_access_key]"}]}}`},
		dec("d-deny", 100, "get_env", "deny", "=HYPERLINK(\"x\") get_env is denied", "", "", 600),
		&audit.RequestEvent{Time: at(200), RequestID: f.held.ID, ToState: "pending", Actor: requester.Subject, Principal: requester.Subject,
			Target: "github", Method: "tools/call", Tool: "delete_repository", Reason: "cleanup", DecisionID: "d-held", Seq: 1},
		&audit.RequestEvent{Time: at(2200), RequestID: f.held.ID, FromState: "pending", ToState: "approved", Actor: "bob@example.com",
			Principal: requester.Subject, Target: "github", Method: "tools/call", Tool: "delete_repository", Reason: "ticket OPS-1",
			DecisionID: "d-held", GrantID: f.grant, Seq: 2},
		&audit.GrantEvent{Time: at(2200), GrantID: f.grant, Transition: "issued", Actor: "bob@example.com", Principal: requester.Subject,
			Target: "github", Tools: []string{"delete_repository"}, RequestID: f.held.ID, UsesLeft: 1, Seq: 1},
		dec("d-held", 2300, "delete_repository", "allow", "approved", f.held.ID, f.grant, 2_100_000),
		&audit.Event{Time: at(2301), SessionID: "s1", Principal: requester.Subject, ClientID: "agent-1", Target: "github",
			Direction: audit.DirRequest, Method: "tools/call", Tool: "delete_repository", JSONRPCID: "3", DecisionID: "d-held",
			GrantID: f.grant, Outcome: "allow", Payload: `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"delete_repository"}}`},
		&audit.Decision{DecisionID: "d-s2", Time: at(5000), SessionID: "s2", Principal: "carol<b>x</b>", ClientID: "agent-2",
			Target: "jira", Method: "tools/call", Tool: "search", Outcome: "allow"},
	}
	for _, r := range recs {
		if err := store.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := store.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestConsoleAuthz: auditors read every console page; a signed-in
// approver who is not an auditor is refused (403) and sees no Audit link;
// the anonymous go to sign in and come back to the page they asked for.
func TestConsoleAuthz(t *testing.T) {
	f := newConsoleFixture(t)
	aud, appr := auditor, approver
	audCookie, apprCookie := f.sessionCookie(t, &aud), f.sessionCookie(t, &appr)
	paths := []string{
		"/airlock/audit/", "/airlock/audit/?tool=get_env", "/airlock/audit/sessions.csv", "/airlock/audit/sessions.json",
		"/airlock/audit/sessions/s1", "/airlock/audit/sessions/s1/timeline.csv", "/airlock/audit/sessions/s1/timeline.json",
		"/airlock/audit/requests/" + f.held.ID, "/airlock/audit/grants/" + f.grant,
	}
	for _, p := range paths {
		resp, body := get(t, f.inboxFixture, p)
		if want := "/airlock/inbox/login?next=" + url.QueryEscape(p); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("anonymous GET %s = %d → %q, want 303 → %q", p, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		resp, body = get(t, f.inboxFixture, p, apprCookie)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "auditor group") || strings.Contains(body, "s2") {
			t.Errorf("approver GET %s = %d, want 403 naming the auditor groups:\n%s", p, resp.StatusCode, body)
		}
		resp, _ = get(t, f.inboxFixture, p, audCookie)
		if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
			t.Errorf("auditor GET %s = %d, want 200 (or 303 to the session)", p, resp.StatusCode)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s has no Content-Security-Policy", p)
		}
	}
	if _, body := get(t, f.inboxFixture, "/airlock/inbox/", audCookie); !strings.Contains(body, `href="/airlock/audit/"`) {
		t.Error("the auditor's inbox has no Audit link")
	}
	if _, body := get(t, f.inboxFixture, "/airlock/inbox/", apprCookie); strings.Contains(body, "/airlock/audit/") {
		t.Error("the approver's inbox links to the console")
	}
	if resp, _ := get(t, f.inboxFixture, "/airlock/audit/nothing-here", audCookie); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown console page: %d, want 404", resp.StatusCode)
	}

	// Without auditor groups there is no console at all.
	off := newInboxFixture(t, nil)
	s := auditor
	if resp, _ := get(t, off, "/airlock/audit/", off.sessionCookie(t, &s)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("console off: GET /airlock/audit/ = %d, want 404", resp.StatusCode)
	}
	// Auditor groups without a store to read are a configuration error.
	if _, err := New(Options{Grants: off.g, Verifier: refuseTokens{}, Policy: loadAllowAll(t), PublicURL: "http://gw.test",
		Inbox: InboxConfig{Issuer: off.iss.URL(), ClientID: "inbox", RedirectURL: "http://gw.test" + CallbackPath, AuditorGroups: []string{"a"}}}); err == nil ||
		!strings.Contains(err.Error(), "audit store") {
		t.Errorf("New with auditor groups and no store: %v", err)
	}
}

// TestConsoleSessionsFilters: the list's filters reach the store; its
// cells are escaped; a bad time is a 400 that says what to write.
func TestConsoleSessionsFilters(t *testing.T) {
	f := newConsoleFixture(t)
	s := auditor
	c := f.sessionCookie(t, &s)
	tests := []struct {
		query     string
		want, not []string
	}{
		{"", []string{`data-session="s1"`, `data-session="s2"`, "carol&lt;b&gt;x&lt;/b&gt;"}, []string{"carol<b>"}},
		{"?client=agent-2", []string{`data-session="s2"`}, []string{`data-session="s1"`}},
		{"?principal=" + url.QueryEscape(requester.Subject), []string{`data-session="s1"`}, []string{`data-session="s2"`}},
		{"?target=jira", []string{`data-session="s2"`}, []string{`data-session="s1"`}},
		{"?tool=get_env", []string{`data-session="s1"`, `value="get_env"`}, []string{`data-session="s2"`}},
		{"?outcome=deny", []string{`data-session="s1"`, `<option selected>deny</option>`}, []string{`data-session="s2"`}},
		{"?outcome=deny&client=agent-2", []string{"No recorded session matches."}, []string{`data-session=`}},
		{"?since=2h&until=" + url.QueryEscape(time.Now().UTC().Add(-time.Hour+time.Second).Format("2006-01-02T15:04:05")), []string{`data-session="s1"`}, []string{`data-session="s2"`}},
		{"?since=7d&limit=1", []string{`data-session="s2"`, "sessions.csv?limit=1&amp;since=7d"}, []string{`data-session="s1"`}},
	}
	for _, tc := range tests {
		resp, body := get(t, f.inboxFixture, "/airlock/audit/"+tc.query, c)
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /airlock/audit/%s = %d", tc.query, resp.StatusCode)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("/airlock/audit/%s lacks %s", tc.query, w)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(body, n) {
				t.Errorf("/airlock/audit/%s has %s", tc.query, n)
			}
		}
	}
	resp, body := get(t, f.inboxFixture, "/airlock/audit/?since=yesterday", c)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "7d") {
		t.Errorf("since=yesterday: %d\n%s", resp.StatusCode, body)
	}
	if resp, _ := get(t, f.inboxFixture, "/airlock/audit/sessions.csv?limit=5000", c); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("limit=5000: %d, want 400", resp.StatusCode)
	}
}

// TestConsoleTimeline: the session page tells the session in time order
// — messages (escaped, masked), the decisions with their durations, the
// hold with its approver and wait, the grant — and links each request
// back to the inbox.
func TestConsoleTimeline(t *testing.T) {
	f := newConsoleFixture(t)
	s := auditor
	c := f.sessionCookie(t, &s)
	resp, body := get(t, f.inboxFixture, "/airlock/audit/sessions/s1", c)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("timeline: %d\n%s", resp.StatusCode, body)
	}
	order := []string{
		`class="step-decision outcome-allow"`, `<code class="tool">search_issues</code>`, "800µs",
		`class="step-message outcome-allow"`, "&lt;script&gt;alert(1)&lt;/script&gt;",
		"39ms", "masked: aws_access_key ×1", "[MASKED:aws_access_key]",
		`class="step-decision outcome-deny"`, "get_env is denied",
		`request pending`, `href="/airlock/inbox/requests/` + f.held.ID + `"`,
		`request pending → approved`, "ticket OPS-1",
		`grant issued`, "1 use(s) left",
		`class="step-decision outcome-allow"`, "2.1s", "held on " + f.held.ID + ": approved by bob@example.com after 2s (ticket OPS-1); the call waited 2.1s",
	}
	rest := body
	for _, w := range order {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("the timeline lacks %q (in order) after:\n%.2000s", w, rest)
		}
		rest = rest[i+len(w):]
	}
	if strings.Contains(body, "<script>alert") {
		t.Error("a recorded payload became markup")
	}
	// Narrowed to one call, as replay --outcome does.
	_, body = get(t, f.inboxFixture, "/airlock/audit/sessions/s1?outcome=deny", c)
	if !strings.Contains(body, "get_env is denied") || strings.Contains(body, "search_issues</code>") || !strings.Contains(body, "timeline.csv?outcome=deny") {
		t.Errorf("timeline ?outcome=deny:\n%s", body)
	}
	if resp, body := get(t, f.inboxFixture, "/airlock/audit/sessions/nope", c); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "Nothing is recorded") {
		t.Errorf("unknown session: %d", resp.StatusCode)
	}
}

// TestConsoleExports: CSV and JSON of the list and of a timeline, as
// downloads, with what the pages show; a text that a spreadsheet would
// run as a formula is defused.
func TestConsoleExports(t *testing.T) {
	f := newConsoleFixture(t)
	s := auditor
	c := f.sessionCookie(t, &s)
	download := func(path, contentType string) string {
		t.Helper()
		resp, body := get(t, f.inboxFixture, path, c)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != contentType ||
			!strings.HasPrefix(resp.Header.Get("Content-Disposition"), `attachment; filename="airlock-`) {
			t.Fatalf("GET %s = %d, %q, %q", path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"))
		}
		return body
	}

	var sums []audit.SessionSummary
	if err := json.Unmarshal([]byte(download("/airlock/audit/sessions.json?client=agent-1", "application/json")), &sums); err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].SessionID != "s1" || sums[0].Denied != 1 || sums[0].Held != 1 || sums[0].Approved != 1 || sums[0].Masked != 1 {
		t.Errorf("sessions.json?client=agent-1: %+v", sums)
	}
	rows, err := csv.NewReader(strings.NewReader(download("/airlock/audit/sessions.csv", "text/csv; charset=utf-8"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 || rows[0][0] != "session_id" || rows[1][0] != "s2" || rows[1][1] != "carol<b>x</b>" || rows[2][0] != "s1" || rows[2][10] != "1" {
		t.Errorf("sessions.csv:\n%q", rows)
	}

	var rp audit.Replay
	if err := json.Unmarshal([]byte(download("/airlock/audit/sessions/s1/timeline.json", "application/json")), &rp); err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, st := range rp.Steps {
		kinds[st.Kind]++
	}
	if rp.SessionID != "s1" || kinds["message"] != 3 || kinds["decision"] != 3 || kinds["approval"] != 2 || kinds["grant"] != 1 {
		t.Errorf("timeline.json: session %s, steps %v", rp.SessionID, kinds)
	}
	rows, err = csv.NewReader(strings.NewReader(download("/airlock/audit/sessions/s1/timeline.csv", "text/csv; charset=utf-8"))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1+9 || rows[0][2] != "kind" {
		t.Fatalf("timeline.csv: %d rows\n%q", len(rows), rows)
	}
	var denied, held []string
	for _, r := range rows[1:] {
		if r[2] == "decision" && r[4] == "deny" {
			denied = r
		}
		if r[2] == "decision" && r[9] == f.held.ID {
			held = r
		}
	}
	if denied == nil || !strings.HasPrefix(denied[12], `'=HYPERLINK`) {
		t.Errorf("the denial's row %q: its reason should be defused ('=…)", denied)
	}
	if held == nil || held[10] != f.grant || held[11] != "2.100000" {
		t.Errorf("the held call's row %q: want grant %s and 2.1 s", held, f.grant)
	}
	if resp, _ := get(t, f.inboxFixture, "/airlock/audit/sessions/nope/timeline.csv", c); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown session's export: %d", resp.StatusCode)
	}
}

// TestConsoleLinks: from a request or a grant to its session and back;
// the inbox shows the link to auditors only.
func TestConsoleLinks(t *testing.T) {
	f := newConsoleFixture(t)
	both, appr := approverAuditor, approver
	bc, ac := f.sessionCookie(t, &both), f.sessionCookie(t, &appr)
	link := `href="/airlock/audit/sessions/s1"`
	if _, body := get(t, f.inboxFixture, "/airlock/inbox/requests/"+f.held.ID, bc); !strings.Contains(body, link) {
		t.Errorf("the request page lacks the session link for an auditor")
	}
	if _, body := get(t, f.inboxFixture, "/airlock/inbox/requests/"+f.held.ID, ac); strings.Contains(body, "/airlock/audit/") {
		t.Errorf("the request page links a non-auditor to the console")
	}
	// An auditor who approves nothing reads the request (the timeline
	// links it) without a decision form; nobody else outside its groups
	// does.
	aud, other := auditor, session{Issuer: "https://idp.example", Subject: "00u-gus", Groups: []string{"eng"}}
	pending := f.open(t, "delete_repository", `{"repo":"acme/third"}`)
	resp, body := get(t, f.inboxFixture, "/airlock/inbox/requests/"+pending.ID, f.sessionCookie(t, &aud))
	if resp.StatusCode != http.StatusOK || strings.Contains(body, `class="decide"`) {
		t.Errorf("an auditor's view of a pending request: %d, decision form shown: %v", resp.StatusCode, strings.Contains(body, `class="decide"`))
	}
	if resp, _ := get(t, f.inboxFixture, "/airlock/inbox/requests/"+pending.ID, f.sessionCookie(t, &other)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("a stranger's view of a request: %d, want 404", resp.StatusCode)
	}
	if _, body := get(t, f.inboxFixture, "/airlock/inbox/history", bc); !strings.Contains(body, `href="/airlock/audit/grants/`+f.grant+`"`) {
		t.Errorf("the history lacks the grant's session link")
	}
	for _, p := range []string{"/airlock/audit/requests/" + f.held.ID, "/airlock/audit/grants/" + f.grant} {
		if resp, _ := get(t, f.inboxFixture, p, bc); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/airlock/audit/sessions/s1" {
			t.Errorf("GET %s = %d → %q, want 303 → the session", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	if resp, body := get(t, f.inboxFixture, "/airlock/audit/requests/"+f.plain.ID, bc); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "outside an MCP session") {
		t.Errorf("a request opened outside a session: %d", resp.StatusCode)
	}
	if resp, _ := get(t, f.inboxFixture, "/airlock/audit/requests/req_nope", bc); resp.StatusCode != http.StatusNotFound {
		t.Errorf("an unknown request: %d", resp.StatusCode)
	}
}

// TestConsoleOddSessionID: a session id is the MCP server's choice; one
// with "?", "#" and "/" in it still links to its own timeline.
func TestConsoleOddSessionID(t *testing.T) {
	f := newConsoleFixture(t)
	const id = "s?x#y/z"
	if err := f.store.Record(&audit.Decision{SessionID: id, Principal: "dan", Target: "github", Tool: "odd_tool", Outcome: "allow"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.store.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	s := auditor
	c := f.sessionCookie(t, &s)
	link := "/airlock/audit/sessions/" + url.PathEscape(id)
	if _, body := get(t, f.inboxFixture, "/airlock/audit/?principal=dan", c); !strings.Contains(body, `href="`+link+`"`) {
		t.Fatalf("the list does not link %s:\n%s", link, body)
	}
	if resp, body := get(t, f.inboxFixture, link, c); resp.StatusCode != http.StatusOK || !strings.Contains(body, "odd_tool") {
		t.Errorf("GET %s = %d", link, resp.StatusCode)
	}
}
