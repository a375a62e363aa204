package approvals

import (
	"context"
	"fmt"
	"net/http"
	"slices"
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

// authenticate verifies the request's bearer token for the API audience
// and nothing else (no issuer-level audience, no target's resource URI),
// then applies api.approver_scopes and api.client_ids. The error is an
// *apiError (401 for a token that is not for the API, 403 for a token
// for the API that lacks a scope or comes from a client not allowed, 503
// when the issuer cannot be reached) whose message never contains the
// token.
func (h *Handler) authenticate(r *http.Request) (*identity.Principal, *apiError) {
	tok, ok := bearerToken(r.Header.Get("Authorization"))
	if !ok {
		return nil, newError(http.StatusUnauthorized, "unauthorized", "no bearer token: send Authorization: Bearer <token> with a token for audience "+h.audience)
	}
	p, err := h.verifier.Verify(r.Context(), tok, []string{h.audience})
	if err != nil {
		switch identity.ReasonOf(err) {
		case identity.ReasonIssuerUnavailable:
			return nil, newError(http.StatusServiceUnavailable, "unavailable", err.Error())
		case identity.ReasonWrongAudience:
			if ae := h.targetToken(r, tok); ae != nil {
				return nil, ae
			}
		}
		h.log.Debug("API token rejected", "error", err)
		return nil, newError(http.StatusUnauthorized, "unauthorized", publicTokenError(err))
	}
	if p.Subject == "" {
		return nil, newError(http.StatusUnauthorized, "unauthorized", "the token names no subject")
	}
	if name, aud := h.targetAudience(p.Audience); name != "" {
		return nil, mintedForTarget(name, aud, h.audience)
	}
	if len(h.clientIDs) > 0 && !slices.Contains(h.clientIDs, p.ClientID) {
		return nil, newError(http.StatusForbidden, "client_not_allowed", fmt.Sprintf(
			"this token was issued to the OAuth client %q, which is not one of the approvals API's clients (api.client_ids): approve with a token from the CLI or another client people use, not an agent's", p.ClientID))
	}
	if missing := missingScopes(p.Scopes, h.approverScopes); len(missing) > 0 {
		return nil, newError(http.StatusForbidden, "insufficient_scope", fmt.Sprintf(
			"the token lacks the approver scope(s) %s (api.approver_scopes): approving needs a person's token for the approvals API", strings.Join(missing, " ")))
	}
	return p, nil
}

// publicTokenError is what the caller of a rejected token is told. A
// token whose signature was not verified (malformed, an unknown issuer, an
// algorithm or key not accepted) may come from anyone: its caller learns
// the reason, not the verifier's detail, which names the trusted issuers
// and algorithms. Past the signature (wrong audience, expired, claims) the
// caller holds a genuine token and gets the detail.
func publicTokenError(err error) string {
	r := identity.ReasonOf(err)
	switch r {
	case identity.ReasonMalformed:
		return "token rejected (malformed): it is not a signed JWT"
	case identity.ReasonUnknownIssuer:
		return "token rejected (unknown_issuer): its issuer is not trusted here"
	case identity.ReasonBadSignature, identity.ReasonUnsupportedAlgorithm:
		return "token rejected (" + string(r) + "): its signature could not be verified"
	case "":
		return "token rejected: it could not be verified"
	default:
		return err.Error()
	}
}

// targetToken explains a token refused for its audience when it is a
// valid token for one of the MCP targets: the commonest mistake, and the
// attack this API must refuse (an agent's token used to approve).
func (h *Handler) targetToken(r *http.Request, tok string) *apiError {
	if len(h.resources) == 0 {
		return nil
	}
	p, err := h.verifier.Verify(r.Context(), tok, h.resources)
	if err != nil {
		return nil
	}
	if name, aud := h.targetAudience(p.Audience); name != "" {
		return mintedForTarget(name, aud, h.audience)
	}
	return nil
}

// targetAudience is the target (name and resource URI) whose resource
// URI is one of aud, if any.
func (h *Handler) targetAudience(aud []string) (name, resource string) {
	for _, a := range aud {
		for i, res := range h.resources {
			if a == res {
				return h.resourceOf[i], res
			}
		}
	}
	return "", ""
}

func mintedForTarget(target, resource, audience string) *apiError {
	return newError(http.StatusUnauthorized, "unauthorized", fmt.Sprintf(
		"this token was minted for an MCP target (%s, audience %s), not for the approvals API: use a token for audience %s", target, resource, audience))
}

// missingScopes are the members of want not in have.
func missingScopes(have, want []string) []string {
	var out []string
	for _, w := range want {
		if !slices.Contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// authed wraps an API handler with bearer authentication.
func (h *Handler) authed(next func(w http.ResponseWriter, r *http.Request, p *identity.Principal)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ae := h.authenticate(r)
		if ae != nil {
			challenge := `Bearer realm="airlock"`
			switch {
			case ae.code == "insufficient_scope":
				challenge += `, error="insufficient_scope", scope="` + headerSafe(strings.Join(h.approverScopes, " ")) + `", error_description="` + headerSafe(ae.msg) + `"`
			case ae.status == http.StatusUnauthorized && r.Header.Get("Authorization") != "":
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
