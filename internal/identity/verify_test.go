package identity

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

func TestVerifyMapsClaims(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{Path: "/oauth2/default"})
	exp := clk.Now().Add(time.Hour).UTC()
	tests := []struct {
		name   string
		claims ClaimNames
		token  oidcissuer.Token
		want   Principal
	}{
		{
			name: "okta access token",
			token: oidcissuer.Token{
				Subject: "alice@example.com", User: "00u1alice", ClientID: "0oa1agent",
				Scopes: []string{"mcp:read", "mcp:write"}, Groups: []string{"eng", "oncall"},
				Audience: []string{resource},
			},
			want: Principal{
				Subject: "alice@example.com", User: "00u1alice", ClientID: "0oa1agent",
				Scopes: []string{"mcp:read", "mcp:write"}, Groups: []string{"eng", "oncall"},
				Audience: []string{resource},
			},
		},
		{
			name: "okta client_credentials token: no uid, no groups",
			token: oidcissuer.Token{
				Subject: "0oa1agent", ClientID: "0oa1agent", Scopes: []string{}, Audience: []string{"api://other", resource},
			},
			want: Principal{
				Subject: "0oa1agent", ClientID: "0oa1agent",
				Scopes: []string{}, Groups: []string{}, Audience: []string{"api://other", resource},
			},
		},
		{
			name: "scp as a space-separated string",
			token: oidcissuer.Token{
				Subject: "alice", Audience: []string{resource}, Extra: map[string]any{"scp": " mcp:read  mcp:write "},
			},
			want: Principal{Subject: "alice", Scopes: []string{"mcp:read", "mcp:write"}, Groups: []string{}, Audience: []string{resource}},
		},
		{
			name: "generic IdP: scope string and azp",
			token: oidcissuer.Token{
				Subject: "svc-1", Audience: []string{resource},
				Extra: map[string]any{"scope": "openid tools:call", "azp": "agent-app", "groups": "admins"},
			},
			want: Principal{
				Subject: "svc-1", ClientID: "agent-app", Scopes: []string{"openid", "tools:call"},
				Groups: []string{"admins"}, Audience: []string{resource},
			},
		},
		{
			name: "client_id fallback after cid and azp",
			token: oidcissuer.Token{
				Subject: "svc-2", Audience: []string{resource}, Extra: map[string]any{"client_id": "cli-7"},
			},
			want: Principal{Subject: "svc-2", ClientID: "cli-7", Scopes: []string{}, Groups: []string{}, Audience: []string{resource}},
		},
		{
			name:   "custom claim names (Entra-like)",
			claims: ClaimNames{Subject: "oid", User: "preferred_username", ClientID: "appid", Scopes: "roles", Groups: "grp"},
			token: oidcissuer.Token{
				Subject: "ignored-sub", ClientID: "ignored-cid", Audience: []string{resource},
				Extra: map[string]any{
					"oid": "3f1c", "preferred_username": "bob@example.com", "appid": "app-9",
					"roles": []string{"Tools.Read"}, "grp": []string{"g1", "g2"},
				},
			},
			want: Principal{
				Subject: "3f1c", User: "bob@example.com", ClientID: "app-9",
				Scopes: []string{"Tools.Read"}, Groups: []string{"g1", "g2"}, Audience: []string{resource},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := issuerConfig("okta", iss)
			cfg.Claims = tt.claims
			v := newVerifier(t, clk, Options{}, cfg)
			raw := mint(t, iss, tt.token)
			got := mustVerify(t, v, raw)

			want := tt.want
			want.Issuer, want.IssuerName, want.Expiry = iss.URL(), "okta", exp
			if diff := cmp.Diff(want, *got, cmpopts.IgnoreFields(Principal{}, "Claims", "TokenID")); diff != "" {
				t.Errorf("principal (-want +got):\n%s", diff)
			}
			if !strings.HasPrefix(got.TokenID, "AT.") || got.TokenID != got.Claims["jti"] {
				t.Errorf("TokenID = %q, want the jti %v", got.TokenID, got.Claims["jti"])
			}
			if got.Claims["ver"] != 1.0 || got.Claims["iss"] != iss.URL() {
				t.Errorf("Claims = %v, want every claim of the token", got.Claims)
			}
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	now := clk.Now()
	good := func(t *testing.T) string {
		return mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{resource}})
	}
	okta := func(tok oidcissuer.Token) func(*testing.T) string {
		return func(t *testing.T) string {
			tok.Subject = "alice"
			if tok.Audience == nil {
				tok.Audience = []string{resource}
			}
			return mint(t, iss, tok)
		}
	}
	literal := func(s string) func(*testing.T) string { return func(*testing.T) string { return s } }
	b64 := base64.RawURLEncoding.EncodeToString

	tests := []struct {
		name       string
		algorithms []string
		token      func(*testing.T) string
		reason     Reason
		detail     string
	}{
		{"missing token", nil, literal(""), ReasonMissingToken, "no bearer token"},
		{"not a JWT", nil, literal("not a jwt"), ReasonMalformed, "outside the base64url alphabet at byte 3"},
		{"two segments", nil, literal("abc.def"), ReasonMalformed, "2 segments"},
		{"JWE", nil, literal("a.b.c.d.e"), ReasonMalformed, "encrypted tokens (JWE) are not accepted"},
		{"header not JSON", nil, literal(b64([]byte("nope")) + ".e30.c2ln"), ReasonMalformed, "header is not a JSON object"},
		{"header without alg", nil, literal(b64([]byte(`{"kid":"k"}`)) + ".e30.c2ln"), ReasonMalformed, "no alg"},
		{"payload not base64url", nil, literal(b64([]byte(`{"alg":"RS256"}`)) + ".e.c2ln"), ReasonMalformed, "payload is not base64url"},
		{"payload an array", nil, literal(b64([]byte(`{"alg":"RS256"}`)) + "." + b64([]byte(`[1]`)) + ".c2ln"), ReasonMalformed, "payload is not a JSON object"},
		{"expired", nil, okta(oidcissuer.Token{IssuedAt: now.Add(-2 * time.Hour), ExpiresAt: now.Add(-time.Hour)}), ReasonExpired, "token expired at 2027-01-15T07:00:00Z (now 2027-01-15T08:00:00Z, clock skew 30s)"},
		{"not yet valid", nil, okta(oidcissuer.Token{NotBefore: now.Add(time.Hour)}), ReasonNotYetValid, "not valid before 2027-01-15T09:00:00Z"},
		{"issued in the future", nil, okta(oidcissuer.Token{IssuedAt: now.Add(time.Hour)}), ReasonNotYetValid, "issued at 2027-01-15T09:00:00Z, in the future"},
		{"wrong audience", nil, okta(oidcissuer.Token{Audience: []string{"api://other"}}), ReasonWrongAudience, "token audience [api://other] does not include " + resource},
		{"no audience", nil, okta(oidcissuer.Token{Extra: map[string]any{"aud": nil}}), ReasonWrongAudience, "token has no aud claim; want " + resource},
		{"unknown issuer", nil, okta(oidcissuer.Token{Issuer: "https://evil.example"}), ReasonUnknownIssuer, `token issuer "https://evil.example" is not trusted (trusted: ` + iss.URL() + ")"},
		{"no iss", nil, okta(oidcissuer.Token{Extra: map[string]any{"iss": nil}}), ReasonInvalidClaims, "no iss claim"},
		{"unsigned alg none", nil, okta(oidcissuer.Token{Alg: "none"}), ReasonUnsupportedAlgorithm, `"none" (unsigned): never accepted`},
		{"alg None spelled oddly", nil, literal(b64([]byte(`{"alg":"nOnE"}`)) + "." + b64([]byte(`{"iss":"`+iss.URL()+`"}`)) + "."), ReasonUnsupportedAlgorithm, "never accepted"},
		{"HS256 keyed with the RSA public key", nil, okta(oidcissuer.Token{Alg: "HS256"}), ReasonUnsupportedAlgorithm, `token alg is "HS256" (HMAC): never accepted`},
		{"ES256 when only RS256 is allowed", []string{"RS256"}, okta(oidcissuer.Token{Alg: "ES256"}), ReasonUnsupportedAlgorithm, `token alg "ES256" is not allowed for issuer ` + iss.URL() + " (allowed: RS256)"},
		{"RS384 not allowed by default", nil, okta(oidcissuer.Token{Alg: "RS384"}), ReasonUnsupportedAlgorithm, "(allowed: RS256, ES256)"},
		{"tampered payload", nil, func(t *testing.T) string {
			parts := strings.Split(good(t), ".")
			forged := b64([]byte(`{"iss":"` + iss.URL() + `","sub":"admin","aud":"` + resource + `","exp":4000000000}`))
			return parts[0] + "." + forged + "." + parts[2]
		}, ReasonBadSignature, "signature does not verify with the key of " + iss.URL()},
		{"signature of another token", nil, func(t *testing.T) string {
			a, b := strings.Split(good(t), "."), strings.Split(good(t), ".")
			return a[0] + "." + a[1] + "." + b[2]
		}, ReasonBadSignature, "signature does not verify"},
		{"signature not base64url", nil, func(t *testing.T) string {
			return strings.TrimRight(good(t), "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") + "A"
		}, ReasonMalformed, "malformed jwt: illegal base64 data"},
		{"ES256 signature under the RSA kid", nil, okta(oidcissuer.Token{Alg: "ES256", KeyID: iss.SigningKeyID("RS256")}), ReasonBadSignature, "fits alg ES256"},
		{"unknown kid", nil, okta(oidcissuer.Token{KeyID: "kid-nobody-knows"}), ReasonBadSignature, `key id "kid-nobody-knows" is not in the JWKS of ` + iss.URL()},
		{"no exp", nil, okta(oidcissuer.Token{Extra: map[string]any{"exp": nil}}), ReasonInvalidClaims, "no exp claim"},
		{"exp not a number", nil, okta(oidcissuer.Token{Extra: map[string]any{"exp": "tomorrow"}}), ReasonInvalidClaims, "claim exp is a string, want a number of seconds since the epoch"},
		{"aud a number", nil, okta(oidcissuer.Token{Extra: map[string]any{"aud": 5}}), ReasonInvalidClaims, "claim aud is a number"},
		{"exp out of range", nil, okta(oidcissuer.Token{Extra: map[string]any{"exp": 1e300}}), ReasonInvalidClaims, "claim exp is 1e+300, outside 0..253402300799"},
		{"no sub", nil, okta(oidcissuer.Token{Extra: map[string]any{"sub": nil}}), ReasonInvalidClaims, "no sub claim"},
		{"sub a number", nil, okta(oidcissuer.Token{Extra: map[string]any{"sub": 7}}), ReasonInvalidClaims, "claim sub is a number, want a string"},
		{"scp an object", nil, okta(oidcissuer.Token{Extra: map[string]any{"scp": map[string]any{"a": 1}}}), ReasonInvalidClaims, "claim scp is an object, want a string or an array of strings"},
		{"groups with a number", nil, okta(oidcissuer.Token{Extra: map[string]any{"groups": []any{"eng", 3}}}), ReasonInvalidClaims, "claim groups[1] is a number"},
		{"cid a bool", nil, okta(oidcissuer.Token{Extra: map[string]any{"cid": true}}), ReasonInvalidClaims, "claim cid is a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := issuerConfig("okta", iss)
			cfg.Algorithms = tt.algorithms
			v := newVerifier(t, clk, Options{}, cfg)
			raw := tt.token(t)
			p, err := verify(v, raw, resource)
			if p != nil {
				t.Errorf("Verify returned a principal %+v with the error", p)
			}
			wantReject(t, raw, err, tt.reason, tt.detail)
		})
	}
}

