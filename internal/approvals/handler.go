package approvals

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// Policy evaluates the decision policy; *rego.Engine is one. The API
// asks it what approval a call opened through POST /requests needs, with
// the input ext_authz would build for the same call.
type Policy = policy.Evaluator

// Options are the Handler's collaborators and settings.
type Options struct {
	Grants   *grants.Service // required
	Verifier Verifier        // required: API bearer tokens
	Policy   Policy          // required: POST /requests
	// API is the api section; PublicURL gives its default audience.
	API       APIConfig
	PublicURL string
	// Inbox is the inbox section; the inbox is served when it is enabled,
	// and the auditors' console too when it names auditor groups.
	Inbox InboxConfig
	// Audit is the store the auditors' console reads (required when
	// inbox.auditor_groups is set).
	Audit audit.Store
	// Targets are the MCP targets (arguments are masked by their
	// profiles; requests can be opened for them).
	Targets []Target
	// Profiles are the masking profiles (default: the built-ins).
	Profiles *mask.Set
	// Getenv reads the inbox client secret and session key (default os.Getenv).
	Getenv func(string) string
	// HTTPClient talks to the inbox's OIDC provider (default: 10s timeout).
	HTTPClient *http.Client
	Logger     *slog.Logger
	Now        func() time.Time
	// Heartbeat is the SSE keep-alive interval (default 15s).
	Heartbeat time.Duration
}

// Handler serves the API under /airlock/v1/, the inbox under
// /airlock/inbox/ and the auditors' console under /airlock/audit/. It is
// an http.Handler; mount it on "/airlock/".
type Handler struct {
	grants   *grants.Service
	verifier Verifier
	policy   Policy
	audience string
	// approverScopes and clientIDs are api.approver_scopes and
	// api.client_ids; resources the targets' resource URIs (resourceOf
	// their names), which API tokens must not carry.
	approverScopes []string
	clientIDs      []string
	resources      []string
	resourceOf     []string
	targets        map[string]Target
	profiles       map[string]*mask.Profile
	strict         *mask.Profile
	log            *slog.Logger
	now            func() time.Time
	heartbeat      time.Duration
	inbox          *inbox   // nil when off
	console        *console // nil when off
	mux            *http.ServeMux
}

// New builds the Handler. It contacts nobody: the inbox's OIDC provider is
// discovered on the first sign-in.
func New(opts Options) (*Handler, error) {
	var errs []error
	if opts.Grants == nil {
		errs = append(errs, errors.New("approvals: no grants service"))
	}
	if opts.Verifier == nil {
		errs = append(errs, errors.New("approvals: no token verifier"))
	}
	if opts.Policy == nil {
		errs = append(errs, errors.New("approvals: no policy"))
	}
	if err := opts.API.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := opts.Inbox.Validate(); err != nil {
		errs = append(errs, err)
	}
	if opts.Inbox.ConsoleEnabled() && opts.Audit == nil {
		errs = append(errs, errors.New("approvals: inbox.auditor_groups is set but there is no audit store for the console to read"))
	}
	aud := opts.API.AudienceFor(opts.PublicURL)
	for _, t := range opts.Targets {
		if t.Resource == aud {
			errs = append(errs, &config.FieldError{Path: "api.audience", Message: fmt.Sprintf("%q is also the resource URI of target %s: an agent's token for it would be accepted by the approvals API", aud, t.Name)})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := &Handler{
		grants: opts.Grants, verifier: opts.Verifier, policy: opts.Policy,
		audience: opts.API.AudienceFor(opts.PublicURL), log: opts.Logger, now: opts.Now,
		heartbeat: opts.Heartbeat, targets: map[string]Target{}, profiles: map[string]*mask.Profile{},
		mux: http.NewServeMux(),
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "approvals")
	if h.now == nil {
		h.now = time.Now
	}
	if h.heartbeat <= 0 {
		h.heartbeat = 15 * time.Second
	}
	set := opts.Profiles
	if set == nil {
		var err error
		if set, err = mask.NewSet(nil); err != nil {
			return nil, fmt.Errorf("approvals: masking profiles: %w", err)
		}
	}
	var err error
	if h.strict, err = set.Get(mask.StrictProfile); err != nil {
		return nil, fmt.Errorf("approvals: %w", err)
	}
	for _, t := range opts.Targets {
		p, err := set.Get(t.MaskingProfile)
		if err != nil {
			return nil, fmt.Errorf("approvals: target %s: %w", t.Name, err)
		}
		h.targets[t.Name], h.profiles[t.Name] = t, p
		if t.Resource != "" {
			h.resources, h.resourceOf = append(h.resources, t.Resource), append(h.resourceOf, t.Name)
		}
	}
	h.approverScopes, h.clientIDs = slices.Clone(opts.API.ApproverScopes), slices.Clone(opts.API.ClientIDs)
	h.routeAPI()
	if opts.Inbox.Enabled() {
		getenv := opts.Getenv
		if getenv == nil {
			getenv = os.Getenv
		}
		client := opts.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 10 * time.Second}
		}
		if h.inbox, err = newInbox(h, opts.Inbox.WithDefaults(), getenv, client); err != nil {
			return nil, err
		}
		if opts.Inbox.ConsoleEnabled() {
			h.console = &console{in: h.inbox, store: opts.Audit, groups: slices.Clone(opts.Inbox.AuditorGroups)}
			h.routeConsole()
		}
		h.routeInbox()
	}
	return h, nil
}

// ServeHTTP dispatches to the API or the inbox.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) { h.mux.ServeHTTP(w, r) }

// Audience is the aud API tokens must carry.
func (h *Handler) Audience() string { return h.audience }

func (h *Handler) routeAPI() {
	p := APIPrefix
	h.mux.HandleFunc("GET "+p+"requests", h.authed(h.listRequests))
	h.mux.HandleFunc("POST "+p+"requests", h.authed(h.createRequest))
	h.mux.HandleFunc("GET "+p+"requests/{id}", h.authed(h.getRequest))
	h.mux.HandleFunc("POST "+p+"requests/{id}/approve", h.authed(h.decider(grants.VerdictApprove)))
	h.mux.HandleFunc("POST "+p+"requests/{id}/deny", h.authed(h.decider(grants.VerdictDeny)))
	h.mux.HandleFunc("POST "+p+"requests/{id}/cancel", h.authed(h.cancelRequest))
	h.mux.HandleFunc("GET "+p+"grants", h.authed(h.listGrants))
	h.mux.HandleFunc("GET "+p+"grants/{id}", h.authed(h.getGrant))
	h.mux.HandleFunc("POST "+p+"grants/{id}/revoke", h.authed(h.revokeGrant))
	h.mux.HandleFunc("GET "+p+"events", h.authed(h.apiEvents))
	h.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
		h.writeError(w, r, newError(http.StatusNotFound, "not_found", "no API endpoint "+r.Method+" "+r.URL.Path+" (see docs/api.md)"))
	})
}
