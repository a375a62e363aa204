package extauthz

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// The tests here drive the gRPC-free core with fakes whose every call is
// counted: which grants were consumed, which calls held, what policy saw.

const (
	testIssuer   = "https://issuer.example.com/oauth2/secret-tenant"
	testAudience = "api://secret-audience"
)

type fakeVerifier struct{ calls int }

func (v *fakeVerifier) Verify(_ context.Context, raw string, _ []string) (*identity.Principal, error) {
	v.calls++
	switch raw {
	case "alice", "bob":
		return &identity.Principal{Issuer: testIssuer, Subject: raw, ClientID: "agent", Scopes: []string{"mcp.demo"}}, nil
	case "alice-other-issuer":
		return &identity.Principal{Issuer: "https://other.example.com", Subject: "alice", ClientID: "agent", Scopes: []string{"mcp.demo"}}, nil
	case "noscope":
		return &identity.Principal{Issuer: testIssuer, Subject: "carol", Scopes: []string{"openid"}}, nil
	case "expired":
		return nil, &identity.Error{Reason: identity.ReasonExpired, Detail: "expired at 2026-01-01T00:00:00Z"}
	case "wrong-audience":
		return nil, &identity.Error{Reason: identity.ReasonWrongAudience,
			Detail: fmt.Sprintf(`aud ["x"] is none of ["https://gw.test/mcp/demo" %q] of issuer %s`, testAudience, testIssuer)}
	case "unknown-issuer":
		return nil, &identity.Error{Reason: identity.ReasonUnknownIssuer,
			Detail: fmt.Sprintf(`iss "https://evil.example.com" is not one of [%q]`, testIssuer)}
	case "bad-signature":
		return nil, &identity.Error{Reason: identity.ReasonBadSignature, Detail: "kid k1 of " + testIssuer}
	}
	return nil, &identity.Error{Reason: identity.ReasonMalformed, Detail: "not a JWT"}
}

// fakePolicy: tool "nuke" is denied, "danger" needs approval unless a
// grant for it is in the input, everything else is allowed. Prompt
// "secret" and resource "file:///secret" are denied.
type fakePolicy struct {
	mu   sync.Mutex
	seen []policy.MessageInput
	// profile, when set, gives a tool its own masking profile.
	profile map[string]string
}

func (p *fakePolicy) Evaluate(_ context.Context, in *policy.Input) (policy.Decision, error) {
	p.mu.Lock()
	p.seen = append(p.seen, in.MCP)
	p.mu.Unlock()
	m := in.MCP
	d := policy.Decision{Outcome: policy.OutcomeAllow, Reason: "allowed", Record: true, PolicyVersion: "v1", MaskingProfile: p.profile[m.Tool]}
	switch {
	case m.Tool == "nuke" || m.Method == "notifications/roots/list_changed":
		d.Outcome, d.Reason = policy.OutcomeDeny, fmt.Sprintf("%s %s is denied", m.Method, m.Tool)
	case m.Prompt == "secret" || m.URI == "file:///secret":
		d.Outcome, d.Reason = policy.OutcomeDeny, "that prompt or resource is denied"
	case m.Tool == "danger":
		for _, g := range in.Grants {
			if g.Tool == "danger" {
				d.Grant, d.Reason = g.ID, "allowed by grant "+g.ID
				return d, nil
			}
		}
		d.Outcome, d.Reason = policy.OutcomeApprovalRequired, `tool "danger" needs approval`
		d.Approval = &policy.Approval{ApproverGroups: []string{"sre"}, SingleUse: true}
	}
	return d, nil
}

type fakeApprovals struct {
	mu       sync.Mutex
	grants   []policy.GrantInput
	consumed map[string]int
	holds    int
	askedFor []grants.Principal
}

func (f *fakeApprovals) ActiveForPrincipal(_ context.Context, p grants.Principal, _ string, _ time.Time) ([]policy.GrantInput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.askedFor = append(f.askedFor, p)
	return f.grants, nil
}

