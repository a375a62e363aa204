// Package extauthz answers Envoy's ext_authz Check: it refuses any path but
// a target's MCP endpoint, verifies the caller's token, reads the MCP call
// out of the request, holds each session to the principal that opened it,
// asks the Rego policy about every message, and returns allow (with the
// upstream credential swapped in), deny, or "approval required". A batch
// goes through only when every message is allowed without grant or
// approval. The decision pipeline (Authorizer) is free of gRPC;
// wire.go serves it as envoy.service.auth.v3.Authorization, reading the
// CheckRequest and writing the CheckResponse straight from their bytes
// (wire_decode.go, wire_encode.go; grpc.go keeps the generated types'
// adapter, the oracle the wire code is fuzzed against), the way
// opa-envoy-plugin keeps envoyauth apart from its server.
package extauthz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/decisionlog"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mcp"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/tracing"
	"github.com/airlock-mcp/airlock/internal/wire"
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
	// Envoy config names the target in wire.ContextTarget.
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
	// Metadata is emitted as Envoy dynamic metadata (namespace
	// envoy.filters.http.ext_authz, wire.Decision.Struct); nil when the
	// call is not allowed.
	Metadata *wire.Decision

	// what the decision was about, for the audit record
	target    string
	principal *identity.Principal
	call      *mcp.Call
	grant     string
	policyVer string
	// requestID is the access request the call was held on (opened or
	// joined); empty for a call that was not held.
	requestID string
	// sessionID is, for a call refused before its body was read, the
	// Mcp-Session-Id it presented when that session is live on this
	// target (see knownSession).
	sessionID string
	// verdicts is, for a batch decided message by message, each message's
	// own outcome and reason (same order as call.Messages).
	verdicts []verdict
	// rpcID is the request's id as read before parsing (mcp.PeekID), for
	// the audit of a request refused before its call was read.
	rpcID []byte
	// evals are the policy evaluations the decision rests on (the last
	// one of a single call; one a message of a batch), kept only when
	// the decision log is on.
	evals []evaluation
	// traceID and xRequestID name the request in the trace Envoy
	// propagates and in Envoy's access log.
	traceID, spanID, xRequestID string
}

// evaluation is one policy evaluation: its input and its decision.
type evaluation struct {
	in *policy.Input
	d  policy.Decision
}

// verdict is what was decided about one message of a batch.
type verdict struct {
	Outcome Outcome
	Reason  string
	code    int // JSON-RPC error code of a refused message; 0: mcp.CodeForbidden
}

// Verifier checks bearer tokens (internal/identity implements it).
type Verifier interface {
	Verify(ctx context.Context, raw string, audiences []string) (*identity.Principal, error)
}

// Policy decides (internal/policy/rego's Store implements it). It is the
// OPA-free policy.Evaluator, so the decision core does not compile OPA.
type Policy = policy.Evaluator

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
	// Tracing traces each Check (nil: off, a no-op).
	Tracing *tracing.Tracing
	// Decisions receives each decision in OPA's decision-log shape (nil:
	// off).
	Decisions *decisionlog.Logger
	Now       func() time.Time
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
	sessions  *sessions
	// breaker is the size of Envoy's airlock_authz circuit breaker
	// (config.Limits.AuthzBreaker); inFlight the Checks being answered.
	breaker  int64
	inFlight atomic.Int64

	tracing   *tracing.Tracing
	decisions *decisionlog.Logger
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
		sessions: newSessions(maxSessions, maxSessionsPerPrincipal, sessionIdle),
		breaker:  int64(cfg.Limits.AuthzBreaker()),
		tracing:  opts.Tracing, decisions: opts.Decisions,
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
	ctx, span := a.tracing.Start(ctx, "airlock.authz.Check", trace.SpanKindServer)
	res := a.check(ctx, req)
	took := time.Since(start)
	res.xRequestID = req.Headers["x-request-id"]
	if sc := span.SpanContext(); sc.IsValid() {
		res.traceID, res.spanID = sc.TraceID().String(), sc.SpanID().String()
	} else if a.audit != nil || a.decisions != nil {
		res.traceID = tracing.HeaderTraceID(req.Headers)
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("airlock.decision_id", res.DecisionID), attribute.String("airlock.target", res.target),
			attribute.String("airlock.outcome", string(res.Outcome)), attribute.Int("http.response.status_code", res.Status))
		if res.Outcome == OutcomeError {
			span.SetStatus(codes.Error, "the gateway failed; denied")
		}
	}
	span.End()
	if a.metrics != nil {
		a.metrics.observe(res, took)
	}
	if a.audit != nil {
		a.record(res, took)
	}
	if a.decisions != nil {
		a.logDecisions(res, took)
	}
	return res
}

