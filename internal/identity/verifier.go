package identity

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/coreos/go-oidc/v3/oidc"
)

// DefaultCacheSize is the number of verified tokens kept when
// Options.CacheSize is zero.
const DefaultCacheSize = 10000

// Options tunes a Verifier. The zero value is usable.
type Options struct {
	// HTTPClient fetches discovery documents and key sets (default: a client
	// with a 10s timeout).
	HTTPClient *http.Client
	// CacheSize bounds the verified-token cache (default DefaultCacheSize;
	// negative turns the cache off).
	CacheSize int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives fetch failures and key loads, never tokens (default: discard).
	Logger *slog.Logger
}

// Verifier verifies bearer tokens from a fixed set of issuers. It is safe
// for concurrent use.
type Verifier struct {
	issuers map[string]*issuer // by URL (the iss claim)
	urls    string             // for unknown_issuer details
	cache   *tokenCache        // nil when off
	now     func() time.Time
	stats   counters
}

type counters struct {
	hits, misses, sigChecks, fetches atomic.Uint64
}

// Stats are cumulative counters, for metrics and tests.
type Stats struct {
	CacheHits   uint64 // Verify answered from the cache
	CacheMisses uint64 // Verify had to check a signature (or reject earlier)
	// SignatureChecks counts signature verifications with a key.
	SignatureChecks uint64
	// KeySetFetches counts discovery+JWKS fetch attempts, failed ones included.
	KeySetFetches uint64
}

