// Package devissuer is a local OpenID Connect provider for trying airlock
// on one machine (`airlock dev issuer`), like `vault server -dev`: NOT FOR
// PRODUCTION. It binds loopback only, keeps its signing key in memory,
// signs anyone in who clicks a name, and mints tokens for anyone who asks.
//
// It serves discovery, JWKS, the authorization-code flow with PKCE (S256
// only) behind a login page that lists its users (the inbox signs in
// through it), and a token endpoint that also takes client_credentials
// with a user parameter, so agents and the CLI can get a token for a
// user without a browser.
package devissuer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// User is someone the issuer signs in: a pick on its login page.
type User struct {
	Name    string   // login name: alice
	Subject string   // sub: 00u-alice
	Email   string   // email and preferred_username
	Groups  []string // groups claim
	Role    string   // shown on the login page
}

// Users are the dev issuer's people: an agent's user, an approver and an
// auditor, in the groups the demo configuration names.
var Users = []User{
	{Name: "alice", Subject: "00u-alice", Email: "alice@example.com", Groups: []string{"engineering"}, Role: "agent user: her agents call tools"},
	{Name: "bob", Subject: "00u-bob", Email: "bob@example.com", Groups: []string{"airlock-approvers"}, Role: "approver: decides held calls"},
	{Name: "erin", Subject: "00u-erin", Email: "erin@example.com", Groups: []string{"airlock-auditors"}, Role: "auditor: reads recorded sessions"},
}

// UserByName returns the user called name.
func UserByName(name string) (User, bool) {
	for _, u := range Users {
		if u.Name == name {
			return u, true
		}
	}
	return User{}, false
}

// TokenTTL is how long the tokens it mints last.
const TokenTTL = time.Hour

const codeTTL = time.Minute

// Issuer is a running dev issuer.
type Issuer struct {
	url string
	key *ecdsa.PrivateKey
	kid string
	ln  net.Listener
	srv *http.Server

	mu    sync.Mutex
	codes map[string]*grantCode
}

// grantCode is an authorization code waiting for its exchange.
type grantCode struct {
	user                             User
	clientID, redirectURI, challenge string
	nonce                            string
	expires                          time.Time
}

// Start listens on addr, which must be a loopback address (port 0 picks
// one), and serves until Close.
func Start(addr string) (*Issuer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("dev issuer address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("dev issuer address %q: it binds loopback only (127.0.0.1, ::1, localhost); it signs anyone in and is not for production", addr)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	i := &Issuer{url: "http://" + ln.Addr().String(), key: key, kid: "dev-" + randomString(6), ln: ln, codes: map[string]*grantCode{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", i.discovery)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", i.discovery)
	mux.HandleFunc("GET /keys", i.jwks)
	mux.HandleFunc("GET /authorize", i.loginPage)
	mux.HandleFunc("POST /authorize", i.login)
	mux.HandleFunc("POST /token", i.token)
	i.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go i.srv.Serve(ln)
	return i, nil
}

// URL is the issuer URL (the iss of its tokens).
func (i *Issuer) URL() string { return i.url }

// Close stops serving.
func (i *Issuer) Close() error { return i.srv.Close() }

func (i *Issuer) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, 200, map[string]any{
		"issuer":                                i.url,
		"authorization_endpoint":                i.url + "/authorize",
		"token_endpoint":                        i.url + "/token",
		"jwks_uri":                              i.url + "/keys",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "client_credentials"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none", "client_secret_post", "client_secret_basic"},
		"scopes_supported":                      []string{"openid", "profile", "email", "groups"},
	})
}

func (i *Issuer) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := i.key.PublicKey
	writeJSON(w, 200, map[string]any{"keys": []map[string]any{{
		"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": i.kid,
		"x": b64(pad32(pub.X)), "y": b64(pad32(pub.Y)),
	}}})
}

// authorizeParams are the authorization request's parameters, checked.
func authorizeParams(q url.Values) (url.Values, error) {
	switch {
	case q.Get("response_type") != "code":
		return nil, errors.New("response_type must be code")
	case q.Get("client_id") == "":
		return nil, errors.New("client_id is required")
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		return nil, errors.New("PKCE is required: code_challenge with code_challenge_method S256")
	}
	ru, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || (ru.Scheme != "http" && ru.Scheme != "https") {
		return nil, errors.New("redirect_uri must be an absolute http(s) URL")
	}
	// Only to this machine: the dev issuer signs anyone in, so its codes
	// must never be sent elsewhere.
	if ip := net.ParseIP(ru.Hostname()); ru.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, errors.New("redirect_uri must be on loopback (127.0.0.1, ::1, localhost)")
	}
	keep := url.Values{}
	for _, k := range []string{"response_type", "client_id", "redirect_uri", "code_challenge", "code_challenge_method", "state", "nonce", "scope"} {
		keep.Set(k, q.Get(k))
	}
	return keep, nil
}

