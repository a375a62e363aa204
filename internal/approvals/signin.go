package approvals

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// loginTTL bounds the time between leaving for the provider and coming back.
const loginTTL = 10 * time.Minute

// provider is the inbox's OIDC relying party, built on first use: airlock
// starts (and the API works) while the provider is unreachable.
type provider struct {
	oauth *oauth2.Config
	ids   *oidc.IDTokenVerifier
}

type signin struct {
	mu   sync.Mutex
	prov *provider
}

// provider discovers the issuer once it answers; failures are retried on
// the next sign-in.
func (in *inbox) provider(ctx context.Context) (*provider, error) {
	in.signin.mu.Lock()
	defer in.signin.mu.Unlock()
	if in.signin.prov != nil {
		return in.signin.prov, nil
	}
	ctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, in.client), 15*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, in.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discovering the sign-in provider %s: %w", in.cfg.Issuer, err)
	}
	ep := p.Endpoint()
	if in.secret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams // a public client: client_id in the body, PKCE proves the rest
	}
	in.signin.prov = &provider{
		oauth: &oauth2.Config{ClientID: in.cfg.ClientID, ClientSecret: in.secret, Endpoint: ep, RedirectURL: in.cfg.RedirectURL, Scopes: in.cfg.Scopes},
		ids:   p.VerifierContext(oidc.ClientContext(context.Background(), in.client), &oidc.Config{ClientID: in.cfg.ClientID, Now: in.h.now}),
	}
	return in.signin.prov, nil
}

// safeNext keeps a post-sign-in destination inside the inbox or the
// console.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" || !(strings.HasPrefix(u.Path, InboxPrefix) || strings.HasPrefix(u.Path, AuditPrefix)) ||
		strings.Contains(next, "\\") || strings.HasPrefix(next, "//") || u.Path == CallbackPath {
		return InboxPrefix
	}
	return u.RequestURI()
}

// login sends the browser to the provider with a fresh state, nonce and
// PKCE (S256) verifier, kept in a sealed cookie for the callback.
func (in *inbox) login(w http.ResponseWriter, r *http.Request) {
	p, err := in.provider(r.Context())
	if err != nil {
		in.h.log.Error("inbox sign-in unavailable", "error", err)
		in.renderError(w, r, http.StatusBadGateway, "Sign-in is unavailable: the identity provider could not be reached. Try again shortly.")
		return
	}
	st := loginState{
		State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(),
		Next: safeNext(r.URL.Query().Get("next")), Expires: in.h.now().Add(loginTTL).Unix(),
	}
	if err := in.setCookie(w, in.loginCookie, st, in.h.now().Add(loginTTL)); err != nil {
		in.h.log.Error("sealing the sign-in state failed", "error", err)
		in.renderError(w, r, http.StatusInternalServerError, "Sign-in failed on the server.")
		return
	}
	dest := p.oauth.AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier))
	http.Redirect(w, r, dest, http.StatusSeeOther)
}

