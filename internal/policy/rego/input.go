package rego

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// Keys of the input document, allocated once.
var (
	keyPrincipal       = ast.StringTerm("principal")
	keyTarget          = ast.StringTerm("target")
	keyMCP             = ast.StringTerm("mcp")
	keyRequest         = ast.StringTerm("request")
	keyGrants          = ast.StringTerm("grants")
	keyTime            = ast.StringTerm("time")
	keyNow             = ast.StringTerm("now")
	keyUnixNS          = ast.StringTerm("unix_ns")
	keyIssuer          = ast.StringTerm("issuer")
	keySubject         = ast.StringTerm("subject")
	keyUser            = ast.StringTerm("user")
	keyClientID        = ast.StringTerm("client_id")
	keyScopes          = ast.StringTerm("scopes")
	keyGroups          = ast.StringTerm("groups")
	keyAudience        = ast.StringTerm("audience")
	keyExpiry          = ast.StringTerm("expiry")
	keyExpiryNS        = ast.StringTerm("expiry_ns")
	keyTokenID         = ast.StringTerm("token_id")
	keyClaims          = ast.StringTerm("claims")
	keyName            = ast.StringTerm("name")
	keyResource        = ast.StringTerm("resource")
	keyScopesRequired  = ast.StringTerm("scopes_required")
	keyMethod          = ast.StringTerm("method")
	keyKind            = ast.StringTerm("kind")
	keyID              = ast.StringTerm("id")
	keyTool            = ast.StringTerm("tool")
	keyPrompt          = ast.StringTerm("prompt")
	keyURI             = ast.StringTerm("uri")
	keyArguments       = ast.StringTerm("arguments")
	keyProtocolVersion = ast.StringTerm("protocol_version")
	keySessionID       = ast.StringTerm("session_id")
	keyBatch           = ast.StringTerm("batch")
	keyPath            = ast.StringTerm("path")
	keyHost            = ast.StringTerm("host")
	keyHeaders         = ast.StringTerm("headers")
	keySingleUse       = ast.StringTerm("single_use")
	keyNameNormalized  = ast.StringTerm("name_normalized")
	keyNameWords       = ast.StringTerm("name_words")
	keyNameSuspicious  = ast.StringTerm("name_suspicious")
)

// nameFields are the input.mcp fields derived from the name a message is
// about (policy.MessageInput.ItemName): they are computed, and keyed in the
// decision cache, only for a policy that reads one of them.
var nameFields = []string{"name", "name_normalized", "name_words", "name_suspicious"}

// InputValue builds the Rego input document of in directly as an AST value
// (no JSON round trip). now is the evaluation time used when in.Time is
// zero. Every key is always present: empty strings stay "", absent raw JSON
// is null, nil lists are [].
func InputValue(in *policy.Input, now time.Time) (ast.Value, error) {
	return inputValue(in, now, nil)
}

