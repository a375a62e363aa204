package extproc

import (
	"bytes"
	"math"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/cputime"
	"github.com/airlock-mcp/airlock/internal/grpcwire"
	"github.com/airlock-mcp/airlock/internal/wire"
)

var _ grpcwire.Unmarshaler = (*wireRequest)(nil)

// wireRequests are the messages Envoy sends, and edge cases of the
// hand-written reader.
func wireRequests() []*extprocv3.ProcessingRequest {
	out := append(exchangeMsgs(false), exchangeMsgs(true)...)
	nested, _ := structpb.NewStruct(map[string]any{"a": map[string]any{"b": []any{1.5, "x", true, nil, map[string]any{}, []any{}}}, "n": math.Inf(-1), "e": ""})
	out = append(out,
		&extprocv3.ProcessingRequest{},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &extprocv3.HttpHeaders{Headers: &corev3.HeaderMap{}, EndOfStream: true}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: []byte("x"), EndOfStream: true,
			EndOfStreamWithoutMessage: true, GrpcMessageCompressed: true, DrainComplete: true}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: &extprocv3.HttpTrailers{}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &extprocv3.HttpTrailers{
			Trailers: &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: "grpc-status", Value: "0"}, {}, {RawValue: []byte("v")}}}}}},
		&extprocv3.ProcessingRequest{ObservabilityMode: true, ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: -1,
			ResponseBodyMode: procmodev3.ProcessingMode_FULL_DUPLEX_STREAMED, SendBodyWithoutWaitingForHeaderResponse: true}},
		&extprocv3.ProcessingRequest{MetadataContext: &corev3.Metadata{}},
		&extprocv3.ProcessingRequest{MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"x": {}, "y": nested}}},
		&extprocv3.ProcessingRequest{MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"v": {Fields: map[string]*structpb.Value{
			"empty": {}, "null": structpb.NewNullValue(), "odd-null": {Kind: &structpb.Value_NullValue{NullValue: 7}},
			"nan": structpb.NewNumberValue(math.NaN())}}}}},
		// What the hand-written reader leaves to proto.Unmarshal.
		&extprocv3.ProcessingRequest{Attributes: map[string]*structpb.Struct{"a": {}}},
		&extprocv3.ProcessingRequest{Request: &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Attributes: map[string]*structpb.Struct{"a": {}}}}},
		&extprocv3.ProcessingRequest{FlowControlInit: &extprocv3.ProcessingRequest_FlowControlInit{InitialWindowDownstreamToSidestream: 5}},
	)
	return out
}

// checkWireRequest: the hand-written reading of b is proto.Unmarshal's,
// fails exactly when it does, and keeps nothing of b.
func checkWireRequest(t *testing.T, b []byte) {
	t.Helper()
	want := new(extprocv3.ProcessingRequest)
	werr := proto.Unmarshal(b, want)
	// Twice on one stream: the second time its metadata, if any, comes
	// from the stream's cache.
	var md metadataCache
	for range 2 {
		in := bytes.Clone(b)
		w := wireRequest{md: &md}
		gerr := w.UnmarshalWire(in)
		if (werr != nil) != (gerr != nil) {
			t.Fatalf("%x: error %v, proto.Unmarshal's %v", b, gerr, werr)
		}
		if werr != nil {
			return
		}
		for i := range in {
			in[i] = 0xa5
		}
		det := proto.MarshalOptions{Deterministic: true}
		wb, err1 := det.Marshal(want)
		gb, err2 := det.Marshal(w.ProcessingRequest)
		if err1 != nil || err2 != nil || !bytes.Equal(wb, gb) {
			t.Fatalf("%x: read\n%v\nproto.Unmarshal\n%v", b, w.ProcessingRequest, want)
		}
	}
}

// TestMetadataReadOnce: on one stream, messages whose metadata_context
// is the same bytes share one read of it; other bytes are read anew, and
// every message reads as proto.Unmarshal reads it. The stream merges the
// shared metadata once, and metadata that came back after other
// metadata again.
func TestMetadataReadOnce(t *testing.T) {
	meta := func(principal string) *corev3.Metadata {
		st, err := structpb.NewStruct(map[string]any{wire.KeyPrincipal: principal, wire.KeyTarget: "github"})
		if err != nil {
			t.Fatal(err)
		}
		return &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{wire.AuthzNamespace: st}}
	}
	x, y := meta("alice"), meta("bob")
	var md metadataCache
	var sm streamMeta
	read := func(m *corev3.Metadata) *corev3.Metadata {
		t.Helper()
		// Deterministic: the same metadata, the same bytes, as Envoy sends
		// a stream's metadata each time.
		raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&extprocv3.ProcessingRequest{MetadataContext: m,
			Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte("{}")}}})
		if err != nil {
			t.Fatal(err)
		}
		w := wireRequest{ProcessingRequest: new(extprocv3.ProcessingRequest), md: &md}
		if err := w.UnmarshalWire(raw); err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(w.MetadataContext, m) {
			t.Fatalf("read %v, want %v", w.MetadataContext, m)
		}
		sm.merge(w.MetadataContext)
		return w.MetadataContext
	}
	first := read(x)
	if again := read(x); again != first {
		t.Error("the same metadata bytes were read again")
	}
	if sm.d.Principal != "alice" {
		t.Errorf("principal %q after alice's metadata", sm.d.Principal)
	}
	if other := read(y); other == first || sm.d.Principal != "bob" {
		t.Errorf("other metadata: shared %v, principal %q; want read anew, bob", other == first, sm.d.Principal)
	}
	if back := read(x); back == first || sm.d.Principal != "alice" {
		t.Errorf("alice's metadata after bob's: shared %v, principal %q; want read anew and merged, alice", back == first, sm.d.Principal)
	}
}

