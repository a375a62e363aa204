// Package extauthz answers Envoy's ext_authz Check: it verifies the caller's
// token, reads the MCP call out of the request, asks the Rego policy, and
// returns allow (with the upstream credential swapped in), deny, or
// "approval required". The decision pipeline (Authorizer) is free of gRPC;
// grpc.go adapts it to envoy.service.auth.v3.Authorization, the way
// opa-envoy-plugin keeps envoyauth apart from its server.
package extauthz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mcp"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// Request is what Envoy's CheckRequest says about one HTTP request.
type Request struct {
	Method  string
	Path    string // includes the query string, as Envoy sends it
	Host    string
	Scheme  string
	Headers map[string]string // lower-case names, pseudo-headers included, duplicates comma-joined
	Body    []byte
	// Truncated is Envoy's x-envoy-auth-partial-body: the body was cut at max_request_bytes.
	Truncated bool
	// ContextExtensions come from the route (ExtAuthzPerRoute.check_settings); airlock's
	// Envoy config names the target in "airlock_target".
	ContextExtensions map[string]string
}

// Header is one header to set.
type Header struct{ Name, Value string }

// Outcome of a check, also the metrics label.
type Outcome string

const (
	OutcomeAllow            Outcome = "allow"
	OutcomeDeny             Outcome = "deny"              // policy said no
	OutcomeApprovalRequired Outcome = "approval_required" // policy wants a human
	OutcomeUnauthenticated  Outcome = "unauthenticated"   // no or bad token
	OutcomeForbidden        Outcome = "forbidden"         // token fine, scope or issuer not enough
	OutcomeInvalid          Outcome = "invalid"           // malformed request
	OutcomeError            Outcome = "error"             // our failure: fail closed
)

// Result is the answer to Envoy: allow, or a denial with the HTTP status
// the client gets (usually 4xx; 200 for a JSON-RPC answer such as
// "approval pending", which is still a denial: the call does not reach
// the server).
type Result struct {
	Outcome    Outcome
	Status     int
	Denied     bool // a denial even though Status is 200
	Reason     string
	DecisionID string
	// On allow: request headers to set (overwrite) and to remove before the upstream.
	SetHeaders    []Header
	RemoveHeaders []string
	// On deny: response headers and body sent to the client.
	ResponseHeaders []Header
	Body            []byte
	// Metadata is emitted as Envoy dynamic metadata (namespace envoy.filters.http.ext_authz).
	Metadata map[string]any

	// what the decision was about, for the audit record
	target    string
	principal *identity.Principal
	call      *mcp.Call
	grant     string
	policyVer string
}

// Verifier checks bearer tokens (internal/identity implements it).
type Verifier interface {
	Verify(ctx context.Context, raw string, audiences []string) (*identity.Principal, error)
}

// Policy decides (internal/policy's Store implements it).
type Policy interface {
	Evaluate(ctx context.Context, in *policy.Input) (policy.Decision, error)
}

// Options are the Authorizer's collaborators.
type Options struct {
	Verifier Verifier
	Policy   Policy
	// Approvals is the just-in-time access service; nil means calls that
	// need approval are refused with a JSON-RPC error saying so.
	Approvals Approvals
	Logger    *slog.Logger
	Metrics   *Metrics
	// Audit receives every decision (nil: none recorded).
	Audit audit.Sink
	Now   func() time.Time
}

// Authorizer is the gRPC-free decision pipeline.
type Authorizer struct {
	targets   *targets
	verifier  Verifier
	policy    Policy
	approvals Approvals
	log       *slog.Logger
	metrics   *Metrics
	audit     audit.Sink
	routes    atomic.Pointer[GrantRoutes]
	now       func() time.Time
	maxBody   int
	origins   *origins
}

