package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/cli"
)

// auditFixture records one session into an embedded store — allowed,
// denied, held and approved, held past the window, unauthenticated — and
// returns the config that reads it and when the session started.
func auditFixture(t *testing.T) (cfgPath string, start time.Time) {
	t.Helper()
	dir := writeFiles(t, map[string]string{"policies/p.rego": goodPolicy})
	store := filepath.Join(dir, "audit")
	cfgPath = filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(cfgPath, []byte(goodConfig+"audit:\n  embedded:\n    dir: "+store+"\n    retention_days: 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := audit.Defaults()
	cfg.Embedded.Dir, cfg.Embedded.RetentionDays = store, 0
	e, err := audit.OpenEmbedded(cfg, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	who := func(d *audit.Decision) *audit.Decision {
		d.SessionID, d.Principal, d.ClientID, d.Target, d.PolicyVersion = "sess-cli", "rita", "agent", "github", "v7"
		return d
	}
	ev := func(s float64, dir audit.Direction, tool, id, dec string) *audit.Event {
		return &audit.Event{Time: at(s), SessionID: "sess-cli", Principal: "rita", ClientID: "agent", Target: "github",
			Direction: dir, Method: "tools/call", Tool: tool, JSONRPCID: id, DecisionID: dec, Outcome: "allow", Status: 200}
	}
	for _, r := range []audit.Record{
		who(&audit.Decision{DecisionID: "d1", Time: at(0), Method: "tools/call", Tool: "list_issues", JSONRPCID: "1", Outcome: "allow", Status: 200}),
		ev(0.01, audit.DirRequest, "list_issues", "1", "d1"),
		who(&audit.Decision{DecisionID: "d2", Time: at(1), Method: "tools/call", Tool: "get_env", JSONRPCID: "2", Outcome: "deny", Status: 403,
			Reason: `tool "get_env" on target "github" is denied`}),
		&audit.RequestEvent{Time: at(2), RequestID: "req_1", ToState: "pending", Actor: "rita", Tool: "delete_repository", Method: "tools/call"},
		&audit.RequestEvent{Time: at(5), RequestID: "req_1", FromState: "pending", ToState: "approved", Actor: "bob", Reason: "ticket OPS-1",
			Tool: "delete_repository", Method: "tools/call", GrantID: "g_1"},
		&audit.GrantEvent{Time: at(5), GrantID: "g_1", Transition: "issued", Actor: "bob", Tools: []string{"delete_repository"}, RequestID: "req_1", UsesLeft: 1},
		who(&audit.Decision{DecisionID: "d3", Time: at(5.1), Method: "tools/call", Tool: "delete_repository", JSONRPCID: "3", Outcome: "allow",
			Status: 200, RequestID: "req_1", GrantID: "g_1", LatencyUS: 3_100_000, Reason: "approved in request req_1"}),
		ev(5.2, audit.DirRequest, "delete_repository", "3", "d3"),
		&audit.RequestEvent{Time: at(6), RequestID: "req_2", ToState: "pending", Actor: "rita", Tool: "delete_repository", Method: "tools/call"},
		who(&audit.Decision{DecisionID: "d4", Time: at(36), Method: "tools/call", Tool: "delete_repository", JSONRPCID: "4",
			Outcome: "approval_required", Status: 200, RequestID: "req_2", LatencyUS: 30_000_000, Reason: "approval required"}),
		&audit.Decision{DecisionID: "d5", Time: at(40), SessionID: "sess-cli", Target: "github", JSONRPCID: "5", Outcome: "unauthenticated",
			Status: 401, PolicyVersion: "v7", Reason: "no bearer token in the Authorization header"},
	} {
		if err := e.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	return cfgPath, t0
}

func runAt(now time.Time, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := cli.Run(context.Background(), args, cli.Env{Stdout: &out, Stderr: &errb, Now: func() time.Time { return now }})
	return code, out.String(), errb.String()
}

// TestSessionsAndReplay: sessions counts denials (policy, timed-out hold,
// unauthenticated), holds and approvals; replay tells the holds and
// approvals, filters whole calls, speaks JSON, and fails on an unknown
// session.
func TestSessionsAndReplay(t *testing.T) {
	cfg, start := auditFixture(t)
	now := start.Add(time.Hour)

	code, out, errs := runAt(now, "sessions", "--config", cfg, "--since", "1d")
	if code != 0 {
		t.Fatalf("sessions: exit %d: %s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "DENIED  HELD  APPROVED") {
		t.Fatalf("sessions:\n%s", out)
	}
	if f := strings.Fields(lines[1]); strings.Join(f[:4], " ") != "sess-cli rita agent github" || strings.Join(f[7:], " ") != "2 2 3 2 1 0 0" {
		t.Errorf("sessions row %q: want 2 events, 2 requests, 3 denied, 2 held, 1 approved, 0 errors, 0 masked", lines[1])
	}
	if code, out, _ := runAt(now.Add(48*time.Hour), "sessions", "--config", cfg, "--since", "1d"); code != 0 || strings.Contains(out, "sess-cli") {
		t.Errorf("sessions --since 1d two days later: exit %d\n%s", code, out)
	}
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"--tool", "get_env", "--outcome", "deny", "--client", "agent"}, true},
		{[]string{"--tool", "absent"}, false},
		{[]string{"--outcome", "forbidden"}, false},
		{[]string{"--client", "other-agent"}, false},
	} {
		code, out, _ := runAt(now, append([]string{"sessions", "--config", cfg, "--since", "7d"}, tc.args...)...)
		if code != 0 || strings.Contains(out, "sess-cli") != tc.want {
			t.Errorf("sessions %v: exit %d, want sess-cli listed: %v\n%s", tc.args, code, tc.want, out)
		}
	}
	code, out, _ = runAt(now, "sessions", "--config", cfg, "--since", "7d", "-o", "json")
	var sums []audit.SessionSummary
	if err := json.Unmarshal([]byte(out), &sums); code != 0 || err != nil || len(sums) != 1 || sums[0].Denied != 3 || sums[0].Held != 2 || sums[0].Approved != 1 {
		t.Errorf("sessions -o json: exit %d, %v: %s", code, err, out)
	}

	code, out, errs = runAt(now, "replay", "--config", cfg, "sess-cli")
	if code != 0 {
		t.Fatalf("replay: exit %d: %s", code, errs)
	}
	for _, want := range []string{
		`decision  tools/call get_env            id=2   deny 403`,
		`reason "tool \"get_env\" on target \"github\" is denied"  policy v7`,
		"approval  tools/call delete_repository  req_1  approved",
		`by bob  reason "ticket OPS-1"  grant g_1`,
		`held 3.1s on request req_1: approved by bob after 3s ("ticket OPS-1")  grant g_1`,
		"grant     delete_repository             g_1    issued",
		"held 30s on request req_2: pending",
		"id=5   unauthenticated 401    caller -",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("replay lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = runAt(now, "replay", "--config", cfg, "--outcome", "deny", "sess-cli")
	if code != 0 || !strings.Contains(out, "get_env") || strings.Contains(out, "list_issues") || strings.Contains(out, "req_1") {
		t.Errorf("replay --outcome deny: exit %d:\n%s", code, out)
	}
	code, out, _ = runAt(now, "replay", "--config", cfg, "--tool", "delete_repository", "--outcome", "allow", "sess-cli")
	if code != 0 || !strings.Contains(out, "req_1") || strings.Contains(out, "req_2") || strings.Contains(out, "get_env") {
		t.Errorf("replay --tool delete_repository --outcome allow: exit %d:\n%s", code, out)
	}
	code, out, _ = runAt(start.Add(41*time.Second), "replay", "--config", cfg, "--since", "2s", "sess-cli")
	if code != 0 || strings.Count(out, "\n") != 2 || !strings.Contains(out, "unauthenticated") {
		t.Errorf("replay --since 2s (just after the session): exit %d:\n%s", code, out)
	}

	code, out, _ = runAt(now, "replay", "--config", cfg, "--tool", "absent", "sess-cli")
	if code != 0 || !strings.Contains(out, "session sess-cli  principal rita") || !strings.HasSuffix(out, "\nnothing matches the filters\n") {
		t.Errorf("replay --tool absent: exit %d:\n%s", code, out)
	}
	code, out, _ = runAt(now, "replay", "--config", cfg, "-o", "json", "--outcome", "approval_required", "sess-cli")
	var r audit.Replay
	if err := json.Unmarshal([]byte(out), &r); code != 0 || err != nil || r.SessionID != "sess-cli" || len(r.Steps) != 2 ||
		r.Steps[1].Hold == nil || r.Steps[1].Hold.State != "pending" || r.Steps[1].Hold.RequestID != "req_2" {
		t.Errorf("replay -o json: exit %d, %v:\n%s", code, err, out)
	}

	code, out, errs = runAt(now, "replay", "--config", cfg, "no-such-session")
	if code != cli.ExitError || out != "" || !strings.Contains(errs, `no session "no-such-session" is recorded`) {
		t.Errorf("replay of an unknown session: exit %d, stdout %q, stderr %q", code, out, errs)
	}
	if code, _, errs := runAt(now, "replay", "--config", cfg, "--since", "7x", "sess-cli"); code != cli.ExitUsage || !strings.Contains(errs, "7d") {
		t.Errorf("replay --since 7x: exit %d: %s", code, errs)
	}
	if code, _, errs := runAt(now, "sessions", "--config", cfg, "-o", "yaml"); code != cli.ExitUsage || !strings.Contains(errs, "want table or json") {
		t.Errorf("sessions -o yaml: exit %d: %s", code, errs)
	}
}
