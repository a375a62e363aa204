package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/peers"
)

// startDevIssuer runs `airlock dev issuer` (the real binary) on a free
// loopback port and returns its URL, read from its banner.
func startDevIssuer(ctx context.Context, bin string) (string, func(), error) {
	cmd := exec.CommandContext(ctx, bin, "dev", "issuer", "--addr", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	go io.Copy(io.Discard, out)
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "airlock dev issuer: ")
	if err != nil || !ok {
		stop()
		return "", nil, fmt.Errorf("airlock dev issuer did not start: %q %v", line, err)
	}
	return u, stop, nil
}

// inboxConfig turns the web inbox on, signing in through the dev issuer.
func inboxConfig(issuer string) func(string) string {
	return func(base string) string {
		return fmt.Sprintf("inbox: {issuer: %s, client_id: airlock-inbox, redirect_url: %s/airlock/inbox/callback}\n", issuer, base)
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// inboxStep: dana's agent makes a call that is held; bob opens the
// approval link the agent was given, signs in at the dev issuer
// (authorization code + PKCE, as a browser would: redirects followed,
// the login form posted) and approves with the inbox's form.
func inboxStep(ctx context.Context, s *harness.Stack, p *printer, pending func(subject string) (string, error)) error {
	tok, err := s.Token("00u-dana", "github")
	if err != nil {
		return err
	}
	cs, err := peers.ConnectGoClientWith(ctx, s.TargetURL("github"), tok, peers.GoClientOptions{
		Header: http.Header{"X-Airlock-Reason": {"ticket OPS-43: remove the old wiki"}},
	})
	if err != nil {
		return err
	}
	defer cs.Close()
	done := make(chan error, 1)
	go func() {
		_, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "delete_repository", Arguments: map[string]any{"repo": "acme/old-wiki"}})
		done <- err
	}()
	p.hold("dana's agent's call delete_repository {\"repo\":\"acme/old-wiki\"} is held")
	id, err := pending("00u-dana")
	if err != nil {
		return err
	}
	link := s.BaseURL + "/airlock/inbox/requests/" + id
	p.ok("its approval page: %s", link)

	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(u string) (*http.Response, string, error) {
		req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
		resp, err := browser.Do(req)
		if err != nil {
			return nil, "", err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b), nil
	}
	// Not signed in: the inbox sends bob to the dev issuer's login page.
	resp, _, err := get(link)
	if err != nil {
		return err
	}
	login := resp.Request.URL
	if resp.StatusCode != 200 || !strings.HasSuffix(login.Path, "/authorize") {
		return fmt.Errorf("opening %s: %d at %s, want the dev issuer's login page", link, resp.StatusCode, login)
	}
	p.ok("not signed in: redirected to the dev issuer's login page (%s://%s/authorize)", login.Scheme, login.Host)
	form := login.Query()
	form.Set("user", "bob")
	req, _ := http.NewRequestWithContext(ctx, "POST", login.Scheme+"://"+login.Host+"/authorize", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err = browser.Do(req)
	if err != nil {
		return err
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	page := string(b)
	if resp.StatusCode != 200 || resp.Request.URL.Path != "/airlock/inbox/requests/"+id {
		return fmt.Errorf("signing in as bob: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	p.ok("bob signs in (authorization code + PKCE) and lands on the request's page")
	m := csrfRE.FindStringSubmatch(page)
	if m == nil || !strings.Contains(page, "acme/old-wiki") {
		return errors.New("the request page lacks the approve form or the call's arguments")
	}
	post := url.Values{"csrf": {m[1]}, "reason": {"wiki moved to the docs site, checked"}}
	req, _ = http.NewRequestWithContext(ctx, "POST", s.BaseURL+"/airlock/inbox/requests/"+id+"/approve", strings.NewReader(post.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.BaseURL)
	resp, err = browser.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Request.URL.Query().Get("done") != "approve" {
		return fmt.Errorf("approving in the inbox: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	p.ok("bob approves with the inbox's form")
	if err := <-done; err != nil {
		return fmt.Errorf("the call approved in the inbox failed: %w", err)
	}
	p.ok("the held call went through; the MCP server deleted acme/old-wiki")
	p.note("Try it in a browser: open " + s.BaseURL + "/airlock/inbox/ and sign in as bob.")
	return nil
}
