package identity

import (
	"math"
	"strings"
	"time"
)

// tokenTimes are the registered time claims; a zero time means absent.
type tokenTimes struct {
	exp, nbf, iat time.Time
}

// maxUnix is the last second of year 9999: later NumericDates are refused
// rather than overflowing time.Time arithmetic.
const maxUnix = 253402300799

// principalFromClaims maps verified claims to a Principal using the issuer's
// claim names. Every error has Reason invalid_claims.
func principalFromClaims(claims map[string]any, names ClaimNames) (*Principal, tokenTimes, *Error) {
	var t tokenTimes
	var err *Error
	if t.exp, err = numericDate(claims, "exp"); err != nil {
		return nil, t, err
	}
	if t.exp.IsZero() {
		return nil, t, errorf(ReasonInvalidClaims, "token has no exp claim")
	}
	if t.nbf, err = numericDate(claims, "nbf"); err != nil {
		return nil, t, err
	}
	if t.iat, err = numericDate(claims, "iat"); err != nil {
		return nil, t, err
	}

	p := &Principal{Expiry: t.exp, Claims: claims}
	if p.Issuer, err = stringClaim(claims, "iss"); err != nil {
		return nil, t, err
	}
	if p.Subject, err = stringClaim(claims, names.Subject); err != nil {
		return nil, t, err
	}
	if p.Subject == "" {
		return nil, t, errorf(ReasonInvalidClaims, "token has no %s claim (the subject)", names.Subject)
	}
	if p.User, err = stringClaim(claims, names.User); err != nil {
		return nil, t, err
	}
	for _, name := range fallbacks(names.ClientID, "azp", "client_id") {
		if p.ClientID, err = stringClaim(claims, name); err != nil {
			return nil, t, err
		}
		if p.ClientID != "" {
			break
		}
	}
	for _, name := range fallbacks(names.Scopes, "scope") {
		if _, present := claims[name]; !present {
			continue
		}
		if p.Scopes, err = stringsClaim(claims, name, true); err != nil {
			return nil, t, err
		}
		break
	}
	if p.Groups, err = stringsClaim(claims, names.Groups, false); err != nil {
		return nil, t, err
	}
	if p.Audience, err = stringsClaim(claims, "aud", false); err != nil {
		return nil, t, err
	}
	if p.TokenID, err = stringClaim(claims, "jti"); err != nil {
		return nil, t, err
	}
	if p.Scopes == nil {
		p.Scopes = []string{}
	}
	if p.Groups == nil {
		p.Groups = []string{}
	}
	return p, t, nil
}

// fallbacks is first followed by the others that differ from it.
func fallbacks(first string, others ...string) []string {
	out := []string{first}
	for _, o := range others {
		if o != first {
			out = append(out, o)
		}
	}
	return out
}

// stringClaim is claims[name] as a string; "" if absent or null.
func stringClaim(claims map[string]any, name string) (string, *Error) {
	switch v := claims[name].(type) {
	case nil:
		return "", nil
	case string:
		return v, nil
	default:
		return "", errorf(ReasonInvalidClaims, "claim %s is %s, want a string", name, jsonType(v))
	}
}

// stringsClaim is claims[name] as a list: an array of strings, or a single
// string — split on spaces when spaceSeparated (OAuth's scope format),
// else taken as one value.
func stringsClaim(claims map[string]any, name string, spaceSeparated bool) ([]string, *Error) {
	switch v := claims[name].(type) {
	case nil:
		return nil, nil
	case string:
		if spaceSeparated {
			return strings.Fields(v), nil
		}
		if v == "" {
			return []string{}, nil
		}
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				return nil, errorf(ReasonInvalidClaims, "claim %s[%d] is %s, want a string", name, i, jsonType(e))
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, errorf(ReasonInvalidClaims, "claim %s is %s, want a string or an array of strings", name, jsonType(v))
	}
}

// numericDate is claims[name] as a time (RFC 7519 NumericDate: seconds
// since the epoch, possibly fractional); zero if absent.
func numericDate(claims map[string]any, name string) (time.Time, *Error) {
	v, present := claims[name]
	if !present || v == nil {
		return time.Time{}, nil
	}
	f, ok := v.(float64)
	if !ok {
		return time.Time{}, errorf(ReasonInvalidClaims, "claim %s is %s, want a number of seconds since the epoch", name, jsonType(v))
	}
	if math.IsNaN(f) || f < 0 || f > maxUnix {
		return time.Time{}, errorf(ReasonInvalidClaims, "claim %s is %v, outside 0..%d", name, f, maxUnix)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
}

// jsonType names the JSON type of a decoded value, with its article.
func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case float64:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	default:
		return "a value"
	}
}

// checkTimes applies exp, nbf and iat with the clock skew: a token is valid
// from nbf-skew (and iat-skew) until exp+skew, exclusive.
func checkTimes(now time.Time, skew time.Duration, t tokenTimes) *Error {
	if !now.Before(t.exp.Add(skew)) {
		return errorf(ReasonExpired, "token expired at %s (now %s, clock skew %s)", stamp(t.exp), stamp(now), skew)
	}
	if !t.nbf.IsZero() && now.Add(skew).Before(t.nbf) {
		return errorf(ReasonNotYetValid, "token is not valid before %s (now %s, clock skew %s)", stamp(t.nbf), stamp(now), skew)
	}
	if !t.iat.IsZero() && now.Add(skew).Before(t.iat) {
		return errorf(ReasonNotYetValid, "token was issued at %s, in the future (now %s, clock skew %s)", stamp(t.iat), stamp(now), skew)
	}
	return nil
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// checkAudience passes when one of the token's audiences is in want, or,
// when useIssuer is set, in issuer (the issuer's own configured audiences).
// It does not allocate when the check passes.
func checkAudience(aud, want, issuer []string, useIssuer bool) *Error {
	for _, a := range aud {
		for _, w := range want {
			if a == w {
				return nil
			}
		}
		if useIssuer {
			for _, w := range issuer {
				if a == w {
					return nil
				}
			}
		}
	}
	accepted := want
	if useIssuer {
		accepted = append(append(make([]string, 0, len(want)+len(issuer)), want...), issuer...)
	}
	switch {
	case len(accepted) == 0:
		return errorf(ReasonWrongAudience, "no audience is accepted here")
	case len(aud) == 0:
		return errorf(ReasonWrongAudience, "token has no aud claim; want %s", oneOf(accepted))
	case !useIssuer && overlaps(aud, issuer):
		return errorf(ReasonWrongAudience, "token audience %v is the issuer's own audience, which is not accepted here (only on targets with accept_issuer_audiences); want a token minted for %s", aud, oneOf(accepted))
	default:
		return errorf(ReasonWrongAudience, "token audience %v does not include %s", aud, oneOf(accepted))
	}
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

func oneOf(s []string) string {
	if len(s) == 1 {
		return s[0]
	}
	return "any of " + "[" + strings.Join(s, " ") + "]"
}
