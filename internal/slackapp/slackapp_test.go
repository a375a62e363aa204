package slackapp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/syncbuf"
)

// The signing secret of the tests: shaped like Slack's (32 hex digits),
// obviously not one.
const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

var (
	requester = grants.Principal{Issuer: "https://idp.example/oauth2/default", Subject: "alice@example.com", User: "00u-alice",
		ClientID: "0oa-agent", Groups: []string{"eng"}}
	twoOf = policy.Approval{ApproverGroups: []string{"airlock-approvers"}, Threshold: 2, SingleUse: true}
	oneOf = policy.Approval{ApproverGroups: []string{"airlock-approvers"}, Threshold: 1, SingleUse: true}
	slack = config.SlackApp{SigningSecretEnv: "SLACK_SIGNING_SECRET", Approvers: []config.SlackApprover{
		{SlackUserID: "U0BOB1234", Subject: "00u-bob", User: "bob@example.com", Groups: []string{"airlock-approvers"}},
		{SlackUserID: "U0CAROL12", Subject: "00u-carol", Groups: []string{"airlock-approvers"}},
		{SlackUserID: "U0ALICE12", Subject: "00u-alice", Groups: []string{"airlock-approvers"}}, // the requester, by her user id
		{SlackUserID: "U0DAVE123", Subject: "00u-dave", Groups: []string{"eng"}},
	}}
)

type fixture struct {
	h     *Handler
	g     *grants.Service
	now   time.Time
	logs  *syncbuf.Buffer
	slack *httptest.Server // Slack's response_url endpoint

	mu   sync.Mutex
	sent []message
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	g, err := grants.New(grants.NewMemStore(), grants.Defaults(), grants.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	f := &fixture{g: g, now: time.Now(), logs: &syncbuf.Buffer{}}
	f.slack = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m message
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("response_url got a bad body: %v", err)
		}
		f.mu.Lock()
		f.sent = append(f.sent, m)
		f.mu.Unlock()
	}))
	t.Cleanup(f.slack.Close)
	cfg := slack
	cfg.ResponseURLPrefix = f.slack.URL + "/actions/"
	f.h, err = New(Options{Config: cfg, Grants: g, Logger: slog.New(slog.NewTextHandler(f.logs, nil)),
		Getenv: func(k string) string {
			if k == "SLACK_SIGNING_SECRET" {
				return testSecret
			}
			return ""
		},
		Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) open(t *testing.T, terms policy.Approval) *grants.Request {
	t.Helper()
	r, _, err := f.g.Open(context.Background(), grants.OpenParams{Principal: requester, Target: "github", Kind: grants.KindTool,
		Tool: "delete_repository", Arguments: json.RawMessage(`{"repo":"acme/prod-db-backups"}`), Reason: "cleanup", Approval: terms})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// blockActions is a block_actions payload as Slack sends it for a click
// on a button of an incoming-webhook message (trimmed of nothing airlock
// could need: the message's blocks are those notify renders).
func (f *fixture) blockActions(userID, username, action, requestID, reason string) string {
	p := map[string]any{
		"type":       "block_actions",
		"user":       map[string]any{"id": userID, "username": username, "name": username, "team_id": "T0TEAM123"},
		"api_app_id": "A0APP1234",
		"token":      "verification-token-not-used",
		"container":  map[string]any{"type": "message", "message_ts": "1765143000.000100", "channel_id": "C0CHAN123", "is_ephemeral": false},
		"trigger_id": "1234567890123.1234567890.abcdef0123456789abcdef0123456789",
		"team":       map[string]any{"id": "T0TEAM123", "domain": "acme"},
		"channel":    map[string]any{"id": "C0CHAN123", "name": "approvals"},
		"message": map[string]any{"type": "message", "subtype": "bot_message", "ts": "1765143000.000100", "text": "Approval needed",
			"blocks": []any{map[string]any{"type": "actions", "block_id": "airlock_decide"}}},
		"state": map[string]any{"values": map[string]any{
			"airlock_reason": map[string]any{"reason": map[string]any{"type": "plain_text_input", "value": reason}},
		}},
		"response_url": f.slack.URL + "/actions/T0TEAM123/1234567890/aBcDeFgHiJkLmNoPqRsTuVwX",
		"actions": []any{map[string]any{
			"action_id": action, "block_id": "airlock_decide", "value": requestID, "type": "button",
			"text": map[string]any{"type": "plain_text", "text": "Approve", "emoji": true}, "action_ts": "1765143010.123456",
		}},
	}
	b, _ := json.Marshal(p)
	return url.Values{"payload": {string(b)}}.Encode()
}

// post sends body signed with secret at ts, as Slack does, and returns
// the status.
func (f *fixture) post(t *testing.T, body, secret string, ts time.Time) int {
	t.Helper()
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, signed(body, secret, ts))
	return w.Code
}

// signed is Slack's request carrying body, signed with secret at ts.
func signed(body, secret string, ts time.Time) *http.Request {
	stamp := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + stamp + ":" + body))
	r := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.Header.Set("X-Slack-Request-Timestamp", stamp)
	r.Header.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	return r
}