func (f *fakeApprovals) ConsumeFor(_ context.Context, id string, _ grants.Principal) (*grants.Grant, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.consumed == nil {
		f.consumed = map[string]int{}
	}
	if f.consumed[id] > 0 {
		return nil, grants.ErrGrantUsed
	}
	f.consumed[id]++
	return &grants.Grant{}, nil
}

func (f *fakeApprovals) Hold(context.Context, grants.OpenParams) (*grants.HoldResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holds++
	return &grants.HoldResult{Outcome: grants.HoldPending, Request: &grants.Request{ID: "req_1"}, URL: "https://gw.test/airlock/inbox/requests/req_1"}, nil
}

type fakeAudit struct {
	mu   sync.Mutex
	recs []audit.Decision
}

func (f *fakeAudit) Record(r audit.Record) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d, ok := r.(*audit.Decision); ok {
		f.recs = append(f.recs, *d)
	}
	return nil
}

func (f *fakeAudit) take() []audit.Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.recs
	f.recs = nil
	return r
}

type core struct {
	a         *Authorizer
	verifier  *fakeVerifier
	policy    *fakePolicy
	approvals *fakeApprovals
	audit     *fakeAudit
	log       *bytes.Buffer
	now       time.Time
}

func newCore(t *testing.T) *core {
	t.Helper()
	c := &core{
		verifier: &fakeVerifier{}, policy: &fakePolicy{}, approvals: &fakeApprovals{}, audit: &fakeAudit{},
		log: &bytes.Buffer{}, now: time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC),
	}
	cfg := &config.Config{
		PublicURL: "https://gw.test",
		Targets: []config.Target{{
			Name: "demo", PathPrefix: "/mcp/demo", Resource: "https://gw.test/mcp/demo",
			ScopesRequired: []string{"mcp.demo"}, MaskingProfile: "default",
		}},
		Limits: config.Limits{MaxRequestBytes: 1 << 20},
	}
	a, err := New(cfg, Options{
		Verifier: c.verifier, Policy: c.policy, Approvals: c.approvals, Audit: c.audit,
		Logger: slog.New(slog.NewJSONHandler(c.log, nil)), Now: func() time.Time { return c.now },
	})
	if err != nil {
		t.Fatal(err)
	}
	c.a = a
	return c
}

// post is a POST to the demo endpoint as Envoy's ext_authz sends it.
func post(token, body string, hdr ...string) *Request {
	h := map[string]string{"content-type": "application/json", "mcp-protocol-version": "2025-03-26"}
	if token != "" {
		h["authorization"] = "Bearer " + token
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		h[hdr[i]] = hdr[i+1]
	}
	return &Request{Method: "POST", Path: "/mcp/demo", Host: "gw.test", Scheme: "https", Headers: h, Body: []byte(body),
		ContextExtensions: map[string]string{"airlock_target": "demo"}}
}

func call(id any, tool string) string {
	idj, _ := json.Marshal(id)
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, idj, tool)
}

