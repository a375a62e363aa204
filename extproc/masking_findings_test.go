package extproc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/go-cmp/cmp"
)

// The findings of the masking issue, each through ext_proc in every body
// mode Envoy may use (STREAMED, BUFFERED, BUFFERED_PARTIAL,
// FULL_DUPLEX_STREAMED, NONE switched by mode_override) and chunking
// (byte by byte, 7 bytes, whole): what reaches the agent is masked, valid
// and the same however it was cut.

const result7 = `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"ok"}]}}`

// TestSSEIDAndEventMasked: a secret in an id or event line does not
// reach the client (which would echo it as Last-Event-ID).
func TestSSEIDAndEventMasked(t *testing.T) {
	stream := "id: " + awsKey + "\nevent: " + ghToken + "\ndata: " + result7 + "\n\n"
	want := "id: [MASKED:aws_access_key]\nevent: [MASKED:github_token]\ndata: " + result7 + "\n\n"
	eachWay(t, nil, func(t *testing.T, e *env, m bodyMode, split int) {
		o := e.play(t, m, toolCall, "text/event-stream", []byte(stream), split)
		if o.status != 0 || string(o.body) != want {
			t.Fatalf("got %d %q, want %q", o.status, o.body, want)
		}
	})
}

// TestSSEJoinedDataMasked: the joined data of an event is masked: a token
// cut by a data line break, and a JSON document whose string a data line
// break cuts (key rules apply).
func TestSSEJoinedDataMasked(t *testing.T) {
	stream := "data: key AKIAIOSF\ndata: ODNN7EXAMPLE here\n\n" +
		"data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"structuredContent\":{\"api_key\":\"k-1\",\"password\":\"hun\ndata: ter2\"}}}\n\n"
	eachWay(t, nil, func(t *testing.T, e *env, m bodyMode, split int) {
		o := e.play(t, m, toolCall, "text/event-stream", []byte(stream), split)
		if o.status != 0 {
			t.Fatalf("refused: %q", o.body)
		}
		got := string(o.body)
		noSecret(t, "stream", got, awsKey, "k-1", "hun\ndata: ter2", "ter2")
		data := sseData(t, got)
		if len(data) != 2 || data[0] != "key [MASKED:aws_access_key] here" || !json.Valid([]byte(data[1])) {
			t.Fatalf("events %q", data)
		}
		if !strings.Contains(data[1], `"password":"[MASKED:field:password]"`) {
			t.Errorf("the JSON document cut by a line break was not masked as JSON: %s", data[1])
		}
	})
}

// TestSSEOversizeAnswersByID: an event over masking.max_event_bytes is not
// dropped silently: the client reads a JSON-RPC error for the request's
// id as an event, the audit trail has an "error" record for it, and the
// stream ends there.
func TestSSEOversizeAnswersByID(t *testing.T) {
	big := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"image","data":"` + strings.Repeat("QUJD", 300) + `"}]}}`
	stream := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1}}\n\n" +
		"event: message\ndata: " + big + "\n\n" +
		"data: after " + awsKey + "\n\n"
	eachWay(t, func(o *Options) { o.MaxEventBytes = 1024 }, func(t *testing.T, e *env, m bodyMode, split int) {
		o := e.play(t, m, toolCall, "text/event-stream", []byte(stream), split)
		if o.status != 0 {
			t.Fatalf("refused: %q", o.body)
		}
		data := sseData(t, string(o.body))
		if len(data) != 2 {
			t.Fatalf("events %q: want the notification and the error, nothing after", data)
		}
		var got rpcError
		if err := json.Unmarshal([]byte(data[1]), &got); err != nil || string(got.ID) != "7" || got.Error.Code != -32603 ||
			!strings.Contains(got.Error.Message, "max_event_bytes") {
			t.Fatalf("error event %q: %v", data[1], err)
		}
		errs := e.rec.errors()
		if len(errs) != 1 || errs[0].JSONRPCID != "7" || errs[0].Tool != "get_config" || errs[0].Masked["sse_event_dropped"] != 1 {
			t.Errorf("audit error records %+v", errs)
		}
	})
}

// TestSSEOversizeBatchAnswersPendingIDs: for a batch, the error answers
// the ids the stream has not answered yet, one error each.
func TestSSEOversizeBatchAnswersPendingIDs(t *testing.T) {
	batch := `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/list"},{"jsonrpc":"2.0","id":"c","method":"ping"}]`
	stream := "data: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}\n\ndata: " + strings.Repeat("x", 2000) + "\n\n"
	e := startWith(t, func(o *Options) { o.MaxEventBytes = 1024 })
	o := e.play(t, everyMode[0], batch, "text/event-stream", []byte(stream), 5)
	data := sseData(t, string(o.body))
	var errs []rpcError
	if len(data) != 2 || json.Unmarshal([]byte(data[1]), &errs) != nil {
		t.Fatalf("events %q", data)
	}
	var ids []string
	for _, e := range errs {
		ids = append(ids, string(e.ID))
	}
	if diff := cmp.Diff([]string{"2", `"c"`}, ids); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if n := len(e.rec.errors()); n != 2 {
		t.Errorf("%d audit error records, want 2", n)
	}
}