func (f *fixture) last(t *testing.T) message {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sent) == 0 {
		t.Fatal("nothing was posted to response_url")
	}
	return f.sent[len(f.sent)-1]
}

func (f *fixture) state(t *testing.T, id string) *grants.Request {
	t.Helper()
	r, err := f.g.Get(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestApprove(t *testing.T) {
	f := newFixture(t)
	r := f.open(t, oneOf)
	if code := f.post(t, f.blockActions("U0BOB1234", "bob", "approve", r.ID, "looks right"), testSecret, f.now); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	got := f.state(t, r.ID)
	if got.State != grants.RequestApproved || got.Decisions[0].Actor != "00u-bob" || got.GrantID == "" {
		t.Fatalf("request %+v", got)
	}
	m := f.last(t)
	if !m.ReplaceOriginal || m.ResponseType != "" || !strings.Contains(m.Text, "approved by 00u-bob") || !strings.Contains(m.Text, "delete_repository") {
		t.Errorf("response %+v", m)
	}
}

func TestDenyWithReason(t *testing.T) {
	f := newFixture(t)
	r := f.open(t, oneOf)
	f.post(t, f.blockActions("U0BOB1234", "bob", "deny", r.ID, "  not during the freeze  "), testSecret, f.now)
	got := f.state(t, r.ID)
	if got.State != grants.RequestDenied || got.Decisions[0].Reason != "not during the freeze" {
		t.Fatalf("request %+v", got)
	}
	if m := f.last(t); !m.ReplaceOriginal || !strings.Contains(m.Text, "denied by 00u-bob: not during the freeze") {
		t.Errorf("response %+v", m)
	}
}

// TestThreshold: the first of two approvals leaves the buttons for the
// next approver and tells the first one where things stand.
func TestThreshold(t *testing.T) {
	f := newFixture(t)
	r := f.open(t, twoOf)
	f.post(t, f.blockActions("U0BOB1234", "bob", "approve", r.ID, ""), testSecret, f.now)
	if got := f.state(t, r.ID); got.State != grants.RequestPending {
		t.Fatalf("one of two approvals: %s", got.State)
	}
	if m := f.last(t); m.ReplaceOriginal || m.ResponseType != "ephemeral" || !strings.Contains(m.Text, "1 of 2") {
		t.Errorf("response %+v", m)
	}
	// Bob again: the grant service refuses a second approval by one person.
	f.post(t, f.blockActions("U0BOB1234", "bob", "approve", r.ID, ""), testSecret, f.now.Add(time.Second))
	if m := f.last(t); m.ResponseType != "ephemeral" || !strings.Contains(m.Text, "already decided") {
		t.Errorf("response %+v", m)
	}
	f.post(t, f.blockActions("U0CAROL12", "carol", "approve", r.ID, ""), testSecret, f.now.Add(2*time.Second))
	if got := f.state(t, r.ID); got.State != grants.RequestApproved {
		t.Fatalf("two of two approvals: %s", got.State)
	}
	if m := f.last(t); !m.ReplaceOriginal || !strings.Contains(m.Text, "approved by 00u-bob, 00u-carol") {
		t.Errorf("response %+v", m)
	}
}

// TestRefusedSignatures: a wrong secret, a stale or future timestamp, a
// missing header and a replay of an accepted request are refused with
// 401 before anything is decided, and the log holds no secret.
func TestRefusedSignatures(t *testing.T) {
	f := newFixture(t)
	r := f.open(t, oneOf)
	body := f.blockActions("U0BOB1234", "bob", "approve", r.ID, "")
	for name, code := range map[string]int{
		"bad signature": f.post(t, body, "00000000000000000000000000000000", f.now),
		"stale":         f.post(t, body, testSecret, f.now.Add(-Window-time.Second)),
		"future":        f.post(t, body, testSecret, f.now.Add(Window+time.Second)),
	} {
		if code != http.StatusUnauthorized {
			t.Errorf("%s: status %d, want 401", name, code)
		}
	}
	req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(body))
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, req)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("unsigned: status %d", w.Code)
	}
	if got := f.state(t, r.ID); got.State != grants.RequestPending || len(f.sent) != 0 {
		t.Fatalf("a refused request acted: %s, %d responses", got.State, len(f.sent))
	}
	// The same signed request twice: the second is a replay.
	r2 := f.open(t, twoOf)
	replayed := f.blockActions("U0BOB1234", "bob", "deny", r2.ID, "")
	if code := f.post(t, replayed, testSecret, f.now.Add(-time.Minute)); code != http.StatusOK {
		t.Fatalf("first: status %d", code)
	}
	if code := f.post(t, replayed, testSecret, f.now.Add(-time.Minute)); code != http.StatusUnauthorized {
		t.Errorf("replay: status %d, want 401", code)
	}
	logs := f.logs.String()
	for _, want := range []string{"signature mismatch", "outside the 5 minute window", "replayed"} {
		if !strings.Contains(logs, want) {
			t.Errorf("log lacks %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, testSecret) || strings.Contains(logs, "v0=") || strings.Contains(logs, "aBcDeFgHiJ") {
		t.Errorf("log carries a secret:\n%s", logs)
	}
}

// TestRefusedDeciders: users the Slack app does not know, the requester
// (matched by her user id, as the inbox matches), and someone outside
// the approver groups are told so, ephemerally; nothing is decided.
func TestRefusedDeciders(t *testing.T) {
	tests := []struct {
		name, user, want string
	}{
		{"unknown user", "U0MALLORY", "not an airlock approver"},
		{"self-approval", "U0ALICE12", "You asked for this request"},
		{"not an approver", "U0DAVE123", "not in the approver groups"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			r := f.open(t, oneOf)
			if code := f.post(t, f.blockActions(tt.user, "someone", "approve", r.ID, ""), testSecret, f.now); code != http.StatusOK {
				t.Fatalf("status %d", code)
			}
			m := f.last(t)
			if m.ReplaceOriginal || m.ResponseType != "ephemeral" || !strings.Contains(m.Text, tt.want) {
				t.Errorf("response %+v, want an ephemeral %q", m, tt.want)
			}
			if got := f.state(t, r.ID); got.State != grants.RequestPending || len(got.Decisions) != 0 {
				t.Errorf("request %s with %d decisions", got.State, len(got.Decisions))
			}
		})
	}
}