const (
	ping        = `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	initialized = `{"jsonrpc":"2.0","method":"notifications/initialized"}`
)

func batch(msgs ...string) string { return "[" + strings.Join(msgs, ",") + "]" }

type wireErr struct {
	ID    json.RawMessage `json:"id"`
	Error struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Data    map[string]any `json:"data"`
	} `json:"error"`
}

type idErr struct {
	ID      string
	Code    int
	Message string
}

func batchErrors(t *testing.T, body []byte) []idErr {
	t.Helper()
	var out []wireErr
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("a refused batch must be answered with a JSON-RPC batch: %v: %s", err, body)
	}
	var got []idErr
	for _, e := range out {
		got = append(got, idErr{string(e.ID), e.Error.Code, e.Error.Message})
	}
	return got
}

func oneError(t *testing.T, body []byte) wireErr {
	t.Helper()
	var e wireErr
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("denial body is not a JSON-RPC error: %v: %s", err, body)
	}
	return e
}

func TestBatchWithGrantCoveredCallIsRefusedAndGrantKept(t *testing.T) {
	c := newCore(t)
	c.approvals.grants = []policy.GrantInput{{ID: "grt_1", Target: "demo", Tool: "danger", SingleUse: true, Principal: "alice"}}
	// The reproduction: [ping, <approved call>] sent three times.
	for i := range 3 {
		r := c.a.Check(context.Background(), post("alice", batch(ping, call(2, "danger"))))
		if r.Outcome != OutcomeDeny || r.Status != 403 {
			t.Fatalf("attempt %d: outcome %s status %d, want the batch refused", i, r.Outcome, r.Status)
		}
		want := []idErr{
			{"1", CodeForbidden, reasonBatchNotSent},
			{"2", CodeApprovalRequired, reasonBatchNeedsAlone},
		}
		if diff := cmp.Diff(want, batchErrors(t, r.Body)); diff != "" {
			t.Errorf("attempt %d: errors (-want +got):\n%s", i, diff)
		}
		recs := c.audit.take()
		var got [][4]string
		for _, d := range recs {
			got = append(got, [4]string{d.DecisionID, d.Method + " " + d.Tool, d.JSONRPCID, d.Outcome})
		}
		wantRecs := [][4]string{
			{r.DecisionID, "ping ", "1", "deny"},
			{r.DecisionID + ".1", "tools/call danger", "2", "deny"},
		}
		if diff := cmp.Diff(wantRecs, got); diff != "" {
			t.Errorf("attempt %d: audit records (-want +got):\n%s", i, diff)
		}
		if recs[1].Reason != reasonBatchNeedsAlone || recs[1].GrantID != "" {
			t.Errorf("audit of the gated message: reason %q grant %q", recs[1].Reason, recs[1].GrantID)
		}
	}
	if len(c.approvals.consumed) != 0 || c.approvals.holds != 0 {
		t.Fatalf("a batch used a grant (%v) or was held (%d)", c.approvals.consumed, c.approvals.holds)
	}
	// The grant is still there for the call sent alone, once.
	r := c.a.Check(context.Background(), post("alice", call(2, "danger")))
	if r.Outcome != OutcomeAllow || r.Metadata["grant"] != "grt_1" || c.approvals.consumed["grt_1"] != 1 {
		t.Fatalf("the call alone: outcome %s, grant %v, consumed %v", r.Outcome, r.Metadata["grant"], c.approvals.consumed)
	}
	// Grants are looked up for the (issuer, subject) pair, and never for a batch.
	if len(c.approvals.askedFor) != 1 || c.approvals.askedFor[0].Issuer != testIssuer || c.approvals.askedFor[0].Subject != "alice" {
		t.Errorf("grants asked for %+v", c.approvals.askedFor)
	}
}

func TestBatchRefusals(t *testing.T) {
	denied := "denied: tools/call nuke is denied"
	cases := []struct {
		name string
		body string
		want []idErr // nil: one error with a null id
	}{
		{"a denied call denies the batch", batch(ping, call(2, "nuke"), call("c", "read")),
			[]idErr{{"1", CodeForbidden, reasonBatchNotSent}, {"2", CodeForbidden, denied}, {`"c"`, CodeForbidden, reasonBatchNotSent}}},
		{"an approval-gated call is never held in a batch", batch(call(1, "read"), call(2, "danger")),
			[]idErr{{"1", CodeForbidden, reasonBatchNotSent}, {"2", CodeApprovalRequired, reasonBatchNeedsAlone}}},
		{"a denied and a gated call each say why", batch(call(1, "danger"), call(2, "nuke"), initialized),
			[]idErr{{"1", CodeApprovalRequired, reasonBatchNeedsAlone}, {"2", CodeForbidden, denied}}},
		{"a batch of one gated call", batch(call(7, "danger")),
			[]idErr{{"7", CodeApprovalRequired, reasonBatchNeedsAlone}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t)
			r := c.a.Check(context.Background(), post("alice", tc.body))
			if r.Outcome != OutcomeDeny || r.Status != 403 || r.Metadata != nil {
				t.Fatalf("outcome %s status %d metadata %v, want refused", r.Outcome, r.Status, r.Metadata)
			}
			if diff := cmp.Diff(tc.want, batchErrors(t, r.Body)); diff != "" {
				t.Errorf("errors (-want +got):\n%s", diff)
			}
			if c.approvals.holds != 0 {
				t.Error("a batch was held for approval")
			}
			// Every message is in the audit and in the decision log.
			n := strings.Count(tc.body, `"jsonrpc"`)
			if recs := c.audit.take(); len(recs) != n {
				t.Errorf("%d audit records for %d messages", len(recs), n)
			}
			if lines := strings.Count(c.log.String(), `"msg":"decision"`); lines != n {
				t.Errorf("%d decision log lines for %d messages:\n%s", lines, n, c.log)
			}
		})
	}
}

func TestBatchMaskedWithTwoProfilesIsRefused(t *testing.T) {
	c := newCore(t)
	c.policy.profile = map[string]string{"read": "strict"}
	r := c.a.Check(context.Background(), post("alice", batch(call(1, "read"), call(2, "other"))))
	if r.Outcome != OutcomeDeny {
		t.Fatalf("a batch masked with two profiles went through: %s", r.Outcome)
	}
	errs := batchErrors(t, r.Body)
	if len(errs) != 2 {
		t.Fatalf("errors %+v", errs)
	}
	for _, e := range errs {
		if !strings.Contains(e.Message, "different profiles") {
			t.Errorf("error %+v does not say why", e)
		}
	}
}

func TestBatchOfNotificationsRefusedWithNullID(t *testing.T) {
	c := newCore(t)
	r := c.a.Check(context.Background(), post("alice", batch(initialized, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`)))
	if r.Outcome != OutcomeDeny || r.Status != 403 {
		t.Fatalf("outcome %s status %d", r.Outcome, r.Status)
	}
	e := oneError(t, r.Body)
	if string(e.ID) != "null" || !strings.Contains(e.Error.Message, "message 1 (notifications/roots/list_changed)") {
		t.Errorf("body %s", r.Body)
	}
}

