// Package oidcissuer is a real OAuth 2.0 / OpenID Connect issuer served over
// HTTP on loopback, for tests, benchmarks and the demo. It publishes
// discovery (/.well-known/openid-configuration and RFC 8414
// /.well-known/oauth-authorization-server), a JWKS, and a client_credentials
// token endpoint that honours RFC 8707 resource indicators; it mints
// Okta-shaped access tokens, including deliberately bad ones (expired,
// not-yet-valid, wrong aud/iss, alg none, HS256 keyed with the RSA public
// key), rotates keys, counts fetches and can make its JWKS endpoint fail.
//
// It is ordinary code (no testing import) so a small main can run it too.
package oidcissuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures an Issuer. The zero value is usable.
type Options struct {
	// Addr is the listen address (default 127.0.0.1:0, a free port). Give a
	// fixed port to start an issuer where a verifier already expects one.
	Addr string
	// Path is the issuer URL's path, e.g. /oauth2/default as on Okta custom
	// authorization servers (default none: the issuer is http://host:port).
	Path string
	// Audience is the aud of tokens that name no audience (default api://default).
	Audience string
	// TokenTTL is the lifetime of minted tokens (default 1h).
	TokenTTL time.Duration
	// Now is the clock for iat/exp (default time.Now).
	Now func() time.Time
	// Clients are the OAuth clients the token endpoint accepts, by client_id.
	// With none configured any client_id is accepted with any secret.
	Clients map[string]Client
	// RSABits is the RSA key size (default 2048).
	RSABits int
}

// Client is an OAuth client of the token endpoint.
type Client struct {
	Secret string
	// User, when set, becomes the uid claim (a client acting for a user).
	User string
	// Groups become the groups claim.
	Groups []string
	// Scopes limits what the client may ask for; it is also what the client
	// gets when it asks for no scope. Empty: any scope may be asked for.
	Scopes []string
}

// Issuer is a running OIDC issuer. Its methods are safe for concurrent use.
type Issuer struct {
	opts Options
	url  string
	ln   net.Listener
	srv  *http.Server
	done chan struct{}

	mu   sync.Mutex
	keys []*keyPair // published; the last one signs

	jwksDown         atomic.Bool
	jwksFetches      atomic.Int64
	discoveryFetches atomic.Int64
	tokensIssued     atomic.Int64
}

// New starts an issuer listening on opts.Addr.
func New(opts Options) (*Issuer, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if opts.Audience == "" {
		opts.Audience = "api://default"
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.RSABits == 0 {
		opts.RSABits = 2048
	}
	opts.Path = strings.TrimSuffix(opts.Path, "/")
	if opts.Path != "" && !strings.HasPrefix(opts.Path, "/") {
		return nil, fmt.Errorf("oidcissuer: path %q must start with /", opts.Path)
	}
	kp, err := newKeyPair(opts.RSABits)
	if err != nil {
		return nil, fmt.Errorf("oidcissuer: %w", err)
	}
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("oidcissuer: listen on %s: %w", opts.Addr, err)
	}
	i := &Issuer{
		opts: opts,
		url:  "http://" + ln.Addr().String() + opts.Path,
		ln:   ln,
		keys: []*keyPair{kp},
		done: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+opts.Path+"/.well-known/openid-configuration", i.serveDiscovery)
	mux.HandleFunc("GET "+opts.Path+"/.well-known/oauth-authorization-server", i.serveDiscovery)
	if opts.Path != "" {
		// RFC 8414 section 3: the well-known segment goes before the issuer's path.
		mux.HandleFunc("GET /.well-known/oauth-authorization-server"+opts.Path, i.serveDiscovery)
	}
	mux.HandleFunc("GET "+opts.Path+"/keys", i.serveJWKS)
	mux.HandleFunc(opts.Path+"/token", i.serveToken)
	i.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		defer close(i.done)
		if err := i.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			// The listener failed under us; requests will fail and tests notice.
			return
		}
	}()
	return i, nil
}

// URL is the issuer identifier (the iss of its tokens).
func (i *Issuer) URL() string { return i.url }

// JWKSURL is where the key set is served.
func (i *Issuer) JWKSURL() string { return i.url + "/keys" }

// TokenURL is the client_credentials token endpoint.
func (i *Issuer) TokenURL() string { return i.url + "/token" }

// DiscoveryURL is the OpenID Connect discovery document's URL.
func (i *Issuer) DiscoveryURL() string { return i.url + "/.well-known/openid-configuration" }

// Close stops the server and waits for it.
func (i *Issuer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := i.srv.Shutdown(ctx)
	if err != nil {
		err = i.srv.Close()
	}
	<-i.done
	return err
}

// AddKey generates a new key pair that signs from now on; the previous keys
// stay published (the overlap an IdP keeps during rotation).
func (i *Issuer) AddKey() error {
	kp, err := newKeyPair(i.opts.RSABits)
	if err != nil {
		return fmt.Errorf("oidcissuer: %w", err)
	}
	i.mu.Lock()
	i.keys = append(i.keys, kp)
	i.mu.Unlock()
	return nil
}

// DropOldKeys unpublishes every key but the current signing pair.
func (i *Issuer) DropOldKeys() {
	i.mu.Lock()
	i.keys = i.keys[len(i.keys)-1:]
	i.mu.Unlock()
}

// Rotate adds a new signing key and drops the old ones.
func (i *Issuer) Rotate() error {
	if err := i.AddKey(); err != nil {
		return err
	}
	i.DropOldKeys()
	return nil
}

// KeyIDs lists the published kids, oldest first.
func (i *Issuer) KeyIDs() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	var ids []string
	for _, k := range i.keys {
		ids = append(ids, k.rsaKID, k.ecKID)
	}
	return ids
}

// SigningKeyID is the kid that signs tokens of alg (RS256 if empty).
func (i *Issuer) SigningKeyID(alg string) string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[len(i.keys)-1].kidFor(alg)
}

// SetJWKSDown makes the JWKS endpoint answer 503 (true) or work again (false).
func (i *Issuer) SetJWKSDown(down bool) { i.jwksDown.Store(down) }

// JWKSFetches counts requests to the JWKS endpoint, failed ones included.
func (i *Issuer) JWKSFetches() int { return int(i.jwksFetches.Load()) }

// DiscoveryFetches counts requests to either discovery document.
func (i *Issuer) DiscoveryFetches() int { return int(i.discoveryFetches.Load()) }

// TokensIssued counts tokens the token endpoint handed out.
func (i *Issuer) TokensIssued() int { return int(i.tokensIssued.Load()) }

func (i *Issuer) now() time.Time { return i.opts.Now() }

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	i.discoveryFetches.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                i.url,
		"jwks_uri":                              i.JWKSURL(),
		"token_endpoint":                        i.TokenURL(),
		"grant_types_supported":                 []string{"client_credentials"},
		"response_types_supported":              []string{"token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	i.jwksFetches.Add(1)
	if i.jwksDown.Load() {
		http.Error(w, "jwks endpoint is down (oidcissuer.SetJWKSDown)", http.StatusServiceUnavailable)
		return
	}
	i.mu.Lock()
	set := jwks(i.keys)
	i.mu.Unlock()
	writeJSON(w, http.StatusOK, set)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
