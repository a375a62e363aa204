package e2e

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
)

// TestAttackClassificationDifferential is a bounded differential fuzz of
// request classification: generated bodies and headers (charsets,
// encodings, escapes, duplicate and case-variant keys, Unicode names,
// batches, ids, versions) go through the gateway to the TypeScript SDK
// server and to the Go SDK server. For every case, what each server read
// — the TypeScript server records what express.json() decoded, the Go
// server's received bytes are decoded with the Go SDK's own JSON-RPC
// reader — must be exactly the messages airlock allowed (method, name,
// id), and every tool a server ran must be one airlock allowed by that
// exact name. A refused case must reach no server.
//
// Set AIRLOCK_FUZZ_SEED to replay another sequence.
func TestAttackClassificationDifferential(t *testing.T) {
	s := adversarial(t)
	const cases = 200
	seed := uint64(20261207)
	if v := os.Getenv("AIRLOCK_FUZZ_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("AIRLOCK_FUZZ_SEED: %v", err)
		}
		seed = n
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	deadline := time.Now().Add(60 * time.Second)

	type sent struct {
		c       fuzzCase
		target  string
		sub     string
		goCalls []string // tools the Go server ran while this case was in flight
		status  int
	}
	var all []sent
	toks := map[string]string{}
	run := uniq("00u-fz") // this run's principals (-count=n reuses the stack)
	for i := 0; i < cases && time.Now().Before(deadline); i++ {
		c := genCase(rng, i)
		if i < len(fuzzSeeds) {
			c = fuzzSeeds[i]
			c.desc = fmt.Sprintf("#%d seed [%s]", i, c.desc)
		}
		for _, target := range []string{"tsstateless", "jsonapi"} {
			sub := fmt.Sprintf("%s-%s-%03d", run, target[:2], i)
			tok, ok := toks[sub]
			if !ok {
				var err error
				if tok, err = s.Token(sub, target); err != nil {
					t.Fatal(err)
				}
				toks[sub] = tok
			}
			before := len(s.JSONServer.ToolCalls())
			hdr := [][2]string{{"Content-Type", c.contentType}, {"Accept", "application/json, text/event-stream"}, {"Authorization", "Bearer " + tok}}
			if c.version != "" {
				hdr = append(hdr, [2]string{"Mcp-Protocol-Version", c.version})
			}
			if c.encoding != "" {
				hdr = append(hdr, [2]string{"Content-Encoding", c.encoding})
			}
			r := send(t, s.BaseURL, rawRequest{Target: "/mcp/" + target, Header: hdr, Body: c.body})
			var goCalls []string
			if target == "jsonapi" {
				for _, call := range s.JSONServer.ToolCalls()[before:] {
					goCalls = append(goCalls, call.Name)
				}
			}
			all = append(all, sent{c: c, target: target, sub: sub, goCalls: goCalls, status: r.Status})
		}
	}
	if len(all) < 2*cases/4 {
		t.Fatalf("only %d requests within the time budget", len(all))
	}

	// What airlock allowed, per principal.
	allowed := map[string][]string{}
	allowedTools := map[string][]string{}
	for _, d := range decisionsBetween(t, s, time.Now().Add(-10*time.Minute), time.Now()) {
		if !strings.HasPrefix(d.Principal, run+"-") || d.Outcome != "allow" {
			continue
		}
		allowed[d.Principal] = append(allowed[d.Principal], msgKey(d.Method, d.Tool, d.JSONRPCID))
		if d.Method == "tools/call" {
			allowedTools[d.Principal] = append(allowedTools[d.Principal], d.Tool)
		}
	}
	// What the TypeScript server read and ran, per principal.
	tsRead := map[string][]string{}
	tsRan := map[string][]string{}
	received := map[string]int{} // HTTP requests each principal's case got upstream
	recs, err := s.TSServer.Records()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if !strings.HasPrefix(r.Principal, run+"-") {
			continue
		}
		switch r.Kind {
		case "parsed":
			tsRead[r.Principal] = append(tsRead[r.Principal], tsMessages(r.Body)...)
		case "tool":
			tsRan[r.Principal] = append(tsRan[r.Principal], r.Name)
		case "http":
			received[r.Principal]++
		}
	}
	// What the Go server read, per principal, with the Go SDK's reader.
	goRead := map[string][]string{}
	for _, r := range s.JSONServer.Requests() {
		if p := r.Header.Get("X-Airlock-Principal"); strings.HasPrefix(p, run+"-") {
			goRead[p] = append(goRead[p], goMessages(r.Body)...)
			received[p]++
		}
	}

	var refusedN, allowedN, failures int
	statuses := map[int]int{}
	for _, x := range all {
		statuses[x.status]++
		want := slices.Sorted(slices.Values(allowed[x.sub]))
		var read, ran []string
		if x.target == "jsonapi" {
			read, ran = goRead[x.sub], x.goCalls
		} else {
			read, ran = tsRead[x.sub], tsRan[x.sub]
		}
		read = slices.Sorted(slices.Values(read))
		if len(want) == 0 {
			refusedN++
		} else {
			allowedN++
		}
		var problems []string
		if len(want) == 0 && received[x.sub] > 0 {
			problems = append(problems, fmt.Sprintf("airlock allowed nothing, yet the server received %d request(s)", received[x.sub]))
		}
		if len(read) > 0 && !slices.Equal(read, want) {
			problems = append(problems, fmt.Sprintf("the server read %q, airlock allowed %q", read, want))
		}
		if len(read) == 0 && len(want) > 0 && x.status < 300 {
			problems = append(problems, fmt.Sprintf("airlock allowed %q and the agent got %d, but the server read nothing", want, x.status))
		}
		for _, name := range ran {
			if !slices.Contains(allowedTools[x.sub], name) {
				problems = append(problems, fmt.Sprintf("the server RAN %q, airlock allowed tools %q", name, allowedTools[x.sub]))
			}
		}
		if len(problems) > 0 {
			failures++
			if failures <= 25 {
				t.Errorf("%s case %s → %d: %s\n\tcontent-type %q encoding %q version %q body %q",
					x.target, x.c.desc, x.status, strings.Join(problems, "; "), x.c.contentType, x.c.encoding, x.c.version, printable(x.c.body))
			}
		}
	}
	if failures > 25 {
		t.Errorf("… and %d more cases where a server read or ran something else than airlock decided", failures-25)
	}
	t.Logf("seed %d: %d requests, %d allowed, %d refused, %d disagreements; answers by status %v", seed, len(all), allowedN, refusedN, failures, statuses)
	if allowedN == 0 || refusedN == 0 {
		t.Errorf("the generator produced %d allowed and %d refused requests: it exercises nothing", allowedN, refusedN)
	}
}

