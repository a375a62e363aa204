package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// The ext_proc phase drives what Envoy's ext_proc filter sends for one MCP
// call with airlock's rendered configuration (envoy/ext_proc.go: request
// headers SEND, request body BUFFERED, response headers SEND, response
// body STREAMED, allow_mode_override, ext_authz's dynamic metadata
// forwarded): four messages on one stream, one answer each.
//
//   - JSON: request headers, the tools/call body (end of stream), response
//     headers of an application/json answer (airlock switches the body to
//     BUFFERED with mode_override), the ~4 KiB tool result (end of stream);
//   - SSE: the same request, response headers of a text/event-stream
//     answer (the body stays STREAMED), one chunk with two progress
//     notifications and the result as SSE events (end of stream).
//
// Both results carry a secret the default masking must replace, so an
// airlock that passed the body unmasked would count as wrong.

// procMethod is the full gRPC method name of ExternalProcessor.Process.
const procMethod = "/envoy.service.ext_proc.v3.ExternalProcessor/Process"

// procSecret is in every tool result; masking must remove it.
const procSecret = "AKIAIOSFODNN7EXAMPLE"

// procKinds are the exchanges of the ext_proc phase, in order.
var procKinds = []string{"json", "sse"}

// procMode is the Phase.Mode of an exchange kind.
func procMode(kind string) string { return "proc-" + kind }

// exchangeMsgs are the four messages of one exchange, pre-encoded, and
// what the answers must be.
type exchangeMsgs struct {
	kind string
	raw  [4][]byte
}

const procRequestID = 7

// procResult is a tools/call result of about 4 KiB with one secret in it.
func procResult(id int) string {
	return `{"jsonrpc":"2.0","id":` + strconv.Itoa(id) + `,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat(`issue #4711 Login fails with expired token; assignee: alice; labels: bug, auth. `, 48) +
		`key=` + procSecret + `"}]}}`
}

// procSSE is the result as an SSE stream: two progress notifications, then
// the result.
func procSSE(id int) string {
	var b strings.Builder
	for i := 1; i <= 2; i++ {
		fmt.Fprintf(&b, "event: message\nid: %d\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":%d,\"progress\":%d,\"total\":3}}\n\n", i, id, i)
	}
	fmt.Fprintf(&b, "event: message\nid: 3\ndata: %s\n\n", procResult(id))
	return b.String()
}

// procDecision is ext_authz's allow as Envoy forwards it to ext_proc.
func procDecision(profile, sessionID string, seq int) wire.Decision {
	return wire.Decision{
		DecisionID: fmt.Sprintf("dec_bench%012d", seq), Target: benchTarget, Principal: "user000@acme.example",
		ClientID: "0oa000000000000000a9e0", Issuer: "https://issuer.bench/oauth2/default", MaskingProfile: profile,
		Record: true, PolicyVersion: "bench", Protocol: "2025-06-18", SessionID: sessionID,
		Method: "tools/call", Tool: "get_file_contents",
	}
}

func authzMetadata(d wire.Decision) (*corev3.Metadata, error) {
	st, err := structpb.NewStruct(d.Fields())
	if err != nil {
		return nil, err
	}
	return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{wire.AuthzNamespace: st}}, nil
}

func headerMap(kv ...string) *extprocv3.HttpHeaders {
	h := &corev3.HeaderMap{}
	for i := 0; i+1 < len(kv); i += 2 {
		h.Headers = append(h.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return &extprocv3.HttpHeaders{Headers: h}
}

// procRequestHeaders are the request's headers as ext_proc sees them,
// after ext_authz swapped the agent's token for the upstream credential.
func procRequestHeaders(credential, sessionID string, bodyLen int) *extprocv3.HttpHeaders {
	return headerMap(":authority", benchHost, ":path", benchPath, ":method", "POST", ":scheme", "https",
		"accept", "application/json, text/event-stream", "content-type", "application/json",
		"content-length", strconv.Itoa(bodyLen), "mcp-protocol-version", "2025-06-18", "mcp-session-id", sessionID,
		"user-agent", "claude-code/2.1.3 (mcp-client)", "x-forwarded-for", "10.20.3.41", "x-forwarded-proto", "https",
		"x-request-id", "6f1e0c2a-4b8e-4e1a-9a53-000000000007", "authorization", credential,
		"x-airlock-principal", "user000@acme.example")
}

// newExchange builds the messages of one exchange of kind ("json" or
// "sse") with md as the forwarded metadata.
func newExchange(kind string, md *corev3.Metadata, credential, sessionID string) (*exchangeMsgs, error) {
	body := ToolCall(procRequestID, "get_file_contents", `{"owner":"acme","repo":"payments-1","path":"internal/ledger/reconcile.go","ref":"main"}`)
	var ct, resp string
	switch kind {
	case "json":
		ct, resp = "application/json", procResult(procRequestID)
	case "sse":
		ct, resp = "text/event-stream", procSSE(procRequestID)
	default:
		return nil, fmt.Errorf("unknown exchange kind %q", kind)
	}
	respHeaders := []string{":status", "200", "content-type", ct, "mcp-session-id", sessionID, "date", "Tue, 08 Dec 2026 01:00:00 GMT"}
	if kind == "json" {
		respHeaders = append(respHeaders, "content-length", strconv.Itoa(len(resp)))
	} else {
		respHeaders = append(respHeaders, "cache-control", "no-cache")
	}
	msgs := []*extprocv3.ProcessingRequest{
		{ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: procmodev3.ProcessingMode_BUFFERED, ResponseBodyMode: procmodev3.ProcessingMode_STREAMED},
			Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: procRequestHeaders(credential, sessionID, len(body))}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(body), EndOfStream: true}}},
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headerMap(respHeaders...)}},
		{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(resp), EndOfStream: true}}},
	}
	x := &exchangeMsgs{kind: kind}
	for i, m := range msgs {
		m.MetadataContext = md
		raw, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		x.raw[i] = raw
	}
	return x, nil
}