// TestJSONNumbersKeepTheirType: an id, an IMEI, a timestamp that pass
// Luhn with a card prefix stay numbers; a number under a card name is
// masked; in JSON and in SSE alike.
func TestJSONNumbersKeepTheirType(t *testing.T) {
	doc := `{"jsonrpc":"2.0","id":7,"result":{"structuredContent":{"id":4111111111111111,"imei":490154203237518,"ts":5555555555554444,"pan":4111111111111111}}}`
	want := `{"jsonrpc":"2.0","id":7,"result":{"structuredContent":{"id":4111111111111111,"imei":490154203237518,"ts":5555555555554444,"pan":"[MASKED:card_number]"}}}`
	eachWay(t, nil, func(t *testing.T, e *env, m bodyMode, split int) {
		if o := e.play(t, m, toolCall, "application/json", []byte(doc), split); string(o.body) != want {
			t.Errorf("JSON: got %d %s", o.status, o.body)
		}
		if o := e.play(t, m, toolCall, "text/event-stream", []byte("data: "+doc+"\n\n"), split); string(o.body) != "data: "+want+"\n\n" {
			t.Errorf("SSE: got %d %s", o.status, o.body)
		}
	})
}

// TestContentNotLabel: a body that parses as JSON is masked as JSON
// whatever its label (\u-escaped secrets and key rules included), JSON
// lines line by line, other text as text; each is recorded, masked.
func TestContentNotLabel(t *testing.T) {
	doc := `{"jsonrpc":"2.0","id":7,"result":{"text":"\u0041KIAIOSFODNN7EXAMPLE","password":"hunter2"}}`
	for _, ct := range []string{"text/plain", "text/html; charset=utf-8", "application/json-rpc", "", "application/octet-stream"} {
		eachWay(t, nil, func(t *testing.T, e *env, m bodyMode, split int) {
			o := e.play(t, m, toolCall, ct, []byte(doc), split)
			if o.status != 0 || !json.Valid(o.body) {
				t.Fatalf("%q: got %d %q", ct, o.status, o.body)
			}
			noSecret(t, ct, string(o.body), awsKey, "hunter2")
			var rec []string
			for _, r := range e.rec.msgs {
				if r.Direction == "response" {
					rec = append(rec, r.JSONRPCID)
					noSecret(t, "record", r.Payload, awsKey, "hunter2")
				}
			}
			if len(rec) != 1 || rec[0] != "7" {
				t.Errorf("%q: response records %v", ct, rec)
			}
		})
	}
	lines := doc + "\r\n" + `{"jsonrpc":"2.0","method":"notifications/message","params":{"token":"abc123"}}` + "\n"
	eachWay(t, nil, func(t *testing.T, e *env, m bodyMode, split int) {
		o := e.play(t, m, toolCall, "application/x-ndjson", []byte(lines), split)
		got := strings.Split(string(o.body), "\n")
		if o.status != 0 || len(got) != 3 || !json.Valid([]byte(got[0])) || !json.Valid([]byte(got[1])) || !strings.HasSuffix(got[0], "\r") {
			t.Fatalf("JSON lines: got %d %q", o.status, o.body)
		}
		noSecret(t, "line 1", got[0], awsKey, "hunter2")
		noSecret(t, "line 2", got[1], "abc123")
		if n := len(e.rec.msgs); n != 3 {
			t.Errorf("%d records, want request and two messages", n)
		}
	})
	eachWay(t, nil, func(t *testing.T, e *env, m bodyMode, split int) {
		o := e.play(t, m, toolCall, "text/html", []byte("<p>key "+awsKey+"</p>"), split)
		if o.status != 0 || string(o.body) != "<p>key [MASKED:aws_access_key]</p>" {
			t.Fatalf("text: got %d %q", o.status, o.body)
		}
		last := e.rec.msgs[len(e.rec.msgs)-1]
		if last.Direction != "response" || last.JSONRPCID != "7" || last.Tool != "get_config" ||
			last.Payload != "<p>key [MASKED:aws_access_key]</p>" || last.Masked["aws_access_key"] != 1 {
			t.Errorf("text response record %+v", last)
		}
	})
}