func TestBatchAllAllowedCarriesEveryMessage(t *testing.T) {
	c := newCore(t)
	body := batch(ping, call("b", "read"), initialized)
	r := c.a.Check(context.Background(), post("alice", body, "mcp-session-id", "sess-9"))
	if r.Outcome != OutcomeAllow {
		t.Fatalf("outcome %s: %s", r.Outcome, r.Body)
	}
	md := r.Metadata
	want := map[string]any{
		"method": "ping", "batch": true,
		"methods": []any{"ping", "tools/call", "notifications/initialized"},
		"tools":   []any{"", "read", ""},
		"ids":     []any{"1", `"b"`, ""},
	}
	for k, v := range want {
		if diff := cmp.Diff(v, md[k]); diff != "" {
			t.Errorf("metadata %s (-want +got):\n%s", k, diff)
		}
	}
	// structpb must take the metadata (a []string would make it drop all).
	if resp := toCheckResponse(r); resp.GetDynamicMetadata() == nil || len(resp.GetDynamicMetadata().GetFields()["methods"].GetListValue().GetValues()) != 3 {
		t.Fatalf("dynamic metadata lost: %v", resp.GetDynamicMetadata())
	}
	recs := c.audit.take()
	var got []string
	for _, d := range recs {
		got = append(got, strings.Join([]string{d.DecisionID, d.Method, d.Tool, d.JSONRPCID, d.Outcome, d.SessionID}, "|"))
	}
	id := r.DecisionID
	wantRecs := []string{
		id + "|ping||1|allow|sess-9",
		id + ".1|tools/call|read|\"b\"|allow|sess-9",
		id + ".2|notifications/initialized|||allow|sess-9",
	}
	if diff := cmp.Diff(wantRecs, got); diff != "" {
		t.Errorf("audit (-want +got):\n%s", diff)
	}
	for _, m := range []string{`"method":"ping"`, `"tool":"read"`, `"method":"notifications/initialized"`} {
		if !strings.Contains(c.log.String(), m) {
			t.Errorf("decision log lacks %s:\n%s", m, c.log)
		}
	}
}

