package peers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// EverythingOptions configures [StartEverything]. The zero value is usable.
type EverythingOptions struct {
	// Port to listen on, on 127.0.0.1; 0 asks the kernel for a free one.
	Port int
	// NodeDir is the Node peers directory; default [NodeDir].
	NodeDir string
	// StartTimeout bounds the wait for the server to answer (default 30s).
	StartTimeout time.Duration
	// Env is added to the server's environment (KEY=value).
	Env []string
}

// Everything is a running MCP reference server ("server-everything", the
// npm package @modelcontextprotocol/server-everything) on Streamable HTTP.
// It is stateful: it issues Mcp-Session-Id on initialize and keeps an
// in-memory event store for SSE resumption.
type Everything struct {
	proc *process
	port int
	url  string
}

// everythingScript is the package's entry point (its bin mcp-server-everything).
const everythingScript = "node_modules/@modelcontextprotocol/server-everything/dist/index.js"

// StartEverything runs `mcp-server-everything streamableHttp` with the Node
// 22 runtime from test/node, listening on 127.0.0.1 (loopback.mjs pins the
// host, as the server itself takes only PORT), and waits until its /mcp
// endpoint answers.
func StartEverything(ctx context.Context, opts EverythingOptions) (*Everything, error) {
	dir, err := resolveNodeDir(opts.NodeDir)
	if err != nil {
		return nil, err
	}
	port, err := portOrFree(opts.Port)
	if err != nil {
		return nil, fmt.Errorf("server-everything: %w", err)
	}
	preload := (&url.URL{Scheme: "file", Path: filepath.Join(dir, "loopback.mjs")}).String()
	argv := []string{nodeBinary(dir), "--import", preload, filepath.Join(dir, everythingScript), "streamableHttp"}
	env := append([]string{"PORT=" + strconv.Itoa(port)}, opts.Env...)
	p, err := startProcess("server-everything", dir, argv, env)
	if err != nil {
		return nil, err
	}
	e := &Everything{proc: p, port: port, url: fmt.Sprintf("http://127.0.0.1:%d/mcp", port)}
	// Without a session, GET /mcp answers 400 with this JSON-RPC error; its
	// text tells the server apart from anything else that took the port.
	probe := probeHTTP(e.url, func(resp *http.Response, body []byte) error {
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "No valid session ID provided") {
			return fmt.Errorf("GET %s answered %s, not server-everything's 400 for a missing session", e.url, resp.Status)
		}
		return nil
	})
	if err := p.waitReady(ctx, opts.StartTimeout, probe); err != nil {
		return nil, err
	}
	return e, nil
}

// URL is the MCP endpoint, http://127.0.0.1:<port>/mcp.
func (e *Everything) URL() string { return e.url }

// Port is the TCP port the server listens on.
func (e *Everything) Port() int { return e.port }

// Output is the server's recent stdout and stderr (the last 32 KiB).
func (e *Everything) Output() string { return e.proc.Output() }

// Close stops the server's process group. It is idempotent.
func (e *Everything) Close() error { return e.proc.Close() }
