package extproc

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"

	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/mask"
)

// noop answers every message with an empty response of the matching type:
// the floor of an ext_proc round trip on this machine.
type noop struct {
	extprocv3.UnimplementedExternalProcessorServer
}

func (noop) Process(s extprocv3.ExternalProcessor_ProcessServer) error {
	for {
		req, err := s.Recv()
		if err != nil {
			return nil
		}
		var r *extprocv3.ProcessingResponse
		switch req.GetRequest().(type) {
		case *extprocv3.ProcessingRequest_RequestHeaders:
			r = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestHeaders{RequestHeaders: &extprocv3.HeadersResponse{}}}
		case *extprocv3.ProcessingRequest_RequestBody:
			r = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_RequestBody{RequestBody: &extprocv3.BodyResponse{}}}
		case *extprocv3.ProcessingRequest_ResponseHeaders:
			r = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &extprocv3.HeadersResponse{}}}
		default:
			r = &extprocv3.ProcessingResponse{Response: &extprocv3.ProcessingResponse_ResponseBody{ResponseBody: &extprocv3.BodyResponse{}}}
		}
		if err := s.Send(r); err != nil {
			return err
		}
	}
}

type discard struct{}

func (discard) Record(audit.Record) error { return nil }

// BenchmarkExchange is one MCP exchange as Envoy drives it over real gRPC
// on loopback (request headers and body, response headers, a ~4 KiB JSON
// tool result with one secret in it), through airlock's processor and
// through a no-op processor. The difference is what masking and recording
// add per message (docs/benchmarks.md).
func BenchmarkExchange(b *testing.B) {
	set, _ := mask.NewSet(nil)
	result := `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"` +
		strings.Repeat(`issue #4711 Login fails with expired token; assignee: alice; labels: bug, auth. `, 48) +
		`key=AKIAIOSFODNN7EXAMPLE"}]}}`
	for _, tc := range []struct {
		name string
		srv  extprocv3.ExternalProcessorServer
	}{
		{"noop", noop{}},
		{"airlock", &Server{P: New(Options{Profiles: set, Recorder: discard{}})}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lis, _ := net.Listen("tcp", "127.0.0.1:0")
			srv := grpc.NewServer()
			extprocv3.RegisterExternalProcessorServer(srv, tc.srv)
			go srv.Serve(lis)
			defer srv.Stop()
			conn, _ := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
			defer conn.Close()
			c := extprocv3.NewExternalProcessorClient(conn)
			msgs := []*extprocv3.ProcessingRequest{
				{ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: procmodev3.ProcessingMode_BUFFERED, ResponseBodyMode: procmodev3.ProcessingMode_STREAMED},
					MetadataContext: authzMeta(meta), Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: headers(":method", "POST", "mcp-session-id", "s")}},
				{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(toolCall), EndOfStream: true}}},
				{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json")}},
				{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte(result), EndOfStream: true}}},
			}
			b.SetBytes(int64(len(result)))
			b.ReportAllocs()
			for b.Loop() {
				s, err := c.Process(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				for _, m := range msgs {
					if err := s.Send(m); err != nil {
						b.Fatal(err)
					}
					r, err := s.Recv()
					if err != nil {
						b.Fatal(err)
					}
					if tc.name == "airlock" && r.GetResponseBody() != nil && strings.Contains(string(r.GetResponseBody().GetResponse().GetBodyMutation().GetBody()), "AKIA") {
						b.Fatal(fmt.Errorf("not masked"))
					}
				}
				s.CloseSend()
			}
		})
	}
}