func TestSingleCallStillHeldAndGranted(t *testing.T) {
	c := newCore(t)
	r := c.a.Check(context.Background(), post("alice", call(3, "danger")))
	if r.Outcome != OutcomeApprovalRequired || c.approvals.holds != 1 {
		t.Fatalf("outcome %s holds %d, want held", r.Outcome, c.approvals.holds)
	}
	if e := oneError(t, r.Body); string(e.ID) != "3" {
		t.Errorf("pending answer id %s", e.ID)
	}
}

func TestEndpointPathOnly(t *testing.T) {
	c := newCore(t)
	paths := []struct {
		path string
		ok   bool
	}{
		{"/mcp/demo", true},
		{"/mcp/demo/", false},
		{"/mcp/demo/admin/secrets", false},
		{"/mcp/demo/admin/users/42/delete", false},
		{"/mcp/demo?x=1", false},
		{"/mcp/demo?", false},
		{"/mcp/demo#frag", false},
		{"/mcp/%64emo", false},
		{"/mcp/demo%2Fadmin", false},
		{"/mcp/demo%2fadmin", false},
		{"/mcp/demo/../demo", false},
		{"/mcp/x/../demo", false},
		{"/mcp/./demo", false},
		{"/mcp/demo/.", false},
		{"//mcp/demo", false},
		{"/mcp//demo", false},
		{"/MCP/demo", false},
		{"/mcp/demo;x", false},
		{"/mcp/demo%00", false},
		{"", false},
	}
	for _, p := range paths {
		for _, named := range []bool{true, false} {
			for _, method := range []string{"POST", "GET", "DELETE"} {
				t.Run(fmt.Sprintf("%s %q named=%v", method, p.path, named), func(t *testing.T) {
					req := post("alice", call(5, "read"), "mcp-session-id", "s-path")
					req.Method, req.Path = method, p.path
					if method != "POST" {
						req.Body = nil
					}
					if !named {
						req.ContextExtensions = nil
					}
					before := c.verifier.calls
					r := c.a.Check(context.Background(), req)
					if p.ok {
						if r.Outcome != OutcomeAllow {
							t.Fatalf("outcome %s: %s", r.Outcome, r.Body)
						}
						return
					}
					if r.Outcome == OutcomeAllow || r.Status != 404 {
						t.Fatalf("outcome %s status %d, want 404", r.Outcome, r.Status)
					}
					if c.verifier.calls != before {
						t.Error("a path that is no endpoint reached token verification")
					}
					e := oneError(t, r.Body)
					wantID := "null"
					if method == "POST" {
						wantID = "5"
					}
					if string(e.ID) != wantID || e.Error.Code != -32600 || strings.Contains(string(r.Body), "demo") {
						t.Errorf("body %s, want id %s, code -32600, no target named", r.Body, wantID)
					}
				})
			}
		}
	}
}

func TestAllowAsksForPlaintext(t *testing.T) {
	c := newCore(t)
	req := post("alice", call(1, "read"), "accept-encoding", "gzip, br")
	r := c.a.Check(context.Background(), req)
	if r.Outcome != OutcomeAllow {
		t.Fatalf("outcome %s", r.Outcome)
	}
	ok := toCheckResponse(r).GetOkResponse()
	n := 0
	for _, h := range ok.GetHeaders() {
		if h.GetHeader().GetKey() == "accept-encoding" {
			n++
			if h.GetHeader().GetValue() != "identity" || h.GetAppendAction().String() != "OVERWRITE_IF_EXISTS_OR_ADD" {
				t.Errorf("accept-encoding set to %q (%s)", h.GetHeader().GetValue(), h.GetAppendAction())
			}
		}
	}
	if n != 1 {
		t.Fatalf("accept-encoding set %d times, want once: %v", n, ok.GetHeaders())
	}
}