// procExpect checks the answer to message i of an exchange.
type procExpect func(kind string, i int, r *extprocv3.ProcessingResponse) error

// expectProcAny accepts an answer of the message's type: what a no-op
// processor gives.
func expectProcAny(_ string, i int, r *extprocv3.ProcessingResponse) error {
	var ok bool
	switch i {
	case 0:
		ok = r.GetRequestHeaders() != nil
	case 1:
		ok = r.GetRequestBody() != nil
	case 2:
		ok = r.GetResponseHeaders() != nil
	default:
		ok = r.GetResponseBody() != nil
	}
	if !ok {
		return fmt.Errorf("message %d (%s): answered with %s", i+1, procPhaseName(i), describeProcResponse(r))
	}
	return nil
}

// expectProcMasked is airlock's answer: the right types, a JSON body
// switched to BUFFERED, and the result masked (present, without the
// secret).
func expectProcMasked(kind string, i int, r *extprocv3.ProcessingResponse) error {
	if err := expectProcAny(kind, i, r); err != nil {
		return err
	}
	switch i {
	case 2:
		// airlock asks for the whole JSON body: BUFFERED_PARTIAL (so a body
		// over Envoy's buffer still reaches it and is refused by id) or
		// BUFFERED; either way Envoy then sends it in one message.
		if m := r.GetModeOverride().GetResponseBodyMode(); kind == "json" && m != procmodev3.ProcessingMode_BUFFERED_PARTIAL && m != procmodev3.ProcessingMode_BUFFERED {
			return fmt.Errorf("JSON response headers: mode_override %v, want BUFFERED_PARTIAL or BUFFERED", m)
		}
	case 3:
		body := r.GetResponseBody().GetResponse().GetBodyMutation().GetBody()
		switch {
		case len(body) == 0:
			return errors.New("response body: no masked body in the answer")
		case bytes.Contains(body, []byte(procSecret)):
			return errors.New("response body: the secret was not masked")
		case !bytes.Contains(body, []byte(`"id":7`)):
			return errors.New("response body: the result is missing from the masked body")
		}
	}
	return nil
}

func procPhaseName(i int) string {
	return [...]string{"request headers", "request body", "response headers", "response body"}[i]
}

func describeProcResponse(r *extprocv3.ProcessingResponse) string {
	if ir := r.GetImmediateResponse(); ir != nil {
		return fmt.Sprintf("an immediate response (HTTP %d)", ir.GetStatus().GetCode())
	}
	return fmt.Sprintf("%T", r.GetResponse())
}

// runExchange plays one exchange on a new stream: each message, then its
// answer, then the end of the stream.
func runExchange(ctx context.Context, c *grpc.ClientConn, x *exchangeMsgs, resp *extprocv3.ProcessingResponse, exp procExpect) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, procMethod)
	if err != nil {
		return fmt.Errorf("open stream: %w", err)
	}
	for i := range x.raw {
		m := preEncoded(x.raw[i])
		if err := s.SendMsg(&m); err != nil {
			return fmt.Errorf("send %s: %w", procPhaseName(i), err)
		}
		resp.Reset()
		if err := s.RecvMsg(resp); err != nil {
			return fmt.Errorf("answer to %s: %w", procPhaseName(i), err)
		}
		if err := exp(x.kind, i, resp); err != nil {
			return err
		}
	}
	if err := s.CloseSend(); err != nil {
		return err
	}
	// The processor ends the stream once it has read the half-close.
	if err := s.RecvMsg(resp); !errors.Is(err, io.EOF) {
		return fmt.Errorf("end of stream: got %v, want EOF", err)
	}
	return nil
}

// ProcClosedLoop runs Concurrency workers, each playing exchange after
// exchange, and measures exchanges per second, their latency and the CPU
// per exchange in the window after the warm-up.
func ProcClosedLoop(ctx context.Context, conns []*grpc.ClientConn, x *exchangeMsgs, exp procExpect, l Load, m meter) Phase {
	return runClosedLoop(ctx, procMode(x.kind), len(conns), l, m, func(id int) func(context.Context) error {
		conn := conns[id%len(conns)]
		resp := &extprocv3.ProcessingResponse{}
		return func(ctx context.Context) error { return runExchange(ctx, conn, x, resp, exp) }
	})
}
