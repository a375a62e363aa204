package identity

import (
	"context"
	"testing"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// benchSetup starts an issuer, a verifier (cache on or off) and one token
// signed with alg, and verifies it once so keys are loaded.
func benchSetup(b *testing.B, alg string, cacheSize int) (*Verifier, string) {
	clk := newClock()
	iss := startIssuer(b, clk, oidcissuer.Options{})
	v := newVerifier(b, clk, Options{CacheSize: cacheSize}, issuerConfig("okta", iss))
	raw := mint(b, iss, oidcissuer.Token{
		Subject: "alice@example.com", User: "00u1alice", ClientID: "0oa1agent",
		Scopes: []string{"mcp:read", "mcp:write"}, Groups: []string{"eng", "oncall"},
		Audience: []string{resource}, Alg: alg,
	})
	mustVerify(b, v, raw)
	return v, raw
}

func BenchmarkVerifyCached(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			v, raw := benchSetup(b, alg, 0)
			ctx, aud := context.Background(), []string{resource}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, raw, aud); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyCachedParallel(b *testing.B) {
	v, raw := benchSetup(b, "RS256", 0)
	aud := []string{resource}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if _, err := v.Verify(ctx, raw, aud); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyUncached(b *testing.B) {
	for _, alg := range []string{"RS256", "ES256"} {
		b.Run(alg, func(b *testing.B) {
			v, raw := benchSetup(b, alg, -1)
			ctx, aud := context.Background(), []string{resource}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := v.Verify(ctx, raw, aud); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