func TestDenialsCarryTheRequestID(t *testing.T) {
	c := newCore(t)
	cases := []struct {
		name   string
		req    *Request
		status int
		id     string
	}{
		{"no token", post("", call("n-1", "read")), 401, `"n-1"`},
		{"expired token", post("expired", call(41, "read")), 401, "41"},
		{"insufficient scope", post("noscope", call(42, "read")), 403, "42"},
		{"foreign Origin", post("alice", call(43, "read"), "origin", "https://evil.example.com"), 403, "43"},
		{"charset other than UTF-8", post("alice", call(44, "read"), "content-type", "application/json; charset=utf-7"), 415, "44"},
		{"not JSON", post("alice", call(45, "read"), "content-type", "text/plain"), 415, "45"},
		{"content coding", post("alice", call(46, "read"), "content-encoding", "gzip"), 415, "46"},
		{"policy deny", post("alice", call(47, "nuke")), 403, "47"},
		// A body Envoy cut at the limit: the id its head shows.
		{"body cut at the limit", func() *Request {
			r := post("alice", call(48, "read"))
			r.Truncated = true
			r.Body = r.Body[:len(r.Body)-5]
			return r
		}(), 413, "48"},
		{"body cut inside its id", func() *Request {
			r := post("alice", call(48, "read"))
			r.Truncated = true
			r.Body = r.Body[:bytes.Index(r.Body, []byte(`48`))+1]
			return r
		}(), 413, "null"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := c.a.Check(context.Background(), tc.req)
			if r.Status != tc.status || r.Outcome == OutcomeAllow {
				t.Fatalf("status %d outcome %s, want %d", r.Status, r.Outcome, tc.status)
			}
			if e := oneError(t, r.Body); string(e.ID) != tc.id {
				t.Errorf("id %s, want %s: %s", e.ID, tc.id, r.Body)
			}
		})
	}
}

func TestUnauthenticatedLearnNoConfiguration(t *testing.T) {
	cases := []struct {
		token, public, detail string
	}{
		{"wrong-audience", "the token is not valid for this resource", testAudience},
		{"unknown-issuer", "the token is not valid for this resource", testIssuer},
		{"bad-signature", "the token's signature could not be verified", testIssuer},
		{"expired", "the token has expired", "2026-01-01"},
		{"alice-other-issuer", "the token is not valid for this resource", "https://other.example.com"},
	}
	for _, tc := range cases {
		t.Run(tc.token, func(t *testing.T) {
			c := newCore(t)
			if tc.token == "alice-other-issuer" {
				c.a.targets.byName["demo"].issuers = map[string]bool{testIssuer: true}
			}
			r := c.a.Check(context.Background(), post(tc.token, call(1, "read")))
			if r.Status != 401 {
				t.Fatalf("status %d", r.Status)
			}
			var challenge string
			for _, h := range r.ResponseHeaders {
				if h.Name == "www-authenticate" {
					challenge = h.Value
				}
			}
			told := challenge + string(r.Body)
			for _, secret := range []string{testIssuer, testAudience, "https://other.example.com", "evil.example.com", "target", "audience", "issuer"} {
				if strings.Contains(told, secret) {
					t.Errorf("the client is told %q:\n%s", secret, told)
				}
			}
			if !strings.Contains(challenge, `error_description="`+strings.ReplaceAll(tc.public, `"`, `'`)+`"`) ||
				!strings.Contains(string(r.Body), tc.public) {
				t.Errorf("challenge %s / body %s lack %q", challenge, r.Body, tc.public)
			}
			// The precise reason is in the log and the audit.
			if !strings.Contains(r.Reason, tc.detail) || !strings.Contains(c.log.String(), tc.detail) {
				t.Errorf("the decision log lacks the detail %q: reason %q", tc.detail, r.Reason)
			}
			if recs := c.audit.take(); len(recs) != 1 || !strings.Contains(recs[0].Reason, tc.detail) || recs[0].JSONRPCID != "1" {
				t.Errorf("audit %+v lacks the detail or the request id", recs)
			}
		})
	}
}

