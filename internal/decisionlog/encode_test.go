package decisionlog

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/airlock-mcp/airlock/internal/cputime"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// encodeLogger is a Logger as the worker encodes with, without a sink.
func encodeLogger() *Logger {
	return &Logger{path: "airlock/decision", labels: map[string]string{"id": "gw-1", "version": "1.2.3", "region": "eu<1>&"}}
}

// checkEncode fails t when the hand encoder's bytes differ from
// json.Marshal(l.Record(e)), the format consumers already read.
func checkEncode(t *testing.T, l *Logger, e *Entry) {
	t.Helper()
	want, werr := json.Marshal(l.Record(e))
	got, gerr := l.encode(e)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("errors differ: json.Marshal %v, encode %v", werr, gerr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("encode differs from json.Marshal\n got: %s\nwant: %s", got, want)
	}
}

func TestEncodeMatchesMarshal(t *testing.T) {
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.FixedZone("EST", -5*3600)
	}
	for _, tc := range []struct {
		name string
		mod  func(e *Entry)
	}{
		{"full entry", func(*Entry) {}},
		{"before policy (no input, no result)", func(e *Entry) { e.Input, e.Result = nil, nil }},
		{"no optional fields", func(e *Entry) {
			e.TraceID, e.SpanID, e.PolicyVersion, e.XRequestID, e.Target, e.Reason, e.Duration = "", "", "", "", "", "", 0
		}},
		{"duration and reason", func(e *Entry) {
			e.Duration = 1234567
			e.Reason = "denied: <script>&\u2028 ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
		}},
		{"awkward strings", func(e *Entry) {
			e.DecisionID = "d\x00\x1f\"\\\t\n\r\b\f"
			e.XRequestID = "bad utf8 \xff\xfe and \u2029 and é"
			e.Input.MCP.Tool = "<tool>&"
			e.Input.Request.Headers = map[string]string{"x-b": "2", "x-a": "<1>", "Authorization": "Bearer x", ":authority": "h", "x-\u2028": "\xff"}
		}},
		{"no headers, nil slices", func(e *Entry) {
			e.Input.Request.Headers = nil
			e.Input.Target.ScopesRequired = nil
			e.Input.Principal.Scopes, e.Input.Principal.Groups, e.Input.Principal.Audience = nil, nil, nil
			e.Input.Grants = nil
		}},
		{"no principal", func(e *Entry) { e.Input.Principal = nil }},
		{"principal without claims", func(e *Entry) {
			e.Input.Principal.Claims = map[string]any{}
			e.Input.Principal.IssuerName, e.Input.Principal.User, e.Input.Principal.TokenID = "okta", "u1", "jti-1"
		}},
		{"claims of every type", func(e *Entry) {
			e.Input.Principal.Claims = map[string]any{"n": 1.5e300, "i": json.Number("12"), "b": true, "z": nil,
				"a": []any{"x<", 2.0}, "o": map[string]any{"password": "hunter2"}, "<k>": "v&"}
		}},
		{"raw JSON with whitespace and html", func(e *Entry) {
			e.Input.MCP.ID = json.RawMessage(" \"id <1>\" ")
			e.Input.MCP.Arguments = json.RawMessage("{ \"q\" : \"a < b & \u2028 c\" ,\n\t\"n\": [ 1 , 2 ] , \"e\":\"\\\"<\\\\\" }")
		}},
		{"arguments not JSON", func(e *Entry) { e.Input.MCP.Arguments = json.RawMessage(`{"q":`) }},
		{"id not JSON", func(e *Entry) { e.Input.MCP.ID = json.RawMessage(`{`) }},
		{"no id, no arguments", func(e *Entry) { e.Input.MCP.ID, e.Input.MCP.Arguments = nil, nil }},
		{"approval", func(e *Entry) {
			e.Result.Approval = &policy.Approval{ApproverGroups: nil, Threshold: 2, GrantDuration: 90 * time.Minute, SingleUse: true,
				BreakGlassGroups: []string{"sre"}}
			e.Result.MaskingProfile, e.Result.Grant = "strict", "gr_1"
		}},
		{"approval without duration or break glass", func(e *Entry) {
			e.Result.Approval = &policy.Approval{ApproverGroups: []string{"a"}, BreakGlassGroups: []string{}}
		}},
		{"times in a zone", func(e *Entry) {
			e.Time = time.Date(2026, 3, 8, 1, 2, 3, 4, ny)
			e.Input.Principal.Expiry = time.Date(2026, 3, 8, 1, 2, 3, 0, ny)
			e.Input.Grants[0].Expiry = time.Date(2026, 11, 1, 1, 30, 0, 500, time.FixedZone("odd", 5*3600+1800+17))
		}},
		{"input time far out", func(e *Entry) { e.Input.Time = time.Date(12000, 1, 2, 3, 4, 5, 6, time.UTC) }},
		{"input time before year 0", func(e *Entry) { e.Input.Time = time.Date(-42, 1, 2, 3, 4, 5, 0, ny) }},
		{"ids", func(e *Entry) { e.Input.MCP.ID = json.RawMessage(`"req <1> & x"`) }},
		{"negative id", func(e *Entry) { e.Input.MCP.ID = json.RawMessage(`-7`) }},
		{"id with leading zero", func(e *Entry) { e.Input.MCP.ID = json.RawMessage(`07`) }},
		{"zero times", func(e *Entry) {
			e.Time, e.Input.Time, e.Input.Principal.Expiry, e.Input.Grants[0].Expiry = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		}},
		{"expiry json.Marshal refuses (year 10000)", func(e *Entry) {
			e.Input.Principal.Expiry = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
		}},
		{"grant expiry before year 0", func(e *Entry) {
			e.Input.Grants[0].Expiry = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)
		}},
		{"timestamp json.Marshal refuses", func(e *Entry) { e.Time = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC) }},
		{"zone of 24h", func(e *Entry) {
			e.Input.Principal.Expiry = time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("far", 24*3600))
		}},
		{"two grants", func(e *Entry) {
			e.Input.Grants = append(e.Input.Grants, policy.GrantInput{ID: "gr_2", Arguments: nil, Expiry: time.Unix(5, 0)})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := entry(0)
			e.Reason = "ok"
			tc.mod(&e)
			checkEncode(t, encodeLogger(), &e)
		})
	}
}