func TestWireRequest(t *testing.T) {
	for _, m := range wireRequests() {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		checkWireRequest(t, b)
	}
	// The exchange's messages are read by hand, not by proto.Unmarshal.
	for _, m := range append(exchangeMsgs(false), exchangeMsgs(true)...) {
		b, _ := proto.Marshal(m)
		if !readRequest(new(extprocv3.ProcessingRequest), b, nil) {
			t.Errorf("left to proto.Unmarshal: %v", m)
		}
	}
	tag := func(num protowire.Number, typ protowire.Type) []byte { return protowire.AppendTag(nil, num, typ) }
	lenField := func(num protowire.Number, v []byte) []byte {
		return protowire.AppendBytes(tag(num, protowire.BytesType), v)
	}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	body := func(v []byte) []byte { return lenField(5, v) }
	for _, b := range [][]byte{
		// Invalid UTF-8 in strings, a bad length, a group, a wrong wire type.
		lenField(3, lenField(1, lenField(1, lenField(1, []byte("a\xffb"))))),
		lenField(8, lenField(1, cat(lenField(1, []byte("ns")), lenField(2, lenField(1, cat(lenField(1, []byte("k")), lenField(2, lenField(3, []byte("\xc0"))))))))),
		{0x2a, 0x05, 0x01},
		cat(tag(5, protowire.StartGroupType), tag(5, protowire.EndGroupType)),
		cat(tag(5, protowire.VarintType), []byte{1}),
		body(cat(tag(2, protowire.BytesType), []byte{0})),
		// A field repeated (last wins or merged), two members of a
		// oneof, an unknown field, a duplicate map key, a map entry
		// without key or value.
		cat(body(lenField(1, []byte("a"))), body(lenField(1, []byte("b")))),
		body(cat(lenField(1, []byte("a")), lenField(1, []byte("b")))),
		cat(body(nil), lenField(4, nil)),
		body(cat(tag(9, protowire.VarintType), []byte{1})),
		lenField(8, cat(lenField(1, cat(lenField(1, []byte("a")), lenField(2, nil))), lenField(1, cat(lenField(1, []byte("a")), lenField(2, lenField(1, nil)))))),
		lenField(8, lenField(1, lenField(2, nil))),
		lenField(8, lenField(1, lenField(1, []byte("a")))),
		lenField(8, lenField(1, cat(lenField(1, []byte("a")), lenField(2, cat(lenField(1, cat(lenField(1, []byte("k")), lenField(2, cat(tag(4, protowire.VarintType), []byte{1}, tag(3, protowire.BytesType), []byte{0}))))))))),
		// Booleans and enums from any varint.
		body(cat(tag(2, protowire.VarintType), protowire.AppendVarint(nil, 1<<63))),
		lenField(11, cat(tag(1, protowire.VarintType), protowire.AppendVarint(nil, 1<<40))),
	} {
		checkWireRequest(t, b)
	}
}

// FuzzWireRequest: whatever the bytes (seeded with the messages Envoy
// sends), the hand-written reading is proto.Unmarshal's.
func FuzzWireRequest(f *testing.F) {
	for _, m := range wireRequests() {
		if b, err := proto.Marshal(m); err == nil && len(b) < 2048 {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkWireRequest(t, b) })
}

// BenchmarkWireRequest reads the 4 messages of an exchange (exchangeMsgs,
// JSON) as the gRPC server does: through grpcwire's codec (the
// hand-written reader) and through grpc-go's protobuf codec.
func BenchmarkWireRequest(b *testing.B) {
	var bufs []mem.BufferSlice
	for _, m := range exchangeMsgs(false) {
		raw, err := proto.Marshal(m)
		if err != nil {
			b.Fatal(err)
		}
		bufs = append(bufs, mem.BufferSlice{mem.SliceBuffer(raw)})
	}
	codec := grpcwire.Codec()
	for _, name := range []string{"grpcwire", "proto"} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			c0 := cputime.Process()
			for b.Loop() {
				var md metadataCache // one stream's
				for _, d := range bufs {
					var err error
					if name == "grpcwire" {
						err = codec.Unmarshal(d, &wireRequest{ProcessingRequest: new(extprocv3.ProcessingRequest), md: &md})
					} else {
						err = codec.Unmarshal(d, new(extprocv3.ProcessingRequest))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
			}
			// Process CPU (the collector's work included), steadier than
			// ns/op on a busy machine.
			b.ReportMetric(float64((cputime.Process()-c0).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}
