package browser

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/test/peers"
)

// system is what the test drives: an airlock serving the inbox, and a
// call held for approval the way ext_authz holds one. approvalsSystem is
// the API and inbox with a grants.Service; the end-to-end harness can
// provide the same with a real MCP call through the gateway.
type system interface {
	InboxURL() string
	// Hold makes a call of tool with args that policy holds for approval,
	// and returns when it is decided or the hold window passes.
	Hold(ctx context.Context, tool, args, reason string) (*grants.HoldResult, error)
}

type approvalsSystem struct{ s *approvalstest.Stack }

func (a approvalsSystem) InboxURL() string { return a.s.URL + approvals.InboxPrefix }

func (a approvalsSystem) Hold(ctx context.Context, tool, args, reason string) (*grants.HoldResult, error) {
	return a.s.Hold(ctx, approvalstest.Alice, tool, args, reason)
}

// chromiumPath finds Debian's chromium; the test fails without it.
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, p := range []string{os.Getenv("AIRLOCK_CHROMIUM"), "/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	t.Fatal("chromium is not installed: the inbox browser test needs it (apt-get install -y chromium), or set AIRLOCK_CHROMIUM to its path")
	return ""
}

// browser starts headless Chromium with a fresh profile.
func browser(t *testing.T, ctx context.Context) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 1000),
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancel)
	bctx, cancelB := chromedp.NewContext(actx)
	t.Cleanup(cancelB)
	// Start the browser on bctx itself: a browser first used through a
	// derived context would close when that context does.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}
	return bctx
}

