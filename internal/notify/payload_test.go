package notify

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/mask"
)

func newRender() *render {
	p, _ := mask.Builtin(mask.StrictProfile)
	return &render{mask: p, approvalURL: approvalURL}
}

func TestGenericBody(t *testing.T) {
	r := newRender()
	e := sampleEvent(grants.EventRequestOpened)
	e.Reason = e.Request.Reason
	b, err := r.generic(e)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"hunter2", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"} {
		if strings.Contains(string(b), secret) {
			t.Errorf("body carries a secret %q: %s", secret, b)
		}
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	req := got["request"].(map[string]any)
	want := map[string]any{
		"id": "evt_1", "type": "request.opened", "time": "2026-03-01T09:00:00Z",
		"reason":       "cleanup, password=[MASKED:field:password]",
		"approval_url": "https://airlock.example/requests/req_abc",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	// Issue 15: webhooks state what approving grants, as the API does.
	if diff := cmp.Diff(map[string]any{"kind": "call_once", "duration": "0s", "text": "this exact call, once"}, req["scope"]); diff != "" {
		t.Errorf("scope (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"repo": "acme/test", "token": "[MASKED:field:token]"}, req["arguments"]); diff != "" {
		t.Errorf("arguments (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"subject": "00u1", "user": "alice@example.com", "client_id": "agent-1"}, req["principal"]); diff != "" {
		t.Errorf("principal (-want +got):\n%s", diff)
	}
	if _, ok := req["call_key"]; ok {
		t.Error("internal fields leak into the body")
	}
}

func TestArgumentsShortened(t *testing.T) {
	r := newRender()
	big := `{"blob":"` + strings.Repeat("é", 3000) + `"}`
	tests := []struct {
		name        string
		raw         string
		wantFull    bool
		wantCut     bool
		wantPreview string
	}{
		{"none", "", false, false, ""},
		{"small", `{"a":1}`, true, false, `{"a":1}`},
		{"large", big, false, true, big[:299] + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			full, preview, cut := r.arguments(json.RawMessage(tt.raw))
			if (full != nil) != tt.wantFull || cut != tt.wantCut {
				t.Errorf("full=%s cut=%v", full, cut)
			}
			if preview != tt.wantPreview {
				t.Errorf("preview %q, want %q", preview, tt.wantPreview)
			}
		})
	}
}

func TestSlackBody(t *testing.T) {
	r := newRender()
	g := &grants.Grant{ID: "gr_1", RequestID: "req_abc", State: grants.GrantActive, Subject: "00u1", Target: "github",
		Kind: grants.KindTool, Tool: "delete_repository", MaxUses: 1, Expiry: at.Add(15 * time.Minute)}
	approved := sampleEvent(grants.EventRequestApproved)
	approved.Actor, approved.Grant = "bob", g
	approved.Request.State = grants.RequestApproved
	breakGlass := approved
	breakGlass.Request = sampleRequest()
	breakGlass.Request.BreakGlass = true
	breakGlass.Actor, breakGlass.Reason = "dave", "prod <down> & burning"
	tests := []struct {
		name  string
		e     grants.Event
		want  []string // substrings of the body
		title string
	}{
		{"opened", sampleEvent(grants.EventRequestOpened), []string{
			"Approval needed", "*alice@example.com* (agent `agent-1`) wants to call tool `delete_repository` on *github*",
			`[MASKED:field:token]`, "Review and decide", "https://airlock.example/requests/req_abc",
			// Issue 15: the scope in the words every surface uses (grants.Scope.Describe).
			"1 approval(s) from sre, for this exact call, once",
		}, "Approval needed: alice@example.com (agent agent-1) wants to call tool delete_repository on github"},
		// Issue 15: the grant line uses the scope words every surface shares.
		{"approved", approved, []string{"Approved by *bob*", "(this exact call, once)", "Grant `gr_1`: this exact call, once, until", "Open request"}, ""},
		{"break glass", breakGlass, []string{"*Break glass* by *dave*: prod &lt;down&gt; &amp; burning"}, ""},
		{"revoked", grants.Event{ID: "evt_2", Type: grants.EventGrantRevoked, Actor: "carol", Grant: g}, []string{"Grant revoked by *carol*", "https://airlock.example/requests/req_abc"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := r.slack(tt.e)
			if err != nil {
				t.Fatal(err)
			}
			var msg struct {
				Text   string           `json:"text"`
				Blocks []map[string]any `json:"blocks"`
			}
			if err := json.Unmarshal(b, &msg); err != nil {
				t.Fatal(err)
			}
			if len(msg.Blocks) == 0 || msg.Text == "" {
				t.Fatalf("no text or blocks: %s", b)
			}
			// Compare on the decoded text: JSON escapes <, > and & in the raw body.
			blocks, _ := json.Marshal(msg.Blocks)
			var flat strings.Builder
			walkStrings(msg.Blocks, &flat)
			for _, w := range tt.want {
				if !strings.Contains(flat.String(), w) {
					t.Errorf("body lacks %q:\n%s", w, blocks)
				}
			}
			if strings.Contains(string(b), "ghp_abc") || strings.Contains(string(b), "hunter2") {
				t.Errorf("body carries a secret: %s", b)
			}
			if tt.title != "" && msg.Text != tt.title {
				t.Errorf("text %q, want %q", msg.Text, tt.title)
			}
		})
	}
}

func walkStrings(v any, b *strings.Builder) {
	switch x := v.(type) {
	case string:
		b.WriteString(x)
		b.WriteByte('\n')
	case []map[string]any:
		for _, e := range x {
			walkStrings(e, b)
		}
	case []any:
		for _, e := range x {
			walkStrings(e, b)
		}
	case map[string]any:
		for _, e := range x {
			walkStrings(e, b)
		}
	}
}

func TestSlackEveryEventHasAHeadline(t *testing.T) {
	r := newRender()
	g := &grants.Grant{ID: "gr_1", RequestID: "req_abc", Subject: "00u1", Target: "github", Kind: grants.KindTool, Tool: "t"}
	for _, typ := range grants.EventTypes() {
		e := sampleEvent(typ)
		if typ.IsGrant() {
			e.Request, e.Grant = nil, g
		}
		if typ == grants.EventRequestDecision {
			e.Decision = &grants.Decision{Actor: "bob", Verdict: grants.VerdictApprove}
		}
		title, _ := r.summary(e)
		if title == "" || title == string(typ) {
			t.Errorf("%s: no headline (%q)", typ, title)
		}
	}
}
