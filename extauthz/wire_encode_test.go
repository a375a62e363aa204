package extauthz

import (
	"bytes"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// checkEncode holds appendCheckResponse to toCheckResponse: an error where
// proto.Marshal errs, else what a deterministic proto.Marshal writes
// (which proto.Unmarshal reads back as toCheckResponse's message).
func checkEncode(t *testing.T, r *Result) {
	t.Helper()
	want := toCheckResponse(r)
	det, merr := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	got, gerr := appendCheckResponse(nil, r)
	if (merr == nil) != (gerr == nil) {
		t.Fatalf("errors differ: proto.Marshal %v, appendCheckResponse %v", merr, gerr)
	}
	if merr != nil {
		return
	}
	var read authv3.CheckResponse
	if err := proto.Unmarshal(got, &read); err != nil {
		t.Fatalf("proto.Unmarshal of appendCheckResponse: %v", err)
	}
	if !proto.Equal(&read, want) {
		t.Fatalf("appendCheckResponse reads back as\n%v\nwant\n%v", &read, want)
	}
	if !bytes.Equal(got, det) {
		t.Fatalf("appendCheckResponse differs from a deterministic proto.Marshal:\n got %.300x\nwant %.300x", got, det)
	}
	// What the codec asks for (AppendWire(nil)): the same bytes, in a
	// buffer of their size; appended to something, kept after it.
	if enc, err := (checkResponse{r}).AppendWire(nil); err != nil || !bytes.Equal(enc, det) || cap(enc) != len(enc) {
		t.Fatalf("AppendWire(nil) = %.300x (cap %d), %v", enc, cap(enc), err)
	}
	pre, err := (checkResponse{r}).AppendWire([]byte("pre"))
	if err != nil || !bytes.Equal(pre, append([]byte("pre"), det...)) {
		t.Fatalf("appended to a prefix: %.300x, %v", pre, err)
	}
}

func TestAppendCheckResponse(t *testing.T) {
	long := strings.Repeat("v", 200)   // lengths of two varint bytes
	huge := strings.Repeat("w", 20000) // three
	md := &wire.Decision{DecisionID: "d1", Target: "github", Principal: "alice", ClientID: "agent", Issuer: "https://issuer",
		MaskingProfile: "default", Record: true, PolicyVersion: "v1", Protocol: "2025-06-18", SessionID: "s-1", Method: "tools/call", Tool: "search"}
	batch := *md
	batch.Batch, batch.Methods, batch.Tools, batch.IDs = true, []string{"ping", "tools/call"}, []string{"", "read"}, []string{"1", `"b"`}
	badMD := *md
	badMD.Principal = "caf\xc3"
	allow := func(f func(r *Result)) *Result {
		r := &Result{Outcome: OutcomeAllow, Status: 200, DecisionID: "d1",
			SetHeaders:    []Header{{"authorization", "Bearer ghp_x"}, {wire.HeaderPrincipal, "alice"}, {wire.HeaderDecisionID, "d1"}},
			RemoveHeaders: []string{"x-airlock-grant", "cookie"}, Metadata: md}
		if f != nil {
			f(r)
		}
		return r
	}
	deny := func(status int, f func(r *Result)) *Result {
		r := &Result{Outcome: OutcomeDeny, Status: status, Reason: "policy denied the call", DecisionID: "d2",
			ResponseHeaders: []Header{{"content-type", "application/json"}}, Body: []byte(`{"jsonrpc":"2.0","id":7,"error":{"code":-32001}}`)}
		if f != nil {
			f(r)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    *Result
	}{
		{"allow", allow(nil)},
		{"allow, nothing set", &Result{Status: 200}},
		{"allow, batch metadata", allow(func(r *Result) { r.Metadata = &batch })},
		{"allow, metadata not valid UTF-8 is left out", allow(func(r *Result) { r.Metadata = &badMD })},
		{"allow, empty header name and value", allow(func(r *Result) { r.SetHeaders = []Header{{"", ""}, {"a", ""}, {"", "b"}} })},
		{"allow, long values", allow(func(r *Result) {
			r.SetHeaders = append(r.SetHeaders, Header{"x-long", long}, Header{long, huge})
			r.RemoveHeaders = append(r.RemoveHeaders, huge)
			m := *md
			m.Tool = huge
			r.Metadata = &m
		})},
		{"allow, many headers", allow(func(r *Result) {
			for range 50 {
				r.SetHeaders = append(r.SetHeaders, Header{"x-h", long})
			}
		})},
		{"allow, header not valid UTF-8", allow(func(r *Result) { r.SetHeaders[1].Value = "\xff" })},
		{"allow, header name not valid UTF-8", allow(func(r *Result) { r.SetHeaders[0].Name = "a\xc3" })},
		{"allow, removed header not valid UTF-8", allow(func(r *Result) { r.RemoveHeaders = []string{"\xfe"} })},
		{"allow ignores deny fields", allow(func(r *Result) { r.Reason, r.Body, r.ResponseHeaders = "\xff", []byte("\xff"), []Header{{"\xff", ""}} })},
		{"deny 403", deny(403, nil)},
		{"deny 401", deny(401, func(r *Result) {
			r.ResponseHeaders = append(r.ResponseHeaders, Header{"www-authenticate", `Bearer resource_metadata="https://gw.test/.well-known/oauth-protected-resource/mcp/github"`})
		})},
		{"deny 400", deny(400, nil)},
		{"deny 405", deny(405, nil)},
		{"deny 413", deny(413, nil)},
		{"deny 415", deny(415, nil)},
		{"deny 404", deny(404, nil)},
		{"deny 500", deny(500, func(r *Result) { r.Outcome = OutcomeError })},
		{"denied with 200", deny(200, func(r *Result) { r.Denied = true })},
		{"deny, status 0", deny(0, nil)},
		{"deny, negative status", deny(-1, nil)},
		{"deny, status over int32", deny(1<<33+403, nil)},
		{"deny, nothing else", &Result{Status: 403}},
		{"deny, no reason, no body, no headers", deny(403, func(r *Result) { r.Reason, r.Body, r.ResponseHeaders, r.DecisionID = "", nil, nil, "" })},
		{"deny, long body and reason", deny(403, func(r *Result) { r.Body, r.Reason = []byte(huge), long })},
		{"deny with metadata", deny(403, func(r *Result) { r.Metadata = md })},
		{"deny, bad metadata", deny(403, func(r *Result) { r.Metadata = &badMD })},
		{"deny, body not valid UTF-8", deny(403, func(r *Result) { r.Body = []byte("a\xff") })},
		{"deny, reason not valid UTF-8", deny(403, func(r *Result) { r.Reason = "\xc3" })},
		{"deny, decision id not valid UTF-8", deny(403, func(r *Result) { r.DecisionID = "\xc3" })},
		{"deny, header not valid UTF-8", deny(403, func(r *Result) { r.ResponseHeaders[0].Value = "\xc3(" })},
		{"deny ignores allow fields", deny(403, func(r *Result) { r.SetHeaders, r.RemoveHeaders = []Header{{"\xff", "\xff"}}, []string{"\xff"} })},
	} {
		t.Run(tc.name, func(t *testing.T) { checkEncode(t, tc.r) })
	}
}

// TestEncodeCheckResponseAllocs: the answer is one allocation.
func TestEncodeCheckResponseAllocs(t *testing.T) {
	r := &Result{Status: 200, SetHeaders: []Header{{"a", "b"}}, RemoveHeaders: []string{"authorization"}, Metadata: &wire.Decision{DecisionID: "d", Record: true}}
	if _, err := encodeCheckResponse(r); err != nil { // warm the pool
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := encodeCheckResponse(r); err != nil {
			t.Fatal(err)
		}
	}); n > 1 {
		t.Fatalf("%v allocations per answer, want 1", n)
	}
}

// FuzzAppendCheckResponse: appendCheckResponse is toCheckResponse on the
// wire.
func FuzzAppendCheckResponse(f *testing.F) {
	f.Add(200, false, "", []byte(nil), "authorization", "Bearer x", "cookie", "d1", "alice", "search", true, false)
	f.Add(403, false, "denied", []byte(`{"jsonrpc":"2.0"}`), "content-type", "application/json", "", "d2", "", "", false, false)
	f.Add(200, true, "pending", []byte("{}"), "", "", "", "d3", "bob", "", true, true)
	f.Add(401, false, "\xff", []byte("\xc3"), "www-authenticate", "Bearer", "x", "d4", "\xfe", "t", true, true)
	f.Fuzz(func(t *testing.T, status int, denied bool, reason string, body []byte, name, value, remove, id, principal, tool string, withMD, batch bool) {
		r := &Result{Status: status, Denied: denied, Reason: reason, Body: body, DecisionID: id,
			SetHeaders: []Header{{name, value}, {wire.HeaderDecisionID, id}}, RemoveHeaders: []string{remove},
			ResponseHeaders: []Header{{name, value}}}
		if withMD {
			r.Metadata = &wire.Decision{DecisionID: id, Principal: principal, Tool: tool, Record: !batch, Batch: batch}
			if batch {
				r.Metadata.Methods, r.Metadata.Tools, r.Metadata.IDs = []string{"tools/call"}, []string{tool}, []string{id}
			}
		}
		checkEncode(t, r)
	})
}

// BenchmarkEncodeCheckResponse is writing the allow answer of a tools/call,
// by toCheckResponse then proto.Marshal ("proto", what the gRPC server
// did) and by appendCheckResponse ("wire").
func BenchmarkEncodeCheckResponse(b *testing.B) {
	r := &Result{Outcome: OutcomeAllow, Status: 200, DecisionID: "01JZ7Q8M3V5X2N6B4C9D0E1F2G",
		SetHeaders: []Header{{"authorization", "Bearer ghp_upstreamSecretValue0123456789abcdef"}, {wire.HeaderPrincipal, "alice@example.com"},
			{wire.HeaderClientID, "agent-1"}, {wire.HeaderTarget, "github"}, {wire.HeaderDecisionID, "01JZ7Q8M3V5X2N6B4C9D0E1F2G"}, {wire.HeaderGrant, wire.NoGrant}},
		RemoveHeaders: []string{"x-airlock-reason"},
		Metadata: &wire.Decision{DecisionID: "01JZ7Q8M3V5X2N6B4C9D0E1F2G", Target: "github", Principal: "alice@example.com", ClientID: "agent-1",
			Issuer: "https://issuer.example.com/oauth2/default", MaskingProfile: "default", Record: true, PolicyVersion: "v1",
			Protocol: "2025-06-18", SessionID: "sess-1", Method: "tools/call", Tool: "search_issues"}}
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(toCheckResponse(r)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("wire", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := (checkResponse{r}).AppendWire(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
