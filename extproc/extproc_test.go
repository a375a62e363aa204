package extproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/wire"
)

const (
	awsKey   = "AKIAIOSFODNN7EXAMPLE"
	ghToken  = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
	toolCall = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"get_config","arguments":{"token":"` + ghToken + `"}}}`
)

type recorder struct {
	mu   sync.Mutex
	msgs []audit.Event
	err  error
}

// errors returns the "error" records.
func (r *recorder) errors() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Event
	for _, m := range r.msgs {
		if m.Direction == "error" {
			out = append(out, m)
		}
	}
	return out
}

func (r *recorder) Record(rec audit.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.msgs = append(r.msgs, *rec.(*audit.Event))
	return nil
}

type env struct {
	p      *Processor
	rec    *recorder
	client extprocv3.ExternalProcessorClient
}

// start serves a Processor over real gRPC on loopback.
func start(t *testing.T) *env { return startWith(t, nil) }

// startWith is start with options changed by mod.
func startWith(t *testing.T, mod func(*Options)) *env {
	t.Helper()
	set, err := mask.NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{rec: &recorder{}}
	opts := Options{Profiles: set, Recorder: e.rec, MaxEventBytes: 4096}
	if mod != nil {
		mod(&opts)
	}
	p := New(opts)
	e.p = p
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(srv, &Server{P: p})
	go srv.Serve(lis)
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	e.client = extprocv3.NewExternalProcessorClient(conn)
	return e
}

// exchange plays Envoy's side of one stream: it sends each message and
// collects the responses, as the ext_proc filter does (one response per
// message, except in full duplex).
type exchange struct {
	t      *testing.T
	stream extprocv3.ExternalProcessor_ProcessClient
	first  bool
	mode   procmodev3.ProcessingMode_BodySendMode
	// noProtocol: play an Envoy older than 1.34, which sends no protocol_config.
	noProtocol bool
}

func (e *env) open(t *testing.T, respMode procmodev3.ProcessingMode_BodySendMode) *exchange {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	s, err := e.client.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &exchange{t: t, stream: s, first: true, mode: respMode}
}

func authzMeta(fields map[string]any) *corev3.Metadata {
	st, _ := structpb.NewStruct(fields)
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{wire.AuthzNamespace: st}}
}

func headers(kv ...string) *extprocv3.HttpHeaders {
	h := &corev3.HeaderMap{}
	for i := 0; i < len(kv); i += 2 {
		h.Headers = append(h.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return &extprocv3.HttpHeaders{Headers: h}
}

func (x *exchange) send(req *extprocv3.ProcessingRequest) {
	x.t.Helper()
	if x.first && !x.noProtocol {
		// protocol_config only in the first message.
		req.ProtocolConfig = &extprocv3.ProtocolConfiguration{RequestBodyMode: procmodev3.ProcessingMode_BUFFERED, ResponseBodyMode: x.mode}
		x.first = false
	}
	if err := x.stream.Send(req); err != nil {
		x.t.Fatal(err)
	}
}

func (x *exchange) recv() *extprocv3.ProcessingResponse {
	x.t.Helper()
	r, err := x.stream.Recv()
	if err != nil {
		x.t.Fatal(err)
	}
	return r
}

func (x *exchange) requestPhases(meta map[string]any, body string) {
	x.t.Helper()
	x.send(&extprocv3.ProcessingRequest{MetadataContext: authzMeta(meta), Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: headers(":method", "POST", ":path", "/mcp", "mcp-session-id", "s-1")}})
	if x.recv().GetRequestHeaders() == nil {
		x.t.Fatal("no request_headers response")
	}
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}})
	if x.recv().GetRequestBody() == nil {
		x.t.Fatal("no request_body response")
	}
}

var meta = map[string]any{"principal": "00u-alice", "client_id": "0oa-agent", "target": "github", "decision_id": "d-1", "masking_profile": "default", "record": true, "grant": "gr_1"}

func TestBufferedJSONIsMaskedAndRecorded(t *testing.T) {
	e := start(t)
	x := e.open(t, procmodev3.ProcessingMode_STREAMED)
	x.requestPhases(meta, toolCall)
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json", "content-length", "200")}})
	hr := x.recv()
	if hr.GetModeOverride().GetResponseBodyMode() != procmodev3.ProcessingMode_BUFFERED {
		t.Fatalf("a JSON response must be buffered through mode_override, got %v", hr.GetModeOverride())
	}
	body := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"key ` + awsKey + `"}]}}`
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}})
	br := x.recv().GetResponseBody().GetResponse()
	out := string(br.GetBodyMutation().GetBody())
	if strings.Contains(out, awsKey) || !strings.Contains(out, "[MASKED:aws_access_key]") {
		t.Fatalf("body not masked: %s", out)
	}
	cl := br.GetHeaderMutation().GetSetHeaders()
	if len(cl) != 1 || cl[0].GetHeader().GetKey() != "content-length" || string(cl[0].GetHeader().GetRawValue()) != fmt.Sprint(len(out)) {
		t.Errorf("buffered body with a new length needs a matching content-length, got %v", cl)
	}
	x.stream.CloseSend()

	if len(e.rec.msgs) != 2 {
		t.Fatalf("recorded %d messages, want request and response", len(e.rec.msgs))
	}
	req, resp := e.rec.msgs[0], e.rec.msgs[1]
	if req.Direction != "request" || req.Method != "tools/call" || req.Tool != "get_config" || req.SessionID != "s-1" || req.Principal != "00u-alice" || req.GrantID != "gr_1" {
		t.Errorf("request record %+v", req)
	}
	if strings.Contains(req.Payload, ghToken) || mask.Counts(req.Masked).Total() == 0 {
		t.Errorf("the recorded request holds the secret argument: %s", req.Payload)
	}
	if resp.Direction != "response" || resp.Tool != "get_config" || resp.JSONRPCID != "7" || resp.Status != 200 || resp.Masked["aws_access_key"] != 1 {
		t.Errorf("response record %+v", resp)
	}
	if strings.Contains(resp.Payload, awsKey) {
		t.Error("the recorded response holds the secret")
	}
}

