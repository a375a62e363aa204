package cli_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/cli"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/syncbuf"
)

type fixture struct {
	s   *approvalstest.Stack
	now time.Time
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := approvalstest.Start(approvalstest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &fixture{s: s}
}

// run runs the CLI as who with env overrides and returns the exit code,
// stdout and stderr.
func (f *fixture) run(t *testing.T, who approvalstest.Person, args ...string) (int, string, string) {
	t.Helper()
	tok, err := f.s.Token(who)
	if err != nil {
		t.Fatal(err)
	}
	return f.runEnv(t, map[string]string{"AIRLOCK_SERVER": f.s.URL, "AIRLOCK_TOKEN": tok}, args...)
}

func (f *fixture) runEnv(t *testing.T, vars map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb syncbuf.Buffer
	env := cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return vars[k] }}
	if !f.now.IsZero() {
		env.Now = func() time.Time { return f.now }
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := cli.Run(ctx, args, env)
	if tok := vars["AIRLOCK_TOKEN"]; tok != "" && (strings.Contains(out.String(), tok) || strings.Contains(errb.String(), tok)) {
		t.Fatal("the CLI printed the token")
	}
	return code, out.String(), errb.String()
}

func (f *fixture) open(t *testing.T, tool, args, reason string) *grants.Request {
	t.Helper()
	r, err := f.s.Open(context.Background(), approvalstest.Alice, tool, args, reason)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// cells splits a table into rows of cells (columns are 2+ spaces apart),
// so ids of any length compare.
func cells(s string) [][]string {
	var out [][]string
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		out = append(out, regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1))
	}
	return out
}

// normalize replaces ids with stable names.
func normalize(s string, ids map[string]string) string {
	for id, name := range ids {
		s = strings.ReplaceAll(s, id, name)
	}
	return s
}

func TestRequestsTable(t *testing.T) {
	f := newFixture(t)
	a := f.open(t, "delete_repository", `{"repo":"acme/old","key":"AKIAIOSFODNN7EXAMPLE"}`, "remove the test repo for OPS-1234")
	b := f.open(t, "delete_branch", `{"branch":"tmp"}`, "")
	f.now = b.CreatedAt.Add(90 * time.Second)
	code, out, errOut := f.run(t, approvalstest.Bob, "requests")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	ids := map[string]string{a.ID: "req_A", b.ID: "req_B"}
	// Issue 15: each request says what approving it grants (SCOPE).
	want := `ID     STATE    TARGET  CALL               SCOPE                  REQUESTER          AGE  APPROVALS  REASON
req_B  pending  github  delete_branch      this exact call, once  alice@example.com  1m   0/1        -
req_A  pending  github  delete_repository  this exact call, once  alice@example.com  1m   0/1        remove the test repo for OPS-1234
`
	if diff := cmp.Diff(cells(want), cells(normalize(out, ids))); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}

	code, out, _ = f.run(t, approvalstest.Bob, "requests", a.ID)
	if code != 0 || !strings.Contains(out, "[MASKED:aws_access_key]") || strings.Contains(out, "AKIAIOSFODNN7EXAMPLE") ||
		!strings.Contains(out, "Needs:      1 approval(s) from airlock-approvers (single use); break glass: sre-oncall") ||
		!strings.Contains(out, "Scope:      this exact call, once") {
		t.Errorf("requests ID (exit %d):\n%s", code, out)
	}

	code, out, _ = f.run(t, approvalstest.Bob, "requests", "--output", "json", "--state", "pending")
	var l approvals.RequestList
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 {
		t.Fatalf("--output json (exit %d): %v\n%s", code, err, out)
	}
	if len(l.Requests) != 2 || l.Requests[0].ID != b.ID {
		t.Errorf("json list %+v", l.Requests)
	}
	code, out, _ = f.run(t, approvalstest.Mallory, "requests")
	if code != 0 || out != "no requests\n" {
		t.Errorf("an outsider's list (exit %d): %q", code, out)
	}
}

