package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/peers"
)

// rawRequest is one HTTP/1.1 request written byte for byte, so a test
// controls what Go's client would normalise: the request target (dot
// segments, doubled or encoded slashes), a body on GET or DELETE, repeated
// headers.
type rawRequest struct {
	Method string
	// Target is the request target as sent (path and query).
	Target string
	// Header lines, in order; Host, Content-Length (or Transfer-Encoding)
	// and Connection are added.
	Header [][2]string
	Body   []byte
	// Chunked sends the body with Transfer-Encoding: chunked, in chunks
	// of at most 1000 bytes, instead of a Content-Length.
	Chunked bool
}

// reply is what the agent got back.
type reply struct {
	Status int
	Header http.Header
	// Body is the body as the agent reads it: gunzipped when the answer
	// says Content-Encoding: gzip.
	Body []byte
	// Msgs are the JSON-RPC messages in Body (a JSON object or array, or
	// the data of SSE events).
	Msgs []rpcMsg
}

type rpcMsg struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorFor is the JSON-RPC error answering id (JSON text, e.g. `7`,
// `"a"`, `null`), or nil.
func (r *reply) errorFor(id string) *rpcMsg {
	for i := range r.Msgs {
		m := &r.Msgs[i]
		if m.Error != nil && compactJSON(m.ID) == id {
			return m
		}
	}
	return nil
}

// resultFor is the JSON-RPC result answering id, or nil.
func (r *reply) resultFor(id string) *rpcMsg {
	for i := range r.Msgs {
		m := &r.Msgs[i]
		if m.Error == nil && m.Result != nil && compactJSON(m.ID) == id {
			return m
		}
	}
	return nil
}

func (r *reply) String() string {
	b := r.Body
	if len(b) > 600 {
		b = append(b[:600:600], "…"...)
	}
	return fmt.Sprintf("%d %q", r.Status, b)
}

func compactJSON(b json.RawMessage) string {
	if len(b) == 0 {
		return "null"
	}
	var out bytes.Buffer
	if json.Compact(&out, b) != nil {
		return string(b)
	}
	return out.String()
}

// send writes req to the gateway at base and reads the answer.
func send(t *testing.T, base string, req rawRequest) *reply {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	var b bytes.Buffer
	method := req.Method
	if method == "" {
		method = "POST"
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, req.Target, u.Host)
	for _, h := range req.Header {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	switch {
	case req.Chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case req.Body != nil || method == "POST":
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(req.Body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	if req.Chunked {
		for rest := req.Body; len(rest) > 0; {
			n := min(len(rest), 1000)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, rest[:n])
			rest = rest[n:]
		}
		b.WriteString("0\r\n\r\n")
	} else {
		b.Write(req.Body)
	}
	if _, err := conn.Write(b.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, req.Target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, req.Target, err)
	}
	rep := &reply{Status: resp.StatusCode, Header: resp.Header, Body: body}
	if strings.EqualFold(resp.Header.Get("Content-Encoding"), "gzip") {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s %s: the answer says gzip but is not: %v", method, req.Target, err)
		}
		if rep.Body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s %s: gunzip: %v", method, req.Target, err)
		}
	}
	rep.Msgs = parseMessages(rep.Body)
	return rep
}

// parseMessages reads JSON-RPC messages from a JSON body or SSE events.
func parseMessages(body []byte) []rpcMsg {
	var out []rpcMsg
	add := func(b []byte) {
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return
		}
		if b[0] == '[' {
			var ms []rpcMsg
			if json.Unmarshal(b, &ms) == nil {
				out = append(out, ms...)
			}
			return
		}
		var m rpcMsg
		if json.Unmarshal(b, &m) == nil {
			out = append(out, m)
		}
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) > 0 && (trimmed[0] == '{' || trimmed[0] == '[') {
		add(trimmed)
		return out
	}
	for _, line := range strings.Split(string(body), "\n") {
		if data, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data:"); ok {
			add([]byte(data))
		}
	}
	return out
}

// mcpHeaders are the headers of an ordinary MCP POST, with tok.
func mcpHeaders(tok string, extra ...[2]string) [][2]string {
	h := [][2]string{
		{"Content-Type", "application/json"},
		{"Accept", "application/json, text/event-stream"},
		{"Mcp-Protocol-Version", "2025-11-25"},
		// Approvers want a reason: without one a held call is denied
		// outright, which would hide whether it was held at all.
		{"X-Airlock-Reason", "ticket OPS-7: clean up"},
	}
	if tok != "" {
		h = append(h, [2]string{"Authorization", "Bearer " + tok})
	}
	// An extra header replaces a default of the same name (case-insensitive);
	// one with an empty value removes it.
	for _, e := range extra {
		h = slices.DeleteFunc(h, func(d [2]string) bool { return strings.EqualFold(d[0], e[0]) })
	}
	for _, e := range extra {
		if e[1] != "" {
			h = append(h, e)
		}
	}
	return h
}

