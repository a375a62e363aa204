package secretscan

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/airlock-mcp/airlock/extproc"
	"github.com/airlock-mcp/airlock/internal/mask"
)

// doc is one corpus document: what a tool (read_file, run_command,
// kubectl, docker, a cloud CLI) returned.
type doc struct {
	name string // file name under testdata/<dir>
	text string
}

func loadCorpus(t *testing.T, dir string) []doc {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join("testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	var docs []doc
	for _, e := range entries {
		if e.IsDir() || e.Name() == "README.md" {
			continue
		}
		b, err := os.ReadFile(filepath.Join("testdata", dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, doc{name: e.Name(), text: string(b)})
	}
	if len(docs) == 0 {
		t.Fatalf("testdata/%s is empty", dir)
	}
	return docs
}

// The three ways a tool result reaches the agent.
const (
	viaText       = "text"              // result.content[0].text, application/json
	viaStructured = "structuredContent" // result.structuredContent, application/json
	viaSSE        = "sse"               // the text delivery as an SSE event, text/event-stream
)

var deliveries = []string{viaText, viaStructured, viaSSE}

// marshal encodes as an MCP server written in JavaScript would
// (JSON.stringify): no HTML escaping of <, > and &.
func marshal(v any) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

type textContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type toolResult struct {
	Content           []textContent `json:"content"`
	StructuredContent any           `json:"structuredContent,omitempty"`
	IsError           bool          `json:"isError"`
}

type response struct {
	JSONRPC string     `json:"jsonrpc"`
	ID      int        `json:"id"`
	Result  toolResult `json:"result"`
}

// structured is the document as a tool with an outputSchema would return
// it: JSON documents as themselves (an array under "items", since
// structuredContent is an object), KEY=VALUE documents (.env files, env
// dumps) as an object of their variables, anything else as a file read
// result {"path", "content"}.
func structured(d doc) any {
	var v any
	if err := json.Unmarshal([]byte(d.text), &v); err == nil {
		if _, ok := v.(map[string]any); ok {
			return v
		}
		return map[string]any{"items": v}
	}
	if vars, ok := envVars(d.text); ok {
		return map[string]any{"path": d.name, "variables": vars}
	}
	return map[string]any{"path": d.name, "content": d.text}
}

// envVars parses KEY=VALUE lines (comments and blank lines aside); ok
// only if every other line is one.
func envVars(text string) (map[string]string, bool) {
	vars := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t\"'") {
			return nil, false
		}
		vars[k] = v
	}
	return vars, len(vars) > 0
}

// wire is the response body a server sends for d delivered via how.
func wire(d doc, id int, how string) []byte {
	switch how {
	case viaStructured:
		return marshal(response{JSONRPC: "2.0", ID: id, Result: toolResult{
			Content:           []textContent{{Type: "text", Text: "Read " + d.name + " (structured result)."}},
			StructuredContent: structured(d),
		}})
	case viaSSE:
		return []byte(fmt.Sprintf("event: message\nid: %d\ndata: %s\n\n", id, wire(d, id, viaText)))
	default:
		return marshal(response{JSONRPC: "2.0", ID: id, Result: toolResult{
			Content: []textContent{{Type: "text", Text: d.text}},
		}})
	}
}

// sseChunk is how the SSE body is cut when fed to the maskers: small and
// odd, so events and secrets straddle chunks.
const sseChunk = 61

var defaultProfile = func() *mask.Profile {
	set, err := mask.NewSet(nil)
	if err != nil {
		panic(err)
	}
	p, err := set.Get("default")
	if err != nil {
		panic(err)
	}
	return p
}()

// maskEngine masks a delivery with the engine, as ext_proc calls it:
// MaskJSON for a JSON body, the SSE masker for an event stream.
// The counts say what was masked (type → number).
func maskEngine(body []byte, how string) ([]byte, mask.Counts, error) {
	if how != viaSSE {
		return defaultProfile.MaskJSON(body)
	}
	m := mask.NewSSEMasker(defaultProfile, 1<<20)
	var out []byte
	for len(body) > 0 {
		n := min(sseChunk, len(body))
		chunk, err := m.Write(body[:n])
		if err != nil {
			return nil, nil, err
		}
		out = append(out, chunk...)
		body = body[n:]
	}
	tail, err := m.Flush()
	return append(out, tail...), m.Counts(), err
}

