package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
	"github.com/airlock-mcp/airlock/test/peers"
)

// script is the agent session the demo shows. Every step checks what it
// shows, so a broken gateway makes the demo fail instead of lying.
func script(ctx context.Context, s *harness.Stack, p *printer, bin string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tok, err := s.Token("00u-alice", "github")
	if err != nil {
		return err
	}

	p.title("1. An agent (Go MCP SDK) connects to target github with alice's token")
	cs, err := peers.ConnectGoClient(ctx, s.TargetURL("github"), tok)
	if err != nil {
		return err
	}
	defer cs.Close()
	init := cs.InitializeResult()
	p.ok("initialize → server %q, protocol %s", init.ServerInfo.Name, init.ProtocolVersion)
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		return err
	}
	var names []string
	for _, t := range tools.Tools {
		names = append(names, t.Name)
	}
	p.ok("tools/list → %s", strings.Join(names, ", "))

	p.title("2. An allowed call: tools/call echo")
	s.GoServer.Reset()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello through airlock"}})
	if err != nil {
		return err
	}
	p.ok("allowed → %q", res.Content[0].(*mcp.TextContent).Text)
	reqs := s.GoServer.Requests()
	if len(reqs) == 0 {
		return errors.New("the MCP server saw no request")
	}
	got := reqs[len(reqs)-1].Authorization()
	if got != "Bearer "+harness.UpstreamSecret {
		return fmt.Errorf("the MCP server saw Authorization %.12q…, not its own credential", got)
	}
	p.ok("the MCP server saw its own credential (Bearer %s…), never the agent's token", harness.UpstreamSecret[:9])
	p.ok("and who called: x-airlock-principal=%s, x-airlock-client-id=%s",
		reqs[len(reqs)-1].Header.Get("X-Airlock-Principal"), reqs[len(reqs)-1].Header.Get("X-Airlock-Client-Id"))

	p.title("2b. A secret in a response is masked (ext_proc): tools/call get_secret_config")
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: peers.ToolGetSecretConfig, Arguments: map[string]any{}})
	if err != nil {
		return err
	}
	text := res.Content[0].(*mcp.TextContent).Text
	for _, secret := range peers.FakeSecrets {
		if strings.Contains(text, secret) {
			return errors.New("a secret from the MCP server reached the agent unmasked")
		}
	}
	if !strings.Contains(text, "[MASKED:aws_access_key]") {
		return fmt.Errorf("the AWS key was not masked: %q", text)
	}
	for _, l := range strings.Split(strings.TrimSpace(text), "\n") {
		if strings.Contains(l, "[MASKED:") {
			p.ok("the agent sees %s", l)
		}
	}
	p.ok("the server sent real-looking (fake) credentials; none reached the agent, and the recording keeps only the masked text")

	p.title("3. A denied call: tools/call get-env on target everything")
	etok, err := s.Token("00u-alice", "everything")
	if err != nil {
		return err
	}
	ecs, err := peers.ConnectGoClient(ctx, s.TargetURL("everything"), etok)
	if err != nil {
		return err
	}
	defer ecs.Close()
	_, err = ecs.CallTool(ctx, &mcp.CallToolParams{Name: "get-env", Arguments: map[string]any{}})
	if err == nil {
		return errors.New("get-env was allowed")
	}
	p.deny("%s", rpcMessage(err))

	p.title("4. A call that needs a human: tools/call delete_repository, held for approval")
	if err := approvalStep(ctx, s, p, bin); err != nil {
		return err
	}

	p.title("4b. Another held call, approved in the web inbox")
	pending := func(subject string) (string, error) {
		for ctx.Err() == nil {
			out, err := exec.CommandContext(ctx, bin, "requests", "--output", "json", "--server", s.BaseURL,
				"--token-file", filepath.Join(s.WorkDir, "approver-token")).CombinedOutput()
			if err != nil {
				return "", fmt.Errorf("airlock requests: %v\n%s", err, out)
			}
			var list struct {
				Requests []grants.Request `json:"requests"`
			}
			if err := json.Unmarshal(out, &list); err != nil {
				return "", fmt.Errorf("airlock requests: %w", err)
			}
			for _, r := range list.Requests {
				if r.Principal.Subject == subject {
					return r.ID, nil
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		return "", ctx.Err()
	}
	if err := inboxStep(ctx, s, p, pending); err != nil {
		return err
	}

	p.title("5. No token at all")
	req, _ := http.NewRequestWithContext(ctx, "POST", s.TargetURL("github"), strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 401 {
		return fmt.Errorf("no token got %d, want 401", resp.StatusCode)
	}
	p.deny("401, WWW-Authenticate: %s", resp.Header.Get("WWW-Authenticate"))
	if m := regexp.MustCompile(`resource_metadata="([^"]+)"`).FindStringSubmatch(resp.Header.Get("WWW-Authenticate")); m != nil {
		mr, err := http.Get(m[1])
		if err != nil {
			return err
		}
		var prm map[string]any
		_ = json.NewDecoder(mr.Body).Decode(&prm)
		mr.Body.Close()
		p.ok("the agent reads %s → ask %v for a token for %v", m[1], prm["authorization_servers"], prm["resource"])
	}
	return nil
}

// approvalStep: the agent's call is held; an approver (carol) finds it
// with `airlock requests` and approves it with `airlock approve`, both
// through the gateway's /airlock/ API; the held call then completes.
func approvalStep(ctx context.Context, s *harness.Stack, p *printer, bin string) error {
	tok, err := s.Token("00u-alice", "github")
	if err != nil {
		return err
	}
	cs, err := peers.ConnectGoClientWith(ctx, s.TargetURL("github"), tok, peers.GoClientOptions{
		Header: http.Header{"X-Airlock-Reason": {"ticket OPS-42: remove the archived repository"}},
	})
	if err != nil {
		return err
	}
	defer cs.Close()
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_repository", Arguments: map[string]any{"repo": "acme/archived"}})
		done <- err
	}()
	p.hold("the agent's call is held; airlock opened an access request and waits for an approver")

	approverTok, err := s.Issuer.Mint(oidcissuer.Token{Subject: "00u-carol", User: "carol", ClientID: "0oa-airlock-cli",
		Groups: []string{"airlock-approvers"}, Audience: []string{s.BaseURL + "/airlock"}})
	if err != nil {
		return err
	}
	tokFile := filepath.Join(s.WorkDir, "approver-token")
	if err := os.WriteFile(tokFile, []byte(approverTok), 0o600); err != nil {
		return err
	}
	cli := func(args ...string) ([]byte, error) {
		args = append(args, "--server", s.BaseURL, "--token-file", tokFile)
		out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
		if err != nil {
			return nil, fmt.Errorf("airlock %s: %v\n%s", strings.Join(args[:1], " "), err, out)
		}
		return out, nil
	}
	var list struct {
		Requests []grants.Request `json:"requests"`
	}
	for len(list.Requests) == 0 {
		out, err := cli("requests", "--output", "json")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(out, &list); err != nil {
			return fmt.Errorf("airlock requests: %w", err)
		}
		if len(list.Requests) == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	r := list.Requests[0]
	var args bytes.Buffer
	_ = json.Compact(&args, r.Arguments)
	r.Arguments = args.Bytes()
	p.ok("carol runs `airlock requests`: %s — %s (agent %s) wants %s %s on %s, because %q",
		r.ID, r.Principal.Subject, r.Principal.ClientID, r.Tool, r.Arguments, r.Target, r.Reason)
	out, err := cli("approve", r.ID, "--reason", "archived since 2024, checked")
	if err != nil {
		return err
	}
	p.ok("carol runs `airlock approve %s`: %s", r.ID, strings.TrimSpace(firstLine(out)))
	if err := <-done; err != nil {
		return fmt.Errorf("the approved call failed: %w", err)
	}
	p.ok("the held call went through at once; the MCP server deleted acme/archived")
	out, err = cli("grants")
	if err != nil {
		return err
	}
	p.note("`airlock grants`:")
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		p.note("  " + l)
	}
	return nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}

// rpcMessage pulls the JSON-RPC error message out of an SDK error.
func rpcMessage(err error) string {
	s := err.Error()
	for _, marker := range []string{"denied: ", "approval required: "} {
		if i := strings.Index(s, marker); i >= 0 {
			s = s[i:]
			if j := strings.Index(s, ": rejected by transport"); j >= 0 {
				s = s[:j]
			}
			return s
		}
	}
	return s
}