// New builds an Authorizer from configuration. Upstream credentials are
// resolved here, once; a missing credential is an error at start, not a
// surprise at the first call.
func New(cfg *config.Config, opts Options) (*Authorizer, error) {
	if opts.Verifier == nil || opts.Policy == nil {
		return nil, errors.New("extauthz: a verifier and a policy are required")
	}
	ts, err := newTargets(cfg)
	if err != nil {
		return nil, err
	}
	a := &Authorizer{
		targets: ts, verifier: opts.Verifier, policy: opts.Policy, approvals: opts.Approvals,
		log: opts.Logger, metrics: opts.Metrics, now: opts.Now, maxBody: cfg.Limits.MaxRequestBytes,
		origins: newOrigins(cfg.AllowedOrigins), audit: opts.Audit,
	}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

// Check decides one request. It never returns an allow on an error path.
func (a *Authorizer) Check(ctx context.Context, req *Request) *Result {
	start := time.Now()
	res := a.check(ctx, req)
	took := time.Since(start)
	if a.metrics != nil {
		a.metrics.observe(res.Outcome, took)
	}
	if a.audit != nil {
		a.record(res, took)
	}
	return res
}

// record sends the decision to the audit trail (never the token or the
// arguments: those are in the masked message record).
func (a *Authorizer) record(r *Result, took time.Duration) {
	d := &audit.Decision{
		DecisionID: r.DecisionID, Time: a.now(), Target: r.target, Outcome: string(r.Outcome),
		Reason: r.Reason, Status: r.Status, LatencyUS: took.Microseconds(), GrantID: r.grant, PolicyVersion: r.policyVer,
	}
	if p := r.principal; p != nil {
		d.Principal, d.ClientID, d.Issuer = p.Subject, p.ClientID, p.Issuer
	}
	if c := r.call; c != nil {
		d.SessionID = c.SessionID
		if len(c.Messages) > 0 {
			m := c.Messages[0]
			d.Method, d.Tool, d.JSONRPCID = m.Method, m.Tool+m.URI+m.Prompt, string(m.ID)
		}
	}
	if err := a.audit.Record(d); err != nil {
		a.log.Error("audit refused a decision", "decision_id", r.DecisionID, "error", err)
	}
}

func (a *Authorizer) check(ctx context.Context, req *Request) *Result {
	id := newDecisionID()
	t := a.targets.match(req)
	if t == nil {
		return a.finish(nil, nil, nil, &Result{Outcome: OutcomeInvalid, Status: 404, DecisionID: id,
			Reason: fmt.Sprintf("no MCP target is served at %s", pathOnly(req.Path))})
	}

	if why := a.origins.check(req.Headers["origin"]); why != "" {
		return a.finish(t, nil, nil, &Result{Outcome: OutcomeForbidden, Status: 403, DecisionID: id, Reason: why,
			ResponseHeaders: []Header{jsonContentType}, Body: mcp.ErrorResponse(nil, CodeForbidden, "forbidden: "+why, nil)})
	}

	// Who is calling. An unauthenticated caller learns nothing about parsing.
	raw, ok := bearer(req.Headers["authorization"])
	if !ok {
		return a.finish(t, nil, nil, t.unauthenticated(id, "", "no bearer token in the Authorization header"))
	}
	p, err := a.verifier.Verify(ctx, raw, t.audiences)
	if err != nil {
		return a.finish(t, nil, nil, t.unauthenticated(id, "invalid_token", safeReason(err)))
	}
	if !t.trusts(p.Issuer) {
		return a.finish(t, p, nil, t.unauthenticated(id, "invalid_token", fmt.Sprintf("issuer %s is not trusted for target %s", p.Issuer, t.cfg.Name)))
	}
	if missing := missingScopes(t.cfg.ScopesRequired, p.Scopes); len(missing) > 0 {
		return a.finish(t, p, nil, t.insufficientScope(id, missing))
	}

	// What it asks for.
	call, perr := mcp.ParseHTTP(&mcp.HTTPRequest{
		Method: req.Method, Path: req.Path, Headers: req.Headers,
		Body: req.Body, Truncated: req.Truncated,
	})
	if perr != nil {
		if perr.HTTPStatus == 413 {
			perr.Message = fmt.Sprintf("%s (limit %d bytes)", perr.Message, a.maxBody)
		}
		return a.finish(t, p, nil, invalid(id, perr))
	}

	// What policy says about each message. A grant that allowed the call
	// is used before the call goes through; one that a concurrent call
	// used up is left out and the call decided again.
	var unusable map[string]bool
	for attempt := 0; ; attempt++ {
		d, err := a.decide(ctx, t, p, req, call, unusable)
		if err != nil {
			a.log.Error("policy evaluation failed; denying", "decision_id", id, "target", t.cfg.Name, "error", err)
			return a.finish(t, p, call, policyDenied(id, call, OutcomeError, 403, "the gateway could not evaluate its policy; the call is denied"))
		}
		switch d.Outcome {
		case policy.OutcomeAllow:
			if d.Grant != "" && a.approvals != nil {
				ok, err := a.useGrant(ctx, p, d.Grant)
				if err != nil {
					a.log.Error("grant store failed; denying", "decision_id", id, "grant", d.Grant, "error", err)
					return a.finish(t, p, call, policyDenied(id, call, OutcomeError, 403, "the gateway could not use the grant; the call is denied"))
				}
				if !ok && attempt < 3 {
					if unusable == nil {
						unusable = map[string]bool{}
					}
					unusable[d.Grant] = true
					continue
				}
				if !ok {
					return a.finish(t, p, call, policyDenied(id, call, OutcomeDeny, 403, "the grants for this call are in use; retry"))
				}
				a.awaitRoute(ctx, id, d.Grant)
			}
			return a.finish(t, p, call, t.allow(id, p, call, req, d))
		case policy.OutcomeApprovalRequired:
			if a.approvals == nil {
				return a.finish(t, p, call, approvalRequired(id, call, d))
			}
			return a.finish(t, p, call, a.hold(ctx, id, t, p, req, call, d))
		default:
			return a.finish(t, p, call, policyDenied(id, call, OutcomeDeny, 403, d.Reason))
		}
	}
}

// finish logs the decision (never a token, argument or credential).
func (a *Authorizer) finish(t *target, p *identity.Principal, call *mcp.Call, r *Result) *Result {
	r.principal, r.call = p, call
	if t != nil {
		r.target = t.cfg.Name
	}
	if g, ok := r.Metadata["grant"].(string); ok {
		r.grant = g
	}
	if v, ok := r.Metadata["policy_version"].(string); ok {
		r.policyVer = v
	}
	if !a.log.Enabled(context.Background(), slog.LevelInfo) {
		return r
	}
	attrs := []any{"decision_id", r.DecisionID, "outcome", string(r.Outcome), "status", r.Status}
	if t != nil {
		attrs = append(attrs, "target", t.cfg.Name)
	}
	if p != nil {
		attrs = append(attrs, "subject", p.Subject, "client_id", p.ClientID)
	}
	if call != nil && len(call.Messages) > 0 {
		m := call.Messages[0]
		attrs = append(attrs, "method", m.Method)
		if m.Tool != "" {
			attrs = append(attrs, "tool", m.Tool)
		}
	}
	if r.Reason != "" {
		attrs = append(attrs, "reason", r.Reason)
	}
	a.log.Info("decision", attrs...)
	return r
}

func newDecisionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func bearer(h string) (string, bool) {
	const p = "bearer "
	if len(h) <= len(p) || !strings.EqualFold(h[:len(p)], p) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(p):])
	return tok, tok != ""
}

func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		p = p[:i]
	}
	if len(p) > 200 {
		p = p[:200] + "…"
	}
	return p
}

func missingScopes(required, have []string) []string {
	var missing []string
	for _, r := range required {
		found := false
		for _, h := range have {
			if h == r {
				found = true
				break
			}
		}
		if !found {
			missing = append(missing, r)
		}
	}
	return missing
}

// safeReason is the verifier's explanation, which identity guarantees holds
// no token material.
func safeReason(err error) string {
	var ie *identity.Error
	if errors.As(err, &ie) {
		return ie.Error()
	}
	return "the token could not be verified"
}