func TestInsufficientScopeNamesNoTarget(t *testing.T) {
	c := newCore(t)
	r := c.a.Check(context.Background(), post("noscope", call(1, "read")))
	if r.Status != 403 || strings.Contains(string(r.Body), "target demo") || !strings.Contains(string(r.Body), "mcp.demo") {
		t.Errorf("status %d body %s", r.Status, r.Body)
	}
	if !strings.Contains(r.Reason, "target demo") {
		t.Errorf("log reason %q lacks the target", r.Reason)
	}
}

func TestSessionBoundToPrincipal(t *testing.T) {
	c := newCore(t)
	check := func(token, method, body string) *Result {
		req := post(token, body, "mcp-session-id", "sess-A")
		req.Method = method
		if method != "POST" {
			req.Body = nil
		}
		return c.a.Check(context.Background(), req)
	}
	steps := []struct {
		name, token, method, body string
		status                    int // 0 = allowed
	}{
		{"alice opens", "alice", "POST", initialized, 0},
		{"alice calls", "alice", "POST", call(1, "read"), 0},
		{"bob rides alice's session", "bob", "POST", call(2, "read"), 404},
		{"bob's GET stream on it", "bob", "GET", "", 404},
		{"bob cannot end it", "bob", "DELETE", "", 404},
		{"same subject, other issuer", "alice-other-issuer", "POST", call(3, "read"), 404},
		{"alice still owns it", "alice", "GET", "", 0},
		{"alice ends it", "alice", "DELETE", "", 0},
		{"the id is free again", "bob", "POST", call(4, "read"), 0},
		{"now bob's", "alice", "POST", call(5, "read"), 404},
	}
	for _, s := range steps {
		r := check(s.token, s.method, s.body)
		if s.status == 0 {
			if r.Outcome != OutcomeAllow {
				t.Fatalf("%s: outcome %s %s", s.name, r.Outcome, r.Body)
			}
			continue
		}
		if r.Status != s.status || r.Outcome == OutcomeAllow {
			t.Fatalf("%s: status %d outcome %s, want %d", s.name, r.Status, r.Outcome, s.status)
		}
		if !strings.Contains(r.Reason, "bound to another principal") {
			t.Errorf("%s: reason %q", s.name, r.Reason)
		}
		e := oneError(t, r.Body)
		if s.method == "POST" && string(e.ID) == "null" {
			t.Errorf("%s: the 404 lost the request id: %s", s.name, r.Body)
		}
		if strings.Contains(string(r.Body), "alice") || strings.Contains(string(r.Body), "bound") {
			t.Errorf("%s: the body tells who owns the session: %s", s.name, r.Body)
		}
	}
}

func TestSessionDeniedDeleteKeepsBinding(t *testing.T) {
	c := newCore(t)
	c.a.sessions.bind("demo", "s", sessionOwner{testIssuer, "alice"}, c.now)
	del := post("bob", "", "mcp-session-id", "s")
	del.Method, del.Body = "DELETE", nil
	if r := c.a.Check(context.Background(), del); r.Status != 404 {
		t.Fatalf("bob's DELETE: %d", r.Status)
	}
	if !c.a.sessions.bind("demo", "s", sessionOwner{testIssuer, "alice"}, c.now) {
		t.Fatal("a refused DELETE removed the binding")
	}
}