func TestClockSkew(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	now := clk.Now()
	tests := []struct {
		name   string
		skew   time.Duration
		token  oidcissuer.Token
		reason Reason // "" means accepted
	}{
		{"expired 29s ago, skew 30s", 0, oidcissuer.Token{IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-29 * time.Second)}, ""},
		{"expired 30s ago, skew 30s", 0, oidcissuer.Token{IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-30 * time.Second)}, ReasonExpired},
		{"expires now, skew 30s", 0, oidcissuer.Token{IssuedAt: now.Add(-time.Hour), ExpiresAt: now}, ""},
		{"expired 50s ago, skew 1m", time.Minute, oidcissuer.Token{IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-50 * time.Second)}, ""},
		{"expired 61s ago, skew 1m", time.Minute, oidcissuer.Token{IssuedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-61 * time.Second)}, ReasonExpired},
		{"nbf in 30s, skew 30s", 0, oidcissuer.Token{NotBefore: now.Add(30 * time.Second)}, ""},
		{"nbf in 31s, skew 30s", 0, oidcissuer.Token{NotBefore: now.Add(31 * time.Second)}, ReasonNotYetValid},
		{"nbf in 4m, skew 5m", 5 * time.Minute, oidcissuer.Token{NotBefore: now.Add(4 * time.Minute)}, ""},
		{"iat in 30s, skew 30s", 0, oidcissuer.Token{IssuedAt: now.Add(30 * time.Second)}, ""},
		{"iat in 31s, skew 30s", 0, oidcissuer.Token{IssuedAt: now.Add(31 * time.Second)}, ReasonNotYetValid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := issuerConfig("okta", iss)
			cfg.ClockSkew = tt.skew
			v := newVerifier(t, clk, Options{}, cfg)
			tok := tt.token
			tok.Subject, tok.Audience = "alice", []string{resource}
			raw := mint(t, iss, tok)
			_, err := verify(v, raw, resource)
			if got := ReasonOf(err); got != tt.reason {
				t.Errorf("reason = %q (%v), want %q", got, err, tt.reason)
			}
		})
	}
}