// TestBodyEncodings: UTF-8 with a byte-order mark and UTF-16 (either
// order, with or without a mark), JSON and SSE, are decoded, masked and
// encoded back the same way; UTF-32 is refused with a JSON-RPC error by
// the request's id.
func TestBodyEncodings(t *testing.T) {
	doc := `{"jsonrpc":"2.0","id":7,"result":{"text":"key ` + awsKey + ` é 😀","password":"hunter2"}}`
	sse := "id: " + ghToken + "\ndata: " + doc + "\n\n"
	for _, enc := range []struct {
		name    string
		encode  func(string) []byte
		decode  func(*testing.T, []byte) string
		refused bool
	}{
		{"utf-8 bom", func(s string) []byte { return append([]byte("\xef\xbb\xbf"), s...) }, func(t *testing.T, b []byte) string {
			s, ok := strings.CutPrefix(string(b), "\xef\xbb\xbf")
			if !ok {
				t.Fatalf("the byte-order mark is gone: %q", b)
			}
			return s
		}, false},
		{"utf-16le bom", func(s string) []byte { return utf16Bytes(s, false, true) }, func(t *testing.T, b []byte) string { return strings.TrimPrefix(fromUTF16(t, b, false), "\ufeff") }, false},
		{"utf-16be bom", func(s string) []byte { return utf16Bytes(s, true, true) }, func(t *testing.T, b []byte) string { return strings.TrimPrefix(fromUTF16(t, b, true), "\ufeff") }, false},
		{"utf-16le", func(s string) []byte { return utf16Bytes(s, false, false) }, func(t *testing.T, b []byte) string { return fromUTF16(t, b, false) }, false},
		{"utf-16be", func(s string) []byte { return utf16Bytes(s, true, false) }, func(t *testing.T, b []byte) string { return fromUTF16(t, b, true) }, false},
		{"utf-32le", func(s string) []byte {
			var out []byte
			for _, r := range "\ufeff" + s {
				out = append(out, byte(r), byte(r>>8), byte(r>>16), 0)
			}
			return out
		}, nil, true},
	} {
		for _, kind := range []struct{ ct, body string }{{"application/json", doc}, {"text/event-stream", sse}} {
			eachWay(t, nil, func(t *testing.T, e *env, m bodyMode, split int) {
				o := e.play(t, m, toolCall, kind.ct, enc.encode(kind.body), split)
				if enc.refused {
					if got := refusalIDs(t, o); !cmp.Equal(got, []string{"7"}) {
						t.Fatalf("%s %s: ids %v", enc.name, kind.ct, got)
					}
					if errs := e.rec.errors(); len(errs) != 1 || errs[0].JSONRPCID != "7" {
						t.Errorf("%s %s: audit error records %+v", enc.name, kind.ct, errs)
					}
					return
				}
				if o.status != 0 {
					t.Fatalf("%s %s: refused %q", enc.name, kind.ct, o.body)
				}
				got := enc.decode(t, o.body)
				noSecret(t, enc.name+" "+kind.ct, got, awsKey, ghToken, "hunter2")
				if !strings.Contains(got, "é 😀") {
					t.Errorf("%s %s: text changed: %q", enc.name, kind.ct, got)
				}
				if kind.ct == "application/json" && !json.Valid([]byte(got)) {
					t.Errorf("%s: output is not JSON: %q", enc.name, got)
				}
			})
		}
	}
}

// refusalIDs reads the ids of an immediate JSON-RPC error.
func refusalIDs(t *testing.T, o outcome) []string {
	t.Helper()
	if o.status == 0 {
		t.Fatalf("not refused: %q", o.body)
	}
	var errs []rpcError
	if strings.HasPrefix(string(o.body), "[") {
		if err := json.Unmarshal(o.body, &errs); err != nil {
			t.Fatal(err)
		}
	} else {
		var one rpcError
		if err := json.Unmarshal(o.body, &one); err != nil {
			t.Fatalf("%q: %v", o.body, err)
		}
		errs = append(errs, one)
	}
	var ids []string
	for _, e := range errs {
		ids = append(ids, string(e.ID))
	}
	return ids
}

