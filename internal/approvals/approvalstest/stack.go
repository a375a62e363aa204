// Package approvalstest runs the approvals API (and, when asked, the web
// inbox) over real HTTP on loopback for tests: a real OIDC issuer
// (test/oidcissuer) minting bearer tokens, the shipped decision policy,
// and a grants.Service on a MemStore. The API tests, the CLI tests and the
// headless-browser test share it; it is ordinary code (no testing import).
package approvalstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/policy/rego"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// PolicyData is the rule data the stack's policy runs on: delete_* tools
// need one approval from airlock-approvers (single use; sre-oncall may
// break glass), get_env is denied, everything else is allowed.
const PolicyData = `airlock:
  rules:
    "*":
      tools:
        allow: ["*"]
        deny: ["get_env"]
        require_approval: ["delete_*"]
      resources:
        allow: ["*"]
        deny: []
        require_approval: ["secret://*"]
      prompts:
        allow: ["*"]
        deny: []
      approval:
        approver_groups: ["airlock-approvers"]
        threshold: 1
        single_use: true
        reason_required: false
        break_glass_groups: ["sre-oncall"]
      masking_profile: default
      record: true
`

// Target is the stack's one MCP target.
const Target = "github"

// Person is someone with a token.
type Person struct {
	Subject, User, ClientID string
	Groups                  []string
	Scopes                  []string // in API tokens (scp)
}

// The people of the tests.
var (
	// Alice asks through her agent (client 0oa-agent).
	Alice = Person{Subject: "alice@example.com", User: "00u-alice", ClientID: "0oa-agent", Groups: []string{"engineering"}}
	// Bob approves (airlock-approvers), through the CLI client.
	Bob = Person{Subject: "bob@example.com", User: "00u-bob", ClientID: "airlock-cli", Groups: []string{"engineering", "airlock-approvers"}}
	// Dave may only break glass.
	Dave = Person{Subject: "dave@example.com", User: "00u-dave", ClientID: "airlock-cli", Groups: []string{"sre-oncall"}}
	// Mallory is nobody's approver.
	Mallory = Person{Subject: "mallory@example.com", User: "00u-mallory", ClientID: "airlock-cli", Groups: []string{"engineering"}}
)

// Options shape the stack.
type Options struct {
	// Inbox, when enabled, serves the web inbox too; its redirect_url must
	// point at Listener's address.
	Inbox approvals.InboxConfig
	// Listener to serve on (default a fresh 127.0.0.1 port).
	Listener net.Listener
	// Grants overrides the grants configuration (default: defaults with a
	// 20s hold window).
	Grants *grants.Config
	Logger *slog.Logger
	// Heartbeat of event streams (default the handler's).
	Heartbeat time.Duration
	// API is the api section (default: audience public_url + /airlock,
	// no approver scopes, any client).
	API approvals.APIConfig
	// IssuerAudiences are the issuer's configured issuer-level audiences
	// (issuers[].audiences), which the API must never accept.
	IssuerAudiences []string
	// Auditor records the grant service's steps (default none); Audit is
	// the store the auditors' console reads (needed when
	// Inbox.AuditorGroups is set).
	Auditor grants.Auditor
	Audit   audit.Store
}

// Stack is a running API.
type Stack struct {
	Issuer   *oidcissuer.Issuer
	Grants   *grants.Service
	Handler  *approvals.Handler
	URL      string // http://127.0.0.1:port
	Audience string

	srv     *http.Server
	done    chan struct{}
	closers []func() error
}

