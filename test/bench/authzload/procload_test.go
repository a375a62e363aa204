package main

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/extproc"
	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/wire"
)

// countingRecorder is the audit sink of the in-process processor.
type countingRecorder struct{ n atomic.Int64 }

func (r *countingRecorder) Record(audit.Record) error { r.n.Add(1); return nil }

// procServer wraps a processor and counts the streams that ended.
type procServer struct {
	extprocv3.ExternalProcessorServer
	ended atomic.Int64
}

func (s *procServer) Process(st extprocv3.ExternalProcessor_ProcessServer) error {
	defer s.ended.Add(1)
	return s.ExternalProcessorServer.Process(st)
}

// airlockProc serves airlock's ext_proc processor (as serve configures
// it: mode_override relied on) on loopback.
func airlockProc(t *testing.T) (string, *procServer, *countingRecorder) {
	t.Helper()
	set, err := mask.NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &countingRecorder{}
	ps := &procServer{ExternalProcessorServer: &extproc.Server{P: extproc.New(extproc.Options{Profiles: set, Recorder: rec, ModeOverride: true})}}
	s := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(s, ps)
	return serveLoopback(t, s), ps, rec
}

func testExchange(t *testing.T, kind string) *exchangeMsgs {
	t.Helper()
	md, err := authzMetadata(procDecision(mask.DefaultProfile, "s-1", 1))
	if err != nil {
		t.Fatal(err)
	}
	x, err := newExchange(kind, md, "Bearer upstream", "s-1")
	if err != nil {
		t.Fatal(err)
	}
	return x
}

// TestExchangeIsEnvoyShaped: four messages in phase order, protocol_config
// in the first only (BUFFERED request body, STREAMED response body as
// airlock's Envoy config renders them), ext_authz's metadata in each, and
// a result with the secret in it.
func TestExchangeIsEnvoyShaped(t *testing.T) {
	for _, kind := range procKinds {
		t.Run(kind, func(t *testing.T) {
			x := testExchange(t, kind)
			var msgs []*extprocv3.ProcessingRequest
			for _, raw := range x.raw {
				m := &extprocv3.ProcessingRequest{}
				if err := proto.Unmarshal(raw, m); err != nil {
					t.Fatal(err)
				}
				msgs = append(msgs, m)
			}
			if msgs[0].GetRequestHeaders() == nil || msgs[1].GetRequestBody() == nil || msgs[2].GetResponseHeaders() == nil || msgs[3].GetResponseBody() == nil {
				t.Fatalf("messages are not request headers, request body, response headers, response body: %v", msgs)
			}
			pc := msgs[0].GetProtocolConfig()
			if pc.GetRequestBodyMode() != procmodev3.ProcessingMode_BUFFERED || pc.GetResponseBodyMode() != procmodev3.ProcessingMode_STREAMED {
				t.Errorf("protocol_config %v, want BUFFERED request and STREAMED response bodies", pc)
			}
			for i, m := range msgs {
				if i > 0 && m.GetProtocolConfig() != nil {
					t.Errorf("message %d has protocol_config; it belongs in the first only", i+1)
				}
				d := wire.ReadDecision(m.GetMetadataContext().GetFilterMetadata()[wire.AuthzNamespace].GetFields())
				if d.DecisionID == "" || d.MaskingProfile != mask.DefaultProfile || !d.Record {
					t.Errorf("message %d metadata decision %+v, want ext_authz's allow", i+1, d)
				}
			}
			if !msgs[1].GetRequestBody().GetEndOfStream() || !msgs[3].GetResponseBody().GetEndOfStream() {
				t.Error("bodies must end their stream")
			}
			ct := headerValue(msgs[2].GetResponseHeaders().GetHeaders(), "content-type")
			want := map[string]string{"json": "application/json", "sse": "text/event-stream"}[kind]
			if ct != want {
				t.Errorf("response content-type %q, want %q", ct, want)
			}
			if !strings.Contains(string(msgs[3].GetResponseBody().GetBody()), procSecret) {
				t.Error("the result carries no secret to mask")
			}
		})
	}
	if _, err := newExchange("xml", nil, "", ""); err == nil {
		t.Error("an unknown exchange kind was accepted")
	}
}

func headerValue(h *corev3.HeaderMap, key string) string {
	for _, v := range h.GetHeaders() {
		if v.GetKey() == key {
			return string(v.GetRawValue())
		}
	}
	return ""
}

// TestAirlockProcessorAnswersTheExchanges drives the exchanges at
// airlock's real processor in process: every answer passes
// expectProcMasked, each message is recorded and every stream ends.
func TestAirlockProcessorAnswersTheExchanges(t *testing.T) {
	addr, ps, rec := airlockProc(t)
	conns := dialTest(t, addr, 1)
	for _, kind := range procKinds {
		x := testExchange(t, kind)
		resp := &extprocv3.ProcessingResponse{}
		for range 3 {
			if err := runExchange(context.Background(), conns[0], x, resp, expectProcMasked); err != nil {
				t.Fatalf("%s: %v", kind, err)
			}
		}
	}
	if n := ps.ended.Load(); n != 6 {
		t.Errorf("%d streams ended at the processor, want 6", n)
	}
	if rec.n.Load() == 0 {
		t.Error("the processor recorded nothing")
	}
}

