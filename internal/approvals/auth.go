package approvals

import (
	"context"
	"net/http"
	"strings"

	"github.com/airlock-mcp/airlock/internal/identity"
)

// Verifier checks OIDC bearer tokens; *identity.Verifier is one.
type Verifier interface {
	Verify(ctx context.Context, rawToken string, audiences []string) (*identity.Principal, error)
}

// bearerToken takes the token out of an Authorization header ("Bearer x",
// the scheme in any case). ok is false when there is none.
func bearerToken(h string) (string, bool) {
	scheme, tok, found := strings.Cut(strings.TrimSpace(h), " ")
	if !found || !strings.EqualFold(scheme, "bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authenticate verifies the request's bearer token for the API audience.
// The error is an *apiError (401, or 503 when the issuer cannot be
// reached) whose message never contains the token.
func (h *Handler) authenticate(r *http.Request) (*identity.Principal, *apiError) {
	tok, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return nil, newError(http.StatusUnauthorized, "unauthorized", "no bearer token: send Authorization: Bearer <token> with a token for audience "+h.audience)
	}
	p, err := h.verifier.Verify(r.Context(), tok, []string{h.audience})
	if err != nil {
		if identity.ReasonOf(err) == identity.ReasonIssuerUnavailable {
			return nil, newError(http.StatusServiceUnavailable, "unavailable", err.Error())
		}
		return nil, newError(http.StatusUnauthorized, "unauthorized", err.Error())
	}
	if p.Subject == "" {
		return nil, newError(http.StatusUnauthorized, "unauthorized", "the token names no subject")
	}
	return p, nil
}

// authed wraps an API handler with bearer authentication.
func (h *Handler) authed(next func(w http.ResponseWriter, r *http.Request, p *identity.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ae := h.authenticate(r)
		if ae != nil {
			challenge := `Bearer realm="airlock"`
			if ae.status == http.StatusUnauthorized && r.Header.Get("Authorization") != "" {
				challenge += `, error="invalid_token", error_description="` + headerSafe(ae.msg) + `"`
			}
			w.Header().Set("WWW-Authenticate", challenge)
			h.writeError(w, r, ae)
			return
		}
		next(w, r, p)
	}
}

// headerSafe keeps a quoted-string free of quotes, backslashes and
// control characters, and short.
func headerSafe(s string) string {
	b := make([]byte, 0, min(len(s), 200))
	for i := 0; i < len(s) && len(b) < 200; i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f || c == '"' || c == '\\' || c >= 0x80 {
			c = ' '
		}
		b = append(b, c)
	}
	return string(b)
}