func (i *Issuer) loginPage(w http.ResponseWriter, r *http.Request) {
	q, err := authorizeParams(r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var b strings.Builder
	b.WriteString(`<!doctype html><html><head><meta charset="utf-8"><title>airlock dev issuer — sign in</title></head><body>
<p><strong>airlock dev issuer — NOT FOR PRODUCTION.</strong> Anyone can sign in as anyone here.</p>
<h1>Sign in as</h1><form method="post" action="/authorize">`)
	for k, v := range q {
		fmt.Fprintf(&b, `<input type="hidden" name="%s" value="%s">`, htmlEscape(k), htmlEscape(v[0]))
	}
	for _, u := range Users {
		fmt.Fprintf(&b, `<p><button type="submit" name="user" value="%s">%s</button> %s (%s)</p>`, u.Name, u.Name, htmlEscape(u.Role), htmlEscape(strings.Join(u.Groups, ", ")))
	}
	b.WriteString(`</form></body></html>`)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Write([]byte(b.String()))
}

func (i *Issuer) login(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	q, err := authorizeParams(r.PostForm)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	u, ok := UserByName(r.PostForm.Get("user"))
	if !ok {
		http.Error(w, "pick a user from the list", http.StatusBadRequest)
		return
	}
	code := randomString(24)
	i.mu.Lock()
	i.codes[code] = &grantCode{user: u, clientID: q.Get("client_id"), redirectURI: q.Get("redirect_uri"),
		challenge: q.Get("code_challenge"), nonce: q.Get("nonce"), expires: time.Now().Add(codeTTL)}
	i.mu.Unlock()
	dest, _ := url.Parse(q.Get("redirect_uri"))
	v := dest.Query()
	v.Set("code", code)
	if s := q.Get("state"); s != "" {
		v.Set("state", s)
	}
	v.Set("iss", i.url)
	dest.RawQuery = v.Encode()
	http.Redirect(w, r, dest.String(), http.StatusFound)
}

func (i *Issuer) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", err.Error())
		return
	}
	f := r.PostForm
	clientID := f.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		clientID = id
	}
	switch f.Get("grant_type") {
	case "authorization_code":
		i.mu.Lock()
		c := i.codes[f.Get("code")]
		delete(i.codes, f.Get("code")) // single use, whatever comes of it
		i.mu.Unlock()
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case c == nil || time.Now().After(c.expires):
			tokenError(w, "invalid_grant", "unknown or expired code")
		case c.clientID != clientID || c.redirectURI != f.Get("redirect_uri"):
			tokenError(w, "invalid_grant", "client_id or redirect_uri differ from the authorization request")
		case b64(sum[:]) != c.challenge:
			tokenError(w, "invalid_grant", "code_verifier does not match the code_challenge")
		default:
			access, err1 := i.Mint(c.user, []string{clientID}, clientID, nil)
			id, err2 := i.idToken(c.user, clientID, c.nonce)
			if err := errors.Join(err1, err2); err != nil {
				tokenError(w, "server_error", err.Error())
				return
			}
			writeJSON(w, 200, map[string]any{"access_token": access, "id_token": id, "token_type": "Bearer", "expires_in": int(TokenTTL.Seconds())})
		}
	case "client_credentials":
		// A dev convenience: the token is minted for the user named, so an
		// agent's or approver's token needs no browser.
		u, ok := UserByName(f.Get("user"))
		if !ok {
			tokenError(w, "invalid_request", "name a user: alice, bob or erin")
			return
		}
		if clientID == "" {
			clientID = "dev-cli"
		}
		var aud []string
		if a := f.Get("audience"); a != "" {
			aud = []string{a}
		}
		var scopes []string
		if s := strings.TrimSpace(f.Get("scope")); s != "" {
			scopes = strings.Fields(s)
		}
		access, err := i.Mint(u, aud, clientID, scopes)
		if err != nil {
			tokenError(w, "server_error", err.Error())
			return
		}
		writeJSON(w, 200, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": int(TokenTTL.Seconds())})
	default:
		tokenError(w, "unsupported_grant_type", "authorization_code or client_credentials")
	}
}

// Mint signs an access token for u (Okta-shaped claims: uid, cid, scp,
// groups) for audience aud.
func (i *Issuer) Mint(u User, aud []string, clientID string, scopes []string) (string, error) {
	now := time.Now()
	c := map[string]any{
		"iss": i.url, "sub": u.Subject, "uid": u.Subject, "cid": clientID, "groups": u.Groups,
		"iat": now.Unix(), "exp": now.Add(TokenTTL).Unix(), "jti": randomString(12),
	}
	if len(aud) == 1 {
		c["aud"] = aud[0]
	} else if len(aud) > 1 {
		c["aud"] = aud
	}
	if len(scopes) > 0 {
		c["scp"] = scopes
	}
	return i.sign(c)
}

func (i *Issuer) idToken(u User, clientID, nonce string) (string, error) {
	now := time.Now()
	c := map[string]any{
		"iss": i.url, "sub": u.Subject, "aud": clientID, "azp": clientID,
		"preferred_username": u.Email, "email": u.Email, "name": u.Name, "groups": u.Groups,
		"iat": now.Unix(), "exp": now.Add(TokenTTL).Unix(),
	}
	if nonce != "" {
		c["nonce"] = nonce
	}
	return i.sign(c)
}

// sign returns the compact JWS (ES256) of claims.
func (i *Issuer) sign(claims map[string]any) (string, error) {
	h, err := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": i.kid})
	if err != nil {
		return "", err
	}
	p, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(h) + "." + b64(p)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, i.key, sum[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64(append(pad32(r), pad32(s)...)), nil
}

func pad32(n *big.Int) []byte {
	out := make([]byte, 32)
	return n.FillBytes(out)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return b64(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func tokenError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
}

var htmlReplacer = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&#39;")

func htmlEscape(s string) string { return htmlReplacer.Replace(s) }
