package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

const (
	ghToken = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
	awsKey  = "AKIAIOSFODNN7EXAMPLE"
)

func testInput() *policy.Input {
	return &policy.Input{
		Principal: &identity.Principal{Issuer: "https://issuer.test", Subject: "alice", ClientID: "agent", Scopes: []string{"mcp"},
			Groups: []string{"eng"}, Audience: []string{"https://gw.test/mcp/github"}, Expiry: time.Unix(1_900_000_000, 0).UTC(),
			Claims: map[string]any{"sub": "alice", "note": "key " + awsKey}},
		Target: policy.TargetInput{Name: "github", Resource: "https://gw.test/mcp/github", ScopesRequired: []string{"mcp"}},
		MCP: policy.MessageInput{Method: "tools/call", Kind: "request", ID: json.RawMessage(`7`), Tool: "search",
			Arguments: json.RawMessage(`{"q":"bug","token":"` + ghToken + `"}`), ProtocolVersion: "2025-06-18", SessionID: "s-1"},
		Request: policy.RequestInput{Method: "POST", Path: "/mcp/github?access_token=" + ghToken, Host: "gw.test", Headers: map[string]string{
			"authorization": "Bearer " + ghToken, "cookie": "session=" + ghToken, ":path": "/mcp/github",
			"x-request-id": "req-1", "x-debug": "aws " + awsKey,
		}},
		Grants: []policy.GrantInput{{ID: "gr_1", Target: "github", Tool: "search", Arguments: json.RawMessage(`{"q":"bug"}`),
			ArgumentsHash: "sha256:ab", SingleUse: true, Expiry: time.Unix(1_900_000_100, 0).UTC(), Principal: "alice"}},
		Time: time.Unix(1_800_000_000, 123).UTC(),
	}
}