// maskExtproc plays Envoy's side of one exchange against an ext_proc
// Processor with the built-in profiles (no authz metadata: the default
// one): request headers and body, response headers, then the response
// body — in one BUFFERED message for JSON, in STREAMED chunks for SSE —
// and returns the body the agent would receive.
func maskExtproc(t *testing.T, body []byte, how string) []byte {
	t.Helper()
	set, err := mask.NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	s := extproc.New(extproc.Options{Profiles: set}).NewStream()
	defer s.Close()
	ct, mode := "application/json", procmodev3.ProcessingMode_BUFFERED
	if how == viaSSE {
		ct, mode = "text/event-stream", procmodev3.ProcessingMode_STREAMED
	}
	handle := func(req *extprocv3.ProcessingRequest) []*extprocv3.ProcessingResponse {
		t.Helper()
		rs, err := s.Handle(req)
		if err != nil {
			t.Fatalf("ext_proc: %v", err)
		}
		for _, r := range rs {
			if r.GetImmediateResponse() != nil {
				t.Fatalf("ext_proc refused the response (status %d)", r.GetImmediateResponse().GetStatus().GetCode())
			}
		}
		return rs
	}
	headers := func(kv ...string) *extprocv3.HttpHeaders {
		h := &corev3.HeaderMap{}
		for i := 0; i < len(kv); i += 2 {
			h.Headers = append(h.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
		}
		return &extprocv3.HttpHeaders{Headers: h}
	}
	handle(&extprocv3.ProcessingRequest{
		ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: procmodev3.ProcessingMode_BUFFERED, ResponseBodyMode: mode},
		Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: headers(
			":method", "POST", ":path", "/mcp", "content-type", "application/json")},
	})
	handle(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
		Body:        []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"x"}}}`),
		EndOfStream: true,
	}}})
	handle(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(
		":status", "200", "content-type", ct)}})
	chunks := [][]byte{body}
	if how == viaSSE {
		chunks = nil
		for b := body; len(b) > 0; b = b[min(sseChunk, len(b)):] {
			chunks = append(chunks, b[:min(sseChunk, len(b))])
		}
	}
	var out []byte
	for i, c := range chunks {
		rs := handle(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
			Body: c, EndOfStream: i == len(chunks)-1,
		}}})
		for _, r := range rs {
			bm := r.GetResponseBody().GetResponse().GetBodyMutation()
			switch {
			case bm == nil:
				out = append(out, c...) // the chunk passes as it came
			case bm.GetClearBody():
			default:
				out = append(out, bm.GetBody()...)
			}
		}
	}
	return out
}

// forms are the spellings under which s could appear in a masked body:
// as it is, and JSON-escaped (with and without HTML escaping).
func forms(s string) []string {
	fs := []string{s}
	add := func(f string) {
		for _, g := range fs {
			if g == f {
				return
			}
		}
		fs = append(fs, f)
	}
	q := string(marshal(s))
	add(q[1 : len(q)-1])
	h, _ := json.Marshal(s)
	add(string(h[1 : len(h)-1]))
	// A secret gitleaks found in the wire bytes may itself be escaped.
	var u string
	if json.Unmarshal([]byte(`"`+s+`"`), &u) == nil {
		add(u)
	}
	return fs
}

// leaks reports whether secret appears in out in any of its forms, whole
// or in part: a mask that covers only some of a secret leaves the rest
// readable, so any run of half its length (at least partMin bytes) left
// in the output counts too.
func leaks(out []byte, secret string) bool {
	for _, f := range forms(secret) {
		w := max(partMin, (len(f)+1)/2)
		if len(f) <= w {
			if bytes.Contains(out, []byte(f)) {
				return true
			}
			continue
		}
		for i := 0; i+w <= len(f); i++ {
			if bytes.Contains(out, []byte(f[i:i+w])) {
				return true
			}
		}
	}
	return false
}

// partMin is the shortest part of a secret leaks looks for: shorter runs
// (a "user:" or a "ghp_" prefix) say nothing about the secret.
const partMin = 12

// redact names a secret in test output without printing it.
func redact(s string) string {
	if len(s) <= 8 {
		return fmt.Sprintf("%q… (%d chars)", s[:min(2, len(s))], len(s))
	}
	return fmt.Sprintf("%q… (%d chars)", s[:4], len(s))
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
