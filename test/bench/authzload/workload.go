package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync/atomic"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// Workload is a pool of pre-encoded CheckRequests, each with the answer it
// must get. Requests are encoded once so the driver spends its share of
// the machine's CPU on sending, not on building messages.
//
// With Fresh set, every request sent is new: its JSON-RPC id, Envoy
// request id and a cursor in the tool arguments are rewritten in place
// from a counter (fixed-width digits, so no length in the encoding
// changes). A cache keyed by the call (airlock's decision cache) then
// never sees the same call twice, as with agents whose arguments vary.
// Without it the pool is replayed as is, and after the first pass every
// call is a repeat.
type Workload struct {
	Items []Item
	Fresh bool
	seq   atomic.Int64
}

// Item is one request of the pool.
type Item struct {
	Raw     []byte // the encoded envoy.service.auth.v3.CheckRequest
	Subject string // the token's sub: the x-airlock-principal an allow must carry
	Tool    string
	digits  []span // where Fresh writes the counter
}

// span is a run of decimal digits inside Raw.
type span struct{ off, width int }

// encode returns the bytes to send for it: Raw itself, or with Fresh a
// copy in buf with new values.
func (w *Workload) encode(it *Item, buf []byte) []byte {
	if !w.Fresh {
		return it.Raw
	}
	buf = append(buf[:0], it.Raw...)
	n := w.seq.Add(1)
	for _, s := range it.digits {
		v := n
		for i := s.off + s.width - 1; i >= s.off; i-- {
			buf[i] = byte('0' + v%10)
			v /= 10
		}
	}
	return buf
}

// Shape says what the requests look like: one gateway route of one target.
type Shape struct {
	Host     string // :authority Envoy sees, e.g. gw.bench
	Path     string // the target's MCP endpoint, e.g. /mcp/github
	Target   string // context_extensions airlock_target
	Requests int    // size of the pool (requests are reused round robin)
	Fresh    bool   // see Workload.Fresh
}

// benchTools are tools/call requests a GitHub MCP server answers, none of
// which the default policy holds for approval, with realistic arguments.
var benchTools = []struct{ name, args string }{
	{"search_issues", `{"owner":"acme","repo":"payments-%d","query":"is:open label:bug sort:updated-desc","perPage":20}`},
	{"get_issue", `{"owner":"acme","repo":"payments-%d","issue_number":4182}`},
	{"list_pull_requests", `{"owner":"acme","repo":"payments-%d","state":"open","base":"main","perPage":30}`},
	{"get_file_contents", `{"owner":"acme","repo":"payments-%d","path":"internal/ledger/reconcile.go","ref":"main"}`},
	{"create_issue", `{"owner":"acme","repo":"payments-%d","title":"Flaky test in reconcile","body":"TestReconcileRetries fails about 1 run in 50 on CI; see run 88213.","labels":["bug","flaky"]}`},
	{"add_issue_comment", `{"owner":"acme","repo":"payments-%d","issue_number":4182,"body":"Reproduced locally with -count=200; the retry budget is shared across subtests."}`},
	{"list_commits", `{"owner":"acme","repo":"payments-%d","sha":"main","perPage":10}`},
	{"search_code", `{"query":"org:acme repo:acme/payments-%d ReconcileRetries language:go"}`},
}

// UserToken is one signed token of the pool and its subject.
type UserToken struct {
	Token   string
	Subject string
}

// MintUsers mints n distinct Okta-shaped RS256 access tokens for resource:
// sub is the login, uid the Okta user id, cid one of a few agent clients,
// scp includes the target's required scope.
func MintUsers(iss *oidcissuer.Issuer, n int, resource, scope string) ([]UserToken, error) {
	if n < 1 {
		return nil, fmt.Errorf("users must be at least 1, got %d", n)
	}
	users := make([]UserToken, n)
	for i := range users {
		sub := fmt.Sprintf("user%03d@acme.example", i)
		tok, err := iss.Mint(oidcissuer.Token{
			Subject:  sub,
			User:     fmt.Sprintf("00u%017x", 0x5eed0000+i),
			ClientID: fmt.Sprintf("0oa%017x", 0xa9e0+i%4),
			Scopes:   []string{scope, "openid", "offline_access"},
			Groups:   []string{"Everyone", "engineering", fmt.Sprintf("team-%d", i%8)},
			Audience: []string{resource},
		})
		if err != nil {
			return nil, fmt.Errorf("mint token %d: %w", i, err)
		}
		users[i] = UserToken{Token: tok, Subject: sub}
	}
	return users, nil
}