const sseStream = "id: 1\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progress\":1,\"message\":\"using " + awsKey + "\"}}\n\n" +
	"id: 2\nevent: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"" + ghToken + "\"}]}}\n\n"

// SSE bodies are masked event by event whatever the chunking, in both
// streaming modes: STREAMED (one response per chunk, the chunk replaced)
// and FULL_DUPLEX_STREAMED (streamed_response, end_of_stream at the end).
func TestSSEMaskedAcrossChunks(t *testing.T) {
	e := start(t)
	want := ""
	for _, mode := range []procmodev3.ProcessingMode_BodySendMode{procmodev3.ProcessingMode_STREAMED, procmodev3.ProcessingMode_FULL_DUPLEX_STREAMED} {
		for _, split := range []int{1, 7, 50, len(sseStream)} {
			t.Run(fmt.Sprintf("%v/%d", mode, split), func(t *testing.T) {
				e.rec.msgs = nil
				x := e.open(t, mode)
				x.requestPhases(meta, toolCall)
				x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "text/event-stream")}})
				if hr := x.recv(); hr.GetModeOverride() != nil {
					t.Fatal("an SSE stream must not be buffered")
				}
				var got strings.Builder
				var eos bool
				for i := 0; i < len(sseStream); i += split {
					end := min(i+split, len(sseStream))
					last := end == len(sseStream)
					x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(sseStream[i:end]), EndOfStream: last}}})
					if mode == procmodev3.ProcessingMode_STREAMED {
						got.Write(x.recv().GetResponseBody().GetResponse().GetBodyMutation().GetBody())
						eos = last
					}
				}
				if mode == procmodev3.ProcessingMode_FULL_DUPLEX_STREAMED {
					x.stream.CloseSend()
					for {
						r, err := x.stream.Recv()
						if err != nil {
							break
						}
						sr := r.GetResponseBody().GetResponse().GetBodyMutation().GetStreamedResponse()
						got.Write(sr.GetBody())
						eos = sr.GetEndOfStream()
					}
				}
				if !eos {
					t.Error("the last body response must end the stream")
				}
				out := got.String()
				if strings.Contains(out, awsKey) || strings.Contains(out, ghToken) || strings.Count(out, "[MASKED:") != 2 {
					t.Fatalf("stream not masked: %q", out)
				}
				if want == "" {
					want = out
				} else if out != want {
					t.Errorf("output depends on chunking:\n%q\n%q", out, want)
				}
				var dirs []string
				for _, m := range e.rec.msgs {
					dirs = append(dirs, string(m.Direction))
				}
				if strings.Join(dirs, ",") != "request,notification,response" {
					t.Errorf("recorded %v", dirs)
				}
			})
		}
	}
}

func TestFailsClosed(t *testing.T) {
	e := start(t)
	cases := []struct {
		name   string
		meta   map[string]any
		ct     string
		body   string
		status int
	}{
		{"unknown masking profile", map[string]any{"masking_profile": "nope"}, "application/json", `{}`, 500},
		{"response that is not JSON", meta, "application/json", `{"jsonrpc":"2.0","id":1,"result":{"x":` + awsKey, 502},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := e.open(t, procmodev3.ProcessingMode_STREAMED)
			x.requestPhases(tc.meta, toolCall)
			x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", tc.ct)}})
			r := x.recv()
			if ir := r.GetImmediateResponse(); ir == nil {
				x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(tc.body), EndOfStream: true}}})
				r = x.recv()
			}
			ir := r.GetImmediateResponse()
			if ir == nil || int(ir.GetStatus().GetCode()) != tc.status {
				t.Fatalf("want an immediate %d, got %v", tc.status, r)
			}
			if strings.Contains(string(ir.GetBody()), awsKey) {
				t.Error("the failure response leaks the body")
			}
		})
	}
}

// An ext_authz denial is a local reply: the stream starts at the response.
func TestResponseOnlyStream(t *testing.T) {
	e := start(t)
	x := e.open(t, procmodev3.ProcessingMode_STREAMED)
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "403", "content-type", "application/json")}})
	x.recv()
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(`{"jsonrpc":"2.0","id":null,"error":{"code":-32013,"message":"denied"}}`), EndOfStream: true}}})
	if r := x.recv(); r.GetResponseBody() == nil {
		t.Fatalf("got %v", r)
	}
}

func TestAuditFullFailsClosed(t *testing.T) {
	e := start(t)
	e.rec.err = errors.New("audit spool full")
	x := e.open(t, procmodev3.ProcessingMode_STREAMED)
	x.send(&extprocv3.ProcessingRequest{MetadataContext: authzMeta(meta), Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: headers(":method", "POST")}})
	x.recv()
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(toolCall), EndOfStream: true}}})
	x.recv()
	x.send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json")}})
	if ir := x.recv().GetImmediateResponse(); ir == nil || ir.GetStatus().GetCode() != 503 {
		t.Fatalf("an unrecordable call must be refused with 503, got %v", ir)
	}
}
