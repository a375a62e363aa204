// Package decisionlog emits each ext_authz decision in the shape of
// OPA's decision log (decision_id, path, input, result, timestamp,
// bundles.<name>.revision, labels{id, version}), plus the x-request-id
// Envoy set and the trace id, so that operators can join it with Envoy's
// access log and their traces, and replay a decision (airlock policy
// eval --decision) against another policy.
//
// The input is the policy's input document (input.principal, input.mcp,
// …, snake_case as Rego reads it) masked with the target's masking
// profile: arguments, header values, the request path, token claims and
// reasons go through the masker, credential headers (Authorization,
// Proxy-Authorization, Cookie) never appear. A replay therefore sees the
// masked arguments: a policy that reads a value the masker replaced can
// decide differently on replay (see docs/decision-logs.md).
//
// Emission never blocks a Check: Log puts the raw entry on a bounded
// queue and returns; one worker masks, encodes and writes batches to the
// sink (stdout, a file, or HTTP with retry). A record that finds the
// queue full, or whose batch the sink refused after every retry, is
// counted in airlock_decision_log_records_dropped_total{reason} and logged: never
// lost silently.
package decisionlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unsafe"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// BundleName is the name the policy's revision is recorded under
// (bundles.airlock.revision), as OPA records a bundle's.
const BundleName = "airlock"

// Entry is one decision as the gateway hands it over: raw (unmasked),
// masked by the worker off the Check path.
type Entry struct {
	DecisionID string
	Time       time.Time
	// Input and Result are the policy evaluation the decision rests on;
	// nil when the gateway decided before asking policy (no or a bad
	// token, a malformed request).
	Input  *policy.Input
	Result *policy.Decision
	// The gateway's answer (after holds, grants, batches).
	Outcome string
	Status  int
	Reason  string
	// PolicyVersion is the revision of the policy that decided (or was
	// serving).
	PolicyVersion string
	Target        string
	XRequestID    string
	TraceID       string
	SpanID        string
	Duration      time.Duration
}

// Record is one decision-log record, in OPA's shape with airlock's
// additions (x_request_id, gateway). Consumers of OPA's decision logs
// read it as they read OPA's.
type Record struct {
	Labels     map[string]string `json:"labels"`
	DecisionID string            `json:"decision_id"`
	TraceID    string            `json:"trace_id,omitempty"`
	SpanID     string            `json:"span_id,omitempty"`
	Bundles    map[string]Bundle `json:"bundles,omitempty"`
	// Path is the policy's decision (data.airlock.decision → airlock/decision).
	Path       string           `json:"path"`
	Input      json.RawMessage  `json:"input,omitempty"`
	Result     json.RawMessage  `json:"result,omitempty"`
	XRequestID string           `json:"x_request_id,omitempty"`
	Timestamp  time.Time        `json:"timestamp"`
	Metrics    map[string]int64 `json:"metrics,omitempty"`
	// Gateway is what airlock answered, which can differ from the
	// policy's result (a held call approved, a batch refused as a whole),
	// and is the only result of a decision made before policy.
	Gateway Gateway `json:"gateway"`
}

// Bundle is a policy revision, as OPA names a bundle's.
type Bundle struct {
	Revision string `json:"revision"`
}

