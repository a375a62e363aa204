package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"
)

// OIDCClient is an OAuth client of the oidc-provider issuer.
type OIDCClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
	// UID becomes the uid claim (Okta's user id), when set.
	UID string `json:"uid,omitempty"`
	// Groups become the groups claim, when set.
	Groups []string `json:"groups,omitempty"`
	// Scopes limits the scopes the client may be granted (scopes asked for
	// outside it are left out of the token); empty grants whatever is asked.
	Scopes []string `json:"scopes,omitempty"`
}

// OIDCWebClient is an application people sign in to with the
// authorization code flow and PKCE (the airlock inbox). Without a secret
// it is a public client (token_endpoint_auth_method none).
type OIDCWebClient struct {
	ID           string   `json:"client_id"`
	Secret       string   `json:"client_secret,omitempty"`
	RedirectURIs []string `json:"redirect_uris"`
}

// OIDCUser is a person who can sign in on the provider's login form by
// typing Login (any password). Their ID tokens carry sub (the Login),
// name, preferred_username (else Login), email and groups.
type OIDCUser struct {
	Login             string   `json:"login"`
	Name              string   `json:"name,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Email             string   `json:"email,omitempty"`
	Groups            []string `json:"groups,omitempty"`
}

// OIDCOptions configures [StartOIDCProvider].
type OIDCOptions struct {
	// Port to listen on, on 127.0.0.1; 0 asks the kernel for a free one.
	Port int
	// Path is the issuer URL's path (default /oauth2/default, like an Okta
	// custom authorization server); "/" makes the issuer the bare origin.
	Path string
	// Clients the token endpoint accepts (client_secret_basic).
	Clients []OIDCClient
	// WebClients sign people in (authorization code + PKCE); Users are
	// those people. With Users the provider serves its development login
	// form and skips consent for WebClients.
	WebClients []OIDCWebClient
	Users      []OIDCUser
	// TokenTTL is the access token lifetime (default 1h, whole seconds).
	TokenTTL time.Duration
	// DefaultAudience is the aud of tokens asked for without a resource
	// (default api://default, Okta's).
	DefaultAudience string
	// NodeDir is the Node peers directory; default [NodeDir].
	NodeDir string
	// StartTimeout bounds the wait for discovery to answer (default 30s).
	StartTimeout time.Duration
}

// OIDCProvider is a running oidc-provider issuer (test/node/oidc.mjs) that
// issues Okta-shaped RS256 JWT access tokens through client_credentials
// with RFC 8707 resource indicators: header typ at+jwt and a kid; claims
// ver, jti, iss, aud (the resource, else DefaultAudience), sub and cid (the
// client id), iat, exp, scp (array), and uid and groups when the client has
// them. It serves discovery (OpenID and RFC 8414) and a JWKS. With
// WebClients and Users it also signs people in: authorization code with
// PKCE, its development login form, ID tokens with the users' groups.
type OIDCProvider struct {
	proc     *process
	issuer   string
	jwksURL  string
	tokenURL string
}

// oidcConfig is AIRLOCK_OIDC_CONFIG for oidc.mjs.
type oidcConfig struct {
	Issuer          string          `json:"issuer"`
	AccessTokenTTL  int             `json:"accessTokenTTL"`
	DefaultAudience string          `json:"defaultAudience,omitempty"`
	Clients         []OIDCClient    `json:"clients"`
	WebClients      []OIDCWebClient `json:"webClients,omitempty"`
	Users           []OIDCUser      `json:"users,omitempty"`
}

// discovery is the part of the discovery document the starter checks.
type discovery struct {
	Issuer        string `json:"issuer"`
	JWKSURI       string `json:"jwks_uri"`
	TokenEndpoint string `json:"token_endpoint"`
}

// StartOIDCProvider runs test/node/oidc.mjs with the Node 22 runtime and
// waits until its discovery document names the expected issuer.
func StartOIDCProvider(ctx context.Context, opts OIDCOptions) (*OIDCProvider, error) {
	dir, err := resolveNodeDir(opts.NodeDir)
	if err != nil {
		return nil, err
	}
	port, err := portOrFree(opts.Port)
	if err != nil {
		return nil, fmt.Errorf("oidc-provider: %w", err)
	}
	path := opts.Path
	switch {
	case path == "":
		path = "/oauth2/default"
	case path == "/":
		path = ""
	case !strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.ContainsAny(path, "?#"):
		return nil, fmt.Errorf("oidc-provider: issuer path %q must start with / and have no trailing /, query or fragment", path)
	}
	for i, c := range opts.Clients {
		if c.ID == "" || c.Secret == "" {
			return nil, fmt.Errorf("oidc-provider: client %d (%q) needs both an ID and a secret", i, c.ID)
		}
	}
	for i, c := range opts.WebClients {
		if c.ID == "" || len(c.RedirectURIs) == 0 {
			return nil, fmt.Errorf("oidc-provider: web client %d (%q) needs an ID and a redirect URI", i, c.ID)
		}
	}
	for i, u := range opts.Users {
		if u.Login == "" {
			return nil, fmt.Errorf("oidc-provider: user %d has no login", i)
		}
	}
	ttl := opts.TokenTTL
	if ttl <= 0 {
		ttl = time.Hour
	}
	if ttl < time.Second {
		return nil, fmt.Errorf("oidc-provider: token TTL %s is under a second", ttl)
	}
	issuer := fmt.Sprintf("http://127.0.0.1:%d%s", port, path)
	clients := opts.Clients
	if clients == nil {
		clients = []OIDCClient{}
	}
	cfg, err := json.Marshal(oidcConfig{Issuer: issuer, AccessTokenTTL: int(ttl / time.Second),
		DefaultAudience: opts.DefaultAudience, Clients: clients, WebClients: opts.WebClients, Users: opts.Users})
	if err != nil {
		return nil, fmt.Errorf("oidc-provider: encoding its configuration: %w", err)
	}
	argv := []string{nodeBinary(dir), filepath.Join(dir, "oidc.mjs")}
	p, err := startProcess("oidc-provider", dir, argv, []string{"AIRLOCK_OIDC_CONFIG=" + string(cfg)})
	if err != nil {
		return nil, err
	}
	o := &OIDCProvider{proc: p, issuer: issuer}
	probe := probeHTTP(issuer+"/.well-known/openid-configuration", func(resp *http.Response, body []byte) error {
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("discovery answered %s", resp.Status)
		}
		var d discovery
		if err := json.Unmarshal(body, &d); err != nil {
			return fmt.Errorf("discovery document: %w", err)
		}
		if d.Issuer != issuer || d.JWKSURI == "" || d.TokenEndpoint == "" {
			return fmt.Errorf("discovery names issuer %q, jwks_uri %q, token_endpoint %q; want issuer %q and both endpoints",
				d.Issuer, d.JWKSURI, d.TokenEndpoint, issuer)
		}
		o.jwksURL, o.tokenURL = d.JWKSURI, d.TokenEndpoint
		return nil
	})
	if err := p.waitReady(ctx, opts.StartTimeout, probe); err != nil {
		return nil, err
	}
	return o, nil
}

// URL is the issuer URL (same as Issuer).
func (o *OIDCProvider) URL() string { return o.issuer }

// Issuer is the issuer URL, e.g. http://127.0.0.1:<port>/oauth2/default;
// discovery is at Issuer()+"/.well-known/openid-configuration".
func (o *OIDCProvider) Issuer() string { return o.issuer }

// JWKSURL is the jwks_uri from discovery.
func (o *OIDCProvider) JWKSURL() string { return o.jwksURL }

// TokenURL is the token_endpoint from discovery.
func (o *OIDCProvider) TokenURL() string { return o.tokenURL }

// Output is the provider's recent stdout and stderr (the last 32 KiB).
func (o *OIDCProvider) Output() string { return o.proc.Output() }

// Close stops the provider's process group. It is idempotent.
func (o *OIDCProvider) Close() error { return o.proc.Close() }