// TestEncodePrincipalCache: a cached principal is the principal logged,
// claims masked, on every call, whatever other principals came between.
func TestEncodePrincipalCache(t *testing.T) {
	l := encodeLogger()
	for round := range 3 {
		for i := range principalCacheSize + 10 {
			e := entry(0)
			if i%100 == 0 {
				e.Input.Principal.Claims = map[string]any{"sub": "u", "i": float64(i), "round": float64(round), "secret": awsKey}
				checkEncode(t, l, &e)
				continue
			}
			if b, err := l.encode(&e); err != nil || bytes.Contains(b, []byte(awsKey)) {
				t.Fatalf("encode: %v, %s", err, b)
			}
		}
	}
	shared := &identity.Principal{Subject: "s", Scopes: []string{"a", "b"}, Claims: map[string]any{"a": "1"}}
	e := entry(0)
	e.Input.Principal = shared
	checkEncode(t, l, &e)
	checkEncode(t, l, &e) // from the cache
	// The same claims map with any other field changed is encoded anew.
	for _, mod := range []func(p *identity.Principal){
		func(p *identity.Principal) { p.Subject = "other" },
		func(p *identity.Principal) { p.Scopes = p.Scopes[:1] },
		func(p *identity.Principal) { p.Scopes = []string{"a", "c"} },
		func(p *identity.Principal) { p.Expiry = p.Expiry.Add(time.Second) },
		func(p *identity.Principal) { p.TokenID = "jti" },
		func(p *identity.Principal) { p.Groups = []string{} },
	} {
		cp := *shared
		mod(&cp)
		e.Input.Principal = &cp
		checkEncode(t, l, &e)
	}
}

