package oidcissuer

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
)

var client = &http.Client{Timeout: 5 * time.Second}

func start(t *testing.T, opts Options) *Issuer {
	t.Helper()
	iss, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = iss.Close() })
	return iss
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
	}
	return resp.StatusCode
}

// parts decodes a compact JWS without verifying it.
func parts(t *testing.T, tok string) (header, claims map[string]any, sig []byte) {
	t.Helper()
	seg := strings.Split(tok, ".")
	if len(seg) != 3 {
		t.Fatalf("token has %d segments", len(seg))
	}
	for i, dst := range []*map[string]any{&header, &claims} {
		b, err := base64.RawURLEncoding.DecodeString(seg[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatal(err)
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(seg[2])
	if err != nil {
		t.Fatal(err)
	}
	return header, claims, sig
}

func TestDiscoveryDocuments(t *testing.T) {
	iss := start(t, Options{Path: "/oauth2/default"})
	base := strings.TrimSuffix(iss.URL(), "/oauth2/default")
	for _, u := range []string{
		iss.URL() + "/.well-known/openid-configuration",
		iss.URL() + "/.well-known/oauth-authorization-server",
		base + "/.well-known/oauth-authorization-server/oauth2/default",
	} {
		var doc struct {
			Issuer        string   `json:"issuer"`
			JWKSURI       string   `json:"jwks_uri"`
			TokenEndpoint string   `json:"token_endpoint"`
			Grants        []string `json:"grant_types_supported"`
		}
		if code := getJSON(t, u, &doc); code != http.StatusOK {
			t.Fatalf("GET %s: status %d", u, code)
		}
		want := []string{iss.URL(), iss.URL() + "/keys", iss.URL() + "/token", "client_credentials"}
		got := []string{doc.Issuer, doc.JWKSURI, doc.TokenEndpoint, strings.Join(doc.Grants, ",")}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("GET %s (-want +got):\n%s", u, diff)
		}
	}
	if got := iss.DiscoveryFetches(); got != 3 {
		t.Errorf("DiscoveryFetches = %d, want 3", got)
	}
}

func jwksKIDs(t *testing.T, iss *Issuer) []string {
	t.Helper()
	var set jose.JSONWebKeySet
	if code := getJSON(t, iss.JWKSURL(), &set); code != http.StatusOK {
		t.Fatalf("JWKS status %d", code)
	}
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Errorf("JWKS publishes private key %s", k.KeyID)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func TestJWKSRotationAndOutage(t *testing.T) {
	iss := start(t, Options{})
	first := iss.KeyIDs()
	if diff := cmp.Diff(first, jwksKIDs(t, iss)); diff != "" {
		t.Fatalf("JWKS kids (-KeyIDs +served):\n%s", diff)
	}
	if err := iss.AddKey(); err != nil {
		t.Fatal(err)
	}
	if got := len(jwksKIDs(t, iss)); got != 4 {
		t.Errorf("after AddKey the JWKS has %d keys, want 4 (old and new pairs)", got)
	}
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	after := jwksKIDs(t, iss)
	if len(after) != 2 || after[0] == first[0] || iss.SigningKeyID("RS256") != after[0] || iss.SigningKeyID("ES256") != after[1] {
		t.Errorf("after Rotate the JWKS has %v, want a new pair (was %v)", after, first)
	}
	iss.SetJWKSDown(true)
	var set jose.JSONWebKeySet
	if code := getJSON(t, iss.JWKSURL(), &set); code != http.StatusServiceUnavailable {
		t.Errorf("JWKS while down: status %d, want 503", code)
	}
	iss.SetJWKSDown(false)
	if got := iss.JWKSFetches(); got != 4 {
		t.Errorf("JWKSFetches = %d, want 4 (failed fetch included)", got)
	}
}

func TestMintShapeAndSignatures(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	iss := start(t, Options{Now: func() time.Time { return now }, TokenTTL: 10 * time.Minute})
	var set jose.JSONWebKeySet
	getJSON(t, iss.JWKSURL(), &set)

	tok, err := iss.Mint(Token{Subject: "alice@example.com", User: "00u1", ClientID: "0oa1", Scopes: []string{"a", "b"}, Groups: []string{"eng"}})
	if err != nil {
		t.Fatal(err)
	}
	header, claims, _ := parts(t, tok)
	jti, _ := claims["jti"].(string)
	if !strings.HasPrefix(jti, "AT.") {
		t.Errorf("jti = %q, want an Okta-style AT. id", jti)
	}
	delete(claims, "jti")
	want := map[string]any{
		"ver": 1.0, "iss": iss.URL(), "aud": "api://default", "iat": 1.8e9, "exp": 1.8e9 + 600,
		"sub": "alice@example.com", "uid": "00u1", "cid": "0oa1", "scp": []any{"a", "b"}, "groups": []any{"eng"},
	}
	if diff := cmp.Diff(want, claims); diff != "" {
		t.Errorf("claims (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]any{"alg": "RS256", "kid": iss.SigningKeyID("RS256")}, header); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}

	for _, alg := range []string{"RS256", "RS384", "PS256", "ES256"} {
		tok, err := iss.Mint(Token{Alg: alg, Audience: []string{"x", "y"}, Extra: map[string]any{"ver": nil}})
		if err != nil {
			t.Fatal(err)
		}
		jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		keys := set.Key(jws.Signatures[0].Header.KeyID)
		if len(keys) != 1 {
			t.Fatalf("%s: kid %q not in JWKS", alg, jws.Signatures[0].Header.KeyID)
		}
		if _, err := jws.Verify(keys[0].Key); err != nil {
			t.Errorf("%s: signature does not verify with the published key: %v", alg, err)
		}
		_, claims, _ := parts(t, tok)
		if diff := cmp.Diff([]any{"x", "y"}, claims["aud"]); diff != "" || claims["ver"] != nil {
			t.Errorf("%s: aud (-want +got):\n%s; ver = %v, want removed", alg, diff, claims["ver"])
		}
	}

	none, err := iss.Mint(Token{Alg: "none", OmitKeyID: true})
	if err != nil {
		t.Fatal(err)
	}
	if h, _, sig := parts(t, none); h["alg"] != "none" || h["kid"] != nil || len(sig) != 0 {
		t.Errorf("alg none token: header %v, %d signature bytes; want alg none, no kid, empty signature", h, len(sig))
	}

	hs, err := iss.Mint(Token{Alg: "HS256", KeyID: "custom"})
	if err != nil {
		t.Fatal(err)
	}
	h, _, sig := parts(t, hs)
	pemKey, err := rsaPublicPEM(iss.keys[0].rsa)
	if err != nil {
		t.Fatal(err)
	}
	m := hmac.New(sha256.New, pemKey)
	m.Write([]byte(hs[:strings.LastIndexByte(hs, '.')]))
	if h["alg"] != "HS256" || h["kid"] != "custom" || !hmac.Equal(sig, m.Sum(nil)) {
		t.Errorf("HS256 token: header %v; want alg HS256, kid custom, HMAC keyed with the RSA public key PEM", h)
	}
	if _, err := iss.Mint(Token{Alg: "RS1"}); err == nil {
		t.Error("Mint with alg RS1: no error")
	}
}

func postToken(t *testing.T, iss *Issuer, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, iss.TokenURL(), strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

func TestTokenEndpoint(t *testing.T) {
	iss := start(t, Options{Clients: map[string]Client{
		"agent": {Secret: "s3cret", User: "00u9", Groups: []string{"eng"}, Scopes: []string{"mcp:read", "mcp:write"}},
	}})
	tests := []struct {
		name       string
		form       url.Values
		user, pass string
		wantStatus int
		wantError  string
		wantClaims map[string]any
	}{
		{
			name:       "basic auth, resource and scope",
			form:       url.Values{"grant_type": {"client_credentials"}, "resource": {"https://gw/mcp/github"}, "scope": {"mcp:read"}},
			user:       "agent",
			pass:       "s3cret",
			wantStatus: 200,
			wantClaims: map[string]any{"sub": "agent", "cid": "agent", "uid": "00u9", "aud": "https://gw/mcp/github", "scp": []any{"mcp:read"}, "groups": []any{"eng"}},
		},
		{
			name:       "post auth, two resources, default scopes",
			form:       url.Values{"grant_type": {"client_credentials"}, "client_id": {"agent"}, "client_secret": {"s3cret"}, "resource": {"https://a/x", "https://b/y"}},
			wantStatus: 200,
			wantClaims: map[string]any{"sub": "agent", "cid": "agent", "uid": "00u9", "aud": []any{"https://a/x", "https://b/y"}, "scp": []any{"mcp:read", "mcp:write"}, "groups": []any{"eng"}},
		},
		{
			name:       "wrong secret",
			form:       url.Values{"grant_type": {"client_credentials"}},
			user:       "agent",
			pass:       "nope",
			wantStatus: 401,
			wantError:  "invalid_client",
		},
		{
			name:       "no client",
			form:       url.Values{"grant_type": {"client_credentials"}},
			wantStatus: 401,
			wantError:  "invalid_client",
		},
		{
			name:       "wrong grant",
			form:       url.Values{"grant_type": {"password"}},
			user:       "agent",
			pass:       "s3cret",
			wantStatus: 400,
			wantError:  "unsupported_grant_type",
		},
		{
			name:       "scope not allowed",
			form:       url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}},
			user:       "agent",
			pass:       "s3cret",
			wantStatus: 400,
			wantError:  "invalid_scope",
		},
		{
			name:       "relative resource",
			form:       url.Values{"grant_type": {"client_credentials"}, "resource": {"/mcp/github"}},
			user:       "agent",
			pass:       "s3cret",
			wantStatus: 400,
			wantError:  "invalid_target",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := postToken(t, iss, tt.form, tt.user, tt.pass)
			if status != tt.wantStatus || body["error"] != nilIfEmpty(tt.wantError) {
				t.Fatalf("status %d, error %v; want %d, %q", status, body["error"], tt.wantStatus, tt.wantError)
			}
			if tt.wantClaims == nil {
				return
			}
			if body["token_type"] != "Bearer" || body["expires_in"] != 3600.0 {
				t.Errorf("token_type %v, expires_in %v; want Bearer, 3600", body["token_type"], body["expires_in"])
			}
			_, claims, _ := parts(t, body["access_token"].(string))
			for _, k := range []string{"jti", "iat", "exp", "iss", "ver"} {
				delete(claims, k)
			}
			if diff := cmp.Diff(tt.wantClaims, claims); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}
		})
	}
	resp, err := client.Get(iss.TokenURL())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /token: status %d, want 405", resp.StatusCode)
	}
	if got := iss.TokensIssued(); got != 2 {
		t.Errorf("TokensIssued = %d, want 2", got)
	}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestOpenClients(t *testing.T) {
	iss := start(t, Options{})
	status, body := postToken(t, iss, url.Values{"grant_type": {"client_credentials"}, "client_id": {"anyone"}}, "", "")
	if status != 200 {
		t.Fatalf("status %d (%v), want 200: with no clients configured any client_id is accepted", status, body["error"])
	}
	_, claims, _ := parts(t, body["access_token"].(string))
	if claims["aud"] != "api://default" || claims["sub"] != "anyone" {
		t.Errorf("aud %v, sub %v; want api://default, anyone", claims["aud"], claims["sub"])
	}
}

func TestNewErrors(t *testing.T) {
	if _, err := New(Options{Path: "oauth2"}); err == nil {
		t.Error("New with a relative path: no error")
	}
	iss := start(t, Options{})
	addr := strings.TrimPrefix(iss.URL(), "http://")
	if _, err := New(Options{Addr: addr}); err == nil {
		t.Errorf("New on the busy address %s: no error", addr)
	}
}
