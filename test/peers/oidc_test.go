package peers

import (
	"bytes"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// oktaClaims are the claims an Okta-shaped access token carries.
type oktaClaims struct {
	Ver    int      `json:"ver"`
	Iss    string   `json:"iss"`
	Aud    string   `json:"aud"`
	Sub    string   `json:"sub"`
	Cid    string   `json:"cid"`
	UID    string   `json:"uid"`
	Groups []string `json:"groups"`
	Scp    []string `json:"scp"`
	Jti    string   `json:"jti"`
	Iat    int64    `json:"iat"`
	Exp    int64    `json:"exp"`
	// Present would mean the token is not Okta-shaped.
	Scope    any `json:"scope"`
	ClientID any `json:"client_id"`
}

func TestOIDCProviderClientCredentials(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	const resource = "http://127.0.0.1:8080/mcp/github"
	p, err := StartOIDCProvider(ctx, OIDCOptions{
		TokenTTL: 10 * time.Minute,
		Clients: []OIDCClient{
			{ID: "agent-1", Secret: "agent-1-secret", UID: "00u1abcd", Groups: []string{"engineering", "oncall"}, Scopes: []string{"mcp:read", "mcp:write"}},
			{ID: "bot", Secret: "bot-secret"},
		},
	})
	if err != nil {
		t.Fatalf("StartOIDCProvider: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	port, err := strconv.Atoi(strings.TrimPrefix(strings.Split(p.Issuer(), "/")[2], "127.0.0.1:"))
	if err != nil {
		t.Fatalf("issuer %q has no port: %v", p.Issuer(), err)
	}
	if diff := cmp.Diff([]string{"0100007F"}, listenAddrs(t, port)); diff != "" {
		t.Errorf("oidc-provider listens on (-want +got, hex from /proc/net):\n%s", diff)
	}
	if !strings.HasSuffix(p.Issuer(), "/oauth2/default") || p.URL() != p.Issuer() {
		t.Errorf("issuer = %q (URL %q), want http://127.0.0.1:<port>/oauth2/default", p.Issuer(), p.URL())
	}

	// go-oidc checks discovery names the issuer, then verifies signature
	// (against the JWKS), iss, aud and exp.
	provider, err := oidc.NewProvider(ctx, p.Issuer())
	if err != nil {
		t.Fatalf("go-oidc discovery: %v", err)
	}
	keys := oidc.NewRemoteKeySet(ctx, p.JWKSURL())

	tests := []struct {
		name           string
		client, secret string
		resource       string
		scopes         []string
		want           oktaClaims
	}{
		{
			name: "resource and scopes", client: "agent-1", secret: "agent-1-secret", resource: resource,
			scopes: []string{"mcp:read", "admin"},
			want: oktaClaims{Ver: 1, Iss: p.Issuer(), Aud: resource, Sub: "agent-1", Cid: "agent-1", UID: "00u1abcd",
				Groups: []string{"engineering", "oncall"}, Scp: []string{"mcp:read"}},
		},
		{
			name: "any scope, no uid", client: "bot", secret: "bot-secret", resource: resource,
			scopes: []string{"mcp:read", "mcp:admin"},
			want:   oktaClaims{Ver: 1, Iss: p.Issuer(), Aud: resource, Sub: "bot", Cid: "bot", Scp: []string{"mcp:read", "mcp:admin"}},
		},
		{
			name: "no resource", client: "bot", secret: "bot-secret",
			want: oktaClaims{Ver: 1, Iss: p.Issuer(), Aud: "api://default", Sub: "bot", Cid: "bot", Scp: []string{}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := time.Now().Add(-2 * time.Second).Unix()
			tok, err := p.ClientCredentialsToken(ctx, tc.client, tc.secret, tc.resource, tc.scopes)
			if err != nil {
				t.Fatalf("ClientCredentialsToken: %v", err)
			}
			aud := tc.want.Aud
			idt, err := provider.Verifier(&oidc.Config{ClientID: aud}).Verify(ctx, tok)
			if err != nil {
				t.Fatalf("verifying the access token: %v", err)
			}
			var got oktaClaims
			if err := idt.Claims(&got); err != nil {
				t.Fatal(err)
			}
			if got.Jti == "" || got.Iat < before || got.Exp-got.Iat != 600 {
				t.Errorf("jti %q, iat %d, exp %d: want a jti, iat now and exp iat+600", got.Jti, got.Iat, got.Exp)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.IgnoreFields(oktaClaims{}, "Jti", "Iat", "Exp")); diff != "" {
				t.Errorf("claims (-want +got):\n%s", diff)
			}

			jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.RS256})
			if err != nil {
				t.Fatalf("parsing the JWS: %v", err)
			}
			if h := jws.Signatures[0].Header; h.KeyID == "" || h.ExtraHeaders["typ"] != "at+jwt" {
				t.Errorf("header kid %q typ %v, want a kid and typ at+jwt", h.KeyID, h.ExtraHeaders["typ"])
			}
			if _, err := keys.VerifySignature(ctx, tok); err != nil {
				t.Errorf("signature does not verify against the JWKS: %v", err)
			}
			parts := strings.Split(tok, ".")
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil || !bytes.Contains(payload, []byte(`"ver":1`)) {
				t.Fatalf("payload %q: %v", payload, err)
			}
			payload = bytes.Replace(payload, []byte(`"ver":1`), []byte(`"ver":2`), 1)
			forged := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
			if _, err := keys.VerifySignature(ctx, forged); err == nil {
				t.Error("a token with changed claims verified")
			}
		})
	}

	errs := []struct {
		name                     string
		client, secret, resource string
		want                     TokenError
	}{
		{"wrong secret", "agent-1", "nope", resource, TokenError{Status: 401, Code: "invalid_client", Description: "client authentication failed"}},
		{"unknown client", "nobody", "x", resource, TokenError{Status: 401, Code: "invalid_client", Description: "client authentication failed"}},
		{"resource with fragment", "bot", "bot-secret", resource + "#x", TokenError{Status: 400, Code: "invalid_target",
			Description: "resource indicator must not contain a fragment component"}},
	}
	for _, tc := range errs {
		_, err := p.ClientCredentialsToken(ctx, tc.client, tc.secret, tc.resource, nil)
		var te *TokenError
		if !errors.As(err, &te) {
			t.Errorf("%s: error %v, want a *TokenError", tc.name, err)
			continue
		}
		if diff := cmp.Diff(tc.want, *te); diff != "" {
			t.Errorf("%s: token error (-want +got):\n%s", tc.name, diff)
		}
	}
}

func TestOIDCOptionsRejected(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 5*time.Second)
	tests := []struct {
		name string
		opts OIDCOptions
		want string
	}{
		{"path without slash", OIDCOptions{Path: "oauth2"}, `issuer path "oauth2" must start with /`},
		{"trailing slash", OIDCOptions{Path: "/oauth2/"}, `issuer path "/oauth2/" must start with /`},
		{"client without secret", OIDCOptions{Clients: []OIDCClient{{ID: "a"}}}, `client 0 ("a") needs both an ID and a secret`},
		{"ttl under a second", OIDCOptions{TokenTTL: time.Millisecond}, "token TTL 1ms is under a second"},
		{"bad port", OIDCOptions{Port: 70000}, "port 70000 is out of range"},
	}
	for _, tc := range tests {
		p, err := StartOIDCProvider(ctx, tc.opts)
		if err == nil {
			p.Close()
			t.Errorf("%s: started, want an error", tc.name)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to contain %q", tc.name, err, tc.want)
		}
	}
}