func (a *Authorizer) check(ctx context.Context, req *Request) *Result {
	id := newDecisionID()
	r := a.decideRequest(ctx, id, req)
	if r.call == nil {
		r.rpcID = requestID(req)
		r.sessionID = a.knownSession(r.target, req.Headers["mcp-session-id"])
	}
	if r.policyVer == "" {
		r.policyVer = a.servingVersion()
	}
	return r
}

// knownSession is the session id a call refused before its body was read
// (unauthenticated, wrong origin, malformed) presented, when that session
// is live on the target: such a refusal is part of that session's record.
// An id airlock does not know is not a session, and recording it as one
// would let any unauthenticated caller fill the session list.
func (a *Authorizer) knownSession(target, id string) string {
	if target == "" || id == "" || !a.sessions.known(target, id, a.now()) {
		return ""
	}
	return id
}

// policyVersioner is a Policy that names the version it serves
// (internal/policy/rego's Store and Engine): the version recorded with a
// decision no policy took (unauthenticated, malformed, a gateway error).
type policyVersioner interface {
	Version() string
}

// servingVersion is the version of the policy serving now, or "" when the
// Policy does not say.
func (a *Authorizer) servingVersion() string {
	if v, ok := a.policy.(policyVersioner); ok {
		return v.Version()
	}
	return ""
}

// requestID is the request's JSON-RPC id read without parsing the call
// (mcp.PeekID, or PeekIDPrefix for a body Envoy cut), for the denials
// decided before the body is parsed: every denial answers with the
// request's id, and an unauthenticated caller learns nothing from this
// beyond getting its own id back. It is read only on those paths: an
// allowed call's body is scanned once.
func requestID(req *Request) json.RawMessage {
	if req.Truncated {
		return mcp.PeekIDPrefix(req.Body)
	}
	return mcp.PeekID(req.Body)
}

