package e2e

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// The attack suite: an attacker holds a valid LOW-privilege agent token
// (scope mcp.read, no approver group) and talks to the gateway over the
// data path fed over ADS, to real MCP servers: the TypeScript SDK server
// built with createMcpExpressApp() (it decodes bodies by their charset
// and Content-Encoding) and the Go SDK servers. Every refused attack must
// (a) get the answer the design says, with a JSON-RPC error carrying the
// request's id where the body could be read, (b) leave every upstream
// untouched — no tool ran, no request (so no credential) arrived — and
// (c) be in the audit as a decision that is not "allow". The positive
// controls in the table prove the refusals are not vacuous.

// call is a tools/call body.
func call(id any, name string, args string) []byte {
	if args == "" {
		args = "{}"
	}
	idj, _ := json.Marshal(id)
	namej, _ := json.Marshal(name)
	return []byte(fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":%s,"arguments":%s}}`, idj, namej, args))
}

func gz(b []byte) []byte {
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	_, _ = zw.Write(b)
	_ = zw.Close()
	return out.Bytes()
}

func utf16le(s string) []byte {
	var out []byte
	for _, u := range utf16.Encode([]rune(s)) {
		out = append(out, byte(u), byte(u>>8))
	}
	return out
}

// utf7HiddenCall reads, as UTF-8, as a harmless notification with one
// string parameter; decoded as UTF-7 ("+ACI-" is a quote, "+ACIAfQAs-" is
// `"},`) it is a tools/call request (id 7) of delete_all, its second
// "method" and "params" keys winning in JSON.parse.
const utf7HiddenCall = `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"x+ACIAfQAs-+ACI-id+ACI-:7,+ACI-method+ACI-:+ACI-tools/call+ACI-,+ACI-params+ACI-:{+ACI-name+ACI-:+ACI-delete_all+ACI-,+ACI-arguments+ACI-:{},+ACI-q+ACI-:+ACI-"}}`

type tokenKind int

const (
	tokAgent           tokenKind = iota // aud = the target, scope mcp.read
	tokNone                             // no Authorization
	tokNoScope                          // aud = the target, scope openid only
	tokOtherTarget                      // aud = another target (github)
	tokIssuerAud                        // aud = the issuer-level audience only, scope openid
	tokIssuerAudScoped                  // aud = the issuer-level audience only, scope mcp.read
)

type attack struct {
	name   string
	target string
	method string // default POST
	// suffix is appended to the target's path ("/admin/secrets", "?x=1");
	// raw replaces the whole request target.
	suffix, raw string
	tok         tokenKind
	header      [][2]string // replaces the default header of the same name, or adds
	body        []byte
	chunked     bool // send the body chunked, without Content-Length
	// session: "own" opens a session as the attacker first and sends its
	// id; "other" opens it as another principal (the victim) and sends
	// that; "both" opens one of each and sends two Mcp-Session-Id headers,
	// the victim's first.
	session string
	expect
}

type expect struct {
	// status is the answers allowed; nil: any 4xx.
	status []int
	// errIDs must each get a JSON-RPC error (id as JSON text; "null" when
	// the id cannot be read); anyErr: some JSON-RPC error, any id.
	errIDs []string
	anyErr bool
	// allow marks a positive control: 200/202, ids get results, exactly
	// ran ran ("server:tool") and an allow decision is in the audit.
	allow bool
	ran   []string
	// outcomes the attempt's decisions may have (nil: anything but allow).
	outcomes []string
	// dataPath: the data path answers (404, 413) before airlock decides;
	// the audit may have no decision, but never an allow.
	dataPath bool
	// either: allowed or refused are both acceptable answers; check (and
	// the audit's having a decision) is what matters.
	either bool
	// check runs more assertions.
	check func(t *testing.T, s *harness.Stack, r *reply, sub string)
}

var (
	refused  = []string{"deny", "approval_required", "unauthenticated", "forbidden", "invalid", "error"}
	held     = []string{"approval_required"}
	invalid  = []string{"invalid"}
	denied   = []string{"deny", "invalid"}
	unauthed = []string{"unauthenticated"}
	forbid   = []string{"forbidden"}
)

func attacks() []attack {
	ct := func(v string) [2]string { return [2]string{"Content-Type", v} }
	return []attack{
		// --- positive controls ---
		{name: "control/echo", target: "tsstateless", body: call("c-1", "echo", `{"text":"hi"}`),
			expect: expect{allow: true, ran: []string{"ts:echo"}, errIDs: nil}},
		{name: "control/charset quoted UTF-8", target: "tsstateless", header: [][2]string{ct(`application/json; charset="UTF-8"`)},
			body: call("c-2", "echo", `{"text":"hi"}`), expect: expect{allow: true, ran: []string{"ts:echo"}}},
		{name: "control/content-encoding identity", target: "tsstateless", header: [][2]string{{"Content-Encoding", "identity"}},
			body: call("c-3", "echo", `{"text":"hi"}`), expect: expect{allow: true, ran: []string{"ts:echo"}}},
		{name: "control/completion of an allowed prompt", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":"c-4","method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"triage"},"argument":{"name":"topic","value":"a"}}}`),
			expect: expect{allow: true, ran: []string{"ts:completion:triage"}}},
		{name: "control/own session", target: "tsserver", session: "own", body: call("c-5", "echo", `{"text":"mine"}`),
			expect: expect{allow: true, ran: []string{"ts:echo"}}},
		{name: "control/body between Envoy's default 1 MiB buffer and max_request_bytes", target: "jsonapi",
			body: call("c-6", "echo", `{"text":"`+strings.Repeat("a", 2<<20)+`"}`), expect: expect{allow: true, ran: []string{"go(jsonapi):echo"}}},
		{name: "control/forged x-airlock headers are replaced", target: "tsstateless",
			header: [][2]string{{"X-Airlock-Principal", "00u-admin"}, {"X-Airlock-Grant", "grant-forged"}, {"X-Airlock-Client-Id", "0oa-admin"}},
			body:   call("c-7", "echo", `{"text":"hi"}`),
			expect: expect{allow: true, ran: []string{"ts:echo"}, check: func(t *testing.T, s *harness.Stack, _ *reply, sub string) {
				reqs, err := s.TSServer.HTTPRequests()
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range reqs {
					if r.Principal != sub {
						t.Errorf("the upstream got x-airlock-principal %q, want %q (forged header kept)", r.Principal, sub)
					}
				}
			}}},
		{name: "control/notifications/initialized", target: "tsstateless",
			body: []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), expect: expect{allow: true}},

		// --- 1. charset and encoding: one reading ---
		{name: "charset/utf-7 tool name +AGQ-elete_all", target: "tsstateless", header: [][2]string{ct("application/json; charset=utf-7")},
			body: call("a-1", "+AGQ-elete_all", ""), expect: expect{status: []int{415}, errIDs: []string{`"a-1"`}, outcomes: invalid}},
		{name: "charset/utf-7 quotes hide a tools/call in a notification", target: "tsstateless", header: [][2]string{ct("application/json; charset=utf-7")},
			body: []byte(utf7HiddenCall), expect: expect{status: []int{415}, anyErr: true, outcomes: invalid}},
		{name: "charset/UTF-7 upper case, quoted", target: "tsstateless", header: [][2]string{ct(`application/json; charset="UTF-7"`)},
			body: call("a-3", "+AGQ-elete_all", ""), expect: expect{status: []int{415}, errIDs: []string{`"a-3"`}, outcomes: invalid}},
		{name: "charset/utf-16le body", target: "tsstateless", header: [][2]string{ct("application/json; charset=utf-16le")},
			body: utf16le(string(call("a-4", "delete_all", ""))), expect: expect{status: []int{415}, anyErr: true, outcomes: invalid}},
		{name: "charset/latin1", target: "tsstateless", header: [][2]string{ct("application/json; charset=iso-8859-1")},
			body: call("a-5", "echo", `{"text":"caf\u00e9"}`), expect: expect{status: []int{415}, errIDs: []string{`"a-5"`}, outcomes: invalid}},
		{name: "charset/utf-8 with another parameter", target: "tsstateless", header: [][2]string{ct("application/json; charset=utf-8; x=y")},
			body: call("a-6", "delete_all", ""), expect: expect{status: []int{415}, errIDs: []string{`"a-6"`}, outcomes: invalid}},
		{name: "charset/media-type parameter without charset", target: "tsstateless", header: [][2]string{ct("application/json; x=y")},
			body: call("a-7", "echo", ""), expect: expect{status: []int{415}, errIDs: []string{`"a-7"`}, outcomes: invalid}},
		{name: "encoding/gzip request body", target: "tsstateless", header: [][2]string{{"Content-Encoding", "gzip"}},
			body: gz(call("a-8", "delete_all", "")), expect: expect{status: []int{415}, anyErr: true, outcomes: invalid}},
		{name: "encoding/deflate label on a plain body", target: "tsstateless", header: [][2]string{{"Content-Encoding", "deflate"}},
			body: call("a-9", "echo", ""), expect: expect{status: []int{415}, errIDs: []string{`"a-9"`}, outcomes: invalid}},
		{name: "charset/utf-7 quotes on a stateful session", target: "tsserver", session: "own", header: [][2]string{ct("application/json; charset=utf-7")},
			body: []byte(utf7HiddenCall), expect: expect{status: []int{415}, anyErr: true, outcomes: invalid}},
		{name: "charset/two Content-Type headers, utf-7 first", target: "tsstateless",
			header: [][2]string{ct("application/json; charset=utf-7"), {"Content-Type", "application/json"}},
			body:   call("a-12", "+AGQ-elete_all", ""), expect: expect{status: []int{400, 415}, outcomes: invalid}},
		{name: "encoding/upper-case GZIP", target: "tsstateless", header: [][2]string{{"Content-Encoding", "GZIP"}},
			body: gz(call("a-13", "delete_all", "")), expect: expect{status: []int{415}, anyErr: true, outcomes: invalid}},
		{name: "encoding/gzip, identity list", target: "tsstateless", header: [][2]string{{"Content-Encoding", "identity, gzip"}},
			body: gz(call("a-10", "delete_all", "")), expect: expect{status: []int{415}, anyErr: true, outcomes: invalid}},

		// --- what held and must keep holding ---
		{name: "regression/BOM", target: "tsstateless", body: append([]byte("\xef\xbb\xbf"), call("r-1", "echo", "")...),
			expect: expect{status: []int{400}, anyErr: true, outcomes: invalid}},
		{name: "regression/duplicate name key", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":"r-2","method":"tools/call","params":{"name":"echo","name":"delete_all","arguments":{}}}`),
			expect: expect{status: []int{400}, anyErr: true, outcomes: invalid}},
		{name: "regression/duplicate name key, escaped", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":"r-3","method":"tools/call","params":{"name":"echo","n\u0061me":"delete_all","arguments":{}}}`),
			expect: expect{status: []int{400}, anyErr: true, outcomes: invalid}},
		{name: "regression/duplicate method key", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":"r-4","method":"ping","method":"tools/call","params":{"name":"delete_all","arguments":{}}}`),
			expect: expect{status: []int{400}, anyErr: true, outcomes: invalid}},
		{name: "regression/escaped name is read as the server reads it", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":"r-5","method":"tools/call","params":{"name":"\u0064elete_all","arguments":{}}}`),
			expect: expect{errIDs: []string{`"r-5"`}, outcomes: held}},
		{name: "regression/Mcp-Method header mismatch", target: "tsstateless",
			header: [][2]string{{"Mcp-Protocol-Version", "2026-07-28"}, {"Mcp-Method", "tools/call"}, {"Mcp-Name", "echo"}},
			body:   []byte(`{"jsonrpc":"2.0","id":"r-6","method":"tools/call","params":{"name":"delete_all","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`),
			expect: expect{status: []int{400}, errIDs: []string{`"r-6"`}, outcomes: invalid}},
		{name: "regression/get-env denied", target: "tsstateless", body: call("r-7", "get-env", ""),
			expect: expect{status: []int{403}, errIDs: []string{`"r-7"`}, outcomes: []string{"deny"}}},
		{name: "regression/delete_all held", target: "tsstateless", body: call("r-8", "delete_all", ""),
			expect: expect{errIDs: []string{`"r-8"`}, outcomes: held}},

		// --- 8. destructive verbs in any naming style are held ---
		{name: "names/DELETE_all", target: "tsstateless", body: call("n-1", "DELETE_all", ""), expect: expect{errIDs: []string{`"n-1"`}, outcomes: held}},
		{name: "names/removeUser", target: "tsstateless", body: call("n-2", "removeUser", ""), expect: expect{errIDs: []string{`"n-2"`}, outcomes: held}},
		{name: "names/repoDelete", target: "tsstateless", body: call("n-3", "repoDelete", ""), expect: expect{errIDs: []string{`"n-3"`}, outcomes: held}},
		{name: "names/repo-delete", target: "tsstateless", body: call("n-4", "repo-delete", ""), expect: expect{errIDs: []string{`"n-4"`}, outcomes: held}},
		{name: "names/repo.delete", target: "tsstateless", body: call("n-5", "repo.delete", ""), expect: expect{errIDs: []string{`"n-5"`}, outcomes: held}},
		// --- odd characters are denied ---
		{name: "names/zero-width space", target: "tsstateless", body: call("n-6", "echo\u200b", ""),
			expect: expect{status: []int{400, 403}, errIDs: []string{`"n-6"`}, outcomes: denied}},
		{name: "names/mixed script (Cyrillic o)", target: "tsstateless", body: call("n-7", "ech\u043e", ""),
			expect: expect{status: []int{400, 403}, errIDs: []string{`"n-7"`}, outcomes: denied}},
		{name: "names/bidi override", target: "tsstateless", body: call("n-8", "\u202eecho", ""),
			expect: expect{status: []int{400, 403}, errIDs: []string{`"n-8"`}, outcomes: denied}},

		// --- 9. notifications and completion ---
		{name: "notifications/unknown name", target: "tsstateless", body: []byte(`{"jsonrpc":"2.0","method":"notifications/foo"}`),
			expect: expect{status: []int{400, 403}, anyErr: true, outcomes: denied}},
		{name: "notifications/with an id", target: "tsstateless", body: []byte(`{"jsonrpc":"2.0","id":"m-2","method":"notifications/initialized"}`),
			expect: expect{status: []int{400}, errIDs: []string{`"m-2"`}, outcomes: invalid}},
		{name: "completion/of a denied prompt", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":"m-3","method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"secret_prompt"},"argument":{"name":"topic","value":"a"}}}`),
			expect: expect{status: []int{403}, errIDs: []string{`"m-3"`}, outcomes: []string{"deny"}}},
		{name: "regression/prompts/get of a denied prompt", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":"m-4","method":"prompts/get","params":{"name":"secret_prompt","arguments":{"topic":"a"}}}`),
			expect: expect{status: []int{403}, errIDs: []string{`"m-4"`}, outcomes: []string{"deny"}}},

		// --- 3. methods: GET is the stream, DELETE ends a session, nothing else ---
		{name: "method/GET with a body", target: "tsstateless", method: "GET", body: call("h-1", "delete_all", ""),
			expect: expect{status: []int{400, 405}, outcomes: invalid}},
		{name: "method/DELETE with a body", target: "tsstateless", method: "DELETE", body: call("h-2", "delete_all", ""),
			expect: expect{status: []int{400, 405}, outcomes: invalid}},
		{name: "method/DELETE with a body on a session", target: "tsserver", session: "own", method: "DELETE", body: call("h-3", "delete_all", ""),
			expect: expect{status: []int{400, 405}, outcomes: invalid}},
		{name: "method/X-HTTP-Method-Override", target: "tsstateless", header: [][2]string{{"X-HTTP-Method-Override", "DELETE"}},
			body: call("h-4", "echo", ""), expect: expect{status: []int{400, 405}, errIDs: []string{`"h-4"`}, outcomes: invalid}},
		{name: "method/X-Method-Override", target: "tsstateless", header: [][2]string{{"X-Method-Override", "GET"}},
			body: call("h-5", "echo", ""), expect: expect{status: []int{400, 405}, errIDs: []string{`"h-5"`}, outcomes: invalid}},
		{name: "method/DELETE without a session", target: "tsserver", method: "DELETE",
			expect: expect{status: []int{400, 405}, outcomes: refused}},
		{name: "method/OPTIONS never reaches the upstream", target: "tsserver", method: "OPTIONS",
			header: [][2]string{{"Origin", "http://127.0.0.1:1"}, {"Access-Control-Request-Method", "POST"}},
			expect: expect{either: true, dataPath: true, check: upstreamReceivedNothing}},
		{name: "method/HEAD", target: "tsserver", method: "HEAD",
			expect: expect{either: true, dataPath: true, check: upstreamReceivedNothing}},
		{name: "method/PUT", target: "tsstateless", method: "PUT", body: call("h-6", "delete_all", ""),
			expect: expect{status: []int{405}, outcomes: invalid}},
		{name: "method/PATCH", target: "tsstateless", method: "PATCH", body: call("h-7", "echo", ""),
			expect: expect{status: []int{405}, outcomes: invalid}},

		// --- 3. paths below the endpoint: Envoy's 404, the upstream never sees them ---
		{name: "path/GET admin/secrets", target: "tsserver", method: "GET", suffix: "/admin/secrets",
			expect: expect{status: []int{404}, dataPath: true}},
		{name: "path/DELETE repos/acme/prod", target: "tsserver", method: "DELETE", suffix: "/repos/acme/prod",
			expect: expect{status: []int{404}, dataPath: true}},
		{name: "path/POST admin/users/42/delete", target: "tsserver", suffix: "/admin/users/42/delete", body: call("p-3", "echo", ""),
			expect: expect{status: []int{404}, dataPath: true}},
		{name: "path/GET admin/secrets on the Go server", target: "github", method: "GET", suffix: "/admin/secrets",
			expect: expect{status: []int{404}, dataPath: true}},
		{name: "path/POST below the Go JSON server", target: "jsonapi", suffix: "/admin/users/42/delete", body: call("p-5", "echo", ""),
			expect: expect{status: []int{404}, dataPath: true}},
		{name: "path/encoded dot segment", target: "tsserver", raw: "/mcp/tsserver/%2e%2e/x", body: call("p-6", "echo", ""),
			expect: expect{status: []int{400, 404}, dataPath: true}},
		{name: "path/dot segment", target: "tsserver", raw: "/mcp/tsserver/../tsserver/x", body: call("p-7", "echo", ""),
			expect: expect{status: []int{400, 404}, dataPath: true}},
		{name: "path/doubled slash", target: "tsserver", raw: "/mcp/tsserver//x", body: call("p-8", "echo", ""),
			expect: expect{status: []int{400, 404}, dataPath: true}},
		{name: "path/encoded slash", target: "tsserver", raw: "/mcp/tsserver%2Fadmin", body: call("p-9", "echo", ""),
			expect: expect{status: []int{400, 404}, dataPath: true}},
		{name: "path/trailing slash with a held call", target: "tsstateless", suffix: "/", body: call("p-10", "delete_all", ""),
			expect: expect{dataPath: true}},
		{name: "path/other case", target: "tsstateless", raw: "/MCP/TSSTATELESS", body: call("p-11", "echo", ""),
			expect: expect{status: []int{404}, dataPath: true}},
		{name: "path/query string with a held call", target: "tsstateless", suffix: "?x=1", body: call("p-12", "delete_all", ""),
			expect: expect{dataPath: true, outcomes: refused}},

		// --- 5, 6, 9. who may call, and what a refusal tells ---
		{name: "auth/no token: 401 with the id, nothing about the configuration", target: "tsstateless", tok: tokNone, body: call("t-1", "echo", ""),
			expect: expect{status: []int{401}, errIDs: []string{`"t-1"`}, outcomes: unauthed, check: revealsNothing}},
		{name: "auth/token for another target: nothing about the configuration", target: "tsstateless", tok: tokOtherTarget, body: call("t-2", "echo", ""),
			expect: expect{status: []int{401}, errIDs: []string{`"t-2"`}, outcomes: unauthed, check: revealsNothing}},
		{name: "auth/insufficient scope carries the id", target: "tsstateless", tok: tokNoScope, body: call("t-3", "echo", ""),
			expect: expect{status: []int{403}, errIDs: []string{`"t-3"`}, outcomes: forbid}},
		{name: "auth/Origin denial carries the id", target: "tsstateless", header: [][2]string{{"Origin", "http://evil.example"}}, body: call("t-4", "echo", ""),
			expect: expect{status: []int{403}, errIDs: []string{`"t-4"`}, outcomes: forbid}},
		{name: "auth/issuer-level audience with only openid on a target without scopes", target: "noscope", tok: tokIssuerAud, body: call("t-5", "echo", ""),
			expect: expect{status: []int{401, 403}, errIDs: []string{`"t-5"`}, outcomes: []string{"unauthenticated", "forbidden"}}},
		{name: "auth/issuer-level audience with the target's scope on a target that does not opt in", target: "tsstateless", tok: tokIssuerAudScoped, body: call("t-7", "echo", ""),
			expect: expect{status: []int{401, 403}, errIDs: []string{`"t-7"`}, outcomes: []string{"unauthenticated", "forbidden"}}},
		{name: "control/target audience with only openid on a target without scopes", target: "noscope", tok: tokNoScope, body: call("t-6", "echo", `{"text":"x"}`),
			expect: expect{allow: true, ran: []string{"go(jsonapi):echo"}}},

		// --- 9. a session belongs to who opened it ---
		{name: "session/another principal's TypeScript session", target: "tsserver", session: "other", body: call("s-1", "echo", ""),
			expect: expect{status: []int{403, 404}, errIDs: []string{`"s-1"`}, outcomes: refused}},
		{name: "session/DELETE another principal's session", target: "tsserver", session: "other", method: "DELETE",
			expect: expect{status: []int{403, 404}, outcomes: refused}},
		{name: "session/GET another principal's stream", target: "tsserver", session: "other", method: "GET",
			header: [][2]string{{"Accept", "text/event-stream"}}, expect: expect{status: []int{403, 404}, outcomes: refused}},
		{name: "session/another principal's Go session", target: "github", session: "other", body: call("s-2", "echo", `{"text":"x"}`),
			expect: expect{status: []int{403, 404}, errIDs: []string{`"s-2"`}, outcomes: refused}},

		// The Go SDK acts on the first of two Mcp-Session-Id headers.
		{name: "session/two Mcp-Session-Id headers, the victim's first (Go)", target: "github", session: "both", body: call("s-5", "echo", `{"text":"x"}`),
			expect: expect{errIDs: []string{`"s-5"`}, outcomes: refused}},
		{name: "session/two Mcp-Session-Id headers, the victim's first (TypeScript)", target: "tsserver", session: "both", body: call("s-6", "echo", `{"text":"x"}`),
			expect: expect{errIDs: []string{`"s-6"`}, outcomes: refused}},

		// --- 2. batches: all or nothing, every message answered by its id ---
		{name: "control/batch of allowed messages (2025-03-26)", target: "jsonapi", header: [][2]string{{"Mcp-Protocol-Version", "2025-03-26"}},
			body:   []byte(`[{"jsonrpc":"2.0","id":"k-1","method":"ping"},{"jsonrpc":"2.0","id":"k-2","method":"tools/call","params":{"name":"echo","arguments":{"text":"b"}}}]`),
			expect: expect{allow: true, ran: []string{"go(jsonapi):echo"}, check: everyMessageDecided("ping", "tools/call")}},
		{name: "batch/an approval-gated call beside an allowed one", target: "tsstateless", header: [][2]string{{"Mcp-Protocol-Version", "2025-03-26"}},
			body:   []byte(`[{"jsonrpc":"2.0","id":"k-3","method":"tools/call","params":{"name":"echo","arguments":{"text":"b"}}},{"jsonrpc":"2.0","id":"k-4","method":"tools/call","params":{"name":"delete_all","arguments":{}}}]`),
			expect: expect{errIDs: []string{`"k-3"`, `"k-4"`}, outcomes: refused}},
		{name: "batch/a denied call behind a ping (no version header)", target: "tsstateless", header: [][2]string{{"Mcp-Protocol-Version", ""}},
			body:   []byte(`[{"jsonrpc":"2.0","id":"k-5","method":"ping"},{"jsonrpc":"2.0","id":"k-6","method":"tools/call","params":{"name":"get-env","arguments":{}}}]`),
			expect: expect{errIDs: []string{`"k-5"`, `"k-6"`}, outcomes: refused}},
		{name: "batch/in a version without batches", target: "jsonapi", header: [][2]string{{"Mcp-Protocol-Version", "2025-11-25"}},
			body:   []byte(`[{"jsonrpc":"2.0","id":"k-7","method":"ping"},{"jsonrpc":"2.0","id":"k-8","method":"tools/call","params":{"name":"echo","arguments":{"text":"b"}}}]`),
			expect: expect{status: []int{400}, anyErr: true, outcomes: invalid}},
		{name: "batch/nested", target: "jsonapi", header: [][2]string{{"Mcp-Protocol-Version", "2025-03-26"}},
			body:   []byte(`[[{"jsonrpc":"2.0","id":"k-9","method":"tools/call","params":{"name":"delete_repository","arguments":{"repo":"a/b"}}}]]`),
			expect: expect{status: []int{400}, anyErr: true, outcomes: invalid}},
		{name: "batch/empty", target: "jsonapi", header: [][2]string{{"Mcp-Protocol-Version", "2025-03-26"}},
			body: []byte(`[]`), expect: expect{status: []int{400}, anyErr: true, outcomes: invalid}},
		{name: "shape/null id on a held call", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":null,"method":"tools/call","params":{"name":"delete_all","arguments":{}}}`),
			expect: expect{outcomes: refused}},
		{name: "shape/object id on a held call", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":{"a":1},"method":"tools/call","params":{"name":"delete_all","arguments":{}}}`),
			expect: expect{outcomes: refused}},
		{name: "shape/a held call written as a notification", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"delete_all","arguments":{}}}`),
			expect: expect{outcomes: refused}},
		{name: "shape/params as an array", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":"k-11","method":"tools/call","params":["delete_all",{}]}`),
			expect: expect{status: []int{400}, errIDs: []string{`"k-11"`}, outcomes: invalid}},
		{name: "shape/tool name is not a string", target: "tsstateless",
			body:   []byte(`{"jsonrpc":"2.0","id":"k-10","method":"tools/call","params":{"name":["delete_all"],"arguments":{}}}`),
			expect: expect{status: []int{400}, errIDs: []string{`"k-10"`}, outcomes: invalid}},

		// --- no token passthrough, however it is sent ---
		{name: "passthrough/the agent's token in the query", target: "jsonapi", suffix: "?access_token={TOKEN}", body: call("q-1", "echo", `{"text":"x"}`),
			expect: expect{either: true, check: upstreamNeverSawToken}},
		{name: "passthrough/two Authorization headers", target: "jsonapi", header: [][2]string{{"Authorization", "Bearer {TOKEN}"}, {"Authorization", "Bearer forged-credential"}},
			body: call("q-2", "echo", `{"text":"x"}`), expect: expect{either: true, check: upstreamNeverSawToken}},

		// --- framing ---
		{name: "control/chunked body", target: "tsstateless", chunked: true, body: call("w-1", "echo", `{"text":"`+strings.Repeat("c", 3000)+`"}`),
			expect: expect{allow: true, ran: []string{"ts:echo"}}},
		{name: "framing/chunked held call", target: "tsstateless", chunked: true, body: call("w-2", "delete_all", `{"text":"`+strings.Repeat("c", 3000)+`"}`),
			expect: expect{errIDs: []string{`"w-2"`}, outcomes: held}},
		{name: "framing/chunked utf-7 name", target: "tsstateless", chunked: true, header: [][2]string{ct("application/json; charset=utf-7")},
			body: call("w-3", "+AGQ-elete_all", ""), expect: expect{status: []int{415}, errIDs: []string{`"w-3"`}, outcomes: invalid}},
		{name: "framing/chunked body over max_request_bytes", target: "tsstateless", chunked: true,
			body:   call("w-4", "echo", `{"text":"`+strings.Repeat("a", advMaxBody+(1<<20))+`"}`),
			expect: expect{status: []int{413}, errIDs: []string{`"w-4"`}, outcomes: invalid}},
		{name: "path/matrix parameter", target: "tsstateless", raw: "/mcp/tsstateless;x=1", body: call("p-13", "echo", ""),
			expect: expect{status: []int{400, 404}, dataPath: true}},

		// --- 9. bodies over the limit ---
		{name: "limit/body over max_request_bytes", target: "tsstateless",
			body:   call("l-1", "echo", `{"text":"`+strings.Repeat("a", advMaxBody+(1<<20))+`"}`),
			expect: expect{status: []int{413}, errIDs: []string{`"l-1"`}, outcomes: invalid}},
	}
}

