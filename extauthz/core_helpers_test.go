package extauthz

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

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