var fuzzStrict, _ = mask.Builtin(mask.StrictProfile)

// FuzzEncodeRecord compares the hand encoder with json.Marshal over
// fuzzed strings, raw JSON and times in every field they reach.
func FuzzEncodeRecord(f *testing.F) {
	f.Add("d1", "reason <x> & ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789", "x-h", "v\u2028", `{"q": "a&b", "n": [1, 2.5e3]}`, `7`, "claim \xff", int64(1_800_000_000_000_000_000), true)
	f.Add("", "", "", "", ``, ``, "", int64(0), false)
	f.Add("\x00", "\"\\", ":path", "\t", ` [ ] `, `"a\u003c"`, "", int64(-62135596800_000_000_0), false)
	f.Fuzz(func(t *testing.T, id, reason, hk, hv, args, rpcID, claim string, ns int64, batch bool) {
		e := entry(0)
		e.DecisionID, e.Reason, e.XRequestID = id, reason, hv
		e.Time = time.Unix(0, ns)
		e.Input.MCP.Arguments = json.RawMessage(args)
		e.Input.MCP.ID = json.RawMessage(rpcID)
		e.Input.MCP.Batch = batch
		e.Input.MCP.URI = reason
		e.Input.Request.Path = hv
		e.Input.Request.Headers[hk] = hv
		e.Input.Principal.Claims = map[string]any{"c": claim, claim: []any{claim}}
		e.Input.Principal.Expiry = time.Unix(ns/7, ns%1e9)
		e.Input.Grants[0].Arguments = json.RawMessage(args)
		e.Result.Reason = reason
		e.Result.Grant = claim
		e.Input.Request.Headers["x-request-id"] = hv
		e.Input.Request.Headers["x-claim"] = claim
		l := encodeLogger()
		checkEncode(t, l, &e)
		checkEncode(t, l, &e) // the caches warm
		l.opts.Profiles = func(string) *mask.Profile { return fuzzStrict }
		checkEncode(t, l, &e) // another profile, same values
	})
}