// upstreams resets and reads back every upstream of the attack stack.
type upstreams struct{ s *harness.Stack }

func (u upstreams) goServers() map[string]*peers.GoServer {
	return map[string]*peers.GoServer{"go(github)": u.s.GoServer, "go(jsonapi)": u.s.JSONServer, "go(gzipjson)": u.s.GzipJSON, "go(gzipsse)": u.s.GzipSSE}
}

func (u upstreams) reset() {
	for _, g := range u.goServers() {
		g.Reset()
	}
	u.s.TSServer.Reset()
}

// ran is every tool any upstream ran since the last reset, as "server:tool".
func (u upstreams) ran(t *testing.T) []string {
	t.Helper()
	var out []string
	for name, g := range u.goServers() {
		for _, c := range g.ToolCalls() {
			out = append(out, name+":"+c.Name)
		}
	}
	recs, err := u.s.TSServer.Records()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		switch r.Kind {
		case "tool":
			out = append(out, "ts:"+r.Name)
		case "prompt":
			out = append(out, "ts:prompt:"+r.Name)
		case "completion":
			out = append(out, "ts:completion:"+r.Ref)
		}
	}
	slices.Sort(out)
	return out
}

// received is every HTTP request any upstream received since the last
// reset, as "server METHOD path (credential)".
func (u upstreams) received(t *testing.T) []string {
	t.Helper()
	var out []string
	for name, g := range u.goServers() {
		for _, r := range g.Requests() {
			p := r.Path
			if r.Query != "" {
				p += "?" + r.Query
			}
			out = append(out, fmt.Sprintf("%s %s %s (credential %v)", name, r.Method, p, r.Authorization() == "Bearer "+harness.UpstreamSecret))
		}
	}
	reqs, err := u.s.TSServer.HTTPRequests()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reqs {
		out = append(out, fmt.Sprintf("ts %s %s (credential %v)", r.Method, r.Path, r.Credential))
	}
	slices.Sort(out)
	return out
}

// decisionsBetween is the ext_authz decisions recorded in [from, to] in
// the embedded audit store (decisions-*.jsonl), after draining it.
func decisionsBetween(t *testing.T, s *harness.Stack, from, to time.Time) []audit.Decision {
	t.Helper()
	if err := s.Gateway.Audit.Drain(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	var out []audit.Decision
	for _, line := range auditLines(t, s, "decisions-") {
		var d audit.Decision
		if err := json.Unmarshal(line, &d); err != nil {
			t.Fatalf("audit decision %s: %v", line, err)
		}
		if !d.Time.Before(from) && !d.Time.After(to) {
			out = append(out, d)
		}
	}
	return out
}

// requestEvents is every access request transition in the audit store.
func requestEvents(t *testing.T, s *harness.Stack) []audit.RequestEvent {
	t.Helper()
	if err := s.Gateway.Audit.Drain(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	var out []audit.RequestEvent
	for _, line := range auditLines(t, s, "requests-") {
		var e audit.RequestEvent
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit request event %s: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

func auditLines(t *testing.T, s *harness.Stack, prefix string) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(s.Config.Audit.Embedded.Dir, prefix+"*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if len(bytes.TrimSpace(line)) > 0 {
				out = append(out, line)
			}
		}
	}
	return out
}

// eventsOf is every audit event (the masked MCP messages ext_proc
// recorded, events-*.jsonl) of principal.
func eventsOf(t *testing.T, s *harness.Stack, principal string) []audit.Event {
	t.Helper()
	if err := s.Gateway.Audit.Drain(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, line := range auditLines(t, s, "events-") {
		var e audit.Event
		if err := json.Unmarshal(line, &e); err != nil {
			t.Fatalf("audit event: %v", err)
		}
		if e.Principal == principal {
			out = append(out, e)
		}
	}
	return out
}

// eventsUntil polls eventsOf until ok holds (ext_proc records an exchange
// as its stream ends, a moment after the agent has the answer) or 5 s pass.
func eventsUntil(t *testing.T, s *harness.Stack, principal string, ok func([]audit.Event) bool) []audit.Event {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		evs := eventsOf(t, s, principal)
		if ok(evs) || time.Now().After(deadline) {
			return evs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func outcomes(ds []audit.Decision) []string {
	var out []string
	for _, d := range ds {
		out = append(out, fmt.Sprintf("%s(%s %s id=%s status=%d: %s)", d.Outcome, d.Method, d.Tool, d.JSONRPCID, d.Status, d.Reason))
	}
	return out
}

// hasSecret says whether b holds any of the Go server's fake secrets.
func hasSecret(b []byte) bool {
	for _, s := range peers.FakeSecrets {
		if bytes.Contains(b, []byte(s)) {
			return true
		}
	}
	return false
}
