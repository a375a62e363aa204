package identity

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

func TestKeyRotation(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	v := newVerifier(t, clk, Options{}, issuerConfig("okta", iss))
	alice := oidcissuer.Token{Subject: "alice", Audience: []string{resource}}

	mustVerify(t, v, mint(t, iss, alice))
	oldKeyToken := mint(t, iss, alice)
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	newKeyToken := mint(t, iss, alice)
	if got := iss.JWKSFetches(); got != 1 {
		t.Fatalf("JWKS fetched %d times before rotation, want 1", got)
	}

	// Within the refresh interval the new kid is unknown and no refetch happens.
	clk.Advance(10 * time.Second)
	_, err := verify(v, newKeyToken, resource)
	wantReject(t, newKeyToken, err, ReasonBadSignature, "refetched at most every 30s")
	if got := iss.JWKSFetches(); got != 1 {
		t.Errorf("JWKS fetched %d times within the refresh interval, want 1", got)
	}

	// Once the interval has passed, one refetch brings the rotated-in key.
	clk.Advance(21 * time.Second)
	p := mustVerify(t, v, newKeyToken)
	if p.Subject != "alice" {
		t.Errorf("subject = %q, want alice", p.Subject)
	}
	if got := iss.JWKSFetches(); got != 2 {
		t.Errorf("JWKS fetched %d times after rotation, want 2", got)
	}
	// The old key was dropped by the IdP and is gone here too.
	_, err = verify(v, oldKeyToken, resource)
	wantReject(t, oldKeyToken, err, ReasonBadSignature, "is not in the JWKS of "+iss.URL())
	if got := iss.DiscoveryFetches(); got != 1 {
		t.Errorf("discovery fetched %d times, want 1 (jwks_uri is kept)", got)
	}
}

func TestUnknownKidFloodIsRateLimited(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	cfg := issuerConfig("okta", iss)
	cfg.JWKSRefreshMinInterval = time.Minute
	v := newVerifier(t, clk, Options{}, cfg)
	mustVerify(t, v, mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{resource}}))

	flood := func(round int) {
		t.Helper()
		var wg sync.WaitGroup
		errs := make([]error, 64)
		toks := make([]string, len(errs))
		for i := range toks {
			toks[i] = mint(t, iss, oidcissuer.Token{Subject: "mallory", Audience: []string{resource}, KeyID: fmt.Sprintf("made-up-%d-%d", round, i)})
		}
		for i := range errs {
			wg.Go(func() { _, errs[i] = verify(v, toks[i], resource) })
		}
		wg.Wait()
		for i, err := range errs {
			if ReasonOf(err) != ReasonBadSignature {
				t.Errorf("round %d token %d: %v, want bad_signature", round, i, err)
			}
		}
	}
	flood(1)
	if got := iss.JWKSFetches(); got != 1 {
		t.Errorf("64 unknown kids right after the first fetch caused %d JWKS fetches, want 1 in all", got)
	}
	clk.Advance(time.Minute)
	flood(2)
	if got := iss.JWKSFetches(); got != 2 {
		t.Errorf("64 concurrent unknown kids after the interval caused %d JWKS fetches in all, want 2", got)
	}
	clk.Advance(59 * time.Second)
	flood(3)
	if got, stat := iss.JWKSFetches(), v.Stats().KeySetFetches; got != 2 || stat != 2 {
		t.Errorf("JWKS fetches = %d (Stats %d), want still 2 within the interval", got, stat)
	}
}

