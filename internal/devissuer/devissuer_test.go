package devissuer

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The inbox's sign-in, as go-oidc and x/oauth2 drive it: discovery, the
// login page, picking bob, the code exchange with PKCE, and an ID token
// that verifies against the JWKS.
func TestAuthorizationCodeWithPKCE(t *testing.T) {
	iss, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, iss.URL())
	if err != nil {
		t.Fatal(err)
	}
	const redirect = "http://127.0.0.1:1/airlock/inbox/callback"
	conf := oauth2.Config{ClientID: "inbox", Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: []string{"openid", "groups"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st-1", oidc.Nonce("n-1"), oauth2.S256ChallengeOption(verifier))
	page, err := http.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page.Body.Close()
	if page.StatusCode != 200 || !strings.Contains(page.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("login page: %d %s", page.StatusCode, page.Header.Get("Content-Type"))
	}
	q, _ := url.Parse(authURL)
	form := q.Query()
	form.Set("user", "bob")
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.PostForm(iss.URL()+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), redirect+"?") || loc.Query().Get("state") != "st-1" {
		t.Fatalf("after sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption("wrong-verifier-wrong-verifier-wrong-verifier")); err == nil {
		t.Fatal("a wrong code_verifier was accepted")
	}
	// The code is single use: the failed exchange spent it. Sign in again.
	resp, err = c.PostForm(iss.URL()+"/authorize", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ = url.Parse(resp.Header.Get("Location"))
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: "inbox"}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Nonce  string   `json:"nonce"`
		User   string   `json:"preferred_username"`
		Groups []string `json:"groups"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if idt.Subject != "00u-bob" || claims.Nonce != "n-1" || claims.User != "bob@example.com" || len(claims.Groups) != 1 || claims.Groups[0] != "airlock-approvers" {
		t.Errorf("id token sub %s claims %+v", idt.Subject, claims)
	}
}

// client_credentials with a user mints that user's access token for the
// audience asked, verifiable with the JWKS.
func TestClientCredentialsMintsForAUser(t *testing.T) {
	iss, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	ctx := context.Background()
	resp, err := http.PostForm(iss.URL()+"/token", url.Values{"grant_type": {"client_credentials"}, "user": {"alice"}, "audience": {"http://127.0.0.1:10000/mcp/everything"}, "client_id": {"0oa-agent"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		AccessToken string `json:"access_token"`
	}
	if err := jsonDecode(resp, &out); err != nil || resp.StatusCode != 200 {
		t.Fatalf("%d %v", resp.StatusCode, err)
	}
	keys := oidc.NewRemoteKeySet(ctx, iss.URL()+"/keys")
	v := oidc.NewVerifier(iss.URL(), keys, &oidc.Config{ClientID: "http://127.0.0.1:10000/mcp/everything", SupportedSigningAlgs: []string{"ES256"}})
	at, err := v.Verify(ctx, out.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		CID string `json:"cid"`
	}
	at.Claims(&c)
	if at.Subject != "00u-alice" || c.CID != "0oa-agent" {
		t.Errorf("sub %s cid %s", at.Subject, c.CID)
	}
	resp2, err := http.PostForm(iss.URL()+"/token", url.Values{"grant_type": {"client_credentials"}, "user": {"mallory"}})
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 400 {
		t.Errorf("an unknown user got %d", resp2.StatusCode)
	}
}

// It is not for production: it will not listen beyond loopback, nor send
// a code off this machine.
func TestLoopbackOnly(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:0"} {
		if iss, err := Start(addr); err == nil {
			iss.Close()
			t.Errorf("Start(%q) listened", addr)
		}
	}
	iss, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	q := url.Values{"response_type": {"code"}, "client_id": {"inbox"}, "redirect_uri": {"https://evil.example/cb"},
		"code_challenge": {"abc"}, "code_challenge_method": {"S256"}}
	resp, err := http.Get(iss.URL() + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("a redirect_uri off loopback got %d", resp.StatusCode)
	}
}
