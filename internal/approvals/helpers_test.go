package approvals

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/policy/rego"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// refuseTokens is a Verifier for tests that use no API tokens.
type refuseTokens struct{}

func (refuseTokens) Verify(context.Context, string, []string) (*identity.Principal, error) {
	return nil, &identity.Error{Reason: identity.ReasonMalformed, Detail: "this test takes no tokens"}
}

// allowAll is a one-rule policy: these tests open requests directly.
const allowAll = "package airlock\n\ndecision := {\"outcome\": \"allow\", \"reason\": \"test\"}\n"

func loadAllowAll(t testing.TB) *rego.Engine {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(allowAll), 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := rego.Load(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// inboxFixture is a Handler with the inbox on, served over loopback.
type inboxFixture struct {
	h   *Handler
	g   *grants.Service
	srv *httptest.Server
	iss *oidcissuer.Issuer
}

func newInboxFixture(t testing.TB, mod func(*Options)) *inboxFixture {
	t.Helper()
	iss, err := oidcissuer.New(oidcissuer.Options{RSABits: 1024})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = iss.Close() })
	cfg := grants.Defaults()
	g, err := grants.New(grants.NewMemStore(), cfg, grants.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	f := &inboxFixture{g: g, iss: iss}
	f.srv = httptest.NewUnstartedServer(nil)
	opts := Options{
		Grants: g, Verifier: refuseTokens{}, Policy: loadAllowAll(t), PublicURL: "http://gw.test",
		Inbox:   InboxConfig{Issuer: iss.URL(), ClientID: "inbox", RedirectURL: "http://" + f.srv.Listener.Addr().String() + CallbackPath},
		Targets: []Target{{Name: "github", MaskingProfile: "default"}}, Heartbeat: 20 * time.Millisecond,
	}
	if mod != nil {
		mod(&opts)
	}
	if f.h, err = New(opts); err != nil {
		t.Fatal(err)
	}
	f.srv.Config.Handler = f.h
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

// sessionCookie seals a session for v, as a sign-in would.
func (f *inboxFixture) sessionCookie(t *testing.T, s *session) *http.Cookie {
	t.Helper()
	if s.CSRF == "" {
		s.CSRF = randomToken()
	}
	if s.Expires == 0 {
		s.Expires = time.Now().Add(time.Hour).Unix()
	}
	rec := httptest.NewRecorder()
	if err := f.h.inbox.setCookie(rec, f.h.inbox.sessionCookie, s, time.Unix(s.Expires, 0)); err != nil {
		t.Fatal(err)
	}
	return rec.Result().Cookies()[0]
}

var (
	requester = grants.Principal{Issuer: "https://idp.example/oauth2/default", Subject: "alice@example.com", User: "00u-alice", ClientID: "0oa-agent", Groups: []string{"eng"}}
	approver  = session{Issuer: "https://idp.example", Subject: "00u-bob", User: "bob@example.com", Groups: []string{"airlock-approvers"}}
	terms     = policy.Approval{ApproverGroups: []string{"airlock-approvers"}, Threshold: 1, SingleUse: true, BreakGlassGroups: []string{"sre-oncall"}}
)

func (f *inboxFixture) open(t testing.TB, tool, args string) *grants.Request {
	t.Helper()
	r, _, err := f.g.Open(context.Background(), grants.OpenParams{
		Principal: requester, Target: "github", Kind: grants.KindTool, Tool: tool,
		Arguments: json.RawMessage(args), Reason: "cleanup", Approval: terms,
	})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// paramsOf are the parameters of an identical call: Open joins r.
func (f *inboxFixture) paramsOf(r *grants.Request) grants.OpenParams {
	return grants.OpenParams{
		Principal: requester, Target: r.Target, Kind: r.Kind, Tool: r.Tool,
		Arguments: r.Arguments, Reason: "cleanup", Approval: terms,
	}
}

// noRedirect is a client that shows redirects instead of following them.
var noRedirect = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}
