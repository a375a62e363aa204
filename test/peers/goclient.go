package peers

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// GoClientOptions configures [ConnectGoClientWith]. The zero value is usable.
type GoClientOptions struct {
	// ProtocolVersion to ask for; default the SDK's latest (2026-07-28,
	// which tries server/discover first and falls back to initialize).
	ProtocolVersion string
	// Client options (handlers for progress, logging ...); default none.
	Client *mcp.ClientOptions
	// Header is added to every request (besides Authorization).
	Header http.Header
	// DisableStandaloneSSE stops the client from opening the GET stream.
	DisableStandaloneSSE bool
	// MaxRetries for reconnecting SSE streams; default 0 (none), so a
	// refused stream fails at once; negative also means none.
	MaxRetries int
}

// ConnectGoClient connects an MCP client built with the official Go SDK to
// the Streamable HTTP endpoint url, sending "Authorization: Bearer <token>"
// on every request when token is not empty. Close the session when done.
func ConnectGoClient(ctx context.Context, url, token string) (*mcp.ClientSession, error) {
	return ConnectGoClientWith(ctx, url, token, GoClientOptions{})
}

// ConnectGoClientWith is [ConnectGoClient] with options.
func ConnectGoClientWith(ctx context.Context, url, token string, opts GoClientOptions) (*mcp.ClientSession, error) {
	retries := opts.MaxRetries
	if retries <= 0 {
		retries = -1
	}
	transport := &mcp.StreamableClientTransport{
		Endpoint:             url,
		HTTPClient:           &http.Client{Transport: &headerTransport{token: token, header: opts.Header}},
		MaxRetries:           retries,
		DisableStandaloneSSE: opts.DisableStandaloneSSE,
	}
	client := mcp.NewClient(&mcp.Implementation{Name: "airlock-go-test-client", Version: "1.0.0"}, opts.Client)
	var sessOpts *mcp.ClientSessionOptions
	if opts.ProtocolVersion != "" {
		sessOpts = &mcp.ClientSessionOptions{ProtocolVersion: opts.ProtocolVersion}
	}
	cs, err := client.Connect(ctx, transport, sessOpts)
	if err != nil {
		return nil, fmt.Errorf("connecting the Go MCP client to %s: %w", url, err)
	}
	return cs, nil
}

// BearerHTTPClient is an HTTP client that sends "Authorization: Bearer
// <token>" on every request (none when token is empty), for raw requests
// in tests. It has a 60 s overall timeout.
func BearerHTTPClient(token string) *http.Client {
	return &http.Client{Transport: &headerTransport{token: token}, Timeout: 60 * time.Second}
}

// headerTransport adds the bearer token and extra headers to each request.
type headerTransport struct {
	token  string
	header http.Header
	base   http.RoundTripper // default http.DefaultTransport
}

func (t *headerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, vs := range t.header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if t.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.token)
	}
	base := t.base
	if base == nil {
		base = http.DefaultTransport
	}
	return base.RoundTrip(req)
}
