package identity

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNewRejectsBadConfig(t *testing.T) {
	ok := Issuer{Name: "okta", URL: "https://example.okta.com/oauth2/default"}
	with := func(f func(*Issuer)) []Issuer {
		c := ok
		f(&c)
		return []Issuer{c}
	}
	tests := []struct {
		name    string
		issuers []Issuer
		want    string
	}{
		{"no url", with(func(c *Issuer) { c.URL = "" }), "issuers[0].url: missing"},
		{"relative url", with(func(c *Issuer) { c.URL = "/oauth2" }), `issuers[0].url: "/oauth2" is not an absolute http(s) URL`},
		{"bad jwks url", with(func(c *Issuer) { c.JWKSURL = "ftp://x/keys" }), "issuers[0].jwks_url"},
		{"bad discovery url", with(func(c *Issuer) { c.DiscoveryURL = "x" }), "issuers[0].discovery_url"},
		{"alg none", with(func(c *Issuer) { c.Algorithms = []string{"RS256", "none"} }), `issuers[0].algorithms[1]: "none" (unsigned tokens) is never accepted`},
		{"alg HS256", with(func(c *Issuer) { c.Algorithms = []string{"HS256"} }), `issuers[0].algorithms[0]: "HS256" is refused`},
		{"alg unknown", with(func(c *Issuer) { c.Algorithms = []string{"RS1"} }), `"RS1" is not one of RS256`},
		{"skew too large", with(func(c *Issuer) { c.ClockSkew = 6 * time.Minute }), "issuers[0].clock_skew: 6m0s is outside 0..5m0s"},
		{"negative skew", with(func(c *Issuer) { c.ClockSkew = -time.Second }), "clock_skew"},
		{"negative refresh interval", with(func(c *Issuer) { c.JWKSRefreshMinInterval = -time.Second }), "jwks_refresh_min_interval: -1s is negative"},
		{"duplicate", []Issuer{ok, ok}, "issuers[1].url: https://example.okta.com/oauth2/default is configured twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(context.Background(), tt.issuers, Options{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v, %v; want an error containing %q", v, err, tt.want)
			}
		})
	}
}

func TestNewAppliesDefaults(t *testing.T) {
	url := "https://example.okta.com/oauth2/default"
	v, err := New(context.Background(), []Issuer{{URL: url, Claims: ClaimNames{Groups: "roles"}}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := v.issuers[url].cfg
	want := Issuer{
		URL:                    url,
		DiscoveryURL:           url + "/.well-known/openid-configuration",
		Algorithms:             []string{"RS256", "ES256"},
		ClockSkew:              30 * time.Second,
		JWKSRefreshMinInterval: 30 * time.Second,
		Claims:                 ClaimNames{Subject: "sub", User: "uid", ClientID: "cid", Scopes: "scp", Groups: "roles"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("issuer config (-want +got):\n%s", diff)
	}
	if v.cache == nil || len(v.cache.shards) != maxCacheShards || v.cache.shards[0].max != DefaultCacheSize/maxCacheShards {
		t.Errorf("cache not of the default size %d", DefaultCacheSize)
	}
	if v.Stats() != (Stats{}) {
		t.Errorf("New fetched or verified something: %+v", v.Stats())
	}
}

func TestNoIssuers(t *testing.T) {
	v, err := New(context.Background(), nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	raw := "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJodHRwczovL3gifQ.c2ln"
	_, err = v.Verify(context.Background(), raw, []string{resource})
	wantReject(t, raw, err, ReasonUnknownIssuer, `token issuer "https://x" is not trusted`)
}
