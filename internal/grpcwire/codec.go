// Package grpcwire is the gRPC codec of airlock's ext_authz and ext_proc
// servers. A message that encodes or decodes itself (hand-written
// protobuf wire code on the request path, each checked against the
// generated code by its package's fuzz tests) does so; every other
// message goes through grpc-go's standard protobuf codec, unchanged.
//
// The codec keeps gRPC's content-subtype "proto": what is on the wire is
// the same protobuf either way, so Envoy and every other client see no
// difference.
package grpcwire

import (
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	_ "google.golang.org/grpc/encoding/proto" // registers the "proto" codec this one falls back to
	"google.golang.org/grpc/mem"
)

// Marshaler is a message that writes its own protobuf encoding.
type Marshaler interface {
	// AppendWire appends the message's protobuf encoding to b.
	AppendWire(b []byte) ([]byte, error)
}

// Sizer is a Marshaler that knows its encoded size: the codec then
// encodes it into a buffer from gRPC's pool, given back once sent,
// instead of a new one per message.
type Sizer interface {
	Marshaler
	// SizeWire is the length AppendWire will append.
	SizeWire() int
}

// Unmarshaler is a message that reads its own protobuf encoding.
type Unmarshaler interface {
	// UnmarshalWire reads the message from b. b is valid only during the
	// call: the message must keep nothing that aliases it.
	UnmarshalWire(b []byte) error
}

// codec serves Marshaler and Unmarshaler messages itself and hands every
// other message to grpc-go's protobuf codec.
type codec struct{ proto encoding.CodecV2 }

// Codec returns the codec, falling back to the protobuf codec grpc-go
// registers as "proto".
func Codec() encoding.CodecV2 {
	p := encoding.GetCodecV2("proto")
	if p == nil {
		panic("grpcwire: grpc-go's proto codec is not registered")
	}
	return codec{proto: p}
}

// ServerOption makes a gRPC server use Codec for every call.
func ServerOption() grpc.ServerOption { return grpc.ForceServerCodecV2(Codec()) }

func (codec) Name() string { return "proto" }

func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(Marshaler)
	if !ok {
		return c.proto.Marshal(v)
	}
	var dst []byte
	if sz, ok := m.(Sizer); ok {
		n := sz.SizeWire()
		if !mem.IsBelowBufferPoolingThreshold(n) {
			return c.marshalPooled(m, n)
		}
		dst = make([]byte, 0, n)
	}
	b, err := m.AppendWire(dst)
	if err != nil {
		return nil, fmt.Errorf("grpcwire: encode %T: %w", v, err)
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	u, ok := v.(Unmarshaler)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData() // no copy: UnmarshalWire keeps nothing of it
	} else {
		b = data.Materialize()
	}
	if err := u.UnmarshalWire(b); err != nil {
		return fmt.Errorf("grpcwire: decode %T: %w", v, err)
	}
	return nil
}

// marshalPooled encodes m, of size n, into a buffer from gRPC's pool,
// which gRPC gives back once the message is sent.
func (codec) marshalPooled(m Marshaler, n int) (mem.BufferSlice, error) {
	pool := mem.DefaultBufferPool()
	buf := pool.Get(n)
	b, err := m.AppendWire((*buf)[:0])
	if err != nil {
		pool.Put(buf)
		return nil, fmt.Errorf("grpcwire: encode %T: %w", m, err)
	}
	if cap(b) == cap(*buf) && &b[:1][0] == &(*buf)[:1][0] {
		*buf = b
		return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
	}
	// SizeWire was short: AppendWire grew a buffer of its own.
	pool.Put(buf)
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}