// upstreamNeverSawToken: no Go server request carried the agent's token
// (in the path, the query or any header), and every Authorization it got
// is the gateway's credential.
func upstreamNeverSawToken(t *testing.T, s *harness.Stack, _ *reply, sub string) {
	t.Helper()
	tok := tokens[sub]
	for name, g := range (upstreams{s}).goServers() {
		for _, r := range g.Requests() {
			if strings.Contains(r.Path+"?"+r.Query, tok) {
				t.Errorf("the agent's token reached %s in the URL", name)
			}
			for h, vs := range r.Header {
				for _, v := range vs {
					if strings.Contains(v, tok) {
						t.Errorf("the agent's token reached %s in %s", name, h)
					}
					if strings.EqualFold(h, "Authorization") && v != "Bearer "+harness.UpstreamSecret {
						t.Errorf("%s got an Authorization that is not the gateway's credential (%.12s…)", name, v)
					}
				}
			}
		}
	}
}

// upstreamReceivedNothing: no upstream got any request for the row.
func upstreamReceivedNothing(t *testing.T, s *harness.Stack, r *reply, _ string) {
	t.Helper()
	if got := (upstreams{s}).received(t); len(got) > 0 {
		t.Errorf("the upstream received %q (answer %s)", got, r)
	}
}