// TestEncodeInputMasks: no secret of the input survives encoding:
// credential and pseudo-headers are left out, arguments, header values,
// the path and token claims are masked.
func TestEncodeInputMasks(t *testing.T) {
	b, err := json.Marshal(EncodeInput(testInput(), nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, absent string }{
		{"github token (arguments, path, headers)", ghToken},
		{"aws key (claims, header value)", awsKey},
		{"authorization header", `"authorization"`},
		{"cookie header", `"cookie"`},
		{"pseudo-header", `":path"`},
	} {
		if bytes.Contains(b, []byte(tc.absent)) {
			t.Errorf("%s is in the encoded input: %s", tc.name, b)
		}
	}
	for _, present := range []string{`"x-request-id":"req-1"`, `"tool":"search"`, `"q":"bug"`, `"unix_ns":1800000000000000123`} {
		if !bytes.Contains(b, []byte(present)) {
			t.Errorf("%s missing from %s", present, b)
		}
	}
}

// TestInputRoundTrip: a recorded input decodes to the input policy saw,
// but for what masking changed.
func TestInputRoundTrip(t *testing.T) {
	in := testInput()
	b, _ := json.Marshal(EncodeInput(in, nil))
	got, err := DecodeInput(b)
	if err != nil {
		t.Fatal(err)
	}
	want := *in
	want.Request.Headers = map[string]string{"x-request-id": "req-1", "x-debug": got.Request.Headers["x-debug"]}
	want.Request.Path = got.Request.Path
	want.MCP.Arguments = got.MCP.Arguments
	pr := *in.Principal
	pr.Claims = got.Principal.Claims
	want.Principal = &pr
	if d := cmp.Diff(&want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if !strings.Contains(string(got.MCP.Arguments), `"q":"bug"`) {
		t.Errorf("arguments %s", got.MCP.Arguments)
	}
}

func TestDecodeInputRejects(t *testing.T) {
	for _, tc := range []struct{ name, doc string }{
		{"not JSON", `{`},
		{"no time", `{"mcp":{"method":"tools/call"}}`},
		{"bad time", `{"time":{"now":"yesterday"}}`},
		{"wrong type", `{"mcp":{"batch":"yes"},"time":{"unix_ns":1}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeInput([]byte(tc.doc)); err == nil {
				t.Error("accepted")
			}
		})
	}
}

func FuzzDecodeInput(f *testing.F) {
	b, _ := json.Marshal(EncodeInput(testInput(), nil))
	f.Add(b)
	f.Add([]byte(`{"time":{"unix_ns":1}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		in, err := DecodeInput(b)
		if err == nil && in == nil {
			t.Fatal("nil input without an error")
		}
		if err == nil {
			// What decodes encodes again.
			if _, err := json.Marshal(EncodeInput(in, nil)); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func FuzzParseRecords(f *testing.F) {
	f.Add([]byte(`{"decision_id":"d","path":"airlock/decision","input":{},"result":{"outcome":"allow"}}`))
	f.Add([]byte(`[{"decision_id":"a"},{"decision_id":"b"}]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := ParseRecords(b)
		if err == nil {
			for _, r := range recs {
				_ = r.Revision()
			}
		}
		_, _, _ = ReadInput(b)
	})
}

func TestCompare(t *testing.T) {
	base := ResultDoc{Outcome: "approval_required", Reason: "r", Record: true,
		Approval: &ApprovalDoc{ApproverGroups: []string{"sre"}, Threshold: 1, SingleUse: true}}
	for _, tc := range []struct {
		name   string
		change func(*ResultDoc)
		fields []string
	}{
		{"same", func(*ResultDoc) {}, nil},
		{"outcome and reason", func(r *ResultDoc) { r.Outcome, r.Reason, r.Approval = "deny", "no", nil }, []string{"outcome", "reason", "approval"}},
		{"threshold", func(r *ResultDoc) { a := *r.Approval; a.Threshold = 2; r.Approval = &a }, []string{"approval.threshold"}},
		{"masking profile", func(r *ResultDoc) { r.MaskingProfile = "strict" }, []string{"masking_profile"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := base
			tc.change(&now)
			var fields []string
			for _, d := range Compare(&base, &now) {
				fields = append(fields, d.Field)
			}
			if d := cmp.Diff(tc.fields, fields); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func logCfg(sink string, mod func(*config.DecisionLog)) config.DecisionLog {
	c := config.DecisionLog{Sink: sink, QueueSize: 100, BatchSize: 3, FlushInterval: time.Hour, MaxRetries: 5, RetryBackoff: time.Millisecond}
	if mod != nil {
		mod(&c)
	}
	return c
}

func entry(i int) Entry {
	d := policy.Decision{Outcome: "allow", Reason: "ok", Record: true, PolicyVersion: "rev-1"}
	return Entry{DecisionID: "d" + string(rune('a'+i)), Time: time.Unix(1_800_000_000, 0), Input: testInput(), Result: &d,
		Outcome: "allow", Status: 200, PolicyVersion: "rev-1", Target: "github", XRequestID: "req-1", TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
}

// receiver is a real HTTP decision-log receiver: it answers the first
// fail requests with status, then 200, keeping every batch it accepted.
type receiver struct {
	mu      sync.Mutex
	fail    int
	status  int
	posts   int
	batches [][]Record
	// gate, when set, holds every request until it is closed; entered
	// gets one value per request that reached the handler.
	gate, entered chan struct{}
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.entered != nil {
		r.entered <- struct{}{}
	}
	if r.gate != nil {
		<-r.gate
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts++
	if req.Header.Get("Content-Type") != "application/json" || req.Header.Get("X-Api-Key") != "k" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if r.fail > 0 {
		r.fail--
		w.WriteHeader(r.status)
		return
	}
	var recs []Record
	if err := json.NewDecoder(req.Body).Decode(&recs); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	r.batches = append(r.batches, recs)
}

// TestHTTPSinkBatchesAndRetries: records go in batches of batch_size
// (the rest at Close); a batch the receiver fails with 5xx or 429 is
// retried until it is taken; one refused with another 4xx, or failed
// past max_retries, is dropped and counted, never silently.
func TestHTTPSinkBatchesAndRetries(t *testing.T) {
	for _, tc := range []struct {
		name         string
		fail, status int
		maxRetries   int
		sizes        []int
		dropped      float64
		retried      float64
	}{
		{name: "all taken", sizes: []int{3, 3, 1}},
		{name: "503 twice then taken", fail: 2, status: 503, maxRetries: 5, sizes: []int{3, 3, 1}, retried: 2},
		{name: "429 then taken", fail: 1, status: 429, maxRetries: 5, sizes: []int{3, 3, 1}, retried: 1},
		{name: "400 is not retried", fail: 1, status: 400, maxRetries: 5, sizes: []int{3, 1}, dropped: 3},
		{name: "past max_retries", fail: 3, status: 500, maxRetries: 2, sizes: []int{3, 1}, dropped: 3, retried: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rcv := &receiver{fail: tc.fail, status: tc.status}
			srv := httptest.NewServer(rcv)
			defer srv.Close()
			reg := prometheus.NewPedanticRegistry()
			l, err := New(logCfg(config.DecisionLogHTTP, func(c *config.DecisionLog) {
				c.URL, c.Headers, c.MaxRetries = srv.URL, map[string]string{"X-Api-Key": "k"}, tc.maxRetries
			}), Options{Registerer: reg, Query: "data.airlock.decision", ID: "pod-1", Version: "v1"})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 7 {
				l.Log(entry(i))
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			var sizes []int
			n := 0
			for _, b := range rcv.batches {
				sizes = append(sizes, len(b))
				for _, r := range b {
					n++
					if r.Path != "airlock/decision" || r.Labels["id"] != "pod-1" || r.Revision() != "rev-1" || r.XRequestID != "req-1" {
						t.Errorf("record %+v", r)
					}
				}
			}
			if d := cmp.Diff(tc.sizes, sizes); d != "" {
				t.Errorf("batch sizes (-want +got):\n%s", d)
			}
			if got := testutil.ToFloat64(l.dropped.WithLabelValues(DropSinkFailed)); got != tc.dropped {
				t.Errorf("dropped %v, want %v", got, tc.dropped)
			}
			if got := testutil.ToFloat64(l.batches.WithLabelValues("retried")); got != tc.retried {
				t.Errorf("retried %v, want %v", got, tc.retried)
			}
			if got := testutil.ToFloat64(l.written); got != float64(n) {
				t.Errorf("written %v, received %d", got, n)
			}
			if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
				t.Errorf("promlint: %v %v", problems, err)
			}
		})
	}
}

// TestQueueFullDropsAndCounts: with the sink stuck, Log never blocks: the
// records the queue cannot hold are dropped and counted.
func TestQueueFullDropsAndCounts(t *testing.T) {
	rcv := &receiver{gate: make(chan struct{}), entered: make(chan struct{}, 10)}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	l, err := New(logCfg(config.DecisionLogHTTP, func(c *config.DecisionLog) {
		c.URL, c.Headers, c.QueueSize, c.BatchSize = srv.URL, map[string]string{"X-Api-Key": "k"}, 2, 1
	}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	l.Log(entry(0))
	<-rcv.entered // the worker holds record 0, stuck in the sink
	for i := 1; i <= 5; i++ {
		l.Log(entry(i)) // 1 and 2 fill the queue; 3, 4, 5 are dropped
	}
	if got := l.Dropped(DropQueueFull); got != 3 {
		t.Errorf("dropped %v while the sink is stuck, want 3", got)
	}
	close(rcv.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(l.written); got != 3 {
		t.Errorf("written %v, want 3", got)
	}
}

// TestLineSinks: stdout and file sinks write one record a line; Log on a
// nil Logger (off) does nothing.
func TestLineSinks(t *testing.T) {
	var nilLogger *Logger
	nilLogger.Log(entry(0))
	if err := nilLogger.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	path := t.TempDir() + "/d.log"
	var out bytes.Buffer
	for _, tc := range []struct {
		sink string
		read func() string
	}{
		{config.DecisionLogStdout, func() string { return out.String() }},
		{config.DecisionLogFile, func() string { b, _ := readFile(path); return string(b) }},
	} {
		t.Run(tc.sink, func(t *testing.T) {
			l, err := New(logCfg(tc.sink, func(c *config.DecisionLog) { c.Path = path }), Options{Stdout: &out})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 4 {
				l.Log(entry(i))
			}
			if err := l.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSpace(tc.read()), "\n")
			if len(lines) != 4 {
				t.Fatalf("%d lines, want 4", len(lines))
			}
			rec, err := Find(strings.NewReader(tc.read()), "dc")
			if err != nil || rec.DecisionID != "dc" || strings.Contains(tc.read(), ghToken) {
				t.Errorf("find: %+v %v", rec, err)
			}
		})
	}
}

func TestQueryPath(t *testing.T) {
	for q, want := range map[string]string{"data.airlock.decision": "airlock/decision", "data.x.y.z": "x/y/z", "": ""} {
		if got := QueryPath(q); got != want {
			t.Errorf("%q: %q, want %q", q, got, want)
		}
	}
}

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
