package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// TokenError is an error answer from a token endpoint (RFC 6749 section 5.2).
type TokenError struct {
	Status      int    // HTTP status
	Code        string // the error code, e.g. invalid_client, invalid_target
	Description string // error_description
}

func (e *TokenError) Error() string {
	msg := fmt.Sprintf("token endpoint answered %d %s", e.Status, e.Code)
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return msg
}

// tokenClient is the HTTP client for token requests.
var tokenClient = &http.Client{Timeout: 30 * time.Second}

// ClientCredentialsToken gets an access token from the provider through the
// client_credentials grant, authenticating with HTTP Basic. resource, when
// not empty, is sent as the RFC 8707 resource indicator (the token's aud);
// scopes, when any, as the scope. An error answer is a *[TokenError].
func (o *OIDCProvider) ClientCredentialsToken(ctx context.Context, clientID, secret, resource string, scopes []string) (string, error) {
	return ClientCredentialsToken(ctx, o.tokenURL, clientID, secret, resource, scopes)
}

// ClientCredentialsToken asks tokenURL for an access token through the
// client_credentials grant (see [OIDCProvider.ClientCredentialsToken]).
func ClientCredentialsToken(ctx context.Context, tokenURL, clientID, secret, resource string, scopes []string) (string, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	if resource != "" {
		form.Set("resource", resource)
	}
	if len(scopes) > 0 {
		form.Set("scope", strings.Join(scopes, " "))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("token request to %s: %w", tokenURL, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	resp, err := tokenClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("token request to %s: %w", tokenURL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("reading the token response from %s: %w", tokenURL, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = "non-OAuth error answer"
		}
		return "", &TokenError{Status: resp.StatusCode, Code: e.Error, Description: e.Description}
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
	}
	if err := json.Unmarshal(body, &tok); err != nil {
		return "", fmt.Errorf("token response from %s is not JSON: %w", tokenURL, err)
	}
	if tok.AccessToken == "" || !strings.EqualFold(tok.TokenType, "Bearer") {
		return "", fmt.Errorf("token response from %s has no Bearer access_token (token_type %q)", tokenURL, tok.TokenType)
	}
	return tok.AccessToken, nil
}
