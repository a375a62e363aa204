package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

const (
	// fetchTimeout bounds one discovery + JWKS fetch.
	fetchTimeout = 10 * time.Second
	// maxDocumentBytes bounds a discovery document or JWKS.
	maxDocumentBytes = 1 << 20
	// minJWKSMaxAge is how old the key set may get before a verification
	// starts a background refresh (so keys the IdP removed stop working),
	// at least the refresh interval.
	minJWKSMaxAge = time.Hour
	// firstBackoff is the wait after the first failed fetch; it doubles per
	// failure up to the issuer's JWKSRefreshMinInterval.
	firstBackoff = time.Second
)

// remoteKeys is one issuer's key set: an oidc.KeySet that finds the JWKS
// (from discovery's jwks_uri, or the configured JWKSURL) and caches its keys
// by kid.
//
// go-oidc's RemoteKeySet is not used because it refetches the JWKS on every
// token whose kid it does not know, with no rate limit: anyone can make the
// gateway hammer the IdP by sending tokens with made-up kids (an
// amplification vector, and a way to get the gateway throttled by Okta).
// Here an unknown kid triggers a refetch at most once per
// JWKSRefreshMinInterval, concurrent callers share that one fetch, failed
// fetches back off (1s doubling up to the same interval), and a failed
// refetch keeps the last good keys serving. Discovery is lazy: nothing is
// fetched until the first token (or Warm), so the gateway starts while the
// IdP is unreachable and fails closed until it answers.
type remoteKeys struct {
	issuerURL    string
	discoveryURL string
	client       *http.Client
	base         context.Context // bounds background fetches
	now          func() time.Time
	minInterval  time.Duration
	maxAge       time.Duration
	algs         []jose.SignatureAlgorithm
	log          *slog.Logger
	stats        *counters

	snap atomic.Pointer[keySnapshot] // nil until the first successful fetch

	mu          sync.Mutex
	jwksURL     string // configured, or found by discovery
	inflight    *fetchCall
	nextAttempt time.Time
	failures    int
	lastErr     error
}

var _ oidc.KeySet = (*remoteKeys)(nil)

// keySnapshot is an immutable, successfully fetched key set.
type keySnapshot struct {
	byKID     map[string][]jose.JSONWebKey
	all       []jose.JSONWebKey
	fetchedAt time.Time
}

// find returns the keys that may have signed a token with kid: those with
// that kid, else the keys published without a kid. A token without a kid
// may have been signed by any key.
func (s *keySnapshot) find(kid string) []jose.JSONWebKey {
	if kid == "" {
		return s.all
	}
	if ks := s.byKID[kid]; len(ks) > 0 {
		return ks
	}
	return s.byKID[""]
}

type fetchCall struct {
	started time.Time
	done    chan struct{}
	err     error // set before done is closed
}

// verifyState carries results out of VerifySignature through go-oidc, which
// flattens KeySet errors into strings: the precise *Error, or the verified
// payload (so claims go-oidc cannot decode get a precise error too).
type verifyState struct {
	err     *Error
	payload []byte
}

type verifyStateKey struct{}

func report(ctx context.Context, e *Error) *Error {
	if st, ok := ctx.Value(verifyStateKey{}).(*verifyState); ok {
		st.err = e
	}
	return e
}

// VerifySignature implements oidc.KeySet.
func (k *remoteKeys) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSignedCompact(raw, k.algs)
	if err != nil {
		return nil, report(ctx, errorf(ReasonMalformed, "token: %v", err))
	}
	if len(jws.Signatures) != 1 {
		return nil, report(ctx, errorf(ReasonMalformed, "token has %d signatures, want 1", len(jws.Signatures)))
	}
	h := jws.Signatures[0].Header
	alg := jose.SignatureAlgorithm(h.Algorithm)
	keys, e := k.keysFor(ctx, h.KeyID)
	if e != nil {
		return nil, report(ctx, e)
	}
	tried := 0
	for i := range keys {
		if !usableFor(&keys[i], alg) {
			continue
		}
		tried++
		k.stats.sigChecks.Add(1)
		if payload, err := jws.Verify(keys[i].Key); err == nil {
			if st, ok := ctx.Value(verifyStateKey{}).(*verifyState); ok {
				st.payload = payload
			}
			return payload, nil
		}
	}
	if tried == 0 {
		return nil, report(ctx, errorf(ReasonBadSignature, "no key of %s with kid %s fits alg %s", k.issuerURL, quote(h.KeyID), alg))
	}
	return nil, report(ctx, errorf(ReasonBadSignature, "signature does not verify with the key of %s with kid %s (alg %s)", k.issuerURL, quote(h.KeyID), alg))
}