// New builds a Verifier for issuers. It fetches nothing: discovery and key
// sets load on the first token of each issuer (or on Warm), so New succeeds
// while an IdP is unreachable and Verify fails closed with
// issuer_unavailable until it answers, retrying with a bounded backoff.
// Fetches keep ctx's values but not its cancellation (a fetch is shared by
// many requests and ends within its own 10s timeout).
func New(ctx context.Context, issuers []Issuer, opts Options) (*Verifier, error) {
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = DefaultCacheSize
	}
	log := opts.Logger.With("component", "identity")
	v := &Verifier{issuers: make(map[string]*issuer, len(issuers)), now: opts.Now}
	if opts.CacheSize > 0 {
		v.cache = newTokenCache(opts.CacheSize)
	}
	var errs []error
	for i, c := range issuers {
		c = applyDefaults(c)
		at := fmt.Sprintf("issuers[%d]", i)
		if err := checkIssuer(at, c); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := v.issuers[c.URL]; dup {
			errs = append(errs, fmt.Errorf("%s.url: %s is configured twice", at, c.URL))
			continue
		}
		keys := &remoteKeys{
			issuerURL:    c.URL,
			discoveryURL: c.DiscoveryURL,
			jwksURL:      c.JWKSURL,
			client:       opts.HTTPClient,
			base:         context.WithoutCancel(ctx),
			now:          opts.Now,
			minInterval:  c.JWKSRefreshMinInterval,
			maxAge:       max(minJWKSMaxAge, c.JWKSRefreshMinInterval),
			algs:         joseAlgs(c.Algorithms),
			log:          log,
			stats:        &v.stats,
		}
		v.issuers[c.URL] = &issuer{
			cfg:  c,
			algs: c.Algorithms,
			keys: keys,
			// go-oidc checks the signature (through keys), the alg allow-list
			// and iss. Its time checks are skipped: it has no configurable
			// skew on exp and a fixed 5-minute leeway on nbf, so exp, nbf and
			// iat are checked here with the issuer's ClockSkew. Audiences are
			// checked here too, per call, against the caller's.
			verifier: oidc.NewVerifier(c.URL, keys, &oidc.Config{
				SkipClientIDCheck:    true,
				SkipExpiryCheck:      true,
				SupportedSigningAlgs: c.Algorithms,
			}),
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	v.urls = strings.Join(slices.Sorted(maps.Keys(v.issuers)), ", ")
	return v, nil
}

// Warm loads every issuer's keys now and returns what failed. Failures are
// not fatal: verification retries on its own.
func (v *Verifier) Warm(ctx context.Context) error {
	var errs []error
	for _, url := range slices.Sorted(maps.Keys(v.issuers)) {
		if err := v.issuers[url].keys.warm(ctx); err != nil {
			errs = append(errs, fmt.Errorf("issuer %s: %w", url, err))
		}
	}
	return errors.Join(errs...)
}

// Stats returns the counters so far.
func (v *Verifier) Stats() Stats {
	return Stats{
		CacheHits:       v.stats.hits.Load(),
		CacheMisses:     v.stats.misses.Load(),
		SignatureChecks: v.stats.sigChecks.Load(),
		KeySetFetches:   v.stats.fetches.Load(),
	}
}

// Verify checks rawToken (the bearer token, without "Bearer ") and returns
// who it names. audiences are the audiences accepted for this call — the
// target's resource URI, or the approvals API's audience — and only they:
// at least one aud value must equal one of them. The issuer's configured
// Audiences are not accepted (see VerifyFor).
//
// Any error is an *Error. The returned Principal is shared with the cache's
// copy in its slices and Claims map: treat it as read-only.
func (v *Verifier) Verify(ctx context.Context, rawToken string, audiences []string) (*Principal, error) {
	return v.VerifyFor(ctx, rawToken, audiences, false)
}

// VerifyFor is Verify, and when issuerAudiences is true it also accepts
// the matching issuer's configured Audiences (an issuer-level audience such
// as Okta's api://default). Only a target that opts in
// (accept_issuer_audiences, which configuration allows only with
// scopes_required) passes true: a token minted for an issuer-level
// audience is otherwise valid for every target of that issuer.
//
// The verified-token cache holds what does not depend on the call (the
// signature, issuer and times); the audience check runs on every call with
// this call's audiences and issuerAudiences, so a token admitted once with
// issuerAudiences is still refused by a strict call.
func (v *Verifier) VerifyFor(ctx context.Context, rawToken string, audiences []string, issuerAudiences bool) (*Principal, error) {
	if rawToken == "" {
		return nil, errorf(ReasonMissingToken, "no bearer token")
	}
	now := v.now()
	var key [32]byte
	if v.cache != nil {
		// The cache key is the token's SHA-256; hashing reads the string in
		// place (sha256 does not keep or modify its input).
		key = sha256.Sum256(unsafe.Slice(unsafe.StringData(rawToken), len(rawToken)))
		if e := v.cache.get(&key, now); e != nil {
			v.stats.hits.Add(1)
			if err := checkAudience(e.p.Audience, audiences, e.iss.cfg.Audiences, issuerAudiences); err != nil {
				return nil, err
			}
			p := *e.p
			return &p, nil
		}
		v.stats.misses.Add(1)
	}
	p, iss, exp, e := v.verify(ctx, rawToken, now)
	if e != nil {
		return nil, e
	}
	if v.cache != nil && now.Before(exp) {
		v.cache.put(&key, p, iss, exp)
	}
	if err := checkAudience(p.Audience, audiences, iss.cfg.Audiences, issuerAudiences); err != nil {
		return nil, err
	}
	out := *p
	return &out, nil
}

// verify is the uncached path: peek, choose the issuer, check alg,
// signature, claims and times.
func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (*Principal, *issuer, time.Time, *Error) {
	pk, e := peek(raw)
	if e != nil {
		return nil, nil, time.Time{}, e
	}
	switch {
	case strings.EqualFold(pk.alg, "none"):
		return nil, nil, time.Time{}, errorf(ReasonUnsupportedAlgorithm, `token alg is "none" (unsigned): never accepted`)
	case strings.HasPrefix(strings.ToUpper(pk.alg), "HS"):
		return nil, nil, time.Time{}, errorf(ReasonUnsupportedAlgorithm, "token alg is %s (HMAC): never accepted, only asymmetric signatures are", quote(pk.alg))
	}
	iss := v.issuers[pk.iss]
	if iss == nil {
		return nil, nil, time.Time{}, errorf(ReasonUnknownIssuer, "token issuer %s is not trusted (trusted: %s)", quote(pk.iss), v.urls)
	}
	if !iss.allows(pk.alg) {
		return nil, nil, time.Time{}, errorf(ReasonUnsupportedAlgorithm, "token alg %s is not allowed for issuer %s (allowed: %s)", quote(pk.alg), iss.cfg.URL, strings.Join(iss.algs, ", "))
	}

	st := &verifyState{}
	tok, err := iss.verifier.Verify(context.WithValue(ctx, verifyStateKey{}, st), raw)
	if err != nil {
		if st.err != nil {
			return nil, nil, time.Time{}, st.err
		}
		return nil, nil, time.Time{}, classifyOIDC(err, st.payload, iss.cfg.Claims)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, nil, time.Time{}, errorf(ReasonInvalidClaims, "token claims: %v", err)
	}
	p, times, e := principalFromClaims(claims, iss.cfg.Claims)
	if e != nil {
		return nil, nil, time.Time{}, e
	}
	if e := checkTimes(now, iss.cfg.ClockSkew, times); e != nil {
		return nil, nil, time.Time{}, e
	}
	p.IssuerName = iss.cfg.Name
	return p, iss, times.exp, nil
}

// classifyOIDC maps a go-oidc error that did not come from our KeySet.
// go-oidc formats its errors with %v, so only the text is left. When the
// signature was good (payload set), go-oidc failed on the claims: decoding
// them here gives the precise claim and type.
func classifyOIDC(err error, payload []byte, names ClaimNames) *Error {
	if payload != nil {
		var claims map[string]any
		if json.Unmarshal(payload, &claims) == nil {
			if _, _, e := principalFromClaims(claims, names); e != nil {
				return e
			}
		}
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "malformed jwt"), strings.Contains(msg, "not signed"), strings.Contains(msg, "multiple signatures"):
		return &Error{Reason: ReasonMalformed, Detail: msg}
	case strings.Contains(msg, "different provider"):
		return &Error{Reason: ReasonUnknownIssuer, Detail: msg}
	default:
		return &Error{Reason: ReasonInvalidClaims, Detail: msg}
	}
}