// TestRefusalsCarryIDs: every withheld response answers the request's id
// (each id of a batch) and leaves an audit row.
func TestRefusalsCarryIDs(t *testing.T) {
	batch := `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":"b","method":"tools/list"}]`
	for _, tc := range []struct {
		name, req, ct, body string
		mod                 func(*Options)
		status              int
		ids                 []string
	}{
		{"JSON that is not", toolCall, "application/json", `{"jsonrpc":"2.0","id":7,"result":{"x":"` + awsKey, nil, 502, []string{"7"}},
		{"body over max_body_bytes", toolCall, "text/plain", strings.Repeat("y", 3000), func(o *Options) { o.MaxBodyBytes = 2048 }, 502, []string{"7"}},
		{"batch", batch, "application/json", `[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","id":"b","result":`, nil, 502, []string{"1", `"b"`}},
		{"NUL bytes", toolCall, "text/plain", "\x00\x00\x00{", nil, 502, []string{"7"}},
		{"UTF-16 label, UTF-8 bytes", toolCall, "application/json; charset=utf-16", `{"k":"` + awsKey + `"}`, nil, 502, []string{"7"}},
	} {
		eachWay(t, tc.mod, func(t *testing.T, e *env, m bodyMode, split int) {
			o := e.play(t, m, tc.req, tc.ct, []byte(tc.body), split)
			if o.status != tc.status {
				t.Fatalf("%s: status %d %q, want %d", tc.name, o.status, o.body, tc.status)
			}
			if diff := cmp.Diff(tc.ids, refusalIDs(t, o)); diff != "" {
				t.Errorf("%s: ids (-want +got):\n%s", tc.name, diff)
			}
			var rows []string
			for _, r := range e.rec.errors() {
				rows = append(rows, r.JSONRPCID)
			}
			if diff := cmp.Diff(tc.ids, rows); diff != "" {
				t.Errorf("%s: audit error rows (-want +got):\n%s", tc.name, diff)
			}
		})
	}
	// Audit fail-closed: the 503 still answers the request's id.
	e := start(t)
	e.rec.err = errors.New("audit spool full")
	o := e.play(t, everyMode[0], toolCall, "application/json", []byte(result7), 0)
	if o.status != 503 || !cmp.Equal(refusalIDs(t, o), []string{"7"}) {
		t.Errorf("audit full: %d %q", o.status, o.body)
	}
}

// TestUTF16ByLabel: UTF-16 without a mark whose first character is not
// ASCII is read by the label's byte order.
func TestUTF16ByLabel(t *testing.T) {
	text := "日本 key " + awsKey
	for _, tc := range []struct {
		label string
		be    bool
	}{{"utf-16le", false}, {"UTF-16BE", true}, {"utf-16", true}} {
		eachWay(t, nil, func(t *testing.T, e *env, m bodyMode, split int) {
			o := e.play(t, m, toolCall, "text/plain; charset="+tc.label, utf16Bytes(text, tc.be, false), split)
			if got := fromUTF16(t, o.body, tc.be); o.status != 0 || got != "日本 key [MASKED:aws_access_key]" {
				t.Fatalf("%s: got %d %q", tc.label, o.status, got)
			}
		})
	}
}

// TestRefusalWhileRequestStreams: a response withheld before the request
// body has ended (Envoy streams it, or the server answered early) still
// answers the request's id as far as the body came.
func TestRefusalWhileRequestStreams(t *testing.T) {
	e := start(t)
	x := e.open(t, streamed)
	x.send(&extprocv3.ProcessingRequest{MetadataContext: authzMeta(meta), Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: headers(":method", "POST")}})
	x.recv()
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(toolCall)}}})
	x.recv()
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json", "content-encoding", "gzip")}})
	if diff := cmp.Diff([]string{"7"}, refusedIDs(t, x.recv(), 502, "compressed")); diff != "" {
		t.Errorf("ids (-want +got):\n%s", diff)
	}
	if errs := e.rec.errors(); len(errs) != 1 || errs[0].JSONRPCID != "7" {
		t.Errorf("audit error records %+v", errs)
	}
}