// startSystem runs oidc-provider as the inbox's issuer (authorization
// code + PKCE, user bob in airlock-approvers) and the API with the inbox.
func startSystem(t *testing.T, ctx context.Context) system {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	idp, err := peers.StartOIDCProvider(ctx, peers.OIDCOptions{
		WebClients: []peers.OIDCWebClient{{ID: "airlock-inbox", RedirectURIs: []string{base + approvals.CallbackPath}}},
		Users: []peers.OIDCUser{{Login: approvalstest.Bob.User, PreferredUsername: approvalstest.Bob.Subject,
			Email: approvalstest.Bob.Subject, Groups: []string{"airlock-approvers"}}},
	})
	if err != nil {
		_ = ln.Close()
		t.Fatalf("starting oidc-provider: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("oidc-provider output:\n%s", idp.Output())
		}
		_ = idp.Close()
	})
	gcfg := grants.Defaults()
	gcfg.HoldWindow = 90 * time.Second
	gcfg.PendingTTL = 10 * time.Minute
	s, err := approvalstest.Start(approvalstest.Options{
		Listener: ln, Grants: &gcfg,
		Inbox: approvals.InboxConfig{Issuer: idp.Issuer(), ClientID: "airlock-inbox", RedirectURL: base + approvals.CallbackPath},
	})
	if err != nil {
		t.Fatalf("starting the approvals API: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return approvalsSystem{s}
}

func TestInboxApprovesAHeldCall(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sys := startSystem(t, ctx)
	b := browser(t, ctx)
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(b, 30*time.Second)
		defer cancel()
		if err := chromedp.Do(sctx, actions...); err != nil {
			shot(t, b, what)
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Signing in: the inbox sends the browser to the provider's login form.
	step("open the inbox", chromedp.Navigate(sys.InboxURL()), chromedp.WaitVisible(`input[name="login"]`))
	loc, err := chromedp.Run(b, chromedp.Location())
	if err != nil || !strings.Contains(loc, "/oauth2/default/interaction/") {
		t.Fatalf("the inbox did not send the browser to sign in: at %q (%v)", loc, err)
	}
	step("sign in as bob",
		chromedp.SendKeys(`input[name="login"]`, approvalstest.Bob.User),
		chromedp.SendKeys(`input[name="password"]`, "any password"),
		chromedp.Click(`button[type="submit"]`),
		chromedp.WaitVisible(`#pending`),
		void(chromedp.Poll[bool](`document.getElementById('live-status').textContent === 'live'`)),
	)
	who, _ := chromedp.Run(b, chromedp.Text(`header .who span`))
	if who != approvalstest.Bob.Subject {
		t.Errorf("signed in as %q, want %q", who, approvalstest.Bob.Subject)
	}
	// A marker that a page load would wipe: the request must appear live.
	step("mark the page", void(chromedp.Evaluate[bool](`window.__airlockMarker = true`)))

	type held struct {
		res *grants.HoldResult
		err error
	}
	done := make(chan held, 1)
	args := `{"repo":"acme/old-test","note":"<script>window.__pwned=1</script><b>bold</b>","aws_key":"AKIAIOSFODNN7EXAMPLE"}`
	go func() {
		res, err := sys.Hold(ctx, "delete_repository", args, "remove the test repo for OPS-1234")
		done <- held{res, err}
	}()

	card := `#pending article.request`
	step("see the request appear", chromedp.WaitVisible(card))
	if stayed, _ := chromedp.Run(b, chromedp.Evaluate[bool](`window.__airlockMarker === true`)); !stayed {
		t.Error("the page reloaded: the request did not appear live")
	}
	// The card can be visible a moment before its arguments are filled in.
	step("see the arguments", void(chromedp.Poll[bool](`(document.querySelector('#pending article.request pre.args') || {textContent: ''}).textContent.includes('acme/old-test')`)))
	argsText, err := chromedp.Run(b, chromedp.Text(card+` pre.args`))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"note": "<script>window.__pwned=1</script><b>bold</b>"`, `"aws_key": "[MASKED:aws_access_key]"`, `"repo": "acme/old-test"`} {
		if !strings.Contains(argsText, want) {
			t.Errorf("the arguments shown lack %s:\n%s", want, argsText)
		}
	}
	injected, _ := chromedp.Run(b, chromedp.Evaluate[int](`document.querySelectorAll('#pending script, #pending b').length + (window.__pwned ? 100 : 0)`))
	if injected != 0 {
		t.Errorf("argument text became markup (%d elements / script ran)", injected)
	}
	html, _ := chromedp.Run(b, chromedp.OuterHTML(`#pending`))
	if strings.Contains(html, "AKIAIOSFODNN7EXAMPLE") {
		t.Error("the page holds the unmasked AWS key")
	}
	shot(t, b, "pending")

	step("approve with a reason",
		chromedp.SendKeys(card+` input[name="reason"]`, "looks right: OPS-1234"),
		chromedp.Click(card+` button.approve`),
		chromedp.WaitVisible(`p.notice`),
	)
	notice, _ := chromedp.Run(b, chromedp.Text(`p.notice`))
	if notice != "You approved this request." {
		t.Errorf("notice %q", notice)
	}
	shot(t, b, "approved")

	select {
	case h := <-done:
		if h.err != nil {
			t.Fatalf("the held call failed: %v", h.err)
		}
		if h.res.Outcome != grants.HoldAllowed || h.res.Grant == nil {
			t.Fatalf("the held call ended %s, want allowed with a grant", h.res.Outcome)
		}
		d := h.res.Request.Decisions
		if len(d) != 1 || d[0].Actor != approvalstest.Bob.User || d[0].Reason != "looks right: OPS-1234" {
			t.Errorf("decisions %+v, want bob's approval with his reason", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the held call was not released by the approval")
	}

	step("see it in the history", chromedp.Navigate(strings.TrimSuffix(sys.InboxURL(), "/")+"/history"), chromedp.WaitVisible(`table.history`))
	hist, _ := chromedp.Run(b, chromedp.Text(`table.history`))
	if !strings.Contains(hist, "approved") || !strings.Contains(hist, "approved by "+approvalstest.Bob.User) {
		t.Errorf("history:\n%s", hist)
	}
}

// void drops an action's value.
func void[T any](a chromedp.Action[T]) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := a(ctx, t)
		return err
	})
}

// shot saves a PNG screenshot to $AIRLOCK_BROWSER_SHOTS, when set, to look at.
func shot(t *testing.T, b context.Context, name string) {
	dir := os.Getenv("AIRLOCK_BROWSER_SHOTS")
	if dir == "" {
		return
	}
	img, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-%s.png", t.Name(), name))
	if err := os.WriteFile(p, img, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
}