// BenchmarkEncodeRecord: the worker's encoding of one record.
func BenchmarkEncodeRecord(b *testing.B) {
	l := encodeLogger()
	e := entry(0)
	e.Duration = 12345
	for _, bc := range []struct {
		name string
		fn   func() ([]byte, error)
	}{
		{"json.Marshal", func() ([]byte, error) { return json.Marshal(l.Record(&e)) }},
		{"encode", func() ([]byte, error) { return l.encode(&e) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.fn(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestEncodeCleanHeaderCache: header values, paths, URIs and reasons come
// from the cache only when the masker left them unchanged; a secret is
// masked on every record, however often it repeats, and the bytes stay
// json.Marshal's.
func TestEncodeCleanHeaderCache(t *testing.T) {
	l := encodeLogger()
	for i := range cleanCacheSize + 50 {
		e := entry(0)
		e.Input.Request.Headers["x-secret"] = "aws " + awsKey
		e.Input.Request.Headers["x-n"] = string(rune('a' + i%26)) // churn
		e.Input.Request.Path = "/mcp/github?access_token=" + ghToken
		e.Input.MCP.URI = []string{"file:///x", "mem://note?token=" + ghToken}[i%2]
		e.Reason = []string{"denied", "denied: token " + ghToken}[i%2]
		e.Result.Reason = []string{"aws " + awsKey, "ok"}[i%2]
		if i%97 == 0 {
			checkEncode(t, l, &e)
			continue
		}
		b, err := l.encode(&e)
		if err != nil || bytes.Contains(b, []byte(awsKey)) || bytes.Contains(b, []byte(ghToken)) {
			t.Fatalf("record %d: %v, %s", i, err, b)
		}
	}
}

// realisticEntries are n decisions as the gateway logs them under the
// load driver (test/bench/authzload's EnvoyCheckRequest): the request's
// 15 headers (pseudo-headers and authorization included) with a new
// x-request-id, session id and content length on every call, an MCP
// tools/call with its arguments, the verifier's cached principal (one
// shared claims map), no grants.
func realisticEntries(n int) []Entry {
	pr := &identity.Principal{Issuer: "https://idp.bench", Subject: "user-7", ClientID: "agent-7", Scopes: []string{"mcp", "repo"},
		Groups: []string{"eng", "payments"}, Audience: []string{"https://gw.bench/mcp/github"}, Expiry: time.Unix(1_900_000_000, 0).UTC(),
		Claims: map[string]any{"iss": "https://idp.bench", "sub": "user-7", "aud": "https://gw.bench/mcp/github", "exp": 1.9e9,
			"iat": 1.8e9, "scope": "mcp repo", "client_id": "agent-7", "groups": []any{"eng", "payments"}}}
	es := make([]Entry, n)
	for i := range es {
		reqID := fmt.Sprintf("6f1e0c2a-4b8e-4e1a-9a53-%012d", i)
		args := fmt.Sprintf(`{"owner":"acme","repo":"payments-%d","query":"is:open label:bug sort:updated-desc","perPage":20,"after":"c%011d"}`, i%50, i)
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"search_issues","arguments":%s}}`, 1_000_000_000+i, args)
		in := &policy.Input{
			Principal: pr,
			Target:    policy.TargetInput{Name: "github", Resource: "https://gw.bench/mcp/github", ScopesRequired: []string{"mcp"}},
			MCP: policy.MessageInput{Method: "tools/call", Kind: "request", ID: json.RawMessage(strconv.Itoa(1_000_000_000 + i)),
				Tool: "search_issues", Arguments: json.RawMessage(args), ProtocolVersion: "2025-06-18", SessionID: fmt.Sprintf("8d3c2a91f0e1%06x%06d", 0xabcdef, i%997)},
			Request: policy.RequestInput{Method: "POST", Path: "/mcp/github", Host: "gw.bench", Headers: map[string]string{
				":authority": "gw.bench", ":method": "POST", ":path": "/mcp/github", ":scheme": "https",
				"authorization":             "Bearer eyJhbGciOiJFUzI1NiIsImtpZCI6ImJlbmNoIn0.eyJzdWIiOiJ1c2VyLTcifQ.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmU",
				"accept":                    "application/json, text/event-stream",
				"content-type":              "application/json",
				"content-length":            strconv.Itoa(len(body)),
				"mcp-protocol-version":      "2025-06-18",
				"mcp-session-id":            fmt.Sprintf("8d3c2a91f0e1%06x%06d", 0xabcdef, i%997),
				"user-agent":                "claude-code/2.1.3 (mcp-client)",
				"x-forwarded-for":           "10.20.3.41",
				"x-forwarded-proto":         "https",
				"x-request-id":              reqID,
				"x-envoy-auth-partial-body": "false",
			}},
			Time: time.Unix(1_800_000_000, int64(i)).UTC(),
		}
		d := policy.Decision{Outcome: "allow", Reason: "allowed by rule github.read", Record: true, PolicyVersion: "rev-1"}
		es[i] = Entry{DecisionID: fmt.Sprintf("01JD%022d", i), Time: time.Unix(1_800_000_000, int64(i)), Input: in, Result: &d,
			Outcome: "allow", Status: 200, PolicyVersion: "rev-1", Target: "github", XRequestID: reqID,
			TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", SpanID: "00f067aa0ba902b7", Duration: 41 * time.Microsecond}
	}
	return es
}

// TestEncodeRealistic: the realistic records are json.Marshal's bytes,
// with the caches cold and warm.
func TestEncodeRealistic(t *testing.T) {
	for _, l := range []*Logger{encodeLogger(), benchLogger(t)} {
		es := realisticEntries(64)
		for range 2 {
			for i := range es {
				checkEncode(t, l, &es[i])
			}
		}
	}
}

// benchLogger is encodeLogger with the load driver's masking profile
// (test/bench/authzload: "default" with two more keys).
func benchLogger(tb testing.TB) *Logger {
	p, err := mask.Compile(mask.ProfileConfig{Name: "bench", Extends: "default", Keys: []string{"password", "client_secret"}})
	if err != nil {
		tb.Fatal(err)
	}
	l := encodeLogger()
	l.opts.Profiles = func(string) *mask.Profile { return p }
	return l
}

// TestEncodeProfilesApart: records of targets with different profiles,
// interleaved, more profiles than the clean cache keeps sets for: each
// record's header values are masked with its own target's profile (one
// masks a value the others leave alone).
func TestEncodeProfilesApart(t *testing.T) {
	profiles := map[string]*mask.Profile{}
	for i := range cleanProfiles + 2 {
		c := mask.ProfileConfig{Name: fmt.Sprint("t", i), Extends: "default"}
		if i%2 == 1 {
			c.Patterns = []mask.PatternConfig{{Type: "ct", Regexp: "application/json"}}
		}
		p, err := mask.Compile(c)
		if err != nil {
			t.Fatal(err)
		}
		profiles[c.Name] = p
	}
	l := encodeLogger()
	l.opts.Profiles = func(target string) *mask.Profile { return profiles[target] }
	es := realisticEntries(8)
	for i := range 200 {
		e := es[i%len(es)]
		e.Target = fmt.Sprint("t", (i/3)%len(profiles))
		checkEncode(t, l, &e)
	}
}

// BenchmarkEncodeRealistic: the worker's encoding of a realistic record
// (realisticEntries: every call new), caches warm as under load;
// cpu-ns/op is the process's CPU time (the collector's too).
func BenchmarkEncodeRealistic(b *testing.B) {
	l := benchLogger(b)
	es := realisticEntries(4096)
	var buf []byte
	b.ReportAllocs()
	i := 0
	cpu := cputime.Process()
	for b.Loop() {
		var err error
		if buf, err = l.appendEncoded(buf[:0], &es[i%len(es)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
}

// BenchmarkSendFile: the worker's whole send of a batch of 100 realistic
// records to the file sink (encoding, lines, write); cpu-ns/record is
// the process's CPU time (the collector's too) per record.
func BenchmarkSendFile(b *testing.B) {
	f, err := os.OpenFile(filepath.Join(b.TempDir(), "decisions.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	l := sendLogger(benchLogger(b), &lineSink{w: f})
	es := realisticEntries(4096)
	b.ReportAllocs()
	i := 0
	cpu := cputime.Process()
	for b.Loop() {
		if i+100 > len(es) {
			i = 0
			if err := f.Truncate(0); err != nil {
				b.Fatal(err)
			}
		}
		l.send(es[i : i+100])
		i += 100
	}
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N*100), "cpu-ns/record")
}

// TestIsCredentialHeader: the ASCII fast path answers as the map lookup
// of the lowered name does, non-ASCII names (which strings.ToLower may
// lower to ASCII: the Kelvin sign to k) included.
func TestIsCredentialHeader(t *testing.T) {
	for _, k := range []string{"authorization", "Authorization", "AUTHORIZATION", "proxy-authorization", "Proxy-Authorization",
		"cookie", "Cookie", "COOKIE", "coo\u212aie", "COO\u212aIE", "cookies", "cooki", "x-authorization", "authorizatio",
		"", ":authority", "set-cookie", "proxy_authorization", "authorization\x00", "\xffcookie", "cook\xff"} {
		if got, want := isCredentialHeader(k), credentialHeaders[strings.ToLower(k)]; got != want {
			t.Errorf("isCredentialHeader(%q) = %v, want %v", k, got, want)
		}
	}
}

func FuzzIsCredentialHeader(f *testing.F) {
	for _, k := range []string{"authorization", "Cookie", "coo\u212aie", "PROXY-AUTHORIZATION", "x-request-id", ""} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, k string) {
		if got, want := isCredentialHeader(k), credentialHeaders[strings.ToLower(k)]; got != want {
			t.Fatalf("isCredentialHeader(%q) = %v, want %v", k, got, want)
		}
	})
}

// TestEncodeHeaders: the headers object is json.Marshal's for every
// shape: credential names in any case (and lowered from non-ASCII),
// pseudo-headers, more headers than the insertion sort takes, names that
// share long prefixes, values the masker changes.
func TestEncodeHeaders(t *testing.T) {
	many := map[string]string{}
	for i := range 60 {
		many[fmt.Sprintf("x-h-%02d", (i*37)%60)] = fmt.Sprint(i)
	}
	many["Authorization"], many["x-secret"] = "Bearer "+ghToken, "aws "+awsKey
	for _, h := range []map[string]string{
		nil,
		{},
		{":path": "/", "authorization": "x", "Cookie": "y", "PROXY-AUTHORIZATION": "z"},
		{"coo\u212aie": "s=" + ghToken, "x-forwarded-for": "1", "x-forwarded-proto": "https", "x-forwarded": "", "x": "<&>"},
		{"x-a": awsKey, "x-b": "token=" + ghToken, "x-c": "plain", "x-a\u2028": "\xff"},
		many,
	} {
		for _, l := range []*Logger{encodeLogger(), benchLogger(t)} {
			for range 3 { // caches cold, then warm
				e := entry(0)
				e.Input.Request.Headers = h
				checkEncode(t, l, &e)
			}
		}
	}
}

// maskJSONChecked is maskJSON as it was, validating every output: the
// oracle of maskJSON's shortcut.
func maskJSONChecked(p *mask.Profile, raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage("null")
	}
	out, _, err := p.MaskJSON(raw)
	if err != nil || !json.Valid(out) {
		return unreadable
	}
	return out
}

// FuzzMaskJSONValid: maskJSON, which checks only a changed output with
// json.Valid, answers as maskJSONChecked for every document and profile.
func FuzzMaskJSONValid(f *testing.F) {
	for _, s := range []string{`{"q":"bug"}`, `{"token":"` + ghToken + `"}`, `[1,2,{"a":null}]`, `"x"`, `01`, `1.`, `-`, `{"a":1,}`,
		"\"\xff\"", "\"\x01\"", `"\ud800"`, `{"a":"\u0041KIAIOSFODNN7EXAMPLE"}`, ` 7 `, `[`, `{"password":"hunter2"}`, "{\"q\":\"a\u2028\"}",
		`{"owner":"acme","repo":"payments-1","query":"is:open label:bug sort:updated-desc","perPage":20,"after":"c00000000001"}`, `1e999`, `tru`} {
		f.Add([]byte(s))
	}
	strict, _ := mask.Builtin(mask.StrictProfile)
	off, _ := mask.Builtin(mask.OffProfile)
	profiles := []*mask.Profile{mask.Default(), strict, off, benchLogger(f).profile("")}
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, p := range profiles {
			if got, want := maskJSON(p, doc), maskJSONChecked(p, doc); !bytes.Equal(got, want) {
				t.Fatalf("%s: maskJSON(%q) = %q, want %q", p.Name(), doc, got, want)
			}
		}
	})
}

// TestPlainJSON: what plainJSON accepts json.Valid accepts, and the
// usual JSON-RPC ids are accepted.
func TestPlainJSON(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		plain bool
	}{
		{`7`, true}, {`0`, true}, {`-12`, true}, {`1000000123`, true}, {`"abc-1 x"`, true}, {`""`, true},
		{`01`, false}, {`-`, false}, {`-0`, true}, {`1.5`, false}, {`1e3`, false}, {`"a\"`, false}, {`"a\nb"`, false},
		{`"`, false}, {"\"\xff\"", false}, {"\"\x7f\"", false}, {`null`, false}, {` 7`, false}, {`"<&>"`, true}, {``, false},
	} {
		if got := plainJSON([]byte(tc.raw)); got != tc.plain {
			t.Errorf("plainJSON(%q) = %v, want %v", tc.raw, got, tc.plain)
		}
		if tc.plain && !json.Valid([]byte(tc.raw)) {
			t.Errorf("%q: plain but not valid", tc.raw)
		}
	}
}

func FuzzPlainJSON(f *testing.F) {
	for _, s := range []string{`7`, `-0`, `01`, `"a"`, `"\u0041"`, `1e3`, `""`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if plainJSON(raw) && !json.Valid(raw) {
			t.Fatalf("plainJSON(%q) but json.Valid refuses it", raw)
		}
	})
}

// sendLogger readies l (encodeLogger, benchLogger) to send batches to s
// without a worker.
func sendLogger(l *Logger, s sink) *Logger {
	l.sink = s
	l.cfg.BatchSize, l.cfg.MaxRetries, l.cfg.RetryBackoff = 100, 2, time.Millisecond
	l.log = slog.New(slog.DiscardHandler)
	l.written = prometheus.NewCounter(prometheus.CounterOpts{Name: "w"})
	l.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "d"}, []string{"reason"})
	l.batches = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "b"}, []string{"result"})
	return l
}