func (a *Authorizer) decideRequest(ctx context.Context, id string, req *Request) *Result {
	t := a.targets.match(req)
	if t == nil {
		return a.finish(nil, nil, nil, notFound(id, requestID(req), fmt.Sprintf("no MCP target is served at %s", pathOnly(req.Path))))
	}
	if why := t.endpoint(req.Path); why != "" {
		return a.finish(t, nil, nil, notFound(id, requestID(req), why))
	}

	if why := a.origins.check(req.Headers["origin"]); why != "" {
		return a.finish(t, nil, nil, &Result{Outcome: OutcomeForbidden, Status: 403, DecisionID: id, Reason: why,
			ResponseHeaders: []Header{jsonContentType}, Body: mcp.ErrorResponse(requestID(req), mcp.CodeForbidden, "forbidden: "+why, nil)})
	}

	// Who is calling. An unauthenticated caller learns nothing about
	// parsing, nor about the configuration: the client is told a coarse
	// reason, the decision log and the audit get the precise one.
	raw, ok := bearer(req.Headers["authorization"])
	if !ok {
		const why = "no bearer token in the Authorization header"
		return a.finish(t, nil, nil, t.unauthenticated(id, requestID(req), "", why, why))
	}
	tctx, span := a.tracing.Start(ctx, "airlock.authz.token", trace.SpanKindInternal)
	p, err := a.verify(tctx, t, raw)
	if err != nil {
		span.SetStatus(codes.Error, "token rejected")
	}
	span.End()
	if err != nil {
		return a.finish(t, nil, nil, t.unauthenticated(id, requestID(req), "invalid_token", publicReason(err), safeReason(err)))
	}
	if !t.trusts(p.Issuer) {
		return a.finish(t, p, nil, t.unauthenticated(id, requestID(req), "invalid_token", reasonNotForResource,
			fmt.Sprintf("issuer %s is not trusted for target %s", p.Issuer, t.cfg.Name)))
	}
	if missing := missingScopes(t.cfg.ScopesRequired, p.Scopes); len(missing) > 0 {
		return a.finish(t, p, nil, t.insufficientScope(id, requestID(req), missing))
	}

	// What it asks for.
	_, span = a.tracing.Start(ctx, "airlock.authz.parse", trace.SpanKindInternal)
	call, perr := mcp.ParseHTTP(&mcp.HTTPRequest{
		Method: req.Method, Path: req.Path, Headers: req.Headers,
		Body: req.Body, Truncated: req.Truncated,
	})
	if perr != nil {
		span.SetStatus(codes.Error, "malformed request")
	} else if span.IsRecording() {
		span.SetAttributes(attribute.Int("airlock.mcp.messages", len(call.Messages)), attribute.Bool("airlock.mcp.batch", call.Batch))
	}
	span.End()
	if perr != nil {
		if perr.HTTPStatus == 413 {
			perr.Message = fmt.Sprintf("%s (limit %d bytes)", perr.Message, a.maxBody)
		}
		return a.finish(t, p, nil, invalid(id, perr))
	}

	// Whose session it is: the first principal to use a session id owns it.
	if call.SessionID != "" && !a.sessions.bind(t.cfg.Name, call.SessionID, ownerOf(p), a.now()) {
		return a.finish(t, p, call, sessionNotFound(id, call))
	}

	var r *Result
	if call.Batch {
		r = a.decideBatch(ctx, id, t, p, req, call)
	} else {
		r = a.decideOne(ctx, id, t, p, req, call)
	}
	if r.Outcome == OutcomeAllow && call.HTTPMethod == "DELETE" && call.SessionID != "" {
		// The session ends: its id is free (the server will not know it).
		a.sessions.unbind(t.cfg.Name, call.SessionID)
	}
	return a.finish(t, p, call, r)
}

// decideOne decides a single message (or a GET/DELETE): policy, with the
// caller's grants; a grant that allowed the call is used before the call
// goes through; one that a concurrent call used up is left out and the
// call decided again. A call that needs approval is held.
func (a *Authorizer) decideOne(ctx context.Context, id string, t *target, p *identity.Principal, req *Request, call *mcp.Call) (r *Result) {
	// Every outcome records the version of the policy that decided it,
	// denials and holds too (only an allow carries it in its metadata).
	var version string
	var last *evaluation
	defer func() {
		if r.policyVer == "" {
			r.policyVer = version
		}
		if last != nil {
			r.evals = []evaluation{*last}
		}
	}()
	var unusable map[string]bool
	for attempt := 0; ; attempt++ {
		d, in, err := a.decide(ctx, t, p, req, call, unusable)
		if err == nil && a.decisions != nil {
			last = &evaluation{in: in, d: d}
		}
		if err != nil {
			a.log.Error("policy evaluation failed; denying", "decision_id", id, "target", t.cfg.Name, "error", err)
			return policyDenied(id, call, OutcomeError, 403, "the gateway could not evaluate its policy; the call is denied")
		}
		version = d.PolicyVersion
		switch d.Outcome {
		case policy.OutcomeAllow:
			if d.Grant != "" && a.approvals != nil {
				gctx, span := a.tracing.Start(ctx, "airlock.authz.grants.use", trace.SpanKindInternal, attribute.String("airlock.grant_id", d.Grant))
				ok, err := a.useGrant(gctx, p, d.Grant)
				span.End()
				if err != nil {
					a.log.Error("grant store failed; denying", "decision_id", id, "grant", d.Grant, "error", err)
					return policyDenied(id, call, OutcomeError, 403, "the gateway could not use the grant; the call is denied")
				}
				if !ok && attempt < 3 {
					if unusable == nil {
						unusable = map[string]bool{}
					}
					unusable[d.Grant] = true
					continue
				}
				if !ok {
					return policyDenied(id, call, OutcomeDeny, 403, "the grants for this call are in use; retry")
				}
				a.awaitRoute(ctx, id, d.Grant)
			}
			return t.allow(id, p, call, req, d)
		case policy.OutcomeApprovalRequired:
			if a.approvals == nil {
				return approvalRequired(id, call, d)
			}
			hctx, span := a.tracing.Start(ctx, "airlock.authz.hold", trace.SpanKindInternal)
			hr := a.hold(hctx, id, t, p, req, call, d)
			if span.IsRecording() {
				span.SetAttributes(attribute.String("airlock.outcome", string(hr.Outcome)), attribute.String("airlock.access_request_id", hr.requestID))
			}
			span.End()
			return hr
		default:
			return policyDenied(id, call, OutcomeDeny, 403, d.Reason)
		}
	}
}