// tokens is the agent token of each row's subject, for checks.
var tokens = map[string]string{}

// everyMessageDecided: the audit has an allow decision for each method
// of the batch (every message is in the decision log).
func everyMessageDecided(methods ...string) func(*testing.T, *harness.Stack, *reply, string) {
	return func(t *testing.T, s *harness.Stack, _ *reply, sub string) {
		t.Helper()
		var got []string
		for _, d := range decisionsBetween(t, s, time.Now().Add(-time.Minute), time.Now()) {
			if d.Principal == sub && d.Outcome == "allow" {
				got = append(got, d.Method)
			}
		}
		for _, m := range methods {
			if !slices.Contains(got, m) {
				t.Errorf("the decision log lacks the batch's %s (allowed: %q)", m, got)
			}
		}
	}
}

// revealsNothing: a 401 names neither the trusted issuers nor any
// audience other than the resource asked for.
func revealsNothing(t *testing.T, s *harness.Stack, r *reply, _ string) {
	t.Helper()
	leaks := []string{s.Issuer.URL(), issuerAudience, s.TargetURL("github"), s.TargetURL("jsonapi"), s.TargetURL("noscope"), "okta"}
	for _, where := range []struct{ name, text string }{
		{"WWW-Authenticate", strings.Join(r.Header.Values("WWW-Authenticate"), " | ")},
		{"body", string(r.Body)},
	} {
		for _, l := range leaks {
			if strings.Contains(where.text, l) {
				t.Errorf("the %s tells an unauthenticated caller %q: %s", where.name, l, where.text)
			}
		}
	}
}

