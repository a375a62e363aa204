package approvals_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

var (
	alice   = person(approvalstest.Alice)
	bob     = person(approvalstest.Bob)
	dave    = person(approvalstest.Dave)
	mallory = person(approvalstest.Mallory)
)

func TestAuthFailures(t *testing.T) {
	s := startStack(t, approvalstest.Options{})
	mint := func(mod func(*oidcissuer.Token)) string {
		tk := oidcissuer.Token{Subject: "bob@example.com", Groups: []string{"airlock-approvers"}, Audience: []string{s.Audience}}
		mod(&tk)
		tok, err := s.Issuer.Mint(tk)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	tests := []struct {
		name, token, wantMsg string
		wantChallenge        string
	}{
		{"no token", "", "no bearer token", `Bearer realm="airlock"`},
		{"garbage", "not-a-jwt", "token rejected (malformed)", `error="invalid_token"`},
		{"wrong audience", mint(func(tk *oidcissuer.Token) { tk.Audience = []string{"https://elsewhere.example"} }), "wrong_audience", `error="invalid_token"`},
		{"an MCP target's token", mint(func(tk *oidcissuer.Token) { tk.Audience = []string{"http://gateway.test/mcp/github"} }),
			"this token was minted for an MCP target (github, audience http://gateway.test/mcp/github), not for the approvals API", `error="invalid_token"`},
		{"expired", mint(func(tk *oidcissuer.Token) {
			tk.IssuedAt = time.Now().Add(-2 * time.Hour)
			tk.ExpiresAt = time.Now().Add(-time.Hour)
		}), "(expired)", `error="invalid_token"`},
		{"alg none", mint(func(tk *oidcissuer.Token) { tk.Alg = "none" }), "token rejected", `error="invalid_token"`},
		{"unknown issuer", mint(func(tk *oidcissuer.Token) { tk.Issuer = "https://evil.example" }), "token rejected (unknown_issuer): its issuer is not trusted here", `error="invalid_token"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, path := range []string{"/airlock/v1/requests", "/airlock/v1/grants", "/airlock/v1/events"} {
				r := callToken(t, s, tc.token, http.MethodGet, path, "")
				if r.status != http.StatusUnauthorized || r.code() != "unauthorized" {
					t.Fatalf("GET %s = %d %s, want 401 unauthorized", path, r.status, r.body)
				}
				if !strings.Contains(string(r.body), tc.wantMsg) {
					t.Errorf("GET %s message %s lacks %q", path, r.body, tc.wantMsg)
				}
				// Who is trusted is not told to callers without a genuine token.
				if strings.Contains(string(r.body), s.Issuer.URL()) || strings.Contains(r.header.Get("WWW-Authenticate"), s.Issuer.URL()) {
					t.Errorf("GET %s names the trusted issuer: %s", path, r.body)
				}
				if ch := r.header.Get("WWW-Authenticate"); !strings.Contains(ch, tc.wantChallenge) {
					t.Errorf("WWW-Authenticate %q lacks %q", ch, tc.wantChallenge)
				}
			}
		})
	}
}

// TestDecisions runs each verdict on a fresh request of its own.
func TestDecisions(t *testing.T) {
	s := startStack(t, approvalstest.Options{})
	tests := []struct {
		name      string
		who       *approvalstest.Person
		action    string // approve, deny, cancel
		body      string
		before    func(id string) // a decision made first
		status    int
		code      string
		wantState grants.RequestState
	}{
		{name: "approver approves", who: bob, action: "approve", body: `{"reason":"ok for OPS-1"}`, status: 200, wantState: grants.RequestApproved},
		{name: "approve without a body", who: bob, action: "approve", status: 200, wantState: grants.RequestApproved},
		{name: "approver denies", who: bob, action: "deny", body: `{"reason":"not today"}`, status: 200, wantState: grants.RequestDenied},
		{name: "requester approves own", who: alice, action: "approve", status: 403, code: "self_approval"},
		{name: "requester's other identifier", who: &approvalstest.Person{Subject: "00u-alice", ClientID: "inbox", Groups: []string{"airlock-approvers"}},
			action: "approve", status: 403, code: "self_approval"},
		{name: "break-glass member approves plainly", who: dave, action: "approve", status: 403, code: "not_approver"},
		{name: "break glass without reason", who: dave, action: "approve", body: `{"break_glass":true}`, status: 400, code: "reason_required"},
		{name: "break glass", who: dave, action: "approve", body: `{"break_glass":true,"reason":"prod down"}`, status: 200, wantState: grants.RequestApproved},
		{name: "outsider cannot even see it", who: mallory, action: "approve", status: 404, code: "not_found"},
		{name: "twice", who: bob, action: "approve", before: func(id string) {
			if _, err := s.Grants.Decide(context.Background(), id, grants.Actor{Subject: "carol", Groups: []string{"airlock-approvers"}}, grants.VerdictDeny, "no"); err != nil {
				t.Fatal(err)
			}
		}, status: 409, code: "not_pending"},
		{name: "requester cancels", who: alice, action: "cancel", body: `{"reason":"not needed"}`, status: 200, wantState: grants.RequestCancelled},
		{name: "approver cannot cancel", who: bob, action: "cancel", status: 403, code: "not_allowed"},
		{name: "unknown field", who: bob, action: "approve", body: `{"reson":"typo"}`, status: 400, code: "invalid"},
		{name: "break glass on deny", who: dave, action: "deny", body: `{"break_glass":true}`, status: 400, code: "invalid"},
		{name: "not JSON", who: bob, action: "approve", body: `reason=x`, status: 400, code: "invalid"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := open(t, s, "delete_repository", fmt.Sprintf(`{"repo":"acme/r%d"}`, i))
			if tc.before != nil {
				tc.before(req.ID)
			}
			r := call(t, s, tc.who, http.MethodPost, "/airlock/v1/requests/"+req.ID+"/"+tc.action, tc.body)
			if r.status != tc.status || r.code() != tc.code {
				t.Fatalf("%s = %d %s, want %d %q", tc.action, r.status, r.body, tc.status, tc.code)
			}
			if tc.wantState == "" {
				return
			}
			var got grants.Request
			r.decode(t, &got)
			if got.State != tc.wantState {
				t.Errorf("state %s, want %s", got.State, tc.wantState)
			}
			if tc.wantState == grants.RequestApproved && got.GrantID == "" {
				t.Error("approved without a grant id")
			}
		})
	}
}

func TestListAndGetVisibility(t *testing.T) {
	s := startStack(t, approvalstest.Options{})
	req := open(t, s, "delete_repository", `{"repo":"acme/old","aws":"AKIAIOSFODNN7EXAMPLE","note":"<script>alert(1)</script>"}`)
	mine, err := s.Open(context.Background(), approvalstest.Mallory, "delete_branch", `{"branch":"x"}`, "")
	if err != nil {
		t.Fatal(err)
	}
	ids := func(r reply) []string {
		var l approvals.RequestList
		r.decode(t, &l)
		out := []string{}
		for _, x := range l.Requests {
			out = append(out, x.ID)
		}
		return out
	}
	tests := []struct {
		name  string
		who   *approvalstest.Person
		query string
		want  []string
	}{
		{"approver sees both", bob, "?state=pending", []string{mine.ID, req.ID}},
		{"requester sees hers", alice, "", []string{req.ID}},
		{"outsider sees only her own", mallory, "", []string{mine.ID}},
		{"mine for an approver", bob, "?mine=true", []string{}},
		{"mine for the requester", alice, "?mine=true&state=pending", []string{req.ID}},
		{"state filter", bob, "?state=approved,denied", []string{}},
		{"target filter", bob, "?target=nope", []string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, tc.who, http.MethodGet, "/airlock/v1/requests"+tc.query, "")
			if r.status != 200 {
				t.Fatalf("list = %d %s", r.status, r.body)
			}
			// Newest first: mallory's request was opened second.
			if diff := cmp.Diff(tc.want, ids(r)); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}

	r := call(t, s, bob, http.MethodGet, "/airlock/v1/requests/"+req.ID, "")
	var got grants.Request
	r.decode(t, &got)
	if want := `{"aws":"[MASKED:aws_access_key]","note":"<script>alert(1)</script>","repo":"acme/old"}`; string(got.Arguments) != want &&
		!strings.Contains(string(got.Arguments), "[MASKED:aws_access_key]") {
		t.Errorf("arguments %s, want the key masked: %s", got.Arguments, want)
	}
	if strings.Contains(string(r.body), "AKIAIOSFODNN7EXAMPLE") {
		t.Errorf("GET leaked the unmasked key: %s", r.body)
	}
	if r := call(t, s, mallory, http.MethodGet, "/airlock/v1/requests/"+req.ID, ""); r.status != 404 || r.code() != "not_found" {
		t.Errorf("outsider GET = %d %s, want 404", r.status, r.body)
	}
	if r := call(t, s, bob, http.MethodGet, "/airlock/v1/requests/req_nope", ""); r.status != 404 {
		t.Errorf("unknown id = %d, want 404", r.status)
	}
	for _, q := range []string{"?state=bogus", "?limit=0", "?limit=501", "?cursor=!!!"} {
		if r := call(t, s, bob, http.MethodGet, "/airlock/v1/requests"+q, ""); r.status != 400 || r.code() != "invalid" {
			t.Errorf("list%s = %d %s, want 400 invalid", q, r.status, r.body)
		}
	}
	if r := call(t, s, bob, http.MethodGet, "/airlock/v1/nope", ""); r.status != 404 || r.code() != "not_found" {
		t.Errorf("unknown endpoint = %d %s, want a JSON 404", r.status, r.body)
	}
}

func TestPagination(t *testing.T) {
	s := startStack(t, approvalstest.Options{})
	var want []string
	for i := range 7 {
		r := open(t, s, "delete_repository", fmt.Sprintf(`{"repo":"acme/p%d"}`, i))
		want = append([]string{r.ID}, want...) // newest first
		time.Sleep(2 * time.Millisecond)       // distinct creation times; ties are ordered by id anyway
	}
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		if page > 5 {
			t.Fatal("pagination does not end")
		}
		q := "?limit=3"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		r := call(t, s, bob, http.MethodGet, "/airlock/v1/requests"+q, "")
		var l approvals.RequestList
		r.decode(t, &l)
		if len(l.Requests) > 3 {
			t.Fatalf("page of %d, limit 3", len(l.Requests))
		}
		for _, x := range l.Requests {
			got = append(got, x.ID)
		}
		if l.NextCursor == "" {
			break
		}
		cursor = l.NextCursor
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paged ids (-want +got):\n%s", diff)
	}
}

func TestCreate(t *testing.T) {
	s := startStack(t, approvalstest.Options{})
	tests := []struct {
		name, body string
		status     int
		code       string
		joined     bool
	}{
		{"needs approval", `{"target":"github","tool":"delete_repository","arguments":{"repo":"acme/x"},"reason":"OPS-2"}`, 201, "", false},
		{"the same again joins", `{"target":"github","tool":"delete_repository","arguments":{"repo":"acme/x"},"reason":"OPS-2"}`, 200, "", true},
		{"allowed anyway", `{"target":"github","tool":"list_issues"}`, 409, "not_needed", false},
		{"denied by policy", `{"target":"github","tool":"get_env"}`, 403, "policy_denied", false},
		{"resource", `{"target":"github","resource":"secret://db"}`, 201, "", false},
		{"unknown target", `{"target":"gitlab","tool":"delete_repository"}`, 400, "invalid", false},
		{"tool and resource", `{"target":"github","tool":"a","resource":"b"}`, 400, "invalid", false},
		{"arguments not an object", `{"target":"github","tool":"delete_repository","arguments":[1]}`, 400, "invalid", false},
		{"empty body", ``, 400, "invalid", false},
		{"two values", `{"target":"github","tool":"delete_x"} {}`, 400, "invalid", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, alice, http.MethodPost, "/airlock/v1/requests", tc.body)
			if r.status != tc.status || r.code() != tc.code {
				t.Fatalf("create = %d %s, want %d %q", r.status, r.body, tc.status, tc.code)
			}
			if tc.code != "" {
				return
			}
			var cr approvals.CreateResult
			r.decode(t, &cr)
			if cr.Joined != tc.joined || cr.Request == nil || cr.Request.Principal.Subject != approvalstest.Alice.Subject {
				t.Errorf("result %s: want joined=%v, requester alice", r.body, tc.joined)
			}
			if loc := r.header.Get("Location"); loc != "/airlock/v1/requests/"+cr.Request.ID {
				t.Errorf("Location %q", loc)
			}
		})
	}
}

func TestGrants(t *testing.T) {
	s := startStack(t, approvalstest.Options{})
	approve := func() string {
		req := open(t, s, "delete_repository", fmt.Sprintf(`{"repo":"acme/%d"}`, time.Now().UnixNano()))
		r := call(t, s, bob, http.MethodPost, "/airlock/v1/requests/"+req.ID+"/approve", `{"reason":"fine"}`)
		var got grants.Request
		r.decode(t, &got)
		if got.GrantID == "" {
			t.Fatalf("approve gave no grant: %s", r.body)
		}
		return got.GrantID
	}
	tests := []struct {
		name   string
		who    *approvalstest.Person
		twice  bool
		status int
		code   string
	}{
		{"approver revokes", bob, false, 200, ""},
		{"holder gives it up", alice, false, 200, ""},
		{"outsider", mallory, false, 404, "not_found"},
		{"revoked already", bob, true, 409, "grant_ended"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := approve()
			if tc.twice {
				call(t, s, bob, http.MethodPost, "/airlock/v1/grants/"+id+"/revoke", "")
			}
			r := call(t, s, tc.who, http.MethodPost, "/airlock/v1/grants/"+id+"/revoke", `{"reason":"done"}`)
			if r.status != tc.status || r.code() != tc.code {
				t.Fatalf("revoke = %d %s, want %d %q", r.status, r.body, tc.status, tc.code)
			}
			if tc.code == "" {
				var g grants.Grant
				r.decode(t, &g)
				if g.State != grants.GrantRevoked || g.EndedBy != tc.who.Subject {
					t.Errorf("grant %s after revoke", r.body)
				}
			}
		})
	}
	active := approve()
	var l approvals.GrantList
	call(t, s, bob, http.MethodGet, "/airlock/v1/grants?state=active", "").decode(t, &l)
	// The outsider's case left its grant active too; the newest is first.
	if len(l.Grants) != 2 || l.Grants[0].ID != active || l.Grants[1].State != grants.GrantActive {
		t.Errorf("active grants %d, want 2, newest %s first", len(l.Grants), active)
	}
	call(t, s, mallory, http.MethodGet, "/airlock/v1/grants", "").decode(t, &l)
	if len(l.Grants) != 0 {
		t.Errorf("an outsider sees %d grants", len(l.Grants))
	}
	if r := call(t, s, alice, http.MethodGet, "/airlock/v1/grants/"+active, ""); r.status != 200 {
		t.Errorf("holder GET grant = %d %s", r.status, r.body)
	}
	if r := call(t, s, bob, http.MethodGet, "/airlock/v1/grants?state=bogus", ""); r.status != 400 {
		t.Errorf("bad grant state = %d", r.status)
	}
}
