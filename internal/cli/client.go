package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/airlock-mcp/airlock/internal/approvals"
)

// APIError is an error answer of the API.
type APIError struct {
	Status  int
	Code    string
	Message string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (%d %s)", e.Message, e.Status, e.Code)
}

// client talks to the approvals API with a bearer token.
type client struct {
	base  string // http://host:port, no trailing slash
	token string
	http  *http.Client
}

// maxResponse bounds an API answer the CLI reads.
const maxResponse = 32 << 20

// do sends method path (under /airlock/v1/) with an optional JSON body
// and decodes a JSON answer into out; raw, when out is nil, is returned.
func (c *client) do(ctx context.Context, method, path string, body, out any) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+approvals.APIPrefix+path, rd)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in the message below already
		}
		return nil, fmt.Errorf("cannot reach the airlock API at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return nil, fmt.Errorf("reading the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return nil, apiError(resp, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return nil, fmt.Errorf("the answer of %s %s is not the JSON expected: %w", method, path, err)
		}
	}
	return raw, nil
}

// apiError reads an error answer; one that is not the API's JSON (a proxy
// in the way, a wrong --server) is reported with its status.
func apiError(resp *http.Response, raw []byte) error {
	var eb approvals.ErrorBody
	if json.Unmarshal(raw, &eb) == nil && eb.Error.Code != "" {
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message}
	}
	snippet := strings.TrimSpace(string(raw))
	if len(snippet) > 200 {
		snippet = snippet[:200] + "…"
	}
	return &APIError{Status: resp.StatusCode, Code: "http_error", Message: fmt.Sprintf("the server answered %s: %s (is --server the airlock HTTP address?)", resp.Status, snippet)}
}