// inputValue builds the input document; parts a policy provably never reads
// (per d, nil meaning "anything") are left empty instead of converted, so
// a token's full claim set or a large argument object costs nothing when
// the policy does not look at it.
func inputValue(in *policy.Input, now time.Time, d *inputDeps) (ast.Value, error) {
	if !in.Time.IsZero() {
		now = in.Time
	}
	principal, err := principalTerm(in.Principal, d.reads("principal", "claims"))
	if err != nil {
		return nil, err
	}
	mcp, err := messageTerm(&in.MCP, d)
	if err != nil {
		return nil, err
	}
	var headers *ast.Term
	if d.reads("request", "headers") {
		headers = headersTerm(in.Request.Headers)
	} else {
		headers = ast.ObjectTerm()
	}
	n := len(in.Grants)
	if !d.readsAny("grants") {
		n = 0
	}
	grants := make([]*ast.Term, n)
	for i := range grants {
		if grants[i], err = grantTerm(&in.Grants[i]); err != nil {
			return nil, fmt.Errorf("grants[%d] (%s): %w", i, in.Grants[i].ID, err)
		}
	}
	return ast.NewObject(
		[2]*ast.Term{keyPrincipal, principal},
		[2]*ast.Term{keyTarget, ast.ObjectTerm(
			[2]*ast.Term{keyName, ast.StringTerm(in.Target.Name)},
			[2]*ast.Term{keyResource, ast.StringTerm(in.Target.Resource)},
			[2]*ast.Term{keyScopesRequired, stringsTerm(in.Target.ScopesRequired)},
		)},
		[2]*ast.Term{keyMCP, mcp},
		[2]*ast.Term{keyRequest, ast.ObjectTerm(
			[2]*ast.Term{keyMethod, ast.StringTerm(in.Request.Method)},
			[2]*ast.Term{keyPath, ast.StringTerm(in.Request.Path)},
			[2]*ast.Term{keyHost, ast.StringTerm(in.Request.Host)},
			[2]*ast.Term{keyHeaders, headers},
		)},
		[2]*ast.Term{keyGrants, ast.ArrayTerm(grants...)},
		[2]*ast.Term{keyTime, ast.ObjectTerm(
			[2]*ast.Term{keyNow, ast.StringTerm(now.UTC().Format(time.RFC3339Nano))},
			[2]*ast.Term{keyUnixNS, unixNSTerm(now)},
		)},
	), nil
}

// credentialHeaders are never shown to policy, even if a caller forgets
// to remove them: a reason that echoed one would leak it.
var credentialHeaders = map[string]bool{
	"authorization":       true,
	"proxy-authorization": true,
	"cookie":              true,
}

func headersTerm(h map[string]string) *ast.Term {
	kvs := make([][2]*ast.Term, 0, len(h))
	for k, v := range h {
		if credentialHeaders[strings.ToLower(k)] || strings.HasPrefix(k, ":") {
			continue // credentials never reach policy; pseudo-headers are in method/path/host
		}
		kvs = append(kvs, [2]*ast.Term{ast.StringTerm(k), ast.StringTerm(v)})
	}
	return ast.ObjectTerm(kvs...)
}

func principalTerm(p *identity.Principal, withClaims bool) (*ast.Term, error) {
	if p == nil {
		return ast.NullTerm(), nil
	}
	claims := ast.NewTerm(ast.NewObject())
	if withClaims && len(p.Claims) > 0 {
		v, err := ast.InterfaceToValue(p.Claims)
		if err != nil {
			return nil, fmt.Errorf("principal claims: %w", err)
		}
		claims = ast.NewTerm(v)
	}
	return ast.ObjectTerm(
		[2]*ast.Term{keyIssuer, ast.StringTerm(p.Issuer)},
		[2]*ast.Term{keySubject, ast.StringTerm(p.Subject)},
		[2]*ast.Term{keyUser, ast.StringTerm(p.User)},
		[2]*ast.Term{keyClientID, ast.StringTerm(p.ClientID)},
		[2]*ast.Term{keyScopes, stringsTerm(p.Scopes)},
		[2]*ast.Term{keyGroups, stringsTerm(p.Groups)},
		[2]*ast.Term{keyAudience, stringsTerm(p.Audience)},
		[2]*ast.Term{keyExpiry, timeTerm(p.Expiry)},
		[2]*ast.Term{keyTokenID, ast.StringTerm(p.TokenID)},
		[2]*ast.Term{keyClaims, claims},
	), nil
}