// keysFor returns the keys for kid, refetching the JWKS (rate-limited) when
// kid is unknown.
func (k *remoteKeys) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, *Error) {
	now := k.now()
	if snap := k.snap.Load(); snap != nil {
		if keys := snap.find(kid); len(keys) > 0 {
			if now.Sub(snap.fetchedAt) >= k.maxAge {
				k.start(now) // refresh in the background; these keys serve meanwhile
			}
			return keys, nil
		}
	}
	call, lastErr := k.start(now)
	if call != nil {
		select {
		case <-call.done:
			lastErr = call.err
		case <-ctx.Done():
			return nil, errorf(ReasonIssuerUnavailable, "gave up waiting for the JWKS of %s: %v", k.issuerURL, ctx.Err())
		}
	}
	snap := k.snap.Load()
	if snap != nil {
		if keys := snap.find(kid); len(keys) > 0 {
			return keys, nil
		}
	}
	switch {
	case snap == nil && lastErr != nil:
		return nil, errorf(ReasonIssuerUnavailable, "no signing keys for %s yet: %v (retrying after %s)", k.issuerURL, lastErr, stamp(k.retryAt()))
	case snap == nil:
		return nil, errorf(ReasonIssuerUnavailable, "no signing keys for %s yet (retrying after %s)", k.issuerURL, stamp(k.retryAt()))
	case lastErr != nil:
		return nil, errorf(ReasonIssuerUnavailable, "key id %s is not among the cached keys of %s and refreshing them failed: %v", quote(kid), k.issuerURL, lastErr)
	default:
		return nil, errorf(ReasonBadSignature, "key id %s is not in the JWKS of %s (fetched %s; refetched at most every %s)", quote(kid), k.issuerURL, stamp(snap.fetchedAt), k.minInterval)
	}
}

// start begins a fetch unless one is running (returned, to wait on) or the
// rate limit / backoff forbids one (nil, with the last attempt's error).
func (k *remoteKeys) start(now time.Time) (*fetchCall, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.inflight != nil {
		return k.inflight, nil
	}
	if now.Before(k.nextAttempt) {
		return nil, k.lastErr
	}
	c := &fetchCall{started: now, done: make(chan struct{})}
	k.inflight = c
	// Until this fetch ends nobody may start another one.
	k.nextAttempt = now.Add(k.minInterval)
	go k.fetch(c)
	return c, nil
}

func (k *remoteKeys) retryAt() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.nextAttempt
}