// finish logs the decision (never a token, argument or credential).
func (a *Authorizer) finish(t *target, p *identity.Principal, call *mcp.Call, r *Result) *Result {
	r.principal, r.call = p, call
	if t != nil {
		r.target = t.cfg.Name
	}
	if md := r.Metadata; md != nil {
		if md.Grant != "" {
			r.grant = md.Grant
		}
		r.policyVer = md.PolicyVersion
	}
	if !a.log.Enabled(context.Background(), slog.LevelInfo) {
		return r
	}
	attrs := []any{"decision_id", r.DecisionID, "outcome", string(r.Outcome), "status", r.Status}
	if t != nil {
		attrs = append(attrs, "target", t.cfg.Name)
	}
	if p != nil {
		attrs = append(attrs, "issuer", p.Issuer, "subject", p.Subject, "client_id", p.ClientID)
	}
	if call == nil || len(call.Messages) == 0 || !call.Batch {
		if call != nil && len(call.Messages) > 0 {
			attrs = appendMessage(attrs, &call.Messages[0])
		}
		if r.Reason != "" {
			attrs = append(attrs, "reason", r.Reason)
		}
		a.log.Info("decision", attrs...)
		return r
	}
	// A batch: one line per message, each with the batch's decision and
	// the message's own.
	n := len(call.Messages)
	for i := range call.Messages {
		line := append(slices.Clip(attrs), "batch_index", i, "batch_size", n)
		line = appendMessage(line, &call.Messages[i])
		reason := r.Reason
		if i < len(r.verdicts) {
			line = append(line, "message_outcome", string(r.verdicts[i].Outcome))
			reason = r.verdicts[i].Reason
		}
		if reason != "" {
			line = append(line, "reason", reason)
		}
		a.log.Info("decision", line...)
	}
	return r
}

func appendMessage(attrs []any, m *mcp.Message) []any {
	attrs = append(attrs, "method", m.Method)
	if m.Tool != "" {
		attrs = append(attrs, "tool", m.Tool)
	}
	if m.Prompt != "" {
		attrs = append(attrs, "prompt", m.Prompt)
	}
	if m.URI != "" {
		attrs = append(attrs, "uri", m.URI)
	}
	if len(m.ID) > 0 {
		attrs = append(attrs, "jsonrpc_id", string(m.ID))
	}
	return attrs
}

func newDecisionID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
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

// reasonNotForResource is what a caller whose token is for another
// resource, from another issuer or with unexpected claims is told: which
// issuers and audiences are accepted is configuration it need not learn
// (the Protected Resource Metadata publishes what clients need).
const reasonNotForResource = "the token is not valid for this resource"

// enter counts a Check in flight until the returned func is called. A
// Check that arrives with the Checks in flight at the size of Envoy's
// airlock_authz circuit breaker fills it: Envoy refuses the next ones
// without asking airlock (an overflow is a failed Check, which ext_authz,
// failing closed, answers with its status_on_error; router.cc /
// resource_manager_impl.h), so this is the closest airlock sees of a trip.
func (a *Authorizer) enter() (leave func()) {
	n := a.inFlight.Add(1)
	if m := a.metrics; m != nil {
		m.inFlight.Inc()
		if a.breaker > 0 && n >= a.breaker {
			m.saturated.Inc()
		}
	}
	if a.breaker > 0 && n == a.breaker {
		a.log.Warn("ext_authz circuit breaker full: Envoy refuses further calls until Checks finish (limits.max_held_calls)", "in_flight", n)
	}
	return func() {
		a.inFlight.Add(-1)
		if m := a.metrics; m != nil {
			m.inFlight.Dec()
		}
	}
}
