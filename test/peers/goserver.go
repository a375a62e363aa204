package peers

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// GoServerOptions configures [StartGoServer]. The zero value is usable.
type GoServerOptions struct {
	// Addr is the listen address (default 127.0.0.1:0, a free port).
	Addr string
	// Path is the MCP endpoint's path (default /mcp).
	Path string
	// Stateless serves without sessions (no Mcp-Session-Id; GET and DELETE
	// answer 405), as the 2026-07-28 protocol expects.
	Stateless bool
	// JSONResponse answers POSTs with application/json instead of an SSE
	// stream (progress notifications are then not delivered).
	JSONResponse bool
	// RequireBearer, when set, makes the server answer 401 to any request
	// whose Authorization is not "Bearer <RequireBearer>" — an upstream that
	// accepts only its own credential. Rejected requests are still recorded.
	RequireBearer string
	// DisableLocalhostProtection turns off the SDK's DNS-rebinding check,
	// which refuses requests reaching a loopback address with a Host header
	// that is not localhost/127.0.0.1/[::1] (e.g. when a proxy forwards the
	// client's Host unchanged).
	DisableLocalhostProtection bool
	// Logger receives the SDK's logs (default: discarded).
	Logger *slog.Logger
	// Gzip compresses 200 answers (JSON and SSE alike; see [GzipMode]).
	Gzip GzipMode
}

// GoServer is a running MCP server built with the official Go SDK, served
// over Streamable HTTP on loopback, in process. Its tools are echo,
// search_issues, delete_repository (destructive), get_secret_config (fake
// credentials, see [FakeSecrets]) and count_slowly (progress notifications
// over SSE); its resources docs://readme and secrets://config; its prompt
// triage_issue. It records every HTTP request and tool call it receives.
type GoServer struct {
	srv  *http.Server
	url  string
	rec  *recorder
	done chan struct{}
}

// StartGoServer starts the Go SDK server. ctx bounds only the start.
func StartGoServer(ctx context.Context, opts GoServerOptions) (*GoServer, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("go MCP server: %w", err)
	}
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	path := opts.Path
	if path == "" {
		path = "/mcp"
	}
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("go MCP server: path %q must start with /", path)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	rec := &recorder{}
	server := mcp.NewServer(&mcp.Implementation{Name: "airlock-test-server", Version: "1.0.0"}, &mcp.ServerOptions{
		Logger:       logger,
		Instructions: "A test MCP server for airlock: issues, repositories and configuration.",
	})
	addTools(server, rec.recordCall)
	handler := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server }, &mcp.StreamableHTTPOptions{
		Stateless:                  opts.Stateless,
		JSONResponse:               opts.JSONResponse,
		Logger:                     logger,
		DisableLocalhostProtection: opts.DisableLocalhostProtection,
		// The gateway decides how large a call may be (limits up to 64
		// MiB); the SDK's own 4 MiB default would answer first.
		MaxRequestBodyBytes: 64 << 20,
	})
	var h http.Handler = handler
	if opts.Gzip != GzipNever {
		h = gzipAnswers(opts.Gzip, h)
	}
	if opts.RequireBearer != "" {
		h = requireBearer(opts.RequireBearer, h)
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)

	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("go MCP server: listening on %s: %w", addr, err)
	}
	s := &GoServer{
		srv:  &http.Server{Handler: rec.wrap(mux), ReadHeaderTimeout: 10 * time.Second},
		url:  "http://" + ln.Addr().String() + path,
		rec:  rec,
		done: make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("go MCP server stopped", "err", err)
		}
	}()
	return s, nil
}

// requireBearer answers 401 unless the request carries exactly want.
func requireBearer(want string, next http.Handler) http.Handler {
	expected := []byte("Bearer " + want)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), expected) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			http.Error(w, "upstream credential missing or wrong", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// URL is the MCP endpoint, e.g. http://127.0.0.1:<port>/mcp.
func (s *GoServer) URL() string { return s.url }

// Requests is the HTTP requests received so far, oldest first. The oldest
// are dropped once there are more than 10000 or their bodies pass 64 MiB.
func (s *GoServer) Requests() []Request {
	reqs, _ := s.rec.snapshot()
	return reqs
}

// ToolCalls is the tool calls run so far, oldest first. The oldest are
// dropped once there are more than 10000.
func (s *GoServer) ToolCalls() []ToolCall {
	_, calls := s.rec.snapshot()
	return calls
}

// Reset forgets the recorded requests and tool calls.
func (s *GoServer) Reset() { s.rec.reset() }

// Close stops the server and ends open connections (SSE streams included).
func (s *GoServer) Close() error {
	err := s.srv.Close()
	<-s.done
	return err
}