func TestJWKSDownKeepsLastGoodKeys(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	v := newVerifier(t, clk, Options{}, issuerConfig("okta", iss))
	alice := oidcissuer.Token{Subject: "alice", Audience: []string{resource}}
	mustVerify(t, v, mint(t, iss, alice))

	iss.SetJWKSDown(true)
	clk.Advance(31 * time.Second)
	unknown := mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{resource}, KeyID: "rotated-in"})
	_, err := verify(v, unknown, resource)
	wantReject(t, unknown, err, ReasonIssuerUnavailable, `key id "rotated-in" is not among the cached keys of `+iss.URL()+" and refreshing them failed: JWKS: GET "+iss.JWKSURL()+": 503 Service Unavailable")
	if got := iss.JWKSFetches(); got != 2 {
		t.Errorf("JWKS fetches = %d, want 2 (the failed refetch included)", got)
	}
	// Known kid: still verifies from the last good keys.
	mustVerify(t, v, mint(t, iss, alice))

	// Keys older than the max age trigger a background refresh; while it
	// fails the old keys keep serving.
	clk.Advance(2 * time.Hour)
	mustVerify(t, v, mint(t, iss, alice))
	// Warm waits for the background refresh (or reports its failure).
	if err := v.Warm(context.Background()); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("Warm = %v, want the failed refresh's 503", err)
	}
	if got := iss.JWKSFetches(); got != 3 {
		t.Errorf("JWKS fetches = %d, want 3 (a background refresh of the stale keys)", got)
	}
	mustVerify(t, v, mint(t, iss, alice))

	// Back up: an unknown kid now refetches successfully.
	iss.SetJWKSDown(false)
	if err := iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Minute)
	mustVerify(t, v, mint(t, iss, alice))
}

func TestJWKSDownFromTheStart(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	iss.SetJWKSDown(true)
	v := newVerifier(t, clk, Options{}, issuerConfig("okta", iss))
	raw := mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{resource}})
	_, err := verify(v, raw, resource)
	wantReject(t, raw, err, ReasonIssuerUnavailable, "no signing keys for "+iss.URL()+" yet: JWKS: GET "+iss.JWKSURL()+": 503 Service Unavailable")
	// Backoff: no new attempt within the first second.
	_, err = verify(v, raw, resource)
	wantReject(t, raw, err, ReasonIssuerUnavailable, "retrying after 2027-01-15T08:00:01Z")
	if got := iss.JWKSFetches(); got != 1 {
		t.Errorf("JWKS fetches = %d, want 1 during the backoff", got)
	}
	iss.SetJWKSDown(false)
	clk.Advance(time.Second)
	mustVerify(t, v, raw)
}

func TestBackoff(t *testing.T) {
	var got []time.Duration
	for n := 1; n <= 7; n++ {
		got = append(got, backoff(n, 30*time.Second))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff (-want +got):\n%s", diff)
	}
	if got := backoff(1000, 500*time.Millisecond); got != 500*time.Millisecond {
		t.Errorf("backoff under a 500ms ceiling = %s", got)
	}
}

// freeAddr returns a loopback address nothing listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestIssuerUnreachableAtStart(t *testing.T) {
	clk := newClock()
	addr := freeAddr(t)
	url := "http://" + addr
	v := newVerifier(t, clk, Options{}, issuerURLConfig(url))

	// Any token naming the issuer: the keys cannot be had, so it fails closed.
	stand := startIssuer(t, clk, oidcissuer.Options{})
	early := mint(t, stand, oidcissuer.Token{Subject: "alice", Audience: []string{resource}, Issuer: url})
	_, err := verify(v, early, resource)
	wantReject(t, early, err, ReasonIssuerUnavailable, "no signing keys for "+url+" yet: discovery: ")
	if err := v.Warm(context.Background()); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("Warm while unreachable = %v, want connection refused", err)
	}

	iss := startIssuer(t, clk, oidcissuer.Options{Addr: addr})
	raw := mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{resource}})
	// Still inside the backoff: fails without trying.
	_, err = verify(v, raw, resource)
	wantReject(t, raw, err, ReasonIssuerUnavailable, "retrying after")
	if got := iss.DiscoveryFetches(); got != 0 {
		t.Errorf("discovery fetched %d times inside the backoff, want 0", got)
	}
	clk.Advance(5 * time.Second)
	if p := mustVerify(t, v, raw); p.Issuer != url {
		t.Errorf("issuer = %q, want %q", p.Issuer, url)
	}
	if err := v.Warm(context.Background()); err != nil {
		t.Errorf("Warm once the issuer is up and rate-limited: %v", err)
	}
}

