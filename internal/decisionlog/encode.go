package decisionlog

import (
	"encoding/json"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/jsontext"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// encode is json.Marshal(l.Record(e)), byte for byte, written by hand:
// the worker encoded every record through reflection twice (the input
// and result documents, then the record around them, compacting them
// again), and masked and re-encoded the token's claims on every
// decision, which together cost more CPU than the Check they record.
// The masking is the same calls on the same values. Whatever the hand
// encoder does not write exactly as json.Marshal (a time it refuses, an
// id that is not JSON) goes the reflective way, so the bytes never
// differ (TestEncodeMatchesMarshal, FuzzEncodeRecord).
func (l *Logger) encode(e *Entry) ([]byte, error) {
	return l.appendEncoded(nil, e)
}

// appendEncoded appends encode(e) to b (b unchanged on error).
func (l *Logger) appendEncoded(b []byte, e *Entry) ([]byte, error) {
	n := len(b)
	if out, ok := l.appendRecord(b, e); ok {
		return out, nil
	}
	j, err := json.Marshal(l.Record(e))
	if err != nil {
		return b[:n], err
	}
	return append(b[:n], j...), nil
}

// appendRecord appends e's record as json.Marshal(l.Record(e)) writes
// it; false when it cannot (the caller then uses json.Marshal).
func (l *Logger) appendRecord(b []byte, e *Entry) ([]byte, bool) {
	p := l.profile(e.Target)
	l.clean.mu.Lock()
	defer l.clean.mu.Unlock()
	clean := l.clean.set(p)
	b = append(b, `{"labels":`...)
	l.labelsOnce.Do(func() { l.labelsJSON = appendStringMap(nil, l.labels) })
	b = append(b, l.labelsJSON...)
	b = append(b, `,"decision_id":`...)
	b = appendString(b, e.DecisionID)
	if e.TraceID != "" {
		b = append(b, `,"trace_id":`...)
		b = appendString(b, e.TraceID)
	}
	if e.SpanID != "" {
		b = append(b, `,"span_id":`...)
		b = appendString(b, e.SpanID)
	}
	if e.PolicyVersion != "" {
		b = append(b, `,"bundles":{"`+BundleName+`":{"revision":`...)
		b = appendString(b, e.PolicyVersion)
		b = append(b, "}}"...)
	}
	b = append(b, `,"path":`...)
	b = appendString(b, l.path)
	var ok bool
	if e.Input != nil {
		b = append(b, `,"input":`...)
		if b, ok = l.appendInput(b, e.Input, p, clean); !ok {
			return b, false
		}
	}
	if e.Result != nil {
		b = append(b, `,"result":`...)
		b = appendResult(b, e.Result, p, clean)
	}
	if e.XRequestID != "" {
		b = append(b, `,"x_request_id":`...)
		b = appendString(b, e.XRequestID)
	}
	b = append(b, `,"timestamp":`...)
	if b, ok = appendTime(b, e.Time.UTC()); !ok {
		return b, false
	}
	if e.Duration > 0 {
		b = append(b, `,"metrics":{"timer_airlock_check_ns":`...)
		b = strconv.AppendInt(b, e.Duration.Nanoseconds(), 10)
		b = append(b, '}')
	}
	b = append(b, `,"gateway":{`...)
	if e.Target != "" {
		b = append(b, `"target":`...)
		b = appendString(b, e.Target)
		b = append(b, ',')
	}
	b = append(b, `"outcome":`...)
	b = appendString(b, e.Outcome)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	if r := clean.maskText(p, e.Reason); r != "" {
		b = append(b, `,"reason":`...)
		b = appendString(b, r)
	}
	return append(b, "}}"...), true
}

// profile is the masking profile of target's records.
func (l *Logger) profile(target string) *mask.Profile {
	var p *mask.Profile
	if l.opts.Profiles != nil {
		p = l.opts.Profiles(target)
	}
	if p == nil {
		p = mask.Default()
	}
	return p
}

// appendInput is EncodeInput(in, p) as json.Marshal writes it; clean is
// p's clean values (see cleanCache).
func (l *Logger) appendInput(b []byte, in *policy.Input, p *mask.Profile, clean *cleanSet) ([]byte, bool) {
	var ok bool
	b = append(b, `{"principal":`...)
	if pr := in.Principal; pr == nil {
		b = append(b, "null"...)
	} else if b, ok = l.appendPrincipal(b, pr, p); !ok {
		return b, false
	}
	b = append(b, `,"target":{"name":`...)
	b = appendString(b, in.Target.Name)
	b = append(b, `,"resource":`...)
	b = appendString(b, in.Target.Resource)
	b = append(b, `,"scopes_required":`...)
	b = appendStrings(b, nonNil(in.Target.ScopesRequired))
	b = append(b, `},"mcp":{"method":`...)
	b = appendString(b, in.MCP.Method)
	b = append(b, `,"kind":`...)
	b = appendString(b, in.MCP.Kind)
	b = append(b, `,"id":`...)
	id := rawOrNull(in.MCP.ID)
	if !plainJSON(id) && !json.Valid(id) {
		return b, false
	}
	b = appendCompactJSON(b, id)
	b = append(b, `,"tool":`...)
	b = appendString(b, in.MCP.Tool)
	b = append(b, `,"prompt":`...)
	b = appendString(b, in.MCP.Prompt)
	b = append(b, `,"uri":`...)
	b = appendString(b, clean.maskText(p, in.MCP.URI))
	b = append(b, `,"arguments":`...)
	b = appendCompactJSON(b, maskJSON(p, in.MCP.Arguments)) // valid: maskJSON checks
	b = append(b, `,"protocol_version":`...)
	b = appendString(b, in.MCP.ProtocolVersion)
	b = append(b, `,"session_id":`...)
	b = appendString(b, in.MCP.SessionID)
	b = append(b, `,"batch":`...)
	b = strconv.AppendBool(b, in.MCP.Batch)
	b = append(b, `},"request":{"method":`...)
	b = appendString(b, in.Request.Method)
	b = append(b, `,"path":`...)
	b = appendString(b, clean.maskText(p, in.Request.Path))
	b = append(b, `,"host":`...)
	b = appendString(b, in.Request.Host)
	b = append(b, `,"headers":`...)
	b = appendHeaders(b, in.Request.Headers, p, clean)
	b = append(b, `},"grants":[`...)
	for i := range in.Grants {
		g := &in.Grants[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"id":`...)
		b = appendString(b, g.ID)
		b = append(b, `,"target":`...)
		b = appendString(b, g.Target)
		b = append(b, `,"tool":`...)
		b = appendString(b, g.Tool)
		b = append(b, `,"resource":`...)
		b = appendString(b, g.Resource)
		b = append(b, `,"arguments":`...)
		b = appendCompactJSON(b, maskJSON(p, g.Arguments))
		if g.ArgumentsHash != "" {
			b = append(b, `,"arguments_hash":`...)
			b = appendString(b, g.ArgumentsHash)
		}
		b = append(b, `,"single_use":`...)
		b = strconv.AppendBool(b, g.SingleUse)
		b = append(b, `,"expiry":`...)
		if b, ok = appendTime(b, g.Expiry); !ok {
			return b, false
		}
		b = append(b, `,"principal":`...)
		b = appendString(b, g.Principal)
		b = append(b, '}')
	}
	b = append(b, `],"time":{"now":`...)
	b = appendTimeString(b, in.Time.UTC())
	b = append(b, `,"unix_ns":`...)
	b = strconv.AppendInt(b, in.Time.UnixNano(), 10)
	return append(b, "}}"...), true
}

// appendPrincipal is pr, its claims masked with p, as json.Marshal
// writes an identity.Principal. A principal with claims comes from the
// verifier's token cache, the same on every call with its token: its
// encoding is kept (principalCache) and reused while every field is the
// same.
func (l *Logger) appendPrincipal(b []byte, pr *identity.Principal, p *mask.Profile) ([]byte, bool) {
	if len(pr.Claims) == 0 {
		return appendPrincipalFields(b, pr, nil)
	}
	if enc, ok := l.principals.get(pr, p); ok {
		return append(b, enc...), true
	}
	claims, err := json.Marshal(maskClaims(p, pr.Claims))
	if err != nil { // cannot happen: maskClaims returns what json.Unmarshal built
		claims = []byte(`{"unreadable":"not recorded"}`)
	}
	n := len(b)
	b, ok := appendPrincipalFields(b, pr, claims)
	if ok {
		l.principals.put(pr, p, b[n:])
	}
	return b, ok
}

// appendPrincipalFields writes pr with claims (the masked claims'
// encoding; nil leaves them out).
func appendPrincipalFields(b []byte, pr *identity.Principal, claims []byte) ([]byte, bool) {
	b = append(b, `{"issuer":`...)
	b = appendString(b, pr.Issuer)
	if pr.IssuerName != "" {
		b = append(b, `,"issuer_name":`...)
		b = appendString(b, pr.IssuerName)
	}
	b = append(b, `,"subject":`...)
	b = appendString(b, pr.Subject)
	if pr.User != "" {
		b = append(b, `,"user":`...)
		b = appendString(b, pr.User)
	}
	if pr.ClientID != "" {
		b = append(b, `,"client_id":`...)
		b = appendString(b, pr.ClientID)
	}
	b = append(b, `,"scopes":`...)
	b = appendStrings(b, pr.Scopes)
	b = append(b, `,"groups":`...)
	b = appendStrings(b, pr.Groups)
	b = append(b, `,"audience":`...)
	b = appendStrings(b, pr.Audience)
	b = append(b, `,"expiry":`...)
	var ok bool
	if b, ok = appendTime(b, pr.Expiry); !ok {
		return b, false
	}
	if pr.TokenID != "" {
		b = append(b, `,"token_id":`...)
		b = appendString(b, pr.TokenID)
	}
	if claims != nil {
		b = append(b, `,"claims":`...)
		b = append(b, claims...)
	}
	return append(b, '}'), true
}

// appendResult is EncodeResult(d, p) as json.Marshal writes it; clean is
// p's clean values.
func appendResult(b []byte, d *policy.Decision, p *mask.Profile, clean *cleanSet) []byte {
	b = append(b, `{"outcome":`...)
	b = appendString(b, d.Outcome)
	b = append(b, `,"reason":`...)
	b = appendString(b, clean.maskText(p, d.Reason))
	if d.Grant != "" {
		b = append(b, `,"grant":`...)
		b = appendString(b, d.Grant)
	}
	if a := d.Approval; a != nil {
		b = append(b, `,"approval":{"approver_groups":`...)
		b = appendStrings(b, nonNil(a.ApproverGroups))
		b = append(b, `,"threshold":`...)
		b = strconv.AppendInt(b, int64(a.Threshold), 10)
		if a.GrantDuration > 0 {
			b = append(b, `,"grant_duration":`...)
			b = appendString(b, a.GrantDuration.String())
		}
		b = append(b, `,"single_use":`...)
		b = strconv.AppendBool(b, a.SingleUse)
		b = append(b, `,"pin_arguments":`...)
		b = strconv.AppendBool(b, a.PinArguments)
		b = append(b, `,"reason_required":`...)
		b = strconv.AppendBool(b, a.ReasonRequired)
		if len(a.BreakGlassGroups) > 0 {
			b = append(b, `,"break_glass_groups":`...)
			b = appendStrings(b, a.BreakGlassGroups)
		}
		b = append(b, '}')
	}
	if d.MaskingProfile != "" {
		b = append(b, `,"masking_profile":`...)
		b = appendString(b, d.MaskingProfile)
	}
	b = append(b, `,"record":`...)
	b = strconv.AppendBool(b, d.Record)
	return append(b, '}')
}

// principalCache keeps the encoded, masked principals recently logged.
// The verifier's token cache hands every Check of a token a copy of the
// same principal, sharing its read-only Claims map and slices, so the map
// (with the profile) finds the entry and the entry is used only when
// every other field is the same too (slices: the same array and length).
// An entry holds its map, which therefore cannot be collected and its
// address reused while the entry lives. Cleared whole when full.
type principalCache struct {
	mu sync.Mutex
	m  map[principalKey]principalEntry
}

type principalKey struct {
	claims  unsafe.Pointer
	profile *mask.Profile
}

type principalEntry struct {
	claims map[string]any // keeps principalKey.claims alive
	fields principalFields
	json   []byte
}

// principalFields are a principal's fields but its claims, slices by
// identity.
type principalFields struct {
	issuer, issuerName, subject, user, clientID, tokenID string
	expiry                                               time.Time
	scopes, groups, audience                             sliceID
}

type sliceID struct {
	p *string
	n int
}

func fieldsOf(pr *identity.Principal) principalFields {
	id := func(s []string) sliceID { return sliceID{unsafe.SliceData(s), len(s)} }
	return principalFields{
		issuer: pr.Issuer, issuerName: pr.IssuerName, subject: pr.Subject, user: pr.User, clientID: pr.ClientID,
		tokenID: pr.TokenID, expiry: pr.Expiry, scopes: id(pr.Scopes), groups: id(pr.Groups), audience: id(pr.Audience),
	}
}

// principalCacheSize bounds the cache: principals active within a flush
// or two, far more than a gateway sees at once.
const principalCacheSize = 4096

func (c *principalCache) get(pr *identity.Principal, p *mask.Profile) ([]byte, bool) {
	k := principalKey{claims: reflect.ValueOf(pr.Claims).UnsafePointer(), profile: p}
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if !ok || e.fields != fieldsOf(pr) {
		return nil, false
	}
	return e.json, true
}

func (c *principalCache) put(pr *identity.Principal, p *mask.Profile, enc []byte) {
	k := principalKey{claims: reflect.ValueOf(pr.Claims).UnsafePointer(), profile: p}
	e := principalEntry{claims: pr.Claims, fields: fieldsOf(pr), json: slices.Clone(enc)}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= principalCacheSize {
		c.m = make(map[principalKey]principalEntry, 64)
	}
	c.m[k] = e
	c.mu.Unlock()
}

// header is one request header kept for the record.
type header struct{ name, value string }

// appendHeaders appends the request's headers as json.Marshal writes
// EncodeInput's Request.Headers: credential headers and pseudo-headers
// left out, the others sorted by name, each value masked with p (clean:
// p's clean values). The map is read once (no lookup per sorted key)
// into a scratch array on the stack, the entries left out before
// sorting.
func appendHeaders(b []byte, m map[string]string, p *mask.Profile, clean *cleanSet) []byte {
	var buf [32]header
	hs := buf[:0]
	for k, v := range m {
		if strings.HasPrefix(k, ":") || isCredentialHeader(k) {
			continue
		}
		hs = append(hs, header{k, v})
	}
	if len(hs) <= 24 { // a map's keys are distinct: any order-preserving sort is the sort
		for i := 1; i < len(hs); i++ {
			for j := i; j > 0 && hs[j].name < hs[j-1].name; j-- {
				hs[j], hs[j-1] = hs[j-1], hs[j]
			}
		}
	} else {
		slices.SortFunc(hs, func(a, b header) int { return strings.Compare(a.name, b.name) })
	}
	b = append(b, '{')
	for i := range hs {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, hs[i].name)
		b = append(b, ':')
		if perRequestHeader(hs[i].name) {
			b = appendString(b, maskText(p, hs[i].value))
		} else {
			b = appendString(b, clean.maskText(p, hs[i].value))
		}
	}
	return append(b, '}')
}

// perRequestHeader names the headers whose value is new on every request
// (ids, trace context): not worth remembering, they would only push the
// values that do repeat out of the clean cache.
func perRequestHeader(name string) bool {
	switch name {
	case "x-request-id", "traceparent", "tracestate", "x-b3-traceid", "x-b3-spanid", "x-b3-parentspanid", "b3",
		"x-amzn-trace-id", "x-client-trace-id", "x-cloud-trace-context", "uber-trace-id":
		return true
	}
	return false
}

// isCredentialHeader is credentialHeaders[strings.ToLower(k)] without
// the lowering: for an ASCII name, strings.ToLower is ASCII lowering, so
// a case-insensitive comparison of the same length is the same answer;
// any other name takes the map's way.
func isCredentialHeader(k string) bool {
	for i := 0; i < len(k); i++ {
		if k[i] >= 0x80 {
			return credentialHeaders[strings.ToLower(k)]
		}
	}
	switch len(k) {
	case len("cookie"):
		return strings.EqualFold(k, "cookie")
	case len("authorization"):
		return strings.EqualFold(k, "authorization")
	case len("proxy-authorization"):
		return strings.EqualFold(k, "proxy-authorization")
	}
	return false
}

// appendTime appends t quoted as time.Time.MarshalJSON does; false for a
// time it refuses (year outside 0..9999, a zone offset of 24h or more).
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// appendTimeString appends t.Format(time.RFC3339Nano) quoted as
// json.Marshal quotes that string, without the string: the layout writes
// only digits, letters and "+-:.", which JSON does not escape, for every
// time (a year outside 0..9999 included).
func appendTimeString(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}

// plainJSON reports whether raw is a JSON-RPC id of the usual kinds
// json.Valid accepts with no need to ask it: an integer (-?(0|[1-9][0-9]*))
// or a string of printable ASCII without escapes. false says nothing.
func plainJSON(raw []byte) bool {
	if len(raw) == 0 || len(raw) > 64 {
		return false
	}
	if raw[0] == '"' {
		if len(raw) < 2 || raw[len(raw)-1] != '"' {
			return false
		}
		for _, c := range raw[1 : len(raw)-1] {
			if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
				return false
			}
		}
		return true
	}
	d := raw
	if d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || (d[0] == '0' && len(d) > 1) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// appendStrings appends s as json.Marshal writes a []string (nil: null).
func appendStrings(b []byte, s []string) []byte {
	if s == nil {
		return append(b, "null"...)
	}
	b = append(b, '[')
	for i, v := range s {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, v)
	}
	return append(b, ']')
}

// appendStringMap appends m as json.Marshal writes a map[string]string
// (keys sorted, nil: null).
func appendStringMap(b []byte, m map[string]string) []byte {
	if m == nil {
		return append(b, "null"...)
	}
	var buf [32]string
	keys := buf[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	n := 0
	for _, k := range keys {
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, m[k])
	}
	return append(b, '}')
}

// appendCompactJSON appends the valid JSON raw as json.Marshal writes a
// json.RawMessage: without the whitespace between tokens, with <, >, &,
// U+2028 and U+2029 escaped (they can only be in strings). Only the bytes
// compactSpecial marks need a look; the others are copied as they are. A
// backslash in a string escapes the byte after it, skipped with it.
func appendCompactJSON(b []byte, raw []byte) []byte {
	inString := false
	start := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if compactSpecial[c] == 0 {
			continue
		}
		switch {
		case c == '"':
			inString = !inString
		case !inString:
			if c == ' ' || c == '\t' || c == '\n' || c == '\r' { // between tokens
				b = append(b, raw[start:i]...)
				start = i + 1
			}
		case c == '\\':
			i++ // the escaped byte: not a quote ending the string
		case c == '<' || c == '>' || c == '&':
			b = append(b, raw[start:i]...)
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			start = i + 1
		case c == 0xE2 && i+2 < len(raw) && raw[i+1] == 0x80 && raw[i+2]&^1 == 0xA8:
			b = append(b, raw[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[raw[i+2]&0xF])
			i += 2
			start = i + 1
		}
	}
	return append(b, raw[start:]...)
}

// compactSpecial marks the bytes appendCompactJSON looks at: quotes,
// backslashes, whitespace (dropped between tokens, a space kept in a
// string), the HTML characters and the first byte of U+2028 and U+2029.
var compactSpecial = [256]uint8{'"': 1, '\\': 1, ' ': 1, '\t': 1, '\n': 1, '\r': 1, '<': 1, '>': 1, '&': 1, 0xE2: 1}

const hexDigits = "0123456789abcdef"

// appendString appends s quoted as json.Marshal quotes it.
func appendString(b []byte, s string) []byte { return jsontext.AppendQuoted(b, s) }