// callback finishes the sign-in: checks state, exchanges the code with
// the PKCE verifier, verifies the ID token (issuer, audience, expiry,
// signature, nonce) and keeps who the approver is in a sealed session.
func (in *inbox) callback(w http.ResponseWriter, r *http.Request) {
	fail := func(status int, msg string) {
		in.clearCookie(w, in.loginCookie)
		in.renderError(w, r, status, msg)
	}
	q := r.URL.Query()
	var st loginState
	c, err := r.Cookie(in.loginCookie)
	if err != nil || in.sealer.open(in.loginCookie, c.Value, &st) != nil || in.h.now().Unix() >= st.Expires {
		fail(http.StatusBadRequest, "This sign-in link has expired or was opened in another browser. Start again.")
		return
	}
	if subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		fail(http.StatusBadRequest, "The sign-in answer does not belong to this browser's sign-in (state mismatch). Start again.")
		return
	}
	if e := q.Get("error"); e != "" {
		fail(http.StatusForbidden, "The identity provider refused the sign-in: "+e+": "+q.Get("error_description"))
		return
	}
	p, err := in.provider(r.Context())
	if err != nil {
		fail(http.StatusBadGateway, "Sign-in is unavailable: the identity provider could not be reached.")
		return
	}
	ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), oauth2.HTTPClient, in.client), 15*time.Second)
	defer cancel()
	tok, err := p.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		in.h.log.Warn("inbox sign-in: code exchange failed", "error", redactOAuthError(err))
		fail(http.StatusBadGateway, "The identity provider did not accept the sign-in code. Start again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		fail(http.StatusBadGateway, "The identity provider returned no ID token (is the openid scope allowed for this app?).")
		return
	}
	idt, err := p.ids.Verify(ctx, raw)
	if err != nil {
		in.h.log.Warn("inbox sign-in: ID token rejected", "error", err)
		fail(http.StatusForbidden, "The ID token was rejected: "+err.Error())
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		fail(http.StatusForbidden, "The ID token does not answer this sign-in (nonce mismatch). Start again.")
		return
	}
	s, err := in.sessionFrom(idt)
	if err != nil {
		fail(http.StatusForbidden, err.Error())
		return
	}
	if err := in.setCookie(w, in.sessionCookie, s, time.Unix(s.Expires, 0)); err != nil {
		in.h.log.Error("inbox sign-in: sealing the session failed", "subject", s.Subject, "error", err)
		fail(http.StatusInternalServerError, "Signing in failed: "+err.Error())
		return
	}
	in.clearCookie(w, in.loginCookie)
	in.h.log.Info("inbox sign-in", "subject", s.Subject, "user", s.User)
	http.Redirect(w, r, st.Next, http.StatusSeeOther)
}

// sessionFrom reads the approver's identity out of a verified ID token.
// go-oidc has checked that the token's issuer is inbox.issuer and that its
// aud holds inbox.client_id; here the token must also have been issued to
// this client (OpenID Connect Core 3.1.3.7): with several audiences, or an
// azp claim, azp must be client_id. An ID token minted for another client
// that merely lists this one is not a sign-in here.
func (in *inbox) sessionFrom(idt *oidc.IDToken) (*session, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return nil, fmt.Errorf("the ID token's claims do not decode: %w", err)
	}
	azp, isString := claims["azp"].(string)
	if _, present := claims["azp"]; (present || len(idt.Audience) > 1) && (!isString || azp != in.cfg.ClientID) {
		return nil, fmt.Errorf("the ID token was issued to another client (azp %.80q), not to the inbox (%s)", azp, in.cfg.ClientID)
	}
	if idt.Issuer == "" {
		return nil, errors.New("the ID token names no issuer")
	}
	sub, _ := claims[in.cfg.Claims.Subject].(string)
	if sub == "" {
		return nil, fmt.Errorf("the ID token has no %q claim to know you by", in.cfg.Claims.Subject)
	}
	user, _ := claims[in.cfg.Claims.User].(string)
	if user == "" {
		user, _ = claims["email"].(string)
	}
	var groups []string
	switch g := claims[in.cfg.Claims.Groups].(type) {
	case []any:
		for _, x := range g {
			if s, ok := x.(string); ok && s != "" {
				groups = append(groups, s)
			}
		}
	case string:
		groups = strings.Fields(g)
	}
	return &session{Issuer: idt.Issuer, Subject: sub, User: user, Groups: groups, CSRF: randomToken(), Expires: in.h.now().Add(in.cfg.SessionTTL).Unix()}, nil
}

// redactOAuthError keeps the provider's error code and drops the body,
// which some providers fill with request details.
func redactOAuthError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return fmt.Sprintf("token endpoint answered %d %s %s", re.Response.StatusCode, re.ErrorCode, re.ErrorDescription)
	}
	return err.Error()
}
