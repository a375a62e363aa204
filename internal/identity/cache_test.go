package identity

import (
	"crypto/sha256"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

func TestCacheSkipsSignatureWork(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	v := newVerifier(t, clk, Options{}, issuerConfig("okta", iss))
	raw := mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{resource, "https://gw.example/mcp/jira"}, TTL: 5 * time.Minute})

	first := mustVerify(t, v, raw)
	second := mustVerify(t, v, raw)
	if diff := cmp.Diff(first, second); diff != "" {
		t.Errorf("cached principal differs (-first +second):\n%s", diff)
	}
	if first == second {
		t.Error("Verify returned the cached *Principal itself; want a copy per call")
	}
	want := Stats{CacheHits: 1, CacheMisses: 1, SignatureChecks: 1, KeySetFetches: 1}
	if diff := cmp.Diff(want, v.Stats()); diff != "" {
		t.Errorf("stats (-want +got):\n%s", diff)
	}

	// The audience is checked per call, cache or not.
	if _, err := verify(v, raw, "https://gw.example/mcp/jira"); err != nil {
		t.Errorf("cached token for its other audience: %v", err)
	}
	_, err := verify(v, raw, "https://gw.example/mcp/slack")
	wantReject(t, raw, err, ReasonWrongAudience, "does not include https://gw.example/mcp/slack")
	if got := v.Stats(); got.CacheHits != 3 || got.SignatureChecks != 1 {
		t.Errorf("stats %+v, want 3 hits and still 1 signature check", got)
	}

	// At exp the entry is no longer served: within the skew the token is
	// verified afresh (a second signature check), past it it is expired.
	clk.Advance(5 * time.Minute)
	mustVerify(t, v, raw)
	if got := v.Stats().SignatureChecks; got != 2 {
		t.Errorf("signature checks = %d at exp, want 2: the cache must not serve a token at or past its exp", got)
	}
	clk.Advance(30 * time.Second)
	_, err = verify(v, raw, resource)
	wantReject(t, raw, err, ReasonExpired, "token expired at")
	if got := v.cache.len(); got != 0 {
		t.Errorf("cache holds %d entries after expiry, want 0", got)
	}
}

// The cache holds what does not depend on the call: a token admitted with
// issuer-level audiences is still refused by a strict call (and the other
// way round), whichever call put it in the cache.
func TestCacheKeepsAudienceModePerCall(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	cfg := issuerConfig("okta", iss)
	cfg.Audiences = []string{"api://default"}
	type call struct {
		issuerAudiences bool
		ok              bool
	}
	tests := []struct {
		name  string
		calls []call
	}{
		{"opted-in call first", []call{{true, true}, {false, false}, {true, true}, {false, false}}},
		{"strict call first", []call{{false, false}, {true, true}, {false, false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, clk, Options{}, cfg)
			raw := mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{"api://default"}})
			for i, c := range tt.calls {
				_, err := verifyFor(v, raw, []string{resource}, c.issuerAudiences)
				if c.ok && err != nil {
					t.Fatalf("call %d (issuer audiences %v): %v", i, c.issuerAudiences, err)
				}
				if !c.ok {
					wantReject(t, raw, err, ReasonWrongAudience, "is the issuer's own audience")
				}
			}
			// One signature check: every later call was answered from the cache.
			if got := v.Stats(); got.SignatureChecks != 1 || got.CacheHits != uint64(len(tt.calls)-1) {
				t.Errorf("stats %+v: want 1 signature check and %d cache hits", got, len(tt.calls)-1)
			}
		})
	}
}

func TestCacheOff(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	v := newVerifier(t, clk, Options{CacheSize: -1}, issuerConfig("okta", iss))
	raw := mint(t, iss, oidcissuer.Token{Subject: "alice", Audience: []string{resource}})
	mustVerify(t, v, raw)
	mustVerify(t, v, raw)
	if got := v.Stats(); got.SignatureChecks != 2 || got.CacheHits != 0 {
		t.Errorf("stats %+v with the cache off, want 2 signature checks, no hits", got)
	}
}

func TestCacheBounded(t *testing.T) {
	clk := newClock()
	iss := startIssuer(t, clk, oidcissuer.Options{})
	v := newVerifier(t, clk, Options{CacheSize: 5}, issuerConfig("okta", iss))
	for i := range 40 {
		mustVerify(t, v, mint(t, iss, oidcissuer.Token{Subject: fmt.Sprint("user", i), Audience: []string{resource}}))
	}
	if got := v.cache.len(); got != 5 {
		t.Errorf("cache holds %d entries, want 5 (its size)", got)
	}
}

func cacheKey(i int) [32]byte { return sha256.Sum256([]byte(fmt.Sprint("token-", i))) }

func TestCacheLRU(t *testing.T) {
	now := time.Unix(1000, 0)
	exp := now.Add(time.Hour)
	c := newTokenCache(1) // one shard of one entry, to see the order
	k1, k2 := cacheKey(1), cacheKey(2)
	c.put(&k1, &Principal{Subject: "1"}, nil, exp)
	c.put(&k2, &Principal{Subject: "2"}, nil, exp)
	if c.get(&k1, now) != nil || c.get(&k2, now) == nil {
		t.Fatal("a full cache of one kept the old entry instead of the new one")
	}

	c = newTokenCache(maxCacheShards * 2)
	var keys [][32]byte
	for i := 0; len(keys) < 3; i++ { // three keys in shard 0
		if k := cacheKey(i); int(k[0])%maxCacheShards == 0 {
			keys = append(keys, k)
		}
	}
	c.put(&keys[0], &Principal{Subject: "a"}, nil, exp)
	c.put(&keys[1], &Principal{Subject: "b"}, nil, exp)
	c.get(&keys[0], now) // a is now the most recently used
	c.put(&keys[2], &Principal{Subject: "c"}, nil, exp)
	var got []string
	for _, k := range keys {
		if e := c.get(&k, now); e != nil {
			got = append(got, e.p.Subject)
		}
	}
	if diff := cmp.Diff([]string{"a", "c"}, got); diff != "" {
		t.Errorf("after touching a, adding c evicted (-want +got kept):\n%s", diff)
	}

	k := cacheKey(99)
	c.put(&k, &Principal{Subject: "x"}, nil, now.Add(time.Second))
	if c.get(&k, now.Add(time.Second)) != nil {
		t.Error("an entry was served at its exp")
	}
}

func TestCacheSizes(t *testing.T) {
	for _, size := range []int{1, 3, 16, 17, 10000} {
		c := newTokenCache(size)
		total := 0
		for i := range c.shards {
			if c.shards[i].max < 1 {
				t.Errorf("size %d: shard %d holds %d", size, i, c.shards[i].max)
			}
			total += c.shards[i].max
		}
		if total != size {
			t.Errorf("size %d: shards hold %d in all", size, total)
		}
	}
}

func TestCacheConcurrent(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newTokenCache(64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := cacheKey(g*100 + i%100)
				if e := c.get(&k, now); e == nil {
					c.put(&k, &Principal{Subject: "s"}, nil, now.Add(time.Duration(i%3)*time.Second))
				}
			}
		})
	}
	wg.Wait()
	if got := c.len(); got > 64 {
		t.Errorf("cache holds %d entries, more than its size 64", got)
	}
}
