package extauthz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/metadata"

	"github.com/airlock-mcp/airlock/internal/cli"
	"github.com/airlock-mcp/airlock/internal/decisionlog"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/internal/syncbuf"
	"github.com/airlock-mcp/airlock/internal/telemetry"
	"github.com/airlock-mcp/airlock/internal/wire"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

const (
	clientTraceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	clientSpanID  = "00f067aa0ba902b7"
)

// TestTraceContinuesThroughCheck: the trace a client started continues
// through Check, whether Envoy's gRPC client carries it in the call's
// metadata (W3C traceparent, or Zipkin x-b3-*) or only the HTTP request's
// headers carry it; Check's child spans hang under Check's span. The
// spans are read from the SDK's in-memory exporter (synced at span end,
// before Check answers).
func TestTraceContinuesThroughCheck(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	e := startEnvOpts(t, func(string) string { return "" }, serve.Options{Telemetry: telemetry.Options{Exporter: exp}})
	tok := e.token(t, oidcissuer.Token{})
	for _, tc := range []struct {
		name     string
		md       metadata.MD
		headers  map[string]string
		children []string
	}{
		{name: "traceparent in gRPC metadata", md: metadata.Pairs("traceparent", "00-"+clientTraceID+"-"+clientSpanID+"-01")},
		{name: "b3 in gRPC metadata", md: metadata.Pairs("x-b3-traceid", clientTraceID, "x-b3-spanid", clientSpanID, "x-b3-sampled", "1")},
		{name: "b3 single header in gRPC metadata", md: metadata.Pairs("b3", clientTraceID+"-"+clientSpanID+"-1")},
		{name: "traceparent in the HTTP request only", headers: map[string]string{"traceparent": "00-" + clientTraceID + "-" + clientSpanID + "-01"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp.Reset()
			h := map[string]string{"authorization": "Bearer " + tok}
			for k, v := range tc.headers {
				h[k] = v
			}
			req := envoyRequest{method: "POST", path: "/mcp/github", target: "github", headers: h, body: toolCall(7, "search_issues", `{"q":"bug"}`)}
			ctx := context.Background()
			if tc.md != nil {
				ctx = metadata.NewOutgoingContext(ctx, tc.md)
			}
			resp, err := e.client.Check(ctx, req.proto())
			if err != nil {
				t.Fatal(err)
			}
			if resp.GetOkResponse() == nil {
				t.Fatalf("denied: %s", resp.GetDeniedResponse().GetBody())
			}
			spans := exp.GetSpans()
			byName := map[string]tracetest.SpanStub{}
			for _, s := range spans {
				byName[s.Name] = s
			}
			check, ok := byName["airlock.authz.Check"]
			if !ok {
				t.Fatalf("no Check span among %d", len(spans))
			}
			if got := check.SpanContext.TraceID().String(); got != clientTraceID {
				t.Errorf("Check's trace %s, want the client's %s", got, clientTraceID)
			}
			if got := check.Parent.SpanID().String(); got != clientSpanID || !check.Parent.IsRemote() {
				t.Errorf("Check's parent %s (remote %v), want the client's span %s", got, check.Parent.IsRemote(), clientSpanID)
			}
			if check.SpanKind != trace.SpanKindServer {
				t.Errorf("Check's kind %v, want server", check.SpanKind)
			}
			for _, name := range []string{"airlock.authz.token", "airlock.authz.parse", "airlock.authz.grants", "airlock.authz.policy"} {
				s, ok := byName[name]
				if !ok {
					t.Errorf("no %s span", name)
					continue
				}
				if s.Parent.SpanID() != check.SpanContext.SpanID() || s.SpanContext.TraceID() != check.SpanContext.TraceID() {
					t.Errorf("%s is not a child of Check", name)
				}
			}
			// Spans carry no token, argument or credential.
			b, _ := json.Marshal(spans)
			for _, secret := range []string{tok, upstreamSecret, `"q":"bug"`} {
				if bytes.Contains(b, []byte(secret)) {
					t.Errorf("a span holds %q", secret[:min(len(secret), 12)])
				}
			}
		})
	}
}