// TokenSubject reads the sub claim of a JWT without verifying it (the
// target verifies; the driver only needs to know which principal an allow
// names). Errors never include the token.
func TokenSubject(tok string) (string, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", fmt.Errorf("the token is not a compact JWS (%d parts, want 3)", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", fmt.Errorf("the token's payload is not base64url: %w", err)
	}
	var c struct {
		Sub string `json:"sub"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return "", fmt.Errorf("the token's payload is not a JSON object: %w", err)
	}
	if c.Sub == "" {
		return "", errors.New("the token has no sub claim")
	}
	return c.Sub, nil
}

// NewWorkload builds shape.Requests CheckRequests cycling through users and
// tools, each with its own request id and JSON-RPC id.
func NewWorkload(users []UserToken, shape Shape) (*Workload, error) {
	if len(users) == 0 {
		return nil, errors.New("a workload needs at least one token")
	}
	if shape.Requests < 1 {
		return nil, fmt.Errorf("requests must be at least 1, got %d", shape.Requests)
	}
	w := &Workload{Items: make([]Item, shape.Requests), Fresh: shape.Fresh}
	for i := range w.Items {
		u := users[i%len(users)]
		tool := benchTools[i%len(benchTools)]
		args := fmt.Sprintf(tool.args[:len(tool.args)-1]+`,"after":"%s"}`, i%50, cursor(i))
		req := EnvoyCheckRequest(shape, i, u.Token, ToolCall(idBase+i, tool.name, args))
		raw, err := proto.Marshal(req)
		if err != nil {
			return nil, fmt.Errorf("encode request %d: %w", i, err)
		}
		it := Item{Raw: raw, Subject: u.Subject, Tool: tool.name}
		// The fields Fresh rewrites: the last 9 digits of the JSON-RPC id
		// (in raw_body), the cursor's digits, and the request id's last
		// 12 characters (in http.id and the x-request-id header).
		for _, m := range []struct {
			text       string
			from, wide int
		}{
			{fmt.Sprintf(`"id":%d`, idBase+i), len(`"id":1`), 9},
			{`"after":"` + cursor(i) + `"`, len(`"after":"c`), 11},
			{requestID(i), len(requestID(i)) - 12, 12},
		} {
			found := 0
			for off := 0; ; {
				j := bytes.Index(raw[off:], []byte(m.text))
				if j < 0 {
					break
				}
				it.digits = append(it.digits, span{off + j + m.from, m.wide})
				off += j + len(m.text)
				found++
			}
			if found == 0 {
				return nil, fmt.Errorf("request %d: %q not found in its encoding", i, m.text)
			}
		}
		w.Items[i] = it
	}
	return w, nil
}

// idBase keeps JSON-RPC ids at 10 digits without a leading zero.
const idBase = 1_000_000_000

// cursor is a pagination cursor argument, fixed width.
func cursor(n int) string { return fmt.Sprintf("c%011d", n) }

// requestID is Envoy's x-request-id (a UUID), fixed width.
func requestID(n int) string { return fmt.Sprintf("6f1e0c2a-4b8e-4e1a-9a53-%012d", n) }

// ToolCall is a JSON-RPC tools/call request body.
func ToolCall(id int, name, args string) string {
	return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":%s,"_meta":{"progressToken":%d}}}`, id, name, args, id)
}

// sessionID is the request's Mcp-Session-Id, fixed width: each user has
// its own sessions (ext_authz binds a session id to the principal that
// first used it and refuses it to others).
func sessionID(token string, n int) string {
	h := fnv.New32a()
	h.Write([]byte(token))
	return fmt.Sprintf("8d3c2a91f0e1%06x%06d", h.Sum32()&0xffffff, n%997)
}

// EnvoyCheckRequest is the CheckRequest Envoy's ext_authz filter sends for
// an MCP POST on airlock's route (attribute_context.proto): lower-case
// headers with pseudo-headers, the body as raw_body (pack_as_bytes, as
// airlock's Envoy config sets it), x-envoy-auth-partial-body, the route's
// context_extensions, source and destination peers.
func EnvoyCheckRequest(s Shape, n int, token, body string) *authv3.CheckRequest {
	reqID := requestID(n)
	h := map[string]string{
		":authority":                s.Host,
		":method":                   "POST",
		":path":                     s.Path,
		":scheme":                   "https",
		"authorization":             "Bearer " + token,
		"accept":                    "application/json, text/event-stream",
		"content-type":              "application/json",
		"content-length":            strconv.Itoa(len(body)),
		"mcp-protocol-version":      "2025-06-18",
		"mcp-session-id":            sessionID(token, n),
		"user-agent":                "claude-code/2.1.3 (mcp-client)",
		"x-forwarded-for":           "10.20.3.41",
		"x-forwarded-proto":         "https",
		"x-request-id":              reqID,
		"x-envoy-auth-partial-body": "false",
	}
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: socketAddress("10.20.3.41", 40000+uint32(n%20000))},
		Destination: &authv3.AttributeContext_Peer{Address: socketAddress("10.20.0.5", 8443)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id: reqID, Method: "POST", Path: s.Path, Host: s.Host, Scheme: "https",
			Protocol: "HTTP/1.1", Headers: h, Size: int64(len(body)), RawBody: []byte(body),
		}},
		ContextExtensions: map[string]string{"airlock_target": s.Target},
	}}
}

func socketAddress(ip string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}