// writes records every Write it is given; the first fail of them fail.
type writes struct {
	got  [][]byte
	fail int
}

func (w *writes) Write(p []byte) (int, error) {
	w.got = append(w.got, bytes.Clone(p))
	if w.fail > 0 {
		w.fail--
		return 0, errors.New("disk full")
	}
	return len(p), nil
}

// TestLineSinkWritesLines: a batch reaches a line sink as one Write of
// its records, each json.Marshal's bytes and a newline, a record that
// cannot be encoded left out; a retried batch is written again whole;
// the arena's reuse from batch to batch changes nothing.
func TestLineSinkWritesLines(t *testing.T) {
	w := &writes{fail: 1}
	l := sendLogger(encodeLogger(), &lineSink{w: w})
	var want [][]byte
	for round := range 3 {
		batch := []Entry{entry(round), entry(round + 1), entry(round + 2)}
		batch[0].Input.Request.Headers["x-round"] = strings.Repeat("r", round*300)
		batch[1].Time = time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC) // json.Marshal refuses it: dropped
		var lines []byte
		for _, i := range []int{0, 2} {
			j, err := json.Marshal(l.Record(&batch[i]))
			if err != nil {
				t.Fatal(err)
			}
			lines = append(append(lines, j...), '\n')
		}
		want = append(want, lines)
		if round == 0 {
			want = append(want, lines) // the failed write, retried
		}
		l.send(batch)
	}
	if len(w.got) != len(want) {
		t.Fatalf("%d writes, want %d", len(w.got), len(want))
	}
	for i := range want {
		if !bytes.Equal(w.got[i], want[i]) {
			t.Fatalf("write %d:\n got: %s\nwant: %s", i, w.got[i], want[i])
		}
	}
	if got := testutil.ToFloat64(l.dropped.WithLabelValues(DropEncode)); got != 3 {
		t.Errorf("dropped (encode) %v, want 3", got)
	}
	if got := testutil.ToFloat64(l.written); got != 6 {
		t.Errorf("written %v, want 6", got)
	}
	// Write (the sink interface's way) writes the same lines.
	direct := &writes{}
	if err := (&lineSink{w: direct}).Write([][]byte{[]byte(`{"a":1}`), []byte(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if len(direct.got) != 1 || string(direct.got[0]) != "{\"a\":1}\n{}\n" {
		t.Errorf("Write wrote %q", direct.got)
	}
}

// appendCompactJSONRef is appendCompactJSON as it was, byte by byte with
// its state: the oracle of the table-driven loop, for any bytes.
func appendCompactJSONRef(b []byte, raw []byte) []byte {
	inString, escaped := false, false
	start := 0
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if inString {
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
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
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			b = append(b, raw[start:i]...)
			start = i + 1
		}
	}
	return append(b, raw[start:]...)
}

// FuzzCompactJSON: appendCompactJSON writes what the state machine it
// replaced wrote for any bytes, and for valid JSON what json.Marshal
// writes for a json.RawMessage.
func FuzzCompactJSON(f *testing.F) {
	for _, s := range []string{`{ "a" : "x < y & \u2028" , "b" : [ 1 , 2 ] }`, "\"\\\"\\\\<\"", "\"\xe2\x80\xa8\xe2\x80\xa9\xe2\x80\"",
		` "a\` + "\xe2\x80\xa8" + `" `, `\ <`, "\xe2\x80\xa8 x", `{"q":"is:open label:bug","n":20}`, `"\\"  `, `" \t"`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := appendCompactJSON([]byte("p"), raw)
		if want := appendCompactJSONRef([]byte("p"), raw); !bytes.Equal(got, want) {
			t.Fatalf("appendCompactJSON(%q) = %q, the state machine wrote %q", raw, got, want)
		}
		if json.Valid(raw) {
			want, err := json.Marshal(json.RawMessage(raw))
			if err != nil || !bytes.Equal(got[1:], want) {
				t.Fatalf("appendCompactJSON(%q) = %q, json.Marshal %q (%v)", raw, got[1:], want, err)
			}
		}
	})
}