// Gateway is airlock's answer.
type Gateway struct {
	Target  string `json:"target,omitempty"`
	Outcome string `json:"outcome"`
	Status  int    `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

// Revision is the record's policy revision.
func (r *Record) Revision() string { return r.Bundles[BundleName].Revision }

// QueryPath turns a Rego query (data.airlock.decision) into OPA's
// decision-log path (airlock/decision).
func QueryPath(query string) string {
	q := strings.TrimPrefix(strings.TrimSpace(query), "data.")
	return strings.ReplaceAll(q, ".", "/")
}

// InputDoc is the policy input document as recorded: the names Rego
// reads (see policies/README.md).
type InputDoc struct {
	Principal *identity.Principal `json:"principal"`
	Target    TargetDoc           `json:"target"`
	MCP       MCPDoc              `json:"mcp"`
	Request   RequestDoc          `json:"request"`
	Grants    []GrantDoc          `json:"grants"`
	Time      TimeDoc             `json:"time"`
}

// TargetDoc is input.target.
type TargetDoc struct {
	Name           string   `json:"name"`
	Resource       string   `json:"resource"`
	ScopesRequired []string `json:"scopes_required"`
}

// MCPDoc is input.mcp.
type MCPDoc struct {
	Method          string          `json:"method"`
	Kind            string          `json:"kind"`
	ID              json.RawMessage `json:"id"`
	Tool            string          `json:"tool"`
	Prompt          string          `json:"prompt"`
	URI             string          `json:"uri"`
	Arguments       json.RawMessage `json:"arguments"`
	ProtocolVersion string          `json:"protocol_version"`
	SessionID       string          `json:"session_id"`
	Batch           bool            `json:"batch"`
}

// RequestDoc is input.request.
type RequestDoc struct {
	Method  string            `json:"method"`
	Path    string            `json:"path"`
	Host    string            `json:"host"`
	Headers map[string]string `json:"headers"`
}

// GrantDoc is one of input.grants.
type GrantDoc struct {
	ID            string          `json:"id"`
	Target        string          `json:"target"`
	Tool          string          `json:"tool"`
	Resource      string          `json:"resource"`
	Arguments     json.RawMessage `json:"arguments"`
	ArgumentsHash string          `json:"arguments_hash,omitempty"`
	SingleUse     bool            `json:"single_use"`
	Expiry        time.Time       `json:"expiry"`
	Principal     string          `json:"principal"`
}

// TimeDoc is input.time.
type TimeDoc struct {
	Now    string `json:"now"`
	UnixNS int64  `json:"unix_ns"`
}

// ResultDoc is the policy's decision as recorded.
type ResultDoc struct {
	Outcome        string       `json:"outcome"`
	Reason         string       `json:"reason"`
	Grant          string       `json:"grant,omitempty"`
	Approval       *ApprovalDoc `json:"approval,omitempty"`
	MaskingProfile string       `json:"masking_profile,omitempty"`
	Record         bool         `json:"record"`
}

// ApprovalDoc is result.approval.
type ApprovalDoc struct {
	ApproverGroups   []string `json:"approver_groups"`
	Threshold        int      `json:"threshold"`
	GrantDuration    string   `json:"grant_duration,omitempty"`
	SingleUse        bool     `json:"single_use"`
	PinArguments     bool     `json:"pin_arguments"`
	ReasonRequired   bool     `json:"reason_required"`
	BreakGlassGroups []string `json:"break_glass_groups,omitempty"`
}

// unreadable replaces a value the masker could not read: fail closed.
var unreadable = json.RawMessage(`"[unreadable: not recorded]"`)

// credentialHeaders never reach the log (nor policy).
var credentialHeaders = map[string]bool{"authorization": true, "proxy-authorization": true, "cookie": true}

// EncodeInput is in's input document masked with p.
func EncodeInput(in *policy.Input, p *mask.Profile) *InputDoc {
	if p == nil {
		p = mask.Default()
	}
	doc := &InputDoc{
		Target: TargetDoc{Name: in.Target.Name, Resource: in.Target.Resource, ScopesRequired: nonNil(in.Target.ScopesRequired)},
		MCP: MCPDoc{
			Method: in.MCP.Method, Kind: in.MCP.Kind, ID: rawOrNull(in.MCP.ID), Tool: in.MCP.Tool, Prompt: in.MCP.Prompt,
			URI: maskText(p, in.MCP.URI), Arguments: maskJSON(p, in.MCP.Arguments), ProtocolVersion: in.MCP.ProtocolVersion,
			SessionID: in.MCP.SessionID, Batch: in.MCP.Batch,
		},
		Request: RequestDoc{Method: in.Request.Method, Path: maskText(p, in.Request.Path), Host: in.Request.Host, Headers: map[string]string{}},
		Grants:  make([]GrantDoc, 0, len(in.Grants)),
		Time:    TimeDoc{Now: in.Time.UTC().Format(time.RFC3339Nano), UnixNS: in.Time.UnixNano()},
	}
	for k, v := range in.Request.Headers {
		if credentialHeaders[strings.ToLower(k)] || strings.HasPrefix(k, ":") {
			continue
		}
		doc.Request.Headers[k] = maskText(p, v)
	}
	if pr := in.Principal; pr != nil {
		cp := *pr
		if len(pr.Claims) > 0 {
			cp.Claims = maskClaims(p, pr.Claims)
		}
		doc.Principal = &cp
	}
	for _, g := range in.Grants {
		doc.Grants = append(doc.Grants, GrantDoc{
			ID: g.ID, Target: g.Target, Tool: g.Tool, Resource: g.Resource, Arguments: maskJSON(p, g.Arguments),
			ArgumentsHash: g.ArgumentsHash, SingleUse: g.SingleUse, Expiry: g.Expiry, Principal: g.Principal,
		})
	}
	return doc
}

// DecodeInput reads a recorded input document back into a policy input
// (for airlock policy eval).
func DecodeInput(raw []byte) (*policy.Input, error) {
	var doc InputDoc
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("decision log input: %w", err)
	}
	in := &policy.Input{
		Principal: doc.Principal,
		Target:    policy.TargetInput{Name: doc.Target.Name, Resource: doc.Target.Resource, ScopesRequired: doc.Target.ScopesRequired},
		MCP: policy.MessageInput{
			Method: doc.MCP.Method, Kind: doc.MCP.Kind, ID: nullToEmpty(doc.MCP.ID), Tool: doc.MCP.Tool, Prompt: doc.MCP.Prompt,
			URI: doc.MCP.URI, Arguments: nullToEmpty(doc.MCP.Arguments), ProtocolVersion: doc.MCP.ProtocolVersion,
			SessionID: doc.MCP.SessionID, Batch: doc.MCP.Batch,
		},
		Request: policy.RequestInput{Method: doc.Request.Method, Path: doc.Request.Path, Host: doc.Request.Host, Headers: doc.Request.Headers},
	}
	switch {
	case doc.Time.UnixNS != 0:
		in.Time = time.Unix(0, doc.Time.UnixNS).UTC()
	case doc.Time.Now != "":
		t, err := time.Parse(time.RFC3339Nano, doc.Time.Now)
		if err != nil {
			return nil, fmt.Errorf("decision log input: time.now: %w", err)
		}
		in.Time = t
	default:
		return nil, errors.New("decision log input: no time (input.time.unix_ns)")
	}
	for _, g := range doc.Grants {
		in.Grants = append(in.Grants, policy.GrantInput{
			ID: g.ID, Target: g.Target, Tool: g.Tool, Resource: g.Resource, Arguments: nullToEmpty(g.Arguments),
			ArgumentsHash: g.ArgumentsHash, SingleUse: g.SingleUse, Expiry: g.Expiry, Principal: g.Principal,
		})
	}
	return in, nil
}

// EncodeResult is d as recorded, its reason masked with p.
func EncodeResult(d *policy.Decision, p *mask.Profile) *ResultDoc {
	if p == nil {
		p = mask.Default()
	}
	r := &ResultDoc{Outcome: d.Outcome, Reason: maskText(p, d.Reason), Grant: d.Grant, MaskingProfile: d.MaskingProfile, Record: d.Record}
	if a := d.Approval; a != nil {
		r.Approval = &ApprovalDoc{
			ApproverGroups: nonNil(a.ApproverGroups), Threshold: a.Threshold, SingleUse: a.SingleUse,
			PinArguments: a.PinArguments, ReasonRequired: a.ReasonRequired, BreakGlassGroups: a.BreakGlassGroups,
		}
		if a.GrantDuration > 0 {
			r.Approval.GrantDuration = a.GrantDuration.String()
		}
	}
	return r
}

// maskText is s masked with p. MaskText only reads its input and hands
// it back when nothing is masked, so s is lent to it without a copy and
// returned as it is in that (the usual) case.
func maskText(p *mask.Profile, s string) string {
	if s == "" {
		return s
	}
	in := unsafe.Slice(unsafe.StringData(s), len(s))
	out, _ := p.MaskText(in)
	if len(out) == len(in) && unsafe.SliceData(out) == unsafe.SliceData(in) {
		return s
	}
	return string(out)
}

// maskJSON is raw masked with p; unreadable when raw is not JSON or the
// masked output is not. MaskJSON refuses exactly what json.Valid refuses
// (its contract, fuzzed in package mask and here against json.Valid:
// FuzzMaskJSONValid), and hands raw itself back when nothing is masked,
// so only a changed output is checked again.
func maskJSON(p *mask.Profile, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	out, _, err := p.MaskJSON(raw)
	if err != nil {
		return unreadable
	}
	if (len(out) != len(raw) || unsafe.SliceData(out) != unsafe.SliceData(raw)) && !json.Valid(out) {
		return unreadable
	}
	return out
}

func maskClaims(p *mask.Profile, claims map[string]any) map[string]any {
	b, err := json.Marshal(claims)
	if err != nil {
		return map[string]any{"unreadable": "not recorded"}
	}
	out, _, err := p.MaskJSON(b)
	var m map[string]any
	if err != nil || json.Unmarshal(out, &m) != nil {
		return map[string]any{"unreadable": "not recorded"}
	}
	return m
}

func rawOrNull(r json.RawMessage) json.RawMessage {
	if len(r) == 0 {
		return json.RawMessage("null")
	}
	return r
}

func nullToEmpty(r json.RawMessage) json.RawMessage {
	if len(r) == 0 || string(r) == "null" {
		return nil
	}
	return r
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
