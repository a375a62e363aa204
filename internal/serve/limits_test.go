package serve

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// A JSON response over limits.max_response_bytes, as Envoy's
// BUFFERED_PARTIAL sends it (the stream buffer's worth and more, without
// end_of_stream, in one message over gRPC's 4 MiB default), reaches the
// served ext_proc and comes back as a 502 JSON-RPC error by the request's
// id — not a bare gRPC error, which Envoy would turn into its own 500.
// serve also tells the processor that its rendered config honours
// mode_override, so the JSON body is asked for BUFFERED_PARTIAL.
func TestOverLimitResponseIsAnsweredByID(t *testing.T) {
	cfg := testConfig(t, "  authz: 127.0.0.1:0\n  proc: 127.0.0.1:0\n  xds: ''\n  http: ''", "limits: {max_response_bytes: 4194304}\n")
	g := start(t, cfg)
	conn, err := grpc.NewClient(g.ProcAddr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := extprocv3.NewExternalProcessorClient(conn).Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	md, _ := structpb.NewStruct(map[string]any{"principal": "p", "decision_id": "d-1", "target": "github", "masking_profile": "default"})
	hdr := func(kv ...string) *extprocv3.HttpHeaders {
		h := &corev3.HeaderMap{}
		for i := 0; i < len(kv); i += 2 {
			h.Headers = append(h.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
		}
		return &extprocv3.HttpHeaders{Headers: h}
	}
	send := func(r *extprocv3.ProcessingRequest) *extprocv3.ProcessingResponse {
		t.Helper()
		if err := s.Send(r); err != nil {
			t.Fatal(err)
		}
		resp, err := s.Recv()
		if err != nil {
			t.Fatalf("bare gRPC error: %v", err)
		}
		return resp
	}
	send(&extprocv3.ProcessingRequest{
		ProtocolConfig:  &extprocv3.ProtocolConfiguration{RequestBodyMode: procmodev3.ProcessingMode_BUFFERED, ResponseBodyMode: procmodev3.ProcessingMode_STREAMED},
		MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{wire.AuthzNamespace: md}},
		Request:         &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: hdr(":method", "POST", ":path", "/mcp/github")},
	})
	send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{
		Body: []byte(`{"jsonrpc":"2.0","id":41,"method":"tools/call","params":{"name":"x"}}`), EndOfStream: true}}})
	r := send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hdr(":status", "200", "content-type", "application/json")}})
	if got := r.GetModeOverride().GetResponseBodyMode(); got != procmodev3.ProcessingMode_BUFFERED_PARTIAL {
		t.Fatalf("mode_override %v, want BUFFERED_PARTIAL", got)
	}
	// Envoy's stream buffer here is 4 MiB (the larger body limit); its
	// partial send is over it by a read.
	body := `{"jsonrpc":"2.0","id":41,"result":{"pad":"` + strings.Repeat("a", 4<<20+64<<10)
	r = send(&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(body)}}})
	ir := r.GetImmediateResponse()
	var e struct {
		ID    json.RawMessage `json:"id"`
		Error struct{ Message string }
	}
	if ir == nil || ir.GetStatus().GetCode() != 502 || json.Unmarshal(ir.GetBody(), &e) != nil || string(e.ID) != "41" ||
		!strings.Contains(e.Error.Message, "limits.max_response_bytes") {
		t.Fatalf("got %v, want a 502 JSON-RPC error for id 41 naming the limit", r)
	}
}