func TestSessionTableBoundedAndExpiring(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	alice, bob := sessionOwner{"i", "alice"}, sessionOwner{"i", "bob"}
	s := newSessions(3, 3, time.Hour)
	for i := range 5 {
		if !s.bind("t", fmt.Sprint(i), alice, t0.Add(time.Duration(i)*time.Minute)) {
			t.Fatal("a fresh id refused")
		}
	}
	if s.len() != 3 {
		t.Fatalf("%d entries, bound 3", s.len())
	}
	// 0 and 1 were least recently used: evicted, so free.
	if !s.bind("t", "0", bob, t0.Add(10*time.Minute)) {
		t.Error("an evicted binding still held")
	}
	if s.bind("t", "4", bob, t0.Add(10*time.Minute)) {
		t.Error("a live binding taken over")
	}
	// The same id on another target is another session.
	if !s.bind("u", "4", bob, t0.Add(10*time.Minute)) {
		t.Error("a session id on another target is refused")
	}
	// Idle past the TTL: free again.
	if !s.bind("t", "4", bob, t0.Add(4*time.Minute+time.Hour+time.Second)) {
		t.Error("an expired binding still held")
	}
	if s.len() > 3 {
		t.Errorf("%d entries after expiry, bound 3", s.len())
	}
	s.consistent(t)
}

func TestSessionTableOnePrincipalCannotFlushOthers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	alice, mallory := sessionOwner{"i", "alice"}, sessionOwner{"i", "mallory"}
	s := newSessions(100, 5, time.Hour)
	s.bind("t", "alice-session", alice, t0)
	for i := range 1000 {
		if !s.bind("t", fmt.Sprint("junk-", i), mallory, t0.Add(time.Second)) {
			t.Fatal("a fresh id refused")
		}
	}
	if s.bind("t", "alice-session", mallory, t0.Add(2*time.Second)) {
		t.Fatal("mallory flushed alice's binding with her own")
	}
	if n := s.len(); n != 6 {
		t.Errorf("%d entries, want alice's 1 and mallory's last 5", n)
	}
	s.unbind("t", "alice-session")
	if s.len() != 5 || len(s.byOwner) != 1 {
		t.Errorf("after unbind: %d entries, %d owners", s.len(), len(s.byOwner))
	}
	s.consistent(t)
}

// consistent checks the table's three indexes agree.
func (s *sessions) consistent(t *testing.T) {
	t.Helper()
	n := 0
	for o, l := range s.byOwner {
		for el := l.Front(); el != nil; el = el.Next() {
			e := el.Value.(*list.Element).Value.(*sessionEntry)
			if e.owner != o || s.byID[e.key] != el.Value.(*list.Element) {
				t.Fatalf("owner index out of step at %+v", e.key)
			}
			n++
		}
	}
	if n != len(s.byID) || s.lru.Len() != len(s.byID) {
		t.Fatalf("indexes: %d by owner, %d by id, %d in lru", n, len(s.byID), s.lru.Len())
	}
}

func TestCompletionFollowsItsReference(t *testing.T) {
	c := newCore(t)
	for _, tc := range []struct {
		ref     string
		outcome Outcome
		seen    policy.MessageInput
	}{
		{`{"type":"ref/prompt","name":"secret"}`, OutcomeDeny, policy.MessageInput{Method: "completion/complete", Prompt: "secret"}},
		{`{"type":"ref/resource","uri":"file:///secret"}`, OutcomeDeny, policy.MessageInput{Method: "completion/complete", URI: "file:///secret"}},
		{`{"type":"ref/prompt","name":"hello"}`, OutcomeAllow, policy.MessageInput{Method: "completion/complete", Prompt: "hello"}},
	} {
		c.policy.seen = nil
		body := `{"jsonrpc":"2.0","id":1,"method":"completion/complete","params":{"ref":` + tc.ref + `,"argument":{"name":"a","value":"b"}}}`
		r := c.a.Check(context.Background(), post("alice", body))
		if r.Outcome != tc.outcome {
			t.Errorf("%s: outcome %s, want %s", tc.ref, r.Outcome, tc.outcome)
		}
		if len(c.policy.seen) != 1 {
			t.Fatalf("%s: policy evaluated %d times", tc.ref, len(c.policy.seen))
		}
		got := c.policy.seen[0]
		if got.Method != tc.seen.Method || got.Prompt != tc.seen.Prompt || got.URI != tc.seen.URI {
			t.Errorf("%s: policy saw method %q prompt %q uri %q", tc.ref, got.Method, got.Prompt, got.URI)
		}
	}
}