func issuerURLConfig(url string) Issuer { return Issuer{Name: "okta", URL: url} }

func TestKeySetSources(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{Path: "/oauth2/default"})
	other := startIssuer(t, clk, oidcissuer.Options{})
	tests := []struct {
		name          string
		discoveryURL  string
		jwksURL       string
		wantDiscovery int
		detail        string // "" means accepted
	}{
		{"discovery at the issuer", "", "", 1, ""},
		{"configured JWKS URL skips discovery", "", iss.JWKSURL(), 0, ""},
		{"RFC 8414 discovery URL", iss.URL() + "/.well-known/oauth-authorization-server", "", 1, ""},
		{"discovery naming another issuer", other.DiscoveryURL(), "", 0, "names issuer " + `"` + other.URL() + `", want ` + iss.URL()},
		{"discovery 404", iss.URL() + "/nothing-here", "", 0, "404 Not Found"},
		{"JWKS URL that is not a JWKS", "", iss.DiscoveryURL(), 0, "no usable signing keys (0 listed)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := iss.DiscoveryFetches()
			cfg := issuerConfig("okta", iss)
			cfg.DiscoveryURL, cfg.JWKSURL = tt.discoveryURL, tt.jwksURL
			v := newVerifier(t, clk, Options{}, cfg)
			raw := mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{resource}})
			_, err := verify(v, raw, resource)
			if tt.detail != "" {
				wantReject(t, raw, err, ReasonIssuerUnavailable, tt.detail)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if got := iss.DiscoveryFetches() - before; got != tt.wantDiscovery {
				t.Errorf("discovery fetched %d times, want %d", got, tt.wantDiscovery)
			}
		})
	}
}

func TestTwoIssuers(t *testing.T) {
	clk := newClock()
	okta := startIssuer(t, clk, oidcissuer.Options{Path: "/oauth2/default"})
	corp := startIssuer(t, clk, oidcissuer.Options{})
	oktaCfg := issuerConfig("okta", okta)
	oktaCfg.Audiences = []string{"api://default"}
	corpCfg := issuerConfig("corp", corp)
	corpCfg.Algorithms = []string{"ES256"}
	v := newVerifier(t, clk, Options{}, oktaCfg, corpCfg)

	a := mustVerify(t, v, mint(t, okta, oidcissuer.Token{Subject: "alice", Audience: []string{resource}}))
	b := mustVerify(t, v, mint(t, corp, oidcissuer.Token{Subject: "bob", Audience: []string{resource}, Alg: "ES256"}))
	got := []string{a.IssuerName, a.Issuer, a.Subject, b.IssuerName, b.Issuer, b.Subject}
	want := []string{"okta", okta.URL(), "alice", "corp", corp.URL(), "bob"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	// Each issuer's own audiences and algorithms apply only to it.
	if _, err := verifyFor(v, mint(t, okta, oidcissuer.Token{Subject: "alice"}), []string{resource}, true); err != nil {
		t.Errorf("okta token for okta's issuer-level audience: %v", err)
	}
	raw := mint(t, corp, oidcissuer.Token{Subject: "bob", Alg: "ES256"})
	_, err := verifyFor(v, raw, []string{resource}, true)
	wantReject(t, raw, err, ReasonWrongAudience, "token audience [api://default] does not include "+resource)
	raw = mint(t, corp, oidcissuer.Token{Subject: "bob", Audience: []string{resource}})
	_, err = verify(v, raw, resource)
	wantReject(t, raw, err, ReasonUnsupportedAlgorithm, "(allowed: ES256)")

	// A token naming corp but signed by okta's key does not verify.
	forged := mint(t, okta, oidcissuer.Token{Subject: "alice", Audience: []string{resource}, Issuer: corp.URL(), Alg: "ES256"})
	_, err = verify(v, forged, resource)
	wantReject(t, forged, err, ReasonBadSignature, "is not in the JWKS of "+corp.URL())
}
