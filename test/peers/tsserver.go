package peers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// TSServerOptions configures [StartTSServer]. The zero value is usable
// but for RequireBearer, which the server needs.
type TSServerOptions struct {
	// Port to listen on, on 127.0.0.1; 0 asks the kernel for a free one.
	Port int
	// NodeDir is the Node peers directory; default [NodeDir].
	NodeDir string
	// RequireBearer is the server's own credential: every request without
	// "Authorization: Bearer <RequireBearer>" is recorded, then answered 401.
	RequireBearer string
	// RecordFile is where the server writes its records; default a file in
	// a new temporary directory, removed by Close.
	RecordFile string
}

// TSServer is a running MCP server built with the TypeScript SDK's
// createMcpExpressApp() (test/node/tsserver.mjs): express.json() decodes
// request bodies with the charset and Content-Encoding the request names,
// as real TypeScript MCP servers do. Its tools are [TSServerTools]; its
// prompts triage and secret_prompt (with a completable argument "topic").
// It records every HTTP request (never the credential), every body as
// express.json() decoded it, and every tool, prompt and completion it ran.
type TSServer struct {
	proc    *process
	port    int
	record  string
	tempDir string

	mu     sync.Mutex
	offset int64 // records before offset are forgotten (Reset)
}

// TSServerTools are the TypeScript server's tools. echo returns its text;
// every other one only records that it ran. The last three have a
// zero-width, a Cyrillic (mixed-script) and a bidi character in their names.
var TSServerTools = []string{"echo", "delete_all", "DELETE_all", "removeUser", "repoDelete", "repo-delete", "repo.delete", "get-env",
	"echo\u200b", "ech\u043e", "\u202eecho"}

// TSRecord is one line the TypeScript server recorded.
type TSRecord struct {
	// Kind is http (a request arrived), parsed (a body as express.json()
	// decoded it), tool (a tool ran), prompt (a prompt was got) or
	// completion (an argument was completed).
	Kind      string `json:"kind"`
	Principal string `json:"principal"` // the x-airlock-principal header
	// http
	Method          string `json:"method"`
	Path            string `json:"path"` // path and query as received
	Credential      bool   `json:"credential"`
	Authorization   bool   `json:"authorization"` // any Authorization header at all
	ContentType     string `json:"contentType"`
	ContentEncoding string `json:"contentEncoding"`
	AcceptEncoding  string `json:"acceptEncoding"`
	Override        string `json:"override"` // a method-override header's value
	SessionID       string `json:"sessionId"`
	// parsed
	Body json.RawMessage `json:"body"`
	// tool, prompt, completion
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	Ref       string          `json:"ref"`
}

// tsServerScript is test/node/tsserver.mjs.
const tsServerScript = "tsserver.mjs"

// StartTSServer runs tsserver.mjs with the Node 22 runtime from test/node
// and waits until it answers.
func StartTSServer(ctx context.Context, opts TSServerOptions) (*TSServer, error) {
	dir, err := resolveNodeDir(opts.NodeDir)
	if err != nil {
		return nil, err
	}
	if opts.RequireBearer == "" {
		return nil, fmt.Errorf("ts MCP server: RequireBearer is required")
	}
	port, err := portOrFree(opts.Port)
	if err != nil {
		return nil, fmt.Errorf("ts MCP server: %w", err)
	}
	s := &TSServer{port: port, record: opts.RecordFile}
	if s.record == "" {
		if s.tempDir, err = os.MkdirTemp("", "airlock-tsserver-"); err != nil {
			return nil, err
		}
		s.record = filepath.Join(s.tempDir, "record.jsonl")
	}
	if err := os.WriteFile(s.record, nil, 0o600); err != nil {
		s.removeTemp()
		return nil, fmt.Errorf("ts MCP server: record file: %w", err)
	}
	argv := []string{nodeBinary(dir), filepath.Join(dir, tsServerScript)}
	env := []string{"PORT=" + strconv.Itoa(port), "TS_RECORD=" + s.record, "TS_BEARER=" + opts.RequireBearer}
	if s.proc, err = startProcess("ts MCP server", dir, argv, env); err != nil {
		s.removeTemp()
		return nil, err
	}
	probe := probeHTTP(fmt.Sprintf("http://127.0.0.1:%d/__ready", port), func(resp *http.Response, body []byte) error {
		if resp.StatusCode != http.StatusOK || string(body) != "tsserver ready" {
			return fmt.Errorf("GET /__ready answered %s, not the ts server", resp.Status)
		}
		return nil
	})
	if err := s.proc.waitReady(ctx, 0, probe); err != nil {
		s.removeTemp()
		return nil, err
	}
	return s, nil
}

// URL is the stateful MCP endpoint, http://127.0.0.1:<port>/mcp.
func (s *TSServer) URL() string { return fmt.Sprintf("http://127.0.0.1:%d/mcp", s.port) }

// StatelessURL is the stateless endpoint (JSON answers, no sessions).
func (s *TSServer) StatelessURL() string { return fmt.Sprintf("http://127.0.0.1:%d/stateless", s.port) }

// Records is everything recorded since the last Reset, oldest first.
func (s *TSServer) Records() ([]TSRecord, error) {
	s.mu.Lock()
	off := s.offset
	s.mu.Unlock()
	b, err := os.ReadFile(s.record)
	if err != nil {
		return nil, err
	}
	if int64(len(b)) < off {
		off = 0
	}
	var out []TSRecord
	sc := bufio.NewScanner(bytes.NewReader(b[off:]))
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		var r TSRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("ts server record %q: %w", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out, sc.Err()
}

// ToolCalls is the tools run since the last Reset, oldest first.
func (s *TSServer) ToolCalls() ([]TSRecord, error) { return s.kind("tool") }

// HTTPRequests is the HTTP requests received since the last Reset.
func (s *TSServer) HTTPRequests() ([]TSRecord, error) { return s.kind("http") }

// Parsed is the bodies express.json() decoded since the last Reset.
func (s *TSServer) Parsed() ([]TSRecord, error) { return s.kind("parsed") }

func (s *TSServer) kind(k string) ([]TSRecord, error) {
	all, err := s.Records()
	if err != nil {
		return nil, err
	}
	var out []TSRecord
	for _, r := range all {
		if r.Kind == k {
			out = append(out, r)
		}
	}
	return out, nil
}

// Reset forgets what was recorded so far.
func (s *TSServer) Reset() {
	fi, err := os.Stat(s.record)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.offset = fi.Size()
	s.mu.Unlock()
}

// Output is the server's recent stdout and stderr (the last 32 KiB).
func (s *TSServer) Output() string { return s.proc.Output() }

// Close stops the server and removes its temporary record file.
func (s *TSServer) Close() error {
	err := s.proc.Close()
	s.removeTemp()
	return err
}

func (s *TSServer) removeTemp() {
	if s.tempDir != "" && strings.Contains(s.tempDir, "airlock-tsserver-") {
		_ = os.RemoveAll(s.tempDir)
	}
}
