package serve_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/extauthz"
	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/cli"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/internal/syncbuf"
	"github.com/airlock-mcp/airlock/internal/wire"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// Fake, correctly shaped secrets: AWS's documented example key id and a
// GitHub token of the right shape.
var sinkSecrets = []string{"AKIAIOSFODNN7EXAMPLE", "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"}

// TestNoSecretReachesAnySink drives held calls carrying secrets in their
// arguments and in the agent's reason (params._meta and the header) through
// the whole gateway: ext_authz holds them, an approver denies one with the
// CLI and approves the other through the API, with secrets in the reasons,
// the webhooks (generic and Slack) are told, the audit trail and the grant
// store record it all. Then it greps every sink for the secrets: the grant
// store's files, the audit store's (and spool's) files, airlock's log, the
// webhook bodies, the API's answers, the CLI's output (requests, grants,
// sessions, replay) and what the agent was told.
func TestNoSecretReachesAnySink(t *testing.T) {
	iss, err := oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default"})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()

	var hookMu sync.Mutex
	var hookBodies [][]byte
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		hookMu.Lock()
		hookBodies = append(hookBodies, append([]byte(r.URL.Path+" "), b...))
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	t.Setenv("AIRLOCK_TEST_REDACT_HOOK_KEY", "0123456789abcdef0123456789abcdef")

	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := approvalstest.WritePolicy(pol); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
listen: {authz: "127.0.0.1:0", http: "127.0.0.1:0", proc: "", xds: ""}
public_url: "http://gateway.test"
issuers: [{name: okta, url: %q}]
targets: [{name: github, upstream: "http://127.0.0.1:1/mcp", masking_profile: default}]
policy: {dir: %s, reload_interval: 0s}
grants: {dir: %s, hold_window: 20s}
audit: {embedded: {dir: %s}, spool: {dir: %s}}
decision_log: {sink: file, path: %s}
notifications:
  webhooks:
    - {name: generic, url: %q, secret_env: AIRLOCK_TEST_REDACT_HOOK_KEY}
    - {name: slack, url: %q, format: slack}
`, iss.URL(), pol, filepath.Join(dir, "grants"), filepath.Join(dir, "audit"), filepath.Join(dir, "spool"),
		filepath.Join(dir, "decisions", "decisions.log"), hook.URL+"/generic", hook.URL+"/slack")
	if err := os.Mkdir(filepath.Join(dir, "decisions"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "airlock.yaml")
	if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse(strings.NewReader(src), cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncbuf.Buffer{}
	g, err := serve.Start(context.Background(), cfg, serve.Options{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			g.Stop(ctx)
		}
	}
	defer stop()

	var told [][]byte // everything a client was sent: the agent's answers, the API's
	agent, err := iss.Mint(oidcissuer.Token{Subject: "alice@example.com", User: "00u-alice", ClientID: "0oa-agent",
		Groups: []string{"engineering"}, Audience: []string{cfg.Targets[0].Resource}})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := iss.Mint(oidcissuer.Token{Subject: "bob@example.com", User: "00u-bob", ClientID: "airlock-cli",
		Groups: []string{"airlock-approvers"}, Audience: []string{cfg.API.AudienceFor(cfg.PublicURL)}})
	if err != nil {
		t.Fatal(err)
	}
	// run runs the CLI as bob; its output is checked with the rest.
	run := func(args ...string) int {
		t.Helper()
		var out, errb syncbuf.Buffer
		env := cli.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
			return map[string]string{"AIRLOCK_SERVER": "http://" + g.HTTPAddr.String(), "AIRLOCK_TOKEN": bob}[k]
		}}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		code := cli.Run(ctx, args, env)
		told = append(told, []byte(out.String()), []byte(errb.String()))
		return code
	}
	mustRun := func(args ...string) {
		t.Helper()
		if code := run(args...); code != 0 {
			t.Fatalf("airlock %s: exit %d", args[0], code) // stderr is not printed: it may hold a secret
		}
	}
	api := func(method, path string, body any) []byte {
		t.Helper()
		var rd io.Reader
		if body != nil {
			b, _ := json.Marshal(body)
			rd = bytes.NewReader(b)
		}
		req, _ := http.NewRequest(method, "http://"+g.HTTPAddr.String()+approvals.APIPrefix+path, rd)
		req.Header.Set("Authorization", "Bearer "+bob)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode) // the body is not printed: it may hold a secret
		}
		told = append(told, b)
		return b
	}
	// held sends one call needing approval, with secrets in its arguments
	// and reason, and waits while the approver decides with a secret in
	// the reason (verdict "deny" or "approve").
	held := func(n int, verdict string, decide func(id, reason string)) *extauthz.Result {
		t.Helper()
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"delete_repo",`+
			`"arguments":{"repo":"acme/x%d","aws_key":%q},"_meta":{%q:"rotating %s"}}}`,
			n, n, sinkSecrets[0], grants.ReasonMetaKey, sinkSecrets[1])
		req := &extauthz.Request{Method: "POST", Path: cfg.Targets[0].PathPrefix, Host: "gateway.test", Scheme: "http",
			Headers: map[string]string{"authorization": "Bearer " + agent, "content-type": "application/json",
				"mcp-protocol-version": "2025-03-26", "mcp-session-id": "sess-redact",
				grants.ReasonHeader: "header " + sinkSecrets[0]},
			Body: []byte(body), ContextExtensions: map[string]string{wire.ContextTarget: "github"}}
		done := make(chan *extauthz.Result, 1)
		go func() { done <- g.Authorizer.Check(context.Background(), req) }()
		var id string
		for deadline := time.Now().Add(10 * time.Second); id == ""; {
			var list struct {
				Requests []grants.Request `json:"requests"`
			}
			if err := json.Unmarshal(api("GET", "requests?state=pending", nil), &list); err != nil {
				t.Fatal(err)
			}
			if len(list.Requests) > 0 {
				id = list.Requests[0].ID
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the call was never held")
			}
			time.Sleep(20 * time.Millisecond)
		}
		decide(id, verdict+" with "+sinkSecrets[1]+" and "+sinkSecrets[0])
		api("GET", "requests/"+id, nil)
		select {
		case r := <-done:
			told = append(told, r.Body, []byte(r.Reason))
			return r
		case <-time.After(15 * time.Second):
			t.Fatal("the held call did not end")
			return nil
		}
	}
	viaCLI := func(verdict string) func(id, reason string) {
		return func(id, reason string) { mustRun(verdict, id, "--reason", reason) }
	}
	viaAPI := func(verdict string) func(id, reason string) {
		return func(id, reason string) {
			api("POST", "requests/"+id+"/"+verdict, approvals.VerdictBody{Reason: reason})
		}
	}
	if r := held(1, "deny", viaCLI("deny")); r.Outcome != extauthz.OutcomeDeny || !strings.Contains(string(r.Body), "[MASKED:") {
		t.Errorf("denied call: outcome %s; want deny, and the approver's reason masked in the body", r.Outcome)
	}
	if r := held(2, "approve", viaAPI("approve")); r.Outcome != extauthz.OutcomeAllow {
		t.Errorf("approved call: outcome %s, want allow", r.Outcome)
	}
	api("GET", "requests", nil)
	api("GET", "grants", nil)
	mustRun("requests", "--state", "all")
	mustRun("grants", "--state", "all")
	mustRun("requests", "-o", "json", "--state", "all")

	// Every webhook delivery (2 requests: opened, decided, ended, issued…)
	// arrives before the gateway stops.
	for deadline := time.Now().Add(10 * time.Second); ; {
		hookMu.Lock()
		n := len(hookBodies)
		hookMu.Unlock()
		if n >= 8 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	// The audit trail as the auditor reads it, once the gateway is down.
	// (Without ext_proc these sessions hold only what ext_authz records;
	// the files under audit/ are checked below either way.)
	// Replay's exit code is not the point here (an unknown session may
	// exit non-zero): only what it prints.
	mustRun("sessions", "--config", cfgPath)
	_ = run("replay", "--config", cfgPath, "sess-redact")

	check := func(where string, b []byte) {
		t.Helper()
		for i, s := range sinkSecrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds fake secret #%d in clear", where, i)
			}
		}
	}
	hookMu.Lock()
	kinds := map[string]int{}
	for _, b := range hookBodies {
		kinds[string(bytes.SplitN(b, []byte(" "), 2)[0])]++
	}
	if kinds["/generic"] == 0 || kinds["/slack"] == 0 {
		t.Errorf("webhook deliveries by endpoint %v: want both the generic and the Slack one", kinds)
	}
	for i, b := range hookBodies {
		check(fmt.Sprintf("webhook delivery %d (%s)", i, bytes.SplitN(b, []byte(" "), 2)[0]), b)
	}
	hookMu.Unlock()
	for i, b := range told {
		check(fmt.Sprintf("answer %d to a client", i), b)
	}
	check("airlock's log", []byte(logs.String()))
	if !strings.Contains(logs.String(), "delete_repo") {
		t.Error("the log never mentions the call: the check would prove nothing")
	}
	// The grant store, the audit store (the spool is there only with
	// ClickHouse) and the decision log keep the masked reasons and
	// arguments: what was recorded is checked, not an empty directory.
	for _, sub := range []string{"grants", "audit", "spool", "decisions"} {
		root := filepath.Join(dir, sub)
		if _, err := os.Stat(root); os.IsNotExist(err) && sub == "spool" {
			continue
		}
		masked := false
		err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			masked = masked || bytes.Contains(b, []byte("[MASKED:"))
			check(path, b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if !masked {
			t.Errorf("no file under %s holds a masked reason or argument: nothing was recorded there", sub)
		}
	}
}