func messageTerm(m *policy.MessageInput, d *inputDeps) (*ast.Term, error) {
	id, args := ast.NullTerm(), ast.NullTerm()
	var err error
	if d.reads("mcp", "id") {
		if id, err = rawJSONTerm(m.ID); err != nil {
			return nil, fmt.Errorf("mcp id: %w", err)
		}
	}
	if d.reads("mcp", "arguments") {
		if args, err = rawJSONTerm(m.Arguments); err != nil {
			return nil, fmt.Errorf("mcp arguments: %w", err)
		}
	}
	name, uri := m.ItemName()
	var f policy.NameFacts
	if d.readsAny("mcp", nameFields...) {
		f = policy.Facts(name, uri)
	}
	words := make([]*ast.Term, len(f.Words))
	for i, w := range f.Words {
		words[i] = ast.StringTerm(w)
	}
	return ast.ObjectTerm(
		[2]*ast.Term{keyMethod, ast.StringTerm(m.Method)},
		[2]*ast.Term{keyKind, ast.StringTerm(m.Kind)},
		[2]*ast.Term{keyID, id},
		[2]*ast.Term{keyTool, ast.StringTerm(m.Tool)},
		[2]*ast.Term{keyPrompt, ast.StringTerm(m.Prompt)},
		[2]*ast.Term{keyURI, ast.StringTerm(m.URI)},
		[2]*ast.Term{keyArguments, args},
		[2]*ast.Term{keyProtocolVersion, ast.StringTerm(m.ProtocolVersion)},
		[2]*ast.Term{keySessionID, ast.StringTerm(m.SessionID)},
		[2]*ast.Term{keyBatch, ast.InternedTerm(m.Batch)},
		[2]*ast.Term{keyName, ast.StringTerm(name)},
		[2]*ast.Term{keyNameNormalized, ast.StringTerm(f.Normalized)},
		[2]*ast.Term{keyNameWords, ast.ArrayTerm(words...)},
		[2]*ast.Term{keyNameSuspicious, ast.StringTerm(f.Suspicious)},
	), nil
}

func grantTerm(g *policy.GrantInput) (*ast.Term, error) {
	args, err := rawJSONTerm(g.Arguments)
	if err != nil {
		return nil, fmt.Errorf("arguments: %w", err)
	}
	return ast.ObjectTerm(
		[2]*ast.Term{keyID, ast.StringTerm(g.ID)},
		[2]*ast.Term{keyTarget, ast.StringTerm(g.Target)},
		[2]*ast.Term{keyTool, ast.StringTerm(g.Tool)},
		[2]*ast.Term{keyResource, ast.StringTerm(g.Resource)},
		[2]*ast.Term{keyArguments, args},
		[2]*ast.Term{keySingleUse, ast.InternedTerm(g.SingleUse)},
		[2]*ast.Term{keyExpiry, timeTerm(g.Expiry)},
		[2]*ast.Term{keyExpiryNS, unixNSTerm(g.Expiry)},
		[2]*ast.Term{keyPrincipal, ast.StringTerm(g.Principal)},
	), nil
}

// rawJSONTerm parses raw JSON into a term; empty input is null. Numbers
// keep their exact text (json.Number), as OPA's own loaders do.
func rawJSONTerm(raw json.RawMessage) (*ast.Term, error) {
	if len(raw) == 0 {
		return ast.NullTerm(), nil
	}
	var x any
	if err := util.UnmarshalJSON(raw, &x); err != nil {
		return nil, fmt.Errorf("invalid JSON: %w", err)
	}
	v, err := ast.InterfaceToValue(x)
	if err != nil {
		return nil, err
	}
	return ast.NewTerm(v), nil
}

func stringsTerm(ss []string) *ast.Term {
	ts := make([]*ast.Term, len(ss))
	for i, s := range ss {
		ts[i] = ast.StringTerm(s)
	}
	return ast.ArrayTerm(ts...)
}

// timeTerm is a time as RFC 3339 with nanoseconds in UTC; the zero time is "".
func timeTerm(t time.Time) *ast.Term {
	if t.IsZero() {
		return ast.InternedTerm("")
	}
	return ast.StringTerm(t.UTC().Format(time.RFC3339Nano))
}

// unixNSTerm is a time as integer nanoseconds since the epoch; the zero
// time is 0.
func unixNSTerm(t time.Time) *ast.Term {
	if t.IsZero() {
		return ast.InternedTerm(0)
	}
	return ast.NumberTerm(json.Number(strconv.FormatInt(t.UnixNano(), 10)))
}
