package oidcissuer

import (
	"crypto/subtle"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// tokenError is an RFC 6749 section 5.2 error response.
type tokenError struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

// serveToken is the client_credentials grant (RFC 6749 section 4.4) with
// RFC 8707 resource indicators: each resource becomes an aud value.
// Client authentication is client_secret_basic or client_secret_post.
func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, tokenError{"invalid_request", "the token endpoint takes POST"})
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, tokenError{"invalid_request", "form body: " + err.Error()})
		return
	}
	form := r.PostForm
	if gt := form.Get("grant_type"); gt != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, tokenError{"unsupported_grant_type", "only client_credentials is supported, got " + quoteValue(gt)})
		return
	}
	id, secret, basic := r.BasicAuth()
	if !basic {
		id, secret = form.Get("client_id"), form.Get("client_secret")
	}
	if id == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="oidcissuer"`)
		writeJSON(w, http.StatusUnauthorized, tokenError{"invalid_client", "no client_id (use HTTP Basic or client_id/client_secret form fields)"})
		return
	}
	client, known := i.opts.Clients[id]
	if len(i.opts.Clients) > 0 && (!known || subtle.ConstantTimeCompare([]byte(secret), []byte(client.Secret)) != 1) {
		w.Header().Set("WWW-Authenticate", `Basic realm="oidcissuer"`)
		writeJSON(w, http.StatusUnauthorized, tokenError{"invalid_client", "unknown client or wrong secret"})
		return
	}

	scopes := strings.Fields(form.Get("scope"))
	if len(scopes) == 0 {
		scopes = client.Scopes
	}
	if len(client.Scopes) > 0 {
		for _, s := range scopes {
			if !slices.Contains(client.Scopes, s) {
				writeJSON(w, http.StatusBadRequest, tokenError{"invalid_scope", "client may not ask for scope " + quoteValue(s)})
				return
			}
		}
	}
	resources := form["resource"]
	for _, res := range resources {
		u, err := url.Parse(res)
		if err != nil || !u.IsAbs() || u.Fragment != "" {
			// RFC 8707 section 2: an absolute URI without a fragment.
			writeJSON(w, http.StatusBadRequest, tokenError{"invalid_target", "resource " + quoteValue(res) + " is not an absolute URI without a fragment"})
			return
		}
	}
	if scopes == nil {
		scopes = []string{}
	}
	tok, err := i.Mint(Token{
		Subject:  id,
		ClientID: id,
		User:     client.User,
		Groups:   client.Groups,
		Scopes:   scopes,
		Audience: resources,
	})
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, tokenError{"server_error", err.Error()})
		return
	}
	i.tokensIssued.Add(1)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": tok,
		"token_type":   "Bearer",
		"expires_in":   int(i.opts.TokenTTL.Seconds()),
		"scope":        strings.Join(scopes, " "),
	})
}

// quoteValue quotes a client-supplied value for an error description,
// cut to 100 bytes.
func quoteValue(s string) string {
	if len(s) > 100 {
		s = s[:100]
	}
	return strconv.Quote(s)
}