func TestDecisionCommands(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name    string
		who     approvalstest.Person
		args    func(id string) []string
		code    int
		wantOut string // with req_X for the request id; a prefix
		wantErr string
	}{
		{"approve", approvalstest.Bob, func(id string) []string { return []string{"approve", id, "--reason", "ok"} }, 0, "approved req_X: grant gr_", ""},
		{"flags first", approvalstest.Bob, func(id string) []string { return []string{"approve", "--reason", "ok", id} }, 0, "approved req_X", ""},
		{"deny", approvalstest.Bob, func(id string) []string { return []string{"deny", id, "--reason", "no"} }, 0, "denied req_X: denied by bob@example.com: no", ""},
		{"own request", approvalstest.Alice, func(id string) []string { return []string{"approve", id} }, 1, "",
			"approve req_X: alice@example.com asked for request req_X: the requester cannot decide their own request (403 self_approval)\n"},
		{"break glass without reason", approvalstest.Dave, func(id string) []string { return []string{"approve", id, "--break-glass"} }, 1, "",
			"approve req_X: break_glass on request req_X: breaking glass always needs one: a reason is required (400 reason_required)\n"},
		{"break glass", approvalstest.Dave, func(id string) []string { return []string{"approve", id, "--break-glass", "--reason", "outage"} }, 0, "approved req_X", ""},
		{"outsider", approvalstest.Mallory, func(id string) []string { return []string{"deny", id} }, 1, "", "deny req_X: request \"req_X\": not found (404 not_found)\n"},
		{"cancel own", approvalstest.Alice, func(id string) []string { return []string{"cancel", id, "--reason", "done"} }, 0, "cancelled req_X: cancelled by the requester: done", ""},
		{"json", approvalstest.Bob, func(id string) []string { return []string{"approve", id, "-o", "json"} }, 0, "{\n  \"id\": \"req_X\",", ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.open(t, "delete_repository", fmt.Sprintf(`{"i":%d}`, i), "")
			code, out, errOut := f.run(t, tc.who, tc.args(r.ID)...)
			ids := map[string]string{r.ID: "req_X"}
			if code != tc.code || !strings.HasPrefix(normalize(out, ids), tc.wantOut) || normalize(errOut, ids) != tc.wantErr {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q…, %q", code, out, errOut, tc.code, tc.wantOut, tc.wantErr)
			}
		})
	}
}

func TestGrantCommands(t *testing.T) {
	f := newFixture(t)
	r := f.open(t, "delete_repository", `{"repo":"acme/x"}`, "")
	got, err := f.s.Grants.Decide(context.Background(), r.ID, approvalstest.Bob.Actor(), grants.VerdictApprove, "fine")
	if err != nil {
		t.Fatal(err)
	}
	g, _ := f.s.Grants.GetGrant(context.Background(), got.GrantID)
	f.now = g.Expiry.Add(-5 * time.Minute)
	code, out, _ := f.run(t, approvalstest.Alice, "grants", "--mine")
	want := "ID    STATE   TARGET  CALL               HOLDER             USES  EXPIRES IN  APPROVED BY\n" +
		"gr_G  active  github  delete_repository  alice@example.com  0/1   5m          bob@example.com\n"
	if diff := cmp.Diff(cells(want), cells(normalize(out, map[string]string{g.ID: "gr_G"}))); code != 0 || diff != "" {
		t.Errorf("grants (exit %d, -want +got):\n%s", code, diff)
	}
	if code, out, _ := f.run(t, approvalstest.Bob, "grants", g.ID); code != 0 || !strings.Contains(out, `Only with arguments (masked): {"repo":"acme/x"}`) {
		t.Errorf("grants ID (exit %d):\n%s", code, out)
	}
	if code, _, errOut := f.run(t, approvalstest.Mallory, "revoke", g.ID); code != 1 || !strings.Contains(errOut, "(404 not_found)") {
		t.Errorf("outsider revoke: exit %d %s", code, errOut)
	}
	code, out, _ = f.run(t, approvalstest.Bob, "revoke", g.ID, "--reason", "done")
	if code != 0 || out != "revoked "+g.ID+" (delete_repository on github, held by alice@example.com)\n" {
		t.Errorf("revoke: exit %d %q", code, out)
	}
	if code, out, _ := f.run(t, approvalstest.Bob, "grants"); code != 0 || out != "no grants\n" {
		t.Errorf("active grants after revoke: exit %d %q", code, out)
	}
	code, out, _ = f.run(t, approvalstest.Bob, "grants", "--state", "all", "-o", "json")
	var l approvals.GrantList
	if err := json.Unmarshal([]byte(out), &l); err != nil || code != 0 || len(l.Grants) != 1 || l.Grants[0].State != grants.GrantRevoked {
		t.Errorf("grants --state all -o json: exit %d %v %s", code, err, out)
	}
}

func TestRequestCommand(t *testing.T) {
	f := newFixture(t)
	code, out, errOut := f.run(t, approvalstest.Alice, "request", "--target", "github", "--tool", "delete_repository",
		"--arguments", `{"repo":"acme/y"}`, "--reason", "OPS-9")
	if code != 0 || !strings.HasPrefix(out, "opened request req_") || !strings.HasSuffix(out, ": delete_repository on github, waiting for 1 approval(s) from airlock-approvers (single use)\n") {
		t.Errorf("request: exit %d %q %q", code, out, errOut)
	}
	code, _, errOut = f.run(t, approvalstest.Alice, "request", "--target", "github", "--tool", "list_issues")
	if code != 1 || !strings.Contains(errOut, "policy allows this call without approval") || !strings.HasSuffix(errOut, "(409 not_needed)\n") {
		t.Errorf("request not needed: exit %d %q", code, errOut)
	}
	if code, _, errOut := f.run(t, approvalstest.Alice, "request", "--target", "github", "--tool", "x", "--arguments", "{"); code != 1 || !strings.Contains(errOut, "not valid JSON") {
		t.Errorf("bad --arguments: exit %d %q", code, errOut)
	}
}

