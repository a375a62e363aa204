package main

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestUnmarshalCheckResponseSkipsOnlyMetadata: the driver's decoding of an
// answer keeps every field an Expect reads, wherever dynamic_metadata
// sits among them, and still refuses broken framing.
func TestUnmarshalCheckResponseSkipsOnlyMetadata(t *testing.T) {
	md, err := structpb.NewStruct(map[string]any{"principal": "alice", "target": "github"})
	if err != nil {
		t.Fatal(err)
	}
	ok := &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{
		Headers:         []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "x-airlock-principal", Value: "alice"}}},
		HeadersToRemove: []string{"x-airlock-grant"},
	}}
	want := &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 0}, HttpResponse: ok}
	withMD := &authv3.CheckResponse{Status: want.Status, HttpResponse: ok, DynamicMetadata: md}
	full, err := proto.Marshal(withMD)
	if err != nil {
		t.Fatal(err)
	}
	mdOnly, err := proto.Marshal(&authv3.CheckResponse{DynamicMetadata: md})
	if err != nil {
		t.Fatal(err)
	}
	rest, err := proto.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"metadata last (proto.Marshal's order)", full},
		{"metadata first", append(append([]byte{}, mdOnly...), rest...)},
		{"metadata twice, around the rest", append(append(append([]byte{}, mdOnly...), rest...), mdOnly...)},
		{"no metadata", rest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got authv3.CheckResponse
			if err := (wireCodec{}).Unmarshal(tc.in, leanAnswer{&got}); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(&got, want) {
				t.Errorf("decoded %v, want %v", &got, want)
			}
		})
	}
	if err := (wireCodec{}).Unmarshal(full[:len(full)-3], leanAnswer{&authv3.CheckResponse{}}); err == nil {
		t.Error("a truncated answer decoded without an error")
	}
	// Not lean: the whole answer, metadata included.
	var whole authv3.CheckResponse
	if err := (wireCodec{}).Unmarshal(full, &whole); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&whole, withMD) {
		t.Errorf("decoded whole %v, want %v", &whole, withMD)
	}
}