// Start brings the stack up; on error nothing is left running.
func Start(opts Options) (_ *Stack, err error) {
	s := &Stack{}
	defer func() {
		if err != nil {
			_ = s.Close()
		}
	}()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if s.Issuer, err = oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default"}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Issuer.Close)
	ver, err := identity.New(context.Background(), []identity.Issuer{{Name: "okta", URL: s.Issuer.URL(), Audiences: opts.IssuerAudiences}}, identity.Options{Logger: log})
	if err != nil {
		return nil, err
	}
	pol, err := LoadPolicy()
	if err != nil {
		return nil, err
	}
	gcfg := grants.Defaults()
	gcfg.HoldWindow = 20 * time.Second
	if opts.Grants != nil {
		gcfg = *opts.Grants
	}
	ln := opts.Listener
	if ln == nil {
		if ln, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, err
		}
	}
	s.URL = "http://" + ln.Addr().String()
	gcfg.ApprovalURL = s.URL + approvals.InboxPrefix + "requests"
	if s.Grants, err = grants.New(grants.NewMemStore(), gcfg, grants.Options{Logger: log, Auditor: opts.Auditor}); err != nil {
		_ = ln.Close()
		return nil, err
	}
	s.closers = append(s.closers, s.Grants.Close)
	s.Handler, err = approvals.New(approvals.Options{
		Grants: s.Grants, Verifier: ver, Policy: pol, PublicURL: "http://gateway.test",
		Inbox: opts.Inbox, API: opts.API, Audit: opts.Audit,
		Targets: []approvals.Target{{Name: Target, Resource: "http://gateway.test/mcp/github", PathPrefix: "/mcp/github", MaskingProfile: "default"}},
		Logger:  log, Heartbeat: opts.Heartbeat,
	})
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s.Audience = s.Handler.Audience()
	s.srv = &http.Server{Handler: s.Handler, ReadHeaderTimeout: 5 * time.Second}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	s.closers = append(s.closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		err := s.srv.Shutdown(ctx)
		if err != nil {
			err = s.srv.Close() // event streams do not end by themselves
		}
		<-s.done
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		return err
	})
	return s, nil
}

// Token mints an API token (audience: the API's) for p.
func (s *Stack) Token(p Person) (string, error) {
	return s.Issuer.Mint(oidcissuer.Token{Subject: p.Subject, User: p.User, ClientID: p.ClientID, Groups: p.Groups, Scopes: p.Scopes, Audience: []string{s.Audience}})
}

// Open opens a request for tool with args as ext_authz would for p's
// agent, with the approval terms the stack's policy gives.
func (s *Stack) Open(ctx context.Context, p Person, tool, args, reason string) (*grants.Request, error) {
	r, _, err := s.Grants.Open(ctx, s.OpenParams(p, tool, args, reason))
	return r, err
}

// Hold holds a call for approval exactly as ext_authz does (Service.Hold).
func (s *Stack) Hold(ctx context.Context, p Person, tool, args, reason string) (*grants.HoldResult, error) {
	return s.Grants.Hold(ctx, s.OpenParams(p, tool, args, reason))
}

// OpenParams are the Open parameters for p calling tool on the target.
func (s *Stack) OpenParams(p Person, tool, args, reason string) grants.OpenParams {
	op := grants.OpenParams{
		Principal: grants.Principal{Issuer: s.Issuer.URL(), Subject: p.Subject, User: p.User, ClientID: p.ClientID, Groups: p.Groups},
		Target:    Target, Kind: grants.KindTool, Tool: tool, Reason: reason,
		Approval: policy.Approval{ApproverGroups: []string{"airlock-approvers"}, Threshold: 1, SingleUse: true, BreakGlassGroups: []string{"sre-oncall"}},
	}
	if args != "" {
		op.Arguments = json.RawMessage(args)
	}
	return op
}

// Close stops everything, last started first.
func (s *Stack) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i]())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// WritePolicy writes the shipped decision policy and PolicyData into dir
// (created if missing), as airlock.yaml's policy.dir holds them.
func WritePolicy(dir string) error {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return errors.New("approvalstest: cannot locate the repository")
	}
	shipped := filepath.Join(filepath.Dir(file), "..", "..", "..", "policies", "airlock", "decision.rego")
	src, err := os.ReadFile(shipped)
	if err != nil {
		return fmt.Errorf("approvalstest: the shipped policy: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "decision.rego"), src, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "data.yaml"), []byte(PolicyData), 0o644)
}

// LoadPolicy compiles the shipped decision policy with PolicyData.
func LoadPolicy() (*rego.Engine, error) {
	dir, err := os.MkdirTemp("", "airlock-approvals-policy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := WritePolicy(dir); err != nil {
		return nil, err
	}
	return rego.Load(dir, "")
}

// Actor is p deciding through the grants Service directly.
func (p Person) Actor() grants.Actor {
	return grants.Actor{Subject: p.Subject, User: p.User, ClientID: p.ClientID, Groups: p.Groups}
}