func TestAttack(t *testing.T) {
	s := adversarial(t)
	u := upstreams{s}
	for i, a := range attacks() {
		t.Run(a.name, func(t *testing.T) {
			sub := uniq(fmt.Sprintf("00u-atk-%02d", i))
			runAttack(t, s, u, sub, a)
		})
	}
}

func runAttack(t *testing.T, s *harness.Stack, u upstreams, sub string, a attack) {
	var tok string
	var err error
	switch a.tok {
	case tokAgent:
		tok, err = s.Token(sub, a.target)
	case tokNoScope:
		tok, err = s.Token(sub, a.target, func(tk *oidcissuer.Token) { tk.Scopes = []string{"openid"} })
	case tokOtherTarget:
		tok, err = s.Token(sub, "github")
	case tokIssuerAud:
		tok, err = s.Token(sub, a.target, func(tk *oidcissuer.Token) {
			tk.Scopes = []string{"openid"}
			tk.Audience = []string{issuerAudience}
		})
	case tokIssuerAudScoped:
		tok, err = s.Token(sub, a.target, func(tk *oidcissuer.Token) { tk.Audience = []string{issuerAudience} })
	}
	if err != nil {
		t.Fatal(err)
	}
	tokens[sub] = tok
	extra := slices.Clone(a.header)
	for i := range extra {
		extra[i][1] = strings.ReplaceAll(extra[i][1], "{TOKEN}", tok)
	}
	hdr := mcpHeaders(tok, extra...)
	switch a.session {
	case "own":
		hdr = append(hdr, [2]string{"Mcp-Session-Id", openSession(t, s, a.target, tok)})
	case "other", "both":
		victim, err := s.Token(sub+"-victim", a.target)
		if err != nil {
			t.Fatal(err)
		}
		hdr = append(hdr, [2]string{"Mcp-Session-Id", openSession(t, s, a.target, victim)})
		if a.session == "both" {
			hdr = append(hdr, [2]string{"Mcp-Session-Id", openSession(t, s, a.target, tok)})
		}
	}
	target := "/mcp/" + a.target + strings.ReplaceAll(a.suffix, "{TOKEN}", tok)
	if a.raw != "" {
		target = a.raw
	}
	if a.method != "" && a.method != "POST" && a.body == nil {
		hdr = slices.DeleteFunc(hdr, func(h [2]string) bool { return strings.EqualFold(h[0], "Content-Type") })
	}

	u.reset()
	start := time.Now()
	r := send(t, s.BaseURL, rawRequest{Method: a.method, Target: target, Header: hdr, Body: a.body, Chunked: a.chunked})
	// Let a refused-but-forwarded request (the bug) reach the upstream
	// before looking.
	time.Sleep(50 * time.Millisecond)
	end := time.Now()
	ran, received := u.ran(t), u.received(t)
	decisions := decisionsBetween(t, s, start, end)

	if a.either {
		if len(decisions) == 0 && !a.dataPath {
			t.Errorf("(c) the attempt is not in the audit (no decision)")
		}
	} else if a.allow {
		if r.Status != 200 && r.Status != 202 {
			t.Errorf("(a) control: answered %s, want 200/202", r)
		}
		if id := idOf(a.body); id != "" && r.resultFor(id) == nil {
			t.Errorf("(a) control: no result for id %s in %s", id, r)
		}
		if !slices.Equal(ran, a.ran) {
			t.Errorf("(b) control: upstreams ran %q, want %q", ran, a.ran)
		}
		if !slices.ContainsFunc(decisions, func(d audit.Decision) bool { return d.Outcome == "allow" }) {
			t.Errorf("(c) control: no allow decision in the audit: %q", outcomes(decisions))
		}
	} else {
		if a.status != nil && !slices.Contains(a.status, r.Status) {
			t.Errorf("(a) answered %s, want status %v", r, a.status)
		} else if a.status == nil && (r.Status < 400 || r.Status > 499) && r.resultFor(idOf(a.body)) != nil {
			t.Errorf("(a) answered %s, want a refusal", r)
		}
		for _, id := range a.errIDs {
			if r.errorFor(id) == nil {
				t.Errorf("(a) no JSON-RPC error with id %s in %s", id, r)
			}
		}
		if a.anyErr && !slices.ContainsFunc(r.Msgs, func(m rpcMsg) bool { return m.Error != nil }) {
			t.Errorf("(a) the refusal is not a JSON-RPC error: %s", r)
		}
		if len(ran) > 0 {
			t.Errorf("(b) the upstream RAN %q", ran)
		}
		if len(received) > 0 {
			t.Errorf("(b) the upstream received %q", received)
		}
		okOutcomes := a.outcomes
		if okOutcomes == nil {
			okOutcomes = refused
		}
		if len(decisions) == 0 && !a.dataPath {
			t.Errorf("(c) the attempt is not in the audit (no decision)")
		}
		for _, d := range decisions {
			if !slices.Contains(okOutcomes, d.Outcome) {
				t.Errorf("(c) audit decision %s, want one of %v", outcomes([]audit.Decision{d}), okOutcomes)
			}
		}
	}
	if a.check != nil {
		a.check(t, s, r, sub)
	}
	if t.Failed() {
		t.Logf("answer: %s; audit: %q", r, outcomes(decisions))
	}
}

// idOf is the "id" of a JSON object body as JSON text, "" if none.
func idOf(body []byte) string {
	var m struct {
		ID json.RawMessage `json:"id"`
	}
	if json.Unmarshal(body, &m) != nil || m.ID == nil {
		return ""
	}
	return compactJSON(m.ID)
}

// openSession initializes an MCP session on target through the gateway
// with tok and returns its id.
func openSession(t *testing.T, s *harness.Stack, target, tok string) string {
	t.Helper()
	r := send(t, s.BaseURL, rawRequest{Target: "/mcp/" + target, Header: mcpHeaders(tok), Body: []byte(initBody)})
	sid := r.Header.Get("Mcp-Session-Id")
	if r.Status != 200 || sid == "" {
		t.Fatalf("initialize on %s: %s (session %q)", target, r, sid)
	}
	n := send(t, s.BaseURL, rawRequest{Target: "/mcp/" + target, Header: mcpHeaders(tok, [2]string{"Mcp-Session-Id", sid}),
		Body: []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)})
	if n.Status != 202 {
		t.Fatalf("notifications/initialized on %s: %s", target, n)
	}
	return sid
}