func TestUsageAndSetup(t *testing.T) {
	f := newFixture(t)
	tokFile := filepath.Join(t.TempDir(), "token")
	tok, _ := f.s.Token(approvalstest.Bob)
	if err := os.WriteFile(tokFile, []byte(tok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		vars    map[string]string
		args    []string
		code    int
		wantErr string
	}{
		{"unknown command", nil, []string{"approv"}, 2, "airlock: unknown command \"approv\"\n\nDid you mean this?\n\tapprove\n"},
		{"approve without id", nil, []string{"approve"}, 2, "usage: airlock approve ID"},
		{"bad output", nil, []string{"requests", "-o", "yaml"}, 2, `--output "yaml"`},
		{"unknown flag", nil, []string{"requests", "--nope"}, 2, "airlock requests: unknown flag: --nope\nusage: airlock requests [ID]"},
		{"one-dash long flag", nil, []string{"requests", "-server", "http://x"}, 2, "(long flags take two dashes: --server)"},
		{"two ids", nil, []string{"requests", "a", "b"}, 2, "takes at most one argument, got 2"},
		{"no token", map[string]string{"AIRLOCK_SERVER": f.s.URL}, []string{"requests"}, 1, "no token: pass --token-file FILE or set AIRLOCK_TOKEN"},
		{"token file", map[string]string{"AIRLOCK_SERVER": f.s.URL}, []string{"requests", "--token-file", tokFile}, 0, ""},
		{"token file from env", map[string]string{"AIRLOCK_SERVER": f.s.URL, "AIRLOCK_TOKEN_FILE": tokFile}, []string{"grants"}, 0, ""},
		{"missing token file", nil, []string{"requests", "--token-file", tokFile + ".nope"}, 1, "reading the token"},
		{"bad token", map[string]string{"AIRLOCK_SERVER": f.s.URL, "AIRLOCK_TOKEN": "nope"}, []string{"requests"}, 1, "(401 unauthorized)"},
		{"unreachable", map[string]string{"AIRLOCK_SERVER": "http://127.0.0.1:1", "AIRLOCK_TOKEN": "x"}, []string{"requests"}, 1, "cannot reach the airlock API at http://127.0.0.1:1"},
		{"not airlock", map[string]string{"AIRLOCK_SERVER": f.s.Issuer.URL(), "AIRLOCK_TOKEN": "x"}, []string{"requests"}, 1, "is --server the airlock HTTP address?"},
		{"bad server", map[string]string{"AIRLOCK_TOKEN": "x"}, []string{"requests", "--server", "127.0.0.1:8080"}, 1, "want an http:// or https:// URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, _, errOut := f.runEnv(t, tc.vars, tc.args...)
			if code != tc.code || !strings.Contains(errOut, tc.wantErr) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.wantErr)
			}
		})
	}
}

func TestWatch(t *testing.T) {
	f := newFixture(t)
	tok, _ := f.s.Token(approvalstest.Bob)
	for _, output := range []string{"table", "json"} {
		t.Run(output, func(t *testing.T) {
			var out, errb syncbuf.Buffer
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan int)
			go func() {
				done <- cli.Run(ctx, []string{"watch", "-o", output}, cli.Env{Stdout: &out, Stderr: &errb,
					Getenv: func(k string) string { return map[string]string{"AIRLOCK_SERVER": f.s.URL, "AIRLOCK_TOKEN": tok}[k] }})
			}()
			wait(t, func() bool { return strings.Count(out.String(), "\n") >= 1 })
			r := f.open(t, "delete_repository", `{"w":"`+output+`"}`, "watch me")
			wait(t, func() bool { return strings.Contains(out.String(), r.ID) })
			cancel()
			if code := <-done; code != 0 {
				t.Errorf("watch exit %d: %s", code, errb.String())
			}
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if output == "json" {
				var first, second map[string]any
				_ = json.Unmarshal([]byte(lines[0]), &first)
				_ = json.Unmarshal([]byte(lines[1]), &second)
				if first["event"] != "reload" || second["event"] != "request.opened" {
					t.Errorf("json lines %q", lines)
				}
				return
			}
			if !strings.Contains(lines[0], "watching") || !strings.HasSuffix(lines[1], "request.opened "+r.ID+": delete_repository on github, asked by alice@example.com: watch me") {
				t.Errorf("watch lines %q", lines)
			}
		})
	}
}

func wait(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
