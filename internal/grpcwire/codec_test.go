package grpcwire

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// selfCoded is a message that encodes itself as fixed bytes and records
// what it was asked to decode.
type selfCoded struct {
	out []byte
	err error
	got []byte
}

func (s *selfCoded) AppendWire(b []byte) ([]byte, error) { return append(b, s.out...), s.err }
func (s *selfCoded) UnmarshalWire(b []byte) error {
	s.got = bytes.Clone(b)
	return s.err
}

func TestCodecSelfCodedMessages(t *testing.T) {
	c := Codec()
	if c.Name() != "proto" {
		t.Fatalf("Name() = %q, want proto (the content-subtype Envoy sends)", c.Name())
	}
	m := &selfCoded{out: []byte{0x0a, 0x01, 'x'}}
	data, err := c.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if got := data.Materialize(); !bytes.Equal(got, m.out) {
		t.Errorf("Marshal = %x, want the message's own encoding %x", got, m.out)
	}

	for _, tc := range []struct {
		name string
		in   mem.BufferSlice
		want []byte
	}{
		{"one buffer", mem.BufferSlice{mem.SliceBuffer([]byte{1, 2, 3})}, []byte{1, 2, 3}},
		{"split buffers", mem.BufferSlice{mem.SliceBuffer([]byte{1}), mem.SliceBuffer([]byte{2, 3})}, []byte{1, 2, 3}},
		{"empty", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var d selfCoded
			if err := c.Unmarshal(tc.in, &d); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(d.got, tc.want) {
				t.Errorf("UnmarshalWire got %x, want %x", d.got, tc.want)
			}
		})
	}

	bad := &selfCoded{err: errors.New("field 3: truncated")}
	if _, err := c.Marshal(bad); err == nil {
		t.Error("Marshal hid the message's encoding error")
	}
	if err := c.Unmarshal(mem.BufferSlice{mem.SliceBuffer([]byte{9})}, bad); err == nil || !bytes.Contains([]byte(err.Error()), []byte("field 3: truncated")) {
		t.Errorf("Unmarshal error = %v, want the message's decoding error", err)
	}
}

func TestCodecFallsBackToProtobuf(t *testing.T) {
	c := Codec()
	in := wrapperspb.String("hello")
	data, err := c.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := proto.Marshal(in)
	if got := data.Materialize(); !bytes.Equal(got, want) {
		t.Errorf("Marshal = %x, want protobuf's %x", got, want)
	}
	var out wrapperspb.StringValue
	if err := c.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if out.GetValue() != "hello" {
		t.Errorf("round trip = %q", out.GetValue())
	}
	if _, err := c.Marshal(struct{}{}); err == nil {
		t.Error("a value that is neither self-coded nor protobuf was encoded")
	}
}

// sized is a self-coded message that reports a size, right or not.
type sized struct {
	selfCoded
	size int
}

func (s *sized) SizeWire() int { return s.size }

// TestCodecSizedMessages: a message that knows its size is encoded whole
// into an exact or a pooled buffer, and still whole when its size was
// short or its encoding failed.
func TestCodecSizedMessages(t *testing.T) {
	c := Codec()
	big := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB: pooled
	for _, tc := range []struct {
		name string
		out  []byte
		size int
	}{
		{"small, exact", []byte{0x08, 0x01}, 2},
		{"large, pooled", big, len(big)},
		{"large, size short", big, len(big) / 2},
		{"small, size short", []byte("abcdef"), 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for range 3 { // pooled buffers come back and are reused
				data, err := c.Marshal(&sized{selfCoded: selfCoded{out: tc.out}, size: tc.size})
				if err != nil {
					t.Fatal(err)
				}
				if got := data.Materialize(); !bytes.Equal(got, tc.out) {
					t.Fatalf("Marshal = %d bytes, want the message's own %d", len(got), len(tc.out))
				}
				data.Free()
			}
		})
	}
	if _, err := c.Marshal(&sized{selfCoded: selfCoded{err: errors.New("no")}, size: 1 << 16}); err == nil {
		t.Error("a pooled encoding hid the message's error")
	}
}