func TestAudiences(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	cfg := issuerConfig("okta", iss)
	cfg.Audiences = []string{"api://default"}
	v := newVerifier(t, clk, Options{}, cfg)
	const other = "https://gw.example/mcp/other"
	tests := []struct {
		name            string
		aud             []string
		audiences       []string
		issuerAudiences bool
		detail          string // "" means accepted
	}{
		{"target resource", []string{resource}, []string{resource}, false, ""},
		{"target resource, opted in", []string{resource}, []string{resource}, true, ""},
		{"issuer audience refused by default", []string{"api://default"}, []string{resource}, false,
			"token audience [api://default] is the issuer's own audience, which is not accepted here (only on targets with accept_issuer_audiences); want a token minted for " + resource},
		{"issuer audience on a target that opts in", []string{"api://default"}, []string{resource}, true, ""},
		{"one of several", []string{"x", "y", resource}, []string{other, resource}, false, ""},
		{"other target", []string{other}, []string{resource}, false, "token audience [" + other + "] does not include " + resource},
		{"other target, opted in", []string{other}, []string{resource}, true, "token audience [" + other + "] does not include any of [" + resource + " api://default]"},
		{"prefix is not a match", []string{resource + "/x"}, []string{resource}, false, "does not include"},
		{"no call audience: issuer audience refused", []string{"api://default"}, nil, false, "no audience is accepted here"},
		{"no call audience, opted in: issuer audience counts", []string{"api://default"}, nil, true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: tt.aud})
			_, err := verifyFor(v, raw, tt.audiences, tt.issuerAudiences)
			if tt.detail == "" {
				if err != nil {
					t.Fatalf("VerifyFor: %v", err)
				}
				return
			}
			wantReject(t, raw, err, ReasonWrongAudience, tt.detail)
			if !tt.issuerAudiences {
				// Verify is VerifyFor without issuer-level audiences.
				_, err := verify(v, raw, tt.audiences...)
				wantReject(t, raw, err, ReasonWrongAudience, tt.detail)
			}
		})
	}

	bare := newVerifier(t, clk, Options{}, issuerConfig("bare", iss))
	raw := mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{resource}})
	_, err := verify(bare, raw)
	wantReject(t, raw, err, ReasonWrongAudience, "no audience is accepted here")
	_, err = verifyFor(bare, raw, nil, true)
	wantReject(t, raw, err, ReasonWrongAudience, "no audience is accepted here")
}

