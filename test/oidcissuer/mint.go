package oidcissuer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

// Token describes an access token to mint. Empty string and nil slice fields
// leave their claim out; the zero Token is an Okta-shaped token for the
// issuer's default audience, valid for Options.TokenTTL from now, signed
// RS256 with the current key.
type Token struct {
	Subject  string   // sub
	User     string   // uid (Okta's user id)
	ClientID string   // cid (Okta's client id)
	Scopes   []string // scp, as an array
	Groups   []string // groups

	// Audience is aud: nil means Options.Audience. One value is written as a
	// string, several as an array (as Okta does).
	Audience []string
	// Issuer overrides iss (default URL()).
	Issuer string
	// IssuedAt is iat (zero: now); ExpiresAt is exp (zero: iat + TTL, TTL
	// zero: Options.TokenTTL); NotBefore is nbf (zero: left out).
	IssuedAt  time.Time
	ExpiresAt time.Time
	NotBefore time.Time
	TTL       time.Duration
	// Extra claims are added last: they override the claims above, and a nil
	// value removes a claim.
	Extra map[string]any

	// Alg is the header alg: "" or RS256, RS384, RS512, PS256, PS384, PS512
	// (current RSA key), ES256 (current EC key), "none" (unsigned, empty
	// signature), or HS256 — HMAC-SHA256 keyed with the PEM of the current
	// RSA public key, the classic algorithm-confusion forgery.
	Alg string
	// KeyID overrides the header kid; OmitKeyID leaves kid out.
	KeyID     string
	OmitKeyID bool
	// Header adds or overrides header parameters (nil value removes one).
	Header map[string]any
}

// Mint signs t and returns the compact JWS.
func (i *Issuer) Mint(t Token) (string, error) {
	now := i.now()
	alg := t.Alg
	if alg == "" {
		alg = "RS256"
	}
	i.mu.Lock()
	key := i.keys[len(i.keys)-1]
	i.mu.Unlock()

	header := map[string]any{"alg": alg}
	if !t.OmitKeyID {
		kid := t.KeyID
		if kid == "" {
			kid = key.kidFor(alg)
		}
		header["kid"] = kid
	}
	merge(header, t.Header)

	claims := i.claims(t, now)
	hb, err := json.Marshal(header)
	if err != nil {
		return "", fmt.Errorf("oidcissuer: encode header: %w", err)
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("oidcissuer: encode claims: %w", err)
	}
	input := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	sig, err := key.sign(alg, input)
	if err != nil {
		return "", err
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func (i *Issuer) claims(t Token, now time.Time) map[string]any {
	iat := t.IssuedAt
	if iat.IsZero() {
		iat = now
	}
	exp := t.ExpiresAt
	if exp.IsZero() {
		ttl := t.TTL
		if ttl == 0 {
			ttl = i.opts.TokenTTL
		}
		exp = iat.Add(ttl)
	}
	iss := t.Issuer
	if iss == "" {
		iss = i.url
	}
	aud := t.Audience
	if aud == nil {
		aud = []string{i.opts.Audience}
	}
	c := map[string]any{
		"ver": 1,
		"jti": "AT." + randomHex(16),
		"iss": iss,
		"iat": iat.Unix(),
		"exp": exp.Unix(),
	}
	if len(aud) == 1 {
		c["aud"] = aud[0]
	} else {
		c["aud"] = aud
	}
	if !t.NotBefore.IsZero() {
		c["nbf"] = t.NotBefore.Unix()
	}
	set := func(name, v string) {
		if v != "" {
			c[name] = v
		}
	}
	set("sub", t.Subject)
	set("uid", t.User)
	set("cid", t.ClientID)
	if t.Scopes != nil {
		c["scp"] = t.Scopes
	}
	if t.Groups != nil {
		c["groups"] = t.Groups
	}
	merge(c, t.Extra)
	return c
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		dst[k] = v
	}
}