// TestAlreadyDecided: a click on a message whose request was decided
// elsewhere replaces the message with the outcome.
func TestAlreadyDecided(t *testing.T) {
	f := newFixture(t)
	r := f.open(t, oneOf)
	if _, err := f.g.Decide(context.Background(), r.ID, grants.Actor{Subject: "00u-carol", Groups: []string{"airlock-approvers"}},
		grants.VerdictDeny, "from the inbox"); err != nil {
		t.Fatal(err)
	}
	f.post(t, f.blockActions("U0BOB1234", "bob", "approve", r.ID, ""), testSecret, f.now)
	// The message shows the outcome; the clicker alone is told the click
	// did not count.
	if len(f.sent) != 2 || !f.sent[0].ReplaceOriginal || !strings.Contains(f.sent[0].Text, "denied by 00u-carol: from the inbox") ||
		f.sent[1].ResponseType != "ephemeral" || !strings.Contains(f.sent[1].Text, "no longer pending") {
		t.Errorf("responses %+v", f.sent)
	}
	if got := f.state(t, r.ID); got.State != grants.RequestDenied || len(got.Decisions) != 1 {
		t.Errorf("request %s with %d decisions", got.State, len(got.Decisions))
	}
}

// TestResponseURLPinned: a response_url outside the configured prefix is
// not posted to (the decision, authentic, still counts).
func TestResponseURLPinned(t *testing.T) {
	f := newFixture(t)
	r := f.open(t, oneOf)
	body := strings.Replace(f.blockActions("U0BOB1234", "bob", "approve", r.ID, ""), url.QueryEscape(f.slack.URL+"/actions/"),
		url.QueryEscape(f.slack.URL+"/elsewhere/"), 1)
	f.post(t, body, testSecret, f.now)
	if len(f.sent) != 0 {
		t.Errorf("posted outside the prefix: %+v", f.sent)
	}
	if !strings.Contains(f.logs.String(), "not under notifications.slack_app.response_url_prefix") {
		t.Errorf("log:\n%s", f.logs.String())
	}
}