// warm fetches now unless rate-limited, and waits.
func (k *remoteKeys) warm(ctx context.Context) error {
	call, lastErr := k.start(k.now())
	if call == nil {
		return lastErr
	}
	select {
	case <-call.done:
		return call.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (k *remoteKeys) fetch(c *fetchCall) {
	ctx, cancel := context.WithTimeout(k.base, fetchTimeout)
	defer cancel()
	k.stats.fetches.Add(1)
	snap, err := k.load(ctx)

	k.mu.Lock()
	if err == nil {
		k.snap.Store(snap)
		k.failures = 0
		k.lastErr = nil
		k.nextAttempt = c.started.Add(k.minInterval)
	} else {
		k.failures++
		k.lastErr = err
		k.nextAttempt = c.started.Add(backoff(k.failures, k.minInterval))
	}
	failures := k.failures
	k.inflight = nil
	c.err = err
	k.mu.Unlock()
	close(c.done)

	if err != nil {
		k.log.Warn("fetching signing keys failed; last good keys (if any) keep serving",
			"issuer", k.issuerURL, "consecutive_failures", failures, "error", err)
		return
	}
	k.log.Info("signing keys loaded", "issuer", k.issuerURL, "keys", len(snap.all))
}

// backoff after n consecutive failures: 1s, 2s, 4s, … at most ceiling.
func backoff(n int, ceiling time.Duration) time.Duration {
	d := firstBackoff
	for i := 1; i < n && d < ceiling; i++ {
		d *= 2
	}
	return min(d, ceiling)
}

// load discovers the JWKS URL if needed and fetches the key set.
func (k *remoteKeys) load(ctx context.Context) (*keySnapshot, error) {
	k.mu.Lock()
	jwksURL := k.jwksURL
	k.mu.Unlock()
	if jwksURL == "" {
		var err error
		if jwksURL, err = k.discover(ctx); err != nil {
			return nil, err
		}
		k.mu.Lock()
		k.jwksURL = jwksURL
		k.mu.Unlock()
	}
	body, err := k.get(ctx, jwksURL)
	if err != nil {
		return nil, fmt.Errorf("JWKS: %w", err)
	}
	keys, skipped, err := parseJWKS(body)
	for _, s := range skipped {
		k.log.Debug("JWKS key skipped", "issuer", k.issuerURL, "reason", s)
	}
	if err != nil {
		return nil, fmt.Errorf("JWKS at %s: %w", jwksURL, err)
	}
	snap := &keySnapshot{byKID: make(map[string][]jose.JSONWebKey), all: keys, fetchedAt: k.now()}
	for _, key := range keys {
		snap.byKID[key.KeyID] = append(snap.byKID[key.KeyID], key)
	}
	return snap, nil
}

// discover reads jwks_uri from the discovery document. It is done here
// rather than with oidc.NewProvider because the document may live at a
// configured DiscoveryURL that NewProvider cannot be pointed at; the issuer
// check is the same as NewProvider's.
func (k *remoteKeys) discover(ctx context.Context) (string, error) {
	body, err := k.get(ctx, k.discoveryURL)
	if err != nil {
		return "", fmt.Errorf("discovery: %w", err)
	}
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return "", fmt.Errorf("discovery document at %s: %v", k.discoveryURL, err)
	}
	if doc.Issuer != k.issuerURL {
		return "", fmt.Errorf("discovery document at %s names issuer %s, want %s", k.discoveryURL, quote(doc.Issuer), k.issuerURL)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("discovery document at %s has jwks_uri %s, want an http(s) URL", k.discoveryURL, quote(doc.JWKSURI))
	}
	return doc.JWKSURI, nil
}

func (k *remoteKeys) get(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading body: %v", u, err)
	}
	if len(body) > maxDocumentBytes {
		return nil, fmt.Errorf("GET %s: body larger than %d bytes", u, maxDocumentBytes)
	}
	return body, nil
}

// parseJWKS returns the usable public signing keys of a JWKS document and
// why each other key was skipped. A JWKS may list keys of types or uses this
// verifier cannot use; they are skipped, not fatal.
func parseJWKS(body []byte) (keys []jose.JSONWebKey, skipped []string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if !isJSONObject(body) {
		return nil, nil, errors.New("not a JSON object")
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, nil, err
	}
	for i, raw := range set.Keys {
		var key jose.JSONWebKey
		if err := key.UnmarshalJSON(raw); err != nil {
			skipped = append(skipped, fmt.Sprintf("keys[%d]: %v", i, err))
			continue
		}
		if key.Use != "" && key.Use != "sig" {
			skipped = append(skipped, fmt.Sprintf("keys[%d] (kid %s): use %s, not sig", i, quote(key.KeyID), quote(key.Use)))
			continue
		}
		pub := key.Public() // never keep private material an IdP published by mistake
		switch pub.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
		default:
			skipped = append(skipped, fmt.Sprintf("keys[%d] (kid %s): not an RSA, EC or Ed25519 public key", i, quote(key.KeyID)))
			continue
		}
		if !pub.Valid() {
			skipped = append(skipped, fmt.Sprintf("keys[%d] (kid %s): invalid key", i, quote(key.KeyID)))
			continue
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, skipped, fmt.Errorf("no usable signing keys (%d listed)", len(set.Keys))
	}
	return keys, skipped, nil
}

// usableFor reports whether key can check a signature made with alg.
func usableFor(key *jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if key.Algorithm != "" && key.Algorithm != string(alg) {
		return false
	}
	switch pub := key.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(string(alg), "RS") || strings.HasPrefix(string(alg), "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case jose.ES256:
			return pub.Curve.Params().Name == "P-256"
		case jose.ES384:
			return pub.Curve.Params().Name == "P-384"
		case jose.ES512:
			return pub.Curve.Params().Name == "P-521"
		}
		return false
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}