func printable(b []byte) string {
	if len(b) > 300 {
		b = append(b[:300:300], "…"...)
	}
	return string(b)
}

// msgKey is how messages are compared: method, name (tool, prompt, URI or
// completion ref) and id, the id as canonical JSON ("" for none).
func msgKey(method, name, id string) string {
	return method + " | " + name + " | " + canonicalID(id)
}

func canonicalID(id string) string {
	if id == "" {
		return ""
	}
	var v any
	if json.Unmarshal([]byte(id), &v) != nil {
		return id
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// members reads a JSON object with exact, case-sensitive member names
// (as JSON.parse and the Go SDK's decoder read them; a repeated name: the
// last wins, as in both).
func members(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return nil
	}
	// encoding/json matches map keys exactly; it keeps the last duplicate.
	return m
}

func str(raw json.RawMessage) string {
	var v string
	if json.Unmarshal(raw, &v) != nil {
		return ""
	}
	return v
}

// nameOf is the name a message acts on, from its params.
func nameOf(method string, params json.RawMessage) string {
	p := members(params)
	switch method {
	case "tools/call", "prompts/get":
		return str(p["name"])
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return str(p["uri"])
	case "completion/complete":
		ref := members(p["ref"])
		return str(ref["name"]) + str(ref["uri"])
	}
	return ""
}

// tsMessages are the messages of a body as express.json() decoded it
// (JSON.stringify of what JSON.parse read: exact keys, each once).
func tsMessages(body json.RawMessage) []string {
	var list []json.RawMessage
	if t := bytes.TrimSpace(body); len(t) > 0 && t[0] == '[' {
		_ = json.Unmarshal(body, &list)
	} else {
		list = []json.RawMessage{body}
	}
	var out []string
	for _, raw := range list {
		m := members(raw)
		method := str(m["method"])
		if method == "" {
			continue
		}
		id := ""
		if v, ok := m["id"]; ok {
			id = string(v)
		}
		out = append(out, msgKey(method, nameOf(method, m["params"]), id))
	}
	return out
}

// goMessages are the messages of a body as the Go SDK's streamable
// handler reads them (readBatch: an array of messages, else one message,
// each decoded by jsonrpc.DecodeMessage).
func goMessages(body []byte) []string {
	var raws []json.RawMessage
	if err := json.Unmarshal(body, &raws); err != nil {
		raws = []json.RawMessage{body}
	}
	var out []string
	for _, raw := range raws {
		msg, err := jsonrpc.DecodeMessage(raw)
		if err != nil {
			continue
		}
		req, ok := msg.(*jsonrpc.Request)
		if !ok {
			continue
		}
		id := ""
		if req.ID.IsValid() {
			b, _ := json.Marshal(req.ID.Raw())
			id = string(b)
		}
		out = append(out, msgKey(req.Method, nameOf(req.Method, req.Params), id))
	}
	return out
}

// fuzzSeeds are the first cases: the reproductions of issue 11 and what
// held before it.
var fuzzSeeds = []fuzzCase{
	{desc: "utf-7 name", contentType: "application/json; charset=utf-7", version: "2025-11-25", body: call("s-0", "+AGQ-elete_all", "")},
	{desc: "utf-7 quotes", contentType: "application/json; charset=utf-7", version: "2025-11-25", body: []byte(utf7HiddenCall)},
	{desc: "utf-16", contentType: "application/json; charset=utf-16le", version: "2025-11-25", body: utf16le(string(call("s-2", "echo", `{"text":"x"}`)))},
	{desc: "gzip", contentType: "application/json", encoding: "gzip", version: "2025-11-25", body: gz(call("s-3", "echo", `{"text":"x"}`))},
	{desc: "batch ping + held", contentType: "application/json", version: "2025-03-26",
		body: []byte(`[{"jsonrpc":"2.0","id":"s-4a","method":"ping"},{"jsonrpc":"2.0","id":"s-4b","method":"tools/call","params":{"name":"delete_all","arguments":{}}}]`)},
	{desc: "batch ping + echo, no version", contentType: "application/json",
		body: []byte(`[{"jsonrpc":"2.0","id":"s-5a","method":"ping"},{"jsonrpc":"2.0","id":"s-5b","method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}]`)},
	{desc: "duplicate name", contentType: "application/json", version: "2025-11-25",
		body: []byte(`{"jsonrpc":"2.0","id":"s-6","method":"tools/call","params":{"name":"echo","name":"delete_all","arguments":{"text":"x"}}}`)},
	{desc: "case-variant method key", contentType: "application/json", version: "2025-11-25",
		body: []byte(`{"jsonrpc":"2.0","id":"s-7","method":"ping","Method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`)},
	{desc: "BOM", contentType: "application/json", version: "2025-11-25", body: append([]byte("\xef\xbb\xbf"), call("s-8", "echo", `{"text":"x"}`)...)},
	{desc: "escaped name", contentType: "application/json", version: "2025-11-25",
		body: []byte(`{"jsonrpc":"2.0","id":"s-9","method":"tools/call","params":{"name":"\u0065cho","arguments":{"text":"x"}}}`)},
}

// fuzzCase is one generated request.
type fuzzCase struct {
	desc                           string
	body                           []byte
	contentType, encoding, version string
}

type kv struct{ k, v string } // key (raw, unquoted JSON string text) and raw JSON value

func object(kvs []kv) string {
	parts := make([]string, len(kvs))
	for i, p := range kvs {
		parts[i] = `"` + p.k + `":` + p.v
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// escapeOne writes one ASCII letter of s (JSON string text, unquoted) as
// a \u escape.
func escapeOne(rng *rand.Rand, s string) string {
	var idx []int
	for i := 0; i < len(s); i++ {
		if (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') {
			if i == 0 || s[i-1] != '\\' {
				idx = append(idx, i)
			}
		}
	}
	if len(idx) == 0 {
		return s
	}
	i := idx[rng.IntN(len(idx))]
	return s[:i] + fmt.Sprintf(`\u%04x`, s[i]) + s[i+1:]
}

var (
	fuzzNames = []string{"echo", "echo", "echo", "delete_all", "DELETE_all", "repo.delete", "removeUser", "get-env", "Echo",
		"\uff45\uff43\uff48\uff4f", "echo\u200b", "ech\u043e", "\u202eecho", "search_issues", "delete_repository"}
	fuzzCharsets = []string{"application/json", "application/json", "application/json", "application/json; charset=utf-8",
		"application/json; charset=UTF-8", `application/json; charset="utf-8"`, "application/json; charset=utf-7",
		"application/json; charset=utf-16le", "application/json; charset=iso-8859-1", "application/json; charset=utf-8; x=y",
		"APPLICATION/JSON", "application/json;charset=utf-8", "text/plain"}
	fuzzVersions = []string{"2025-11-25", "2025-11-25", "2025-06-18", "2025-03-26", ""}
)

// genCase makes case i: a base message, then up to three mutations.
func genCase(rng *rand.Rand, i int) fuzzCase {
	id := quote(fmt.Sprintf("f-%d", i))
	method := "tools/call"
	var params []kv
	var desc []string
	switch rng.IntN(8) {
	case 0, 1, 2, 3:
		params = []kv{{"name", quote(fuzzNames[rng.IntN(len(fuzzNames))])}, {"arguments", `{"text":"x"}`}}
	case 4:
		method = "tools/list"
	case 5:
		method = "ping"
	case 6:
		method = "prompts/get"
		params = []kv{{"name", quote([]string{"triage", "secret_prompt", "triage_issue"}[rng.IntN(3)])}, {"arguments", `{"topic":"a","number":"1"}`}}
	case 7:
		method = "completion/complete"
		params = []kv{{"ref", `{"type":"ref/prompt","name":` + quote([]string{"triage", "secret_prompt"}[rng.IntN(2)]) + `}`}, {"argument", `{"name":"topic","value":"a"}`}}
	}
	msg := []kv{{"jsonrpc", `"2.0"`}, {"id", id}, {"method", quote(method)}}
	if params != nil {
		msg = append(msg, kv{"params", object(params)})
	}
	c := fuzzCase{contentType: "application/json", version: fuzzVersions[rng.IntN(len(fuzzVersions))]}
	desc = append(desc, method)
	var wrap func(string) string
	var bodyMut func([]byte) []byte
	for n := rng.IntN(4); n > 0; n-- {
		switch rng.IntN(16) {
		case 0: // an escaped letter in a key
			j := rng.IntN(len(msg))
			msg[j].k = escapeOne(rng, msg[j].k)
			desc = append(desc, "escaped key "+msg[j].k)
		case 1: // an escaped letter in the method
			for j := range msg {
				if msg[j].k == "method" {
					msg[j].v = `"` + escapeOne(rng, strings.Trim(msg[j].v, `"`)) + `"`
				}
			}
			desc = append(desc, "escaped method")
		case 2: // an escaped letter in the name
			for j := range params {
				if params[j].k == "name" {
					params[j].v = `"` + escapeOne(rng, strings.Trim(params[j].v, `"`)) + `"`
				}
			}
			for j := range msg {
				if msg[j].k == "params" && params != nil {
					msg[j].v = object(params)
				}
			}
			desc = append(desc, "escaped name")
		case 3: // a second method
			msg = append(msg, kv{[]string{"method", "Method", "METHOD", "m\\u0065thod"}[rng.IntN(4)], quote([]string{"tools/call", "ping", "notifications/initialized"}[rng.IntN(3)])})
			desc = append(desc, "second method "+msg[len(msg)-1].k)
		case 4: // a second name
			params = append(params, kv{[]string{"name", "Name", "n\\u0061me"}[rng.IntN(3)], quote(fuzzNames[rng.IntN(len(fuzzNames))])})
			for j := range msg {
				if msg[j].k == "params" {
					msg[j].v = object(params)
				}
			}
			desc = append(desc, "second name")
		case 5: // a key in another case
			j := rng.IntN(len(msg))
			msg[j].k = strings.ToUpper(msg[j].k[:1]) + msg[j].k[1:]
			desc = append(desc, "key case "+msg[j].k)
		case 6: // id variants
			v := []string{`7`, `7.0`, `null`, `"f\u002dx"`, `true`, `{"a":1}`, ""}[rng.IntN(7)]
			msg = slices.DeleteFunc(msg, func(p kv) bool { return p.k == "id" })
			if v != "" {
				msg = append(msg, kv{"id", v})
			}
			desc = append(desc, "id "+v)
		case 7: // a batch
			ping := `{"jsonrpc":"2.0","id":"p-` + strconv.Itoa(i) + `","method":"ping"}`
			if rng.IntN(2) == 0 {
				wrap = func(m string) string { return "[" + m + "," + ping + "]" }
			} else {
				wrap = func(m string) string { return "[" + ping + "," + m + "]" }
			}
			desc = append(desc, "batch")
		case 8:
			c.contentType = fuzzCharsets[rng.IntN(len(fuzzCharsets))]
			desc = append(desc, "content-type")
		case 9: // UTF-7 quotes
			bodyMut = func(b []byte) []byte { return bytes.Replace(b, []byte(`":"`), []byte(`+ACI-:+ACI-`), 1) }
			c.contentType = "application/json; charset=utf-7"
			desc = append(desc, "utf-7 quotes")
		case 10:
			c.encoding = []string{"gzip", "deflate", "identity", "br"}[rng.IntN(4)]
			desc = append(desc, "encoding "+c.encoding)
		case 11: // BOM
			bodyMut = func(b []byte) []byte { return append([]byte("\xef\xbb\xbf"), b...) }
			desc = append(desc, "BOM")
		case 12: // white space
			bodyMut = func(b []byte) []byte { return bytes.ReplaceAll(b, []byte(`,"`), []byte(" ,\n\t\"")) }
			desc = append(desc, "white space")
		case 13: // trailing bytes
			tail := []string{" ", "\n", "x", "{}", "\x00"}[rng.IntN(5)]
			bodyMut = func(b []byte) []byte { return append(b, tail...) }
			desc = append(desc, fmt.Sprintf("trailing %q", tail))
		case 14: // jsonrpc version
			for j := range msg {
				if msg[j].k == "jsonrpc" {
					msg[j].v = []string{`"1.0"`, `2.0`, `"2.0 "`}[rng.IntN(3)]
				}
			}
			desc = append(desc, "jsonrpc version")
		case 15: // a notification method
			for j := range msg {
				if msg[j].k == "method" {
					msg[j].v = quote([]string{"notifications/initialized", "notifications/foo", "notifications/cancelled"}[rng.IntN(3)])
				}
			}
			desc = append(desc, "notification method")
		}
	}
	body := object(msg)
	if wrap != nil {
		body = wrap(body)
	}
	b := []byte(body)
	if bodyMut != nil {
		b = bodyMut(b)
	}
	switch {
	case strings.Contains(c.contentType, "utf-16"):
		b = utf16le(string(b))
	case c.encoding == "gzip":
		b = gz(b)
	case c.encoding == "deflate" && rng.IntN(2) == 0:
		var out bytes.Buffer
		zw, _ := flate.NewWriter(&out, flate.DefaultCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		b = out.Bytes()
	}
	c.body = b
	c.desc = fmt.Sprintf("#%d [%s]", i, strings.Join(desc, ", "))
	return c
}