// argSecret is a secret an agent put into a tool's arguments: the
// decision log holds it masked.
const argSecret = "ghp_R4nd0mS3cr3tT0k3nV4lu3F0rT3st1ng0000"

// TestDecisionLogReplays: every decision is logged in OPA's decision-log
// shape (masked input, result, revision, labels, x-request-id, trace id);
// `airlock policy eval --decision` re-evaluates a logged allow and a
// logged deny to the same results against the same policy, and shows the
// difference against a changed one; no token, credential or argument
// secret is in the log.
func TestDecisionLogReplays(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "decisions.log")
	e := startEnvWith(t, func(string) string {
		return "decision_log: {sink: file, path: " + logPath + ", flush_interval: 10ms}\n"
	})
	tok := e.token(t, oidcissuer.Token{})
	traceparent := "00-" + clientTraceID + "-" + clientSpanID + "-01"
	calls := []struct {
		name, tool, args, token string
		outcome, policy         string // the gateway's, the policy's
	}{
		{"allowed", "search_issues", `{"q":"bug","token":"` + argSecret + `"}`, tok, "allow", "allow"},
		{"denied", "format_disk", `{"disk":"/dev/sda"}`, tok, "deny", "deny"},
		// Held for approval, refused by the gateway: approvers need a reason.
		{"approval", "delete_repo", `{"repo":"a/b"}`, tok, "deny", "approval_required"},
		{"unauthenticated", "search_issues", `{}`, "", "unauthenticated", ""},
	}
	ids := map[string]string{}
	for _, c := range calls {
		h := map[string]string{"traceparent": traceparent}
		if c.token != "" {
			h["authorization"] = "Bearer " + c.token
		}
		req := envoyRequest{method: "POST", path: "/mcp/github", target: "github", headers: h, body: toolCall(1, c.tool, c.args)}
		resp, err := e.client.Check(context.Background(), req.proto())
		if err != nil {
			t.Fatal(err)
		}
		id := headers(resp.GetOkResponse().GetHeaders())[wire.HeaderDecisionID]
		if id == "" {
			id = headers(resp.GetDeniedResponse().GetHeaders())[wire.HeaderDecisionID]
		}
		if id == "" {
			t.Fatalf("%s: no decision id", c.name)
		}
		ids[c.name] = id
	}
	// Close writes what is queued (Stop would too).
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.g.Decisions.Close(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{tok, upstreamSecret, argSecret, "Bearer "} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Fatalf("the decision log holds a secret (%.12s…)", secret)
		}
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != len(calls) {
		t.Fatalf("%d records, want %d:\n%s", len(lines), len(calls), raw)
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			f, err := os.Open(logPath)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			rec, err := decisionlog.Find(f, ids[c.name])
			if err != nil {
				t.Fatal(err)
			}
			if rec.Path != "airlock/decision" || rec.Labels["id"] == "" || rec.Labels["version"] == "" || rec.Timestamp.IsZero() {
				t.Errorf("not OPA's shape: path %q labels %v timestamp %v", rec.Path, rec.Labels, rec.Timestamp)
			}
			if rec.XRequestID != "5f1e0c2a-4b8e-4e1a-9a53-0d7b2f3c9e11" || rec.TraceID != clientTraceID {
				t.Errorf("x_request_id %q trace_id %q", rec.XRequestID, rec.TraceID)
			}
			if rec.Revision() == "" || rec.Gateway.Outcome != c.outcome || rec.Gateway.Target != "github" {
				t.Errorf("revision %q gateway %+v, want outcome %s", rec.Revision(), rec.Gateway, c.outcome)
			}
			if c.name == "unauthenticated" {
				if rec.Input != nil || rec.Result != nil {
					t.Errorf("a decision made before policy has no input or result: %s %s", rec.Input, rec.Result)
				}
				return
			}
			var in decisionlog.InputDoc
			if err := json.Unmarshal(rec.Input, &in); err != nil {
				t.Fatal(err)
			}
			if in.MCP.Tool != c.tool || in.Principal == nil || in.Principal.Subject != "00u1alice" || in.Request.Headers["x-request-id"] == "" {
				t.Errorf("input %+v", in)
			}
			if _, ok := in.Request.Headers["authorization"]; ok {
				t.Error("the input holds the authorization header")
			}
			var res decisionlog.ResultDoc
			if err := json.Unmarshal(rec.Result, &res); err != nil {
				t.Fatal(err)
			}
			if res.Outcome != c.policy {
				t.Errorf("result %+v, want %s", res, c.policy)
			}
			// Same policy: same result.
			var out, errb bytes.Buffer
			args := []string{"policy", "eval", "--decision", ids[c.name], "--log", logPath, "--policy-dir", e.cfg.Policy.Dir, "--config", filepath.Join(t.TempDir(), "none.yaml")}
			if code := cli.Run(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errb}); code != 0 || !strings.Contains(out.String(), "same result") {
				t.Errorf("eval against the same policy: exit %d\n%s%s", code, out.String(), errb.String())
			}
		})
	}

	// A changed policy: search_issues is now denied; format_disk is no
	// longer denied outright, so it falls to the default destructive verbs
	// (approval).
	changed := t.TempDir()
	for _, name := range []string{"decision.rego", "data.yaml"} {
		b, err := os.ReadFile(filepath.Join(e.cfg.Policy.Dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if name == "data.yaml" {
			b = bytes.Replace(b, []byte(`deny: ["format_disk"]`), []byte(`deny: ["search_issues"]`), 1)
		}
		if err := os.WriteFile(filepath.Join(changed, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ call, field, was, now string }{
		{"allowed", "outcome", "allow", "deny"},
		{"denied", "outcome", "deny", "approval_required"},
	} {
		var out, errb bytes.Buffer
		args := []string{"policy", "eval", "--decision", ids[tc.call], "--log", logPath, "--policy-dir", changed, "--config", filepath.Join(t.TempDir(), "none.yaml"), "-o", "json"}
		code := cli.Run(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errb})
		if code != cli.ExitError {
			t.Errorf("%s: exit %d, want %d (differs)\n%s", tc.call, code, cli.ExitError, errb.String())
		}
		var res struct {
			Same bool                     `json:"same"`
			Diff []decisionlog.Difference `json:"differences"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%s: %v\n%s", tc.call, err, out.String())
		}
		found := false
		for _, d := range res.Diff {
			if d.Field == tc.field && d.Recorded == tc.was && d.Now == tc.now {
				found = true
			}
		}
		if res.Same || !found {
			t.Errorf("%s: differences %+v, want %s %s → %s", tc.call, res.Diff, tc.field, tc.was, tc.now)
		}
	}
}

// TestDecisionLogStdoutSink: the stdout sink writes one record a line; a
// Check whose request carries no trace context has no trace id.
func TestDecisionLogStdoutSink(t *testing.T) {
	var buf syncbuf.Buffer
	e := startEnvOpts(t, func(string) string { return "decision_log: {sink: stdout}\n" }, serve.Options{DecisionLogStdout: &buf})
	tok := e.token(t, oidcissuer.Token{})
	req := envoyRequest{method: "POST", path: "/mcp/github", target: "github",
		headers: map[string]string{"authorization": "Bearer " + tok}, body: toolCall(1, "search_issues", `{"q":"x"}`)}
	if _, err := e.client.Check(context.Background(), req.proto()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.g.Decisions.Close(ctx); err != nil {
		t.Fatal(err)
	}
	recs, err := decisionlog.ParseRecords(bytes.TrimSpace([]byte(buf.String())))
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].TraceID != "" || recs[0].Gateway.Outcome != "allow" {
		t.Fatalf("records %+v", recs)
	}
}