func TestNewNeedsSecret(t *testing.T) {
	_, err := New(Options{Config: slack, Grants: &grants.Service{}, Getenv: func(string) string { return "" }})
	if err == nil || !strings.Contains(err.Error(), "signing_secret_env") {
		t.Errorf("err = %v", err)
	}
}

func TestOtherInteractionsIgnored(t *testing.T) {
	f := newFixture(t)
	body := url.Values{"payload": {`{"type":"view_submission","user":{"id":"U0BOB1234"}}`}}.Encode()
	if code := f.post(t, body, testSecret, f.now); code != http.StatusOK {
		t.Errorf("status %d", code)
	}
	r := httptest.NewRequest(http.MethodGet, Path, nil)
	w := httptest.NewRecorder()
	f.h.ServeHTTP(w, r)
	if w.Code != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", w.Code)
	}
}

func TestCheckEnvironment(t *testing.T) {
	if err := CheckEnvironment(nil, nil); err != nil {
		t.Errorf("no Slack app: %v", err)
	}
	var fe *config.FieldError
	if err := CheckEnvironment(&slack, func(string) string { return "" }); !errors.As(err, &fe) || fe.Path != "notifications.slack_app.signing_secret_env" {
		t.Errorf("no secret: %v", err)
	}
	if err := CheckEnvironment(&slack, func(string) string { return testSecret }); err != nil {
		t.Errorf("with the secret: %v", err)
	}
}

