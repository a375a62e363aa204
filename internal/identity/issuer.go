package identity

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
)

// Defaults for zero fields of Issuer (config applies them too; they
// are applied here again so identity is safe on its own).
var (
	defaultAlgorithms             = []string{"RS256", "ES256"}
	defaultClockSkew              = 30 * time.Second
	defaultJWKSRefreshMinInterval = 30 * time.Second
	defaultClaimNames             = ClaimNames{Subject: "sub", User: "uid", ClientID: "cid", Scopes: "scp", Groups: "groups"}
)

// MaxClockSkew is the largest clock skew accepted.
const MaxClockSkew = 5 * time.Minute

// asymmetricAlgs are the signature algorithms an issuer may allow. "none"
// and the HMAC algorithms (HS256/384/512) are never allowed: a gateway that
// only holds public keys has no business accepting either.
var asymmetricAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// issuer is one configured issuer, defaults applied.
type issuer struct {
	cfg      Issuer
	algs     []string
	keys     *remoteKeys
	verifier *oidc.IDTokenVerifier
}

// allows reports whether alg is on the issuer's allow-list.
func (iss *issuer) allows(alg string) bool { return slices.Contains(iss.algs, alg) }

// applyDefaults fills the zero fields of c.
func applyDefaults(c Issuer) Issuer {
	if len(c.Algorithms) == 0 {
		c.Algorithms = slices.Clone(defaultAlgorithms)
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = defaultClockSkew
	}
	if c.JWKSRefreshMinInterval == 0 {
		c.JWKSRefreshMinInterval = defaultJWKSRefreshMinInterval
	}
	d := defaultClaimNames
	setDefault(&c.Claims.Subject, d.Subject)
	setDefault(&c.Claims.User, d.User)
	setDefault(&c.Claims.ClientID, d.ClientID)
	setDefault(&c.Claims.Scopes, d.Scopes)
	setDefault(&c.Claims.Groups, d.Groups)
	if c.DiscoveryURL == "" && c.URL != "" {
		c.DiscoveryURL = strings.TrimSuffix(c.URL, "/") + "/.well-known/openid-configuration"
	}
	return c
}

func setDefault(s *string, d string) {
	if *s == "" {
		*s = d
	}
}

// checkIssuer validates an issuer with defaults applied; field names in the
// errors are prefixed with at, e.g. issuers[0].
func checkIssuer(at string, c Issuer) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", at, field, fmt.Sprintf(format, args...)))
	}
	if c.URL == "" {
		bad("url", "missing: the issuer identifier (the iss of its tokens) is required")
	} else if err := checkHTTPURL(c.URL); err != nil {
		bad("url", "%v", err)
	}
	if err := checkHTTPURL(c.DiscoveryURL); c.DiscoveryURL != "" && err != nil {
		bad("discovery_url", "%v", err)
	}
	if err := checkHTTPURL(c.JWKSURL); c.JWKSURL != "" && err != nil {
		bad("jwks_url", "%v", err)
	}
	for i, a := range c.Algorithms {
		switch {
		case strings.EqualFold(a, "none"):
			bad(fmt.Sprintf("algorithms[%d]", i), `"none" (unsigned tokens) is never accepted`)
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			bad(fmt.Sprintf("algorithms[%d]", i), "%q is refused: HMAC needs a shared secret, and accepting it invites key-confusion forgeries with the public key", a)
		case !slices.Contains(asymmetricAlgs, a):
			bad(fmt.Sprintf("algorithms[%d]", i), "%q is not one of %s", a, strings.Join(asymmetricAlgs, ", "))
		}
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		bad("clock_skew", "%s is outside 0..%s", c.ClockSkew, MaxClockSkew)
	}
	if c.JWKSRefreshMinInterval < 0 {
		bad("jwks_refresh_min_interval", "%s is negative", c.JWKSRefreshMinInterval)
	}
	return errors.Join(errs...)
}

func checkHTTPURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", s)
	}
	return nil
}

func joseAlgs(algs []string) []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}
