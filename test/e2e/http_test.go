package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
	"github.com/airlock-mcp/airlock/test/peers"
)

const initBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e2e","version":"1"}}}`

func post(t *testing.T, url, tok string, headers map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxT(t, 30*time.Second), "POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// No token: 401 with a challenge pointing at the Protected Resource
// Metadata, which the client can fetch through the gateway and which names
// the issuer to ask.
func TestNoTokenChallengeAndMetadata(t *testing.T) {
	resp, _ := post(t, stack.TargetURL("github"), "", nil, initBody)
	if resp.StatusCode != 401 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	m := regexp.MustCompile(`resource_metadata="([^"]+)"`).FindStringSubmatch(resp.Header.Get("WWW-Authenticate"))
	if m == nil {
		t.Fatalf("WWW-Authenticate %q has no resource_metadata", resp.Header.Get("WWW-Authenticate"))
	}
	if !strings.HasPrefix(m[1], stack.BaseURL+"/.well-known/oauth-protected-resource/") {
		t.Errorf("resource_metadata %s is not on the gateway", m[1])
	}
	mr, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	defer mr.Body.Close()
	var prm struct {
		Resource             string   `json:"resource"`
		AuthorizationServers []string `json:"authorization_servers"`
		ScopesSupported      []string `json:"scopes_supported"`
	}
	if err := json.NewDecoder(mr.Body).Decode(&prm); err != nil || mr.StatusCode != 200 {
		t.Fatalf("metadata: %d %v", mr.StatusCode, err)
	}
	if prm.Resource != stack.TargetURL("github") || len(prm.AuthorizationServers) == 0 || prm.AuthorizationServers[0] != stack.Issuer.URL() || strings.Join(prm.ScopesSupported, " ") != "mcp.read" {
		t.Errorf("metadata %+v", prm)
	}

	// The TypeScript SDK client sees the same 401 and challenge.
	res, err := peers.RunTSClient(ctxT(t, 60*time.Second), stack.TargetURL("github"), "", []peers.Step{peers.ListTools()})
	if err != nil {
		t.Fatal(err)
	}
	if e := res[0].Error; res[0].OK || e == nil || e.HTTP == nil || e.HTTP.Status != 401 || !strings.Contains(e.HTTP.WWWAuthenticate, "resource_metadata=") {
		t.Fatalf("TS client without token: %v", res)
	}
}

func TestExpiredTokenIs401(t *testing.T) {
	tok, err := stack.Token("00u-alice", "github", func(tk *oidcissuer.Token) {
		tk.IssuedAt = time.Now().Add(-2 * time.Hour)
		tk.TTL = time.Hour
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, body := post(t, stack.TargetURL("github"), tok, nil, initBody)
	if resp.StatusCode != 401 || !strings.Contains(resp.Header.Get("WWW-Authenticate"), `error="invalid_token"`) || !strings.Contains(string(body), "expired") {
		t.Fatalf("status %d, challenge %q, body %s", resp.StatusCode, resp.Header.Get("WWW-Authenticate"), body)
	}
}

// 2026-07-28 requires Mcp-Method / Mcp-Name to match the body.
func TestHeaderBodyMismatchIs400(t *testing.T) {
	tok := token(t, "00u-alice", "github")
	body := `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"delete_repository","arguments":{"repo":"a/b"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	resp, b := post(t, stack.TargetURL("github"), tok, map[string]string{
		"Mcp-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo",
	}, body)
	var e struct {
		ID    int                `json:"id"`
		Error struct{ Code int } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	if resp.StatusCode != 400 || e.Error.Code != -32020 || e.ID != 5 {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
}

// A body over the limit never reaches airlock: the data path answers 413.
func TestBodyOverLimitIs413(t *testing.T) {
	tok := token(t, "00u-alice", "github")
	big := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("a", 2<<20) + `"}}}`
	resp, _ := post(t, stack.TargetURL("github"), tok, nil, big)
	if resp.StatusCode != 413 {
		t.Fatalf("status %d, want 413", resp.StatusCode)
	}
}

// A tool that streams progress over SSE: the events reach the client one
// by one as the server writes them, not all at the end.
func TestSSEStreamsEventByEvent(t *testing.T) {
	tok := token(t, "00u-alice", "github")
	ctx := ctxT(t, 30*time.Second)
	// A session first (the Go server is stateful).
	initReq, _ := http.NewRequestWithContext(ctx, "POST", stack.TargetURL("github"), strings.NewReader(initBody))
	initReq.Header.Set("Content-Type", "application/json")
	initReq.Header.Set("Accept", "application/json, text/event-stream")
	initReq.Header.Set("Authorization", "Bearer "+tok)
	ir, err := http.DefaultClient.Do(initReq)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, ir.Body)
	ir.Body.Close()
	sid := ir.Header.Get("Mcp-Session-Id")
	if sid == "" {
		t.Fatalf("no session id (status %d)", ir.StatusCode)
	}
	hdr := map[string]string{"Mcp-Session-Id": sid, "Mcp-Protocol-Version": "2025-11-25"}
	if r, b := post(t, stack.TargetURL("github"), tok, hdr, `{"jsonrpc":"2.0","method":"notifications/initialized"}`); r.StatusCode != 202 {
		t.Fatalf("initialized: %d %s", r.StatusCode, b)
	}

	const steps, delay = 4, 300 * time.Millisecond
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"count_slowly","arguments":{"count":4,"delay_ms":300},"_meta":{"progressToken":"p1"}}}`
	req, _ := http.NewRequestWithContext(ctx, "POST", stack.TargetURL("github"), strings.NewReader(call))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", "Bearer "+tok)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); resp.StatusCode != 200 || !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("status %d content-type %q", resp.StatusCode, ct)
	}
	var arrivals []time.Time
	var events []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "data:") {
			arrivals = append(arrivals, time.Now())
			events = append(events, strings.TrimSpace(strings.TrimPrefix(line, "data:")))
		}
	}
	var progress int
	for _, e := range events {
		if strings.Contains(e, `"notifications/progress"`) {
			progress++
		}
	}
	if progress != steps || !strings.Contains(events[len(events)-1], `"result"`) {
		t.Fatalf("want %d progress events then the result, got %q", steps, events)
	}
	// If the data path buffered the stream, every event would arrive at
	// once at the end; streamed, the first progress event arrives about
	// (steps-1) delays before the result.
	if spread := arrivals[len(arrivals)-1].Sub(arrivals[0]); spread < (steps-1)*delay/2 {
		t.Errorf("events arrived within %v of each other: the stream was buffered", spread)
	}
	if !bytes.Contains([]byte(events[len(events)-1]), []byte("1 2 3 4")) {
		t.Errorf("result %s", events[len(events)-1])
	}
}