// TestExpectProc: the no-op's empty answers pass expectProcAny but not
// expectProcMasked; a wrong type or an unmasked body is an error.
func TestExpectProc(t *testing.T) {
	masked := func(body string) *extprocv3.ProcessingResponse {
		return &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{
			Response: &extprocv3.CommonResponse{BodyMutation: &extprocv3.BodyMutation{Mutation: &extprocv3.BodyMutation_Body{Body: []byte(body)}}}}}}
	}
	buffered := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}},
		ModeOverride: &procmodev3.ProcessingMode{ResponseBodyMode: procmodev3.ProcessingMode_BUFFERED_PARTIAL}}
	immediate := &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ImmediateResponse{ImmediateResponse: &extprocv3.ImmediateResponse{}}}
	tests := []struct {
		name    string
		exp     procExpect
		kind    string
		i       int
		resp    *extprocv3.ProcessingResponse
		wantErr string
	}{
		{"no-op headers", expectProcAny, "json", 2, noopResponseHeaders, ""},
		{"no-op body", expectProcAny, "json", 3, noopResponseBody, ""},
		{"wrong type", expectProcAny, "json", 0, noopRequestBody, "message 1 (request headers)"},
		{"immediate response", expectProcAny, "sse", 3, immediate, "immediate response"},
		{"JSON not switched to buffered", expectProcMasked, "json", 2, noopResponseHeaders, "mode_override"},
		{"JSON switched", expectProcMasked, "json", 2, buffered, ""},
		{"SSE stays streamed", expectProcMasked, "sse", 2, noopResponseHeaders, ""},
		{"masked", expectProcMasked, "sse", 3, masked(`data: {"id":7,"text":"key=[MASKED]"}`), ""},
		{"no body", expectProcMasked, "json", 3, noopResponseBody, "no masked body"},
		{"unmasked", expectProcMasked, "json", 3, masked(`{"id":7,"text":"key=` + procSecret + `"}`), "not masked"},
		{"result lost", expectProcMasked, "json", 3, masked(`{"error":"x"}`), "missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.exp(tc.kind, tc.i, tc.resp)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one with %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), procSecret) {
				t.Error("the error repeats the secret")
			}
		})
	}
}

// TestProcClosedLoopCountsExchanges: the closed loop against the no-op
// processor counts exchanges, without errors; against a processor that
// does not mask, every exchange is an error.
func TestProcClosedLoopCountsExchanges(t *testing.T) {
	s := grpc.NewServer()
	extprocv3.RegisterExternalProcessorServer(s, noopProcessor{})
	conns := dialTest(t, serveLoopback(t, s), 2)
	x := testExchange(t, "sse")
	p := ProcClosedLoop(context.Background(), conns, x, expectProcAny, shortLoad, nil)
	if p.Mode != "proc-sse" || p.Requests == 0 || p.Errors != 0 {
		t.Fatalf("no-op: mode %s, %d exchanges, %d errors %v", p.Mode, p.Requests, p.Errors, p.ErrorSamples)
	}
	p = ProcClosedLoop(context.Background(), conns, x, expectProcMasked, shortLoad, nil)
	if p.Requests != 0 || p.Errors == 0 {
		t.Fatalf("an unmasking processor: %d exchanges counted, %d errors", p.Requests, p.Errors)
	}
}

// allowWithMetadata is a Check server that allows with the decision
// metadata ext_proc needs, as airlock does.
type allowWithMetadata struct {
	authv3.UnimplementedAuthorizationServer
	n atomic.Int64
}

func (a *allowWithMetadata) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	md, err := authzMetadata(procDecision(mask.DefaultProfile, "s", int(a.n.Add(1))))
	if err != nil {
		return nil, err
	}
	r := okWith(map[string]string{"x-airlock-principal": "user000@acme.example"})
	r.DynamicMetadata = md.GetFilterMetadata()[wire.AuthzNamespace]
	return r, nil
}

// TestMemHoldsAndEndsStreams: the memory phase opens every stream (a
// Check, then ext_proc up to the first events), reads this process's
// memory, and ends each stream at the processor.
func TestMemHoldsAndEndsStreams(t *testing.T) {
	as := grpc.NewServer()
	authv3.RegisterAuthorizationServer(as, &allowWithMetadata{})
	authz := dialTest(t, serveLoopback(t, as), 2)
	addr, ps, _ := airlockProc(t)
	proc := dialTest(t, addr, 2)
	const n = 20
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := runMem(ctx, memLoad{authz: authz, proc: proc, work: testWorkload(t), exp: ExpectAirlockAllow{}, streams: n, parallel: 4, timeout: 20 * time.Second, pid: os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if m.Streams != n || m.Errors != 0 {
		t.Fatalf("%d of %d streams held, %d errors %v", m.Streams, n, m.Errors, m.Samples)
	}
	if m.RSS <= 0 || m.HWM < m.RSS || m.IdleRSS <= 0 {
		t.Errorf("memory figures %+v", m)
	}
	if got := ps.ended.Load(); got != n {
		t.Errorf("%d streams ended at the processor, want %d", got, n)
	}
}