// BenchmarkCompactJSON: the table-driven appendCompactJSON against the
// state machine it replaced, over the realistic record's arguments.
func BenchmarkCompactJSON(b *testing.B) {
	raw := realisticEntries(1)[0].Input.MCP.Arguments
	buf := make([]byte, 0, 1024)
	for _, bc := range []struct {
		name string
		fn   func(b, raw []byte) []byte
	}{{"state-machine", appendCompactJSONRef}, {"table", appendCompactJSON}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(raw)))
			cpu := cputime.Process()
			for b.Loop() {
				buf = bc.fn(buf[:0], raw)
			}
			b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// roundTrip answers every request with 200 after reading its body,
// keeping the last body and its declared length (no network).
type roundTrip struct {
	body    []byte
	length  int64
	chunked bool
}

func (rt *roundTrip) RoundTrip(req *http.Request) (*http.Response, error) {
	b, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	rt.body, rt.length, rt.chunked = b, req.ContentLength, len(req.TransferEncoding) > 0
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

// TestHTTPSinkBody: the POST's body is the records as a JSON array, its
// length declared (not chunked).
func TestHTTPSinkBody(t *testing.T) {
	rt := &roundTrip{}
	s := &httpSink{url: "http://sink.test/logs", client: &http.Client{Transport: rt}}
	for _, recs := range [][][]byte{{[]byte(`{"a":1}`)}, {[]byte(`{"a":1}`), []byte(`{"b":"x,y"}`), []byte(`{}`)}} {
		if err := s.Write(recs); err != nil {
			t.Fatal(err)
		}
		want := "[" + string(bytes.Join(recs, []byte(","))) + "]"
		if string(rt.body) != want || rt.length != int64(len(want)) || rt.chunked {
			t.Fatalf("body %q (length %d, chunked %v), want %q", rt.body, rt.length, rt.chunked, want)
		}
	}
}

// BenchmarkSendHTTP: a batch of 100 realistic records to the http sink
// (a transport that reads the body and answers 200, no network); B/op is
// per batch.
func BenchmarkSendHTTP(b *testing.B) {
	l := sendLogger(benchLogger(b), &httpSink{url: "http://sink.test/logs", client: &http.Client{Transport: &roundTrip{}}})
	es := realisticEntries(4096)
	b.ReportAllocs()
	i := 0
	cpu := cputime.Process()
	for b.Loop() {
		if i+100 > len(es) {
			i = 0
		}
		l.send(es[i : i+100])
		i += 100
	}
	b.ReportMetric(float64(cputime.Process()-cpu)/float64(b.N*100), "cpu-ns/record")
}