// TestApproverByEmail: an approver configured by e-mail is recognised
// through users.info with the bot token (looked up once, then cached);
// a member whose profile e-mail is not listed is refused.
func TestApproverByEmail(t *testing.T) {
	const botToken = "xoxb-0000000000-0000000000000-notarealtokennotarealtoken"
	var calls int
	var mu sync.Mutex
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		if r.URL.Path != "/api/users.info" || r.Header.Get("Authorization") != "Bearer "+botToken {
			_, _ = io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
			return
		}
		email := map[string]string{"U0ERIN123": "Erin@Example.com", "U0FRANK12": "frank@example.com"}[r.URL.Query().Get("user")]
		if email == "" {
			_, _ = io.WriteString(w, `{"ok":false,"error":"user_not_found"}`)
			return
		}
		_, _ = fmt.Fprintf(w, `{"ok":true,"user":{"id":%q,"name":"x","profile":{"email":%q,"display_name":"x"}}}`, r.URL.Query().Get("user"), email)
	}))
	t.Cleanup(api.Close)
	f := newFixture(t)
	cfg := slack
	cfg.Approvers = append(slices.Clone(slack.Approvers), config.SlackApprover{Email: "erin@example.com", Subject: "00u-erin", Groups: []string{"airlock-approvers"}})
	cfg.BotTokenEnv, cfg.APIURL, cfg.ResponseURLPrefix = "SLACK_BOT_TOKEN", api.URL+"/api/", f.slack.URL+"/actions/"
	var err error
	f.h, err = New(Options{Config: cfg, Grants: f.g, Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Now: func() time.Time { return f.now },
		Getenv: func(k string) string {
			return map[string]string{"SLACK_SIGNING_SECRET": testSecret, "SLACK_BOT_TOKEN": botToken}[k]
		}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.open(t, twoOf)
	f.post(t, f.blockActions("U0FRANK12", "frank", "approve", r.ID, ""), testSecret, f.now)
	if m := f.last(t); m.ResponseType != "ephemeral" || !strings.Contains(m.Text, "not an airlock approver") {
		t.Errorf("frank: %+v", m)
	}
	f.post(t, f.blockActions("U0ERIN123", "erin", "approve", r.ID, ""), testSecret, f.now.Add(time.Second))
	f.post(t, f.blockActions("U0ERIN123", "erin", "approve", r.ID, ""), testSecret, f.now.Add(2*time.Second))
	got := f.state(t, r.ID)
	if len(got.Decisions) != 1 || got.Decisions[0].Actor != "00u-erin" {
		t.Fatalf("decisions %+v", got.Decisions)
	}
	if m := f.last(t); !strings.Contains(m.Text, "already decided") {
		t.Errorf("erin again: %+v", m)
	}
	if calls != 2 {
		t.Errorf("users.info called %d times, want 2 (frank, erin once)", calls)
	}
	if strings.Contains(f.logs.String(), botToken) {
		t.Error("the log carries the bot token")
	}
	// Without the token's value airlock does not start.
	_, err = New(Options{Config: cfg, Grants: f.g, Getenv: func(k string) string {
		return map[string]string{"SLACK_SIGNING_SECRET": testSecret}[k]
	}})
	if err == nil || !strings.Contains(err.Error(), "bot_token_env") {
		t.Errorf("New without the bot token: %v", err)
	}
	if err := CheckEnvironment(&cfg, func(k string) string { return map[string]string{"SLACK_SIGNING_SECRET": testSecret}[k] }); err == nil ||
		!strings.Contains(err.Error(), "bot_token_env") {
		t.Errorf("CheckEnvironment without the bot token: %v", err)
	}
}

// viewSubmission is a view_submission payload as Slack sends it when the
// reason dialog is submitted.
func viewSubmission(userID, metadata, reason string) string {
	p := map[string]any{
		"type":       "view_submission",
		"team":       map[string]any{"id": "T0TEAM123", "domain": "acme"},
		"user":       map[string]any{"id": userID, "username": "someone", "name": "someone", "team_id": "T0TEAM123"},
		"api_app_id": "A0APP1234",
		"token":      "verification-token-not-used",
		"trigger_id": "1234567890123.1234567890.fedcba9876543210fedcba9876543210",
		"view": map[string]any{
			"id": "V0VIEW1234", "team_id": "T0TEAM123", "type": "modal", "callback_id": "airlock_decide",
			"private_metadata": metadata, "hash": "1765143020.AbCdEfGh",
			"title":  map[string]any{"type": "plain_text", "text": "Deny request"},
			"blocks": []any{map[string]any{"type": "input", "block_id": "airlock_reason"}},
			"state": map[string]any{"values": map[string]any{
				"airlock_reason": map[string]any{"reason": map[string]any{"type": "plain_text_input", "value": reason}},
			}},
		},
		"response_urls":         []any{},
		"is_enterprise_install": false,
	}
	b, _ := json.Marshal(p)
	return url.Values{"payload": {string(b)}}.Encode()
}

// TestReasonDialog: with reason_dialog, a click with the reason field
// empty opens the dialog (views.open with the click's trigger id and the
// bot token) and decides nothing; submitting it decides with its reason
// and updates the message; a refusal is shown in the dialog.
func TestReasonDialog(t *testing.T) {
	const botToken = "xoxb-0000000000-0000000000000-notarealtokennotarealtoken"
	var opened []map[string]any
	var mu sync.Mutex
	expired := false // Slack refuses the trigger id
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		refuse := expired
		mu.Unlock()
		if refuse {
			_, _ = io.WriteString(w, `{"ok":false,"error":"expired_trigger_id"}`)
			return
		}
		var body map[string]any
		if r.URL.Path != "/api/views.open" || r.Header.Get("Authorization") != "Bearer "+botToken || json.NewDecoder(r.Body).Decode(&body) != nil {
			_, _ = io.WriteString(w, `{"ok":false,"error":"invalid_auth"}`)
			return
		}
		mu.Lock()
		opened = append(opened, body)
		mu.Unlock()
		_, _ = io.WriteString(w, `{"ok":true,"view":{"id":"V0VIEW1234"}}`)
	}))
	t.Cleanup(api.Close)
	f := newFixture(t)
	cfg := slack
	cfg.ReasonDialog, cfg.BotTokenEnv, cfg.APIURL, cfg.ResponseURLPrefix = true, "SLACK_BOT_TOKEN", api.URL+"/api/", f.slack.URL+"/actions/"
	var err error
	f.h, err = New(Options{Config: cfg, Grants: f.g, Logger: slog.New(slog.NewTextHandler(f.logs, nil)), Now: func() time.Time { return f.now },
		Getenv: func(k string) string {
			return map[string]string{"SLACK_SIGNING_SECRET": testSecret, "SLACK_BOT_TOKEN": botToken}[k]
		}})
	if err != nil {
		t.Fatal(err)
	}
	r := f.open(t, oneOf)
	if code := f.post(t, f.blockActions("U0BOB1234", "bob", "deny", r.ID, ""), testSecret, f.now); code != http.StatusOK {
		t.Fatalf("click: %d", code)
	}
	if len(opened) != 1 || opened[0]["trigger_id"] != "1234567890123.1234567890.abcdef0123456789abcdef0123456789" {
		t.Fatalf("views.open calls %+v", opened)
	}
	if got := f.state(t, r.ID); got.State != grants.RequestPending || len(f.sent) != 0 {
		t.Fatalf("opening the dialog decided: %s, %d responses", got.State, len(f.sent))
	}
	meta := opened[0]["view"].(map[string]any)["private_metadata"].(string)

	// Submitted by someone the app does not know: refused in the dialog.
	rec := httptest.NewRecorder()
	f.serve(t, rec, viewSubmission("U0MALLORY", meta, "no"), f.now.Add(time.Second))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"response_action":"errors"`) ||
		!strings.Contains(rec.Body.String(), "not an airlock approver") {
		t.Errorf("unknown user's submission: %d %s", rec.Code, rec.Body)
	}

	rec = httptest.NewRecorder()
	f.serve(t, rec, viewSubmission("U0BOB1234", meta, "not during the freeze"), f.now.Add(2*time.Second))
	if rec.Code != http.StatusOK || rec.Body.Len() != 0 {
		t.Errorf("submission: %d %q, want an empty 200 (closes the dialog)", rec.Code, rec.Body)
	}
	got := f.state(t, r.ID)
	if got.State != grants.RequestDenied || got.Decisions[0].Reason != "not during the freeze" || got.Decisions[0].Actor != "00u-bob" {
		t.Fatalf("request %+v", got)
	}
	if m := f.last(t); !m.ReplaceOriginal || !strings.Contains(m.Text, "denied by 00u-bob: not during the freeze") {
		t.Errorf("response %+v", m)
	}

	// A reason typed in the message's field decides at once, no dialog.
	r2 := f.open(t, oneOf)
	f.post(t, f.blockActions("U0BOB1234", "bob", "approve", r2.ID, "ok for OPS-1"), testSecret, f.now.Add(3*time.Second))
	if got := f.state(t, r2.ID); got.State != grants.RequestApproved || len(opened) != 1 {
		t.Errorf("with a reason: %s, %d dialogs", got.State, len(opened))
	}
	// Slack refuses the dialog (an expired trigger): nothing is decided
	// and the approver is told how to go on.
	mu.Lock()
	expired = true
	mu.Unlock()
	r3 := f.open(t, oneOf)
	f.post(t, f.blockActions("U0CAROL12", "carol", "deny", r3.ID, ""), testSecret, f.now.Add(4*time.Second))
	if got := f.state(t, r3.ID); got.State != grants.RequestPending {
		t.Errorf("a failed dialog decided: %s", got.State)
	}
	if m := f.last(t); m.ResponseType != "ephemeral" || !strings.Contains(m.Text, "Reason field") {
		t.Errorf("failed dialog: %+v", m)
	}
	if strings.Contains(f.logs.String(), botToken) {
		t.Error("the log carries the bot token")
	}
}

// serve sends body signed at ts and records the answer in w.
func (f *fixture) serve(t *testing.T, w *httptest.ResponseRecorder, body string, ts time.Time) {
	t.Helper()
	f.h.ServeHTTP(w, signed(body, testSecret, ts))
}