func TestCanonicalIssuer(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{"https://example.okta.com/oauth2/default", "https://example.okta.com/oauth2/default/", true},
		{"https://example.okta.com/oauth2/default", "HTTPS://Example.OKTA.com/oauth2/default", true},
		{"https://example.okta.com/oauth2/default", "https://example.okta.com:443/oauth2/default//", true},
		{"http://idp.local", "http://IDP.local:80/", true},
		{"https://example.okta.com", "https://example.okta.com/", true},
		{"https://example.okta.com/oauth2/default", "https://example.okta.com/oauth2/Default", false},
		{"https://example.okta.com/oauth2/default", "https://example.okta.com", false},
		{"https://example.okta.com/oauth2/default", "http://example.okta.com/oauth2/default", false},
		{"https://example.okta.com:8443", "https://example.okta.com", false},
		{"https://a.example", "https://b.example", false},
		{"not a url/", "not a url", true},
	}
	for _, tt := range tests {
		if got := SameIssuer(tt.a, tt.b); got != tt.same {
			t.Errorf("SameIssuer(%q, %q) = %v, want %v (canonical %q, %q)", tt.a, tt.b, got, tt.same, CanonicalIssuer(tt.a), CanonicalIssuer(tt.b))
		}
		if got := SamePerson(tt.a, "00u1alice", tt.b, "00u1alice"); got != tt.same {
			t.Errorf("SamePerson(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.same)
		}
	}
	if SamePerson("https://a.example", "alice", "https://a.example", "bob") {
		t.Error("two subjects of one issuer are one person")
	}
	if SamePerson("https://a.example", "", "https://a.example", "") {
		t.Error("an empty subject names someone")
	}
	if got := CanonicalIssuer("HTTPS://Example.com:443/oauth2/Default/"); got != "https://example.com/oauth2/Default" {
		t.Errorf("CanonicalIssuer = %q", got)
	}
}
