package extproc

import (
	"bytes"
	"errors"
	"math"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// wireRequest is a ProcessingRequest that reads its own protobuf encoding
// (grpcwire.Unmarshaler): the messages Envoy sends on every exchange —
// headers, bodies, trailers, ext_authz's metadata (a Struct), the
// protocol configuration — encoded the plain way (each singular field
// once, no field the hand-written reader does not know, no duplicate map
// key) are read by hand into the generated types; anything else goes to
// proto.Unmarshal. Both give the same message (fuzzed against
// proto.Unmarshal in wire_req_test.go). It is also the proto.Message it
// wraps, so that a server without grpcwire's codec reads it as before.
type wireRequest struct {
	*extprocv3.ProcessingRequest
	// md, when set, is the stream's metadata cache: Envoy sends
	// ext_authz's metadata with every message of a stream, the same
	// bytes each time, read once.
	md *metadataCache
}

// metadataCache is the last metadata_context read by hand on a stream:
// its bytes and what they read as. A message whose metadata_context is
// the same bytes gets the same *corev3.Metadata (which nothing changes),
// so the stream's metadata is read, and merged, once.
type metadataCache struct {
	raw []byte
	msg *corev3.Metadata
}

// read is readMetadata(b), answered from the cache when b is the bytes
// it last read.
func (c *metadataCache) read(b []byte) (*corev3.Metadata, error) {
	if c == nil {
		return readMetadata(b)
	}
	if c.msg != nil && bytes.Equal(b, c.raw) {
		return c.msg, nil
	}
	md, err := readMetadata(b)
	if err != nil {
		return md, err
	}
	c.raw, c.msg = append(c.raw[:0], b...), md
	return md, nil
}

// UnmarshalWire implements grpcwire.Unmarshaler: b is copied where kept.
func (w *wireRequest) UnmarshalWire(b []byte) error {
	if w.ProcessingRequest == nil {
		w.ProcessingRequest = new(extprocv3.ProcessingRequest)
	}
	m := w.ProcessingRequest
	m.Reset()
	if readRequest(m, b, w.md) {
		return nil
	}
	m.Reset()
	return proto.Unmarshal(b, m)
}

// errPlain stops the hand-written reader: the message is left to
// proto.Unmarshal (never an error of its own).
var errPlain = errors.New("not a plain encoding")

// maxDepth bounds the nesting the hand-written reader follows (a Struct
// in a Struct...); deeper messages are proto.Unmarshal's.
const maxDepth = 32

// fields reads the fields of one message, calling f with each field's
// number, wire type and value (v for varint and fixed64, b for bytes);
// a field number outside 1..63 or seen twice while not repeated (bit set
// in rep) stops it.
func fields(b []byte, rep uint64, f func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error) error {
	var seen uint64
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || num > 63 {
			return errPlain
		}
		b = b[n:]
		bit := uint64(1) << num
		if seen&bit != 0 && rep&bit == 0 {
			return errPlain
		}
		seen |= bit
		var v uint64
		var val []byte
		switch typ {
		case protowire.VarintType:
			v, n = protowire.ConsumeVarint(b)
		case protowire.Fixed64Type:
			v, n = protowire.ConsumeFixed64(b)
		case protowire.BytesType:
			val, n = protowire.ConsumeBytes(b)
		default:
			return errPlain
		}
		if n < 0 {
			return errPlain
		}
		b = b[n:]
		if err := f(num, typ, v, val); err != nil {
			return err
		}
	}
	return nil
}

// readRequest reads b into m (empty), its metadata_context through md
// (may be nil); false: b is left to proto.Unmarshal.
func readRequest(m *extprocv3.ProcessingRequest, b []byte, md *metadataCache) bool {
	err := fields(b, 0, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		if num == 10 {
			if typ != protowire.VarintType {
				return errPlain
			}
			m.ObservabilityMode = protowire.DecodeBool(v)
			return nil
		}
		if typ != protowire.BytesType {
			return errPlain
		}
		if num >= 2 && num <= 7 && m.Request != nil {
			return errPlain // a second member of the oneof
		}
		var err error
		switch num {
		case 2, 3:
			var h *extprocv3.HttpHeaders
			if h, err = readHeaders(b); err == nil {
				if num == 2 {
					m.Request = &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: h}
				} else {
					m.Request = &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: h}
				}
			}
		case 4, 5:
			var body *extprocv3.HttpBody
			if body, err = readBody(b); err == nil {
				if num == 4 {
					m.Request = &extprocv3.ProcessingRequest_RequestBody{RequestBody: body}
				} else {
					m.Request = &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: body}
				}
			}
		case 6, 7:
			t := new(extprocv3.HttpTrailers)
			err = fields(b, 0, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
				if num != 1 || typ != protowire.BytesType {
					return errPlain
				}
				var e error
				t.Trailers, e = readHeaderMap(b)
				return e
			})
			if err == nil {
				if num == 6 {
					m.Request = &extprocv3.ProcessingRequest_RequestTrailers{RequestTrailers: t}
				} else {
					m.Request = &extprocv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: t}
				}
			}
		case 8:
			m.MetadataContext, err = md.read(b)
		case 11:
			m.ProtocolConfig, err = readProtocolConfig(b)
		default:
			return errPlain
		}
		return err
	})
	return err == nil
}

func readHeaders(b []byte) (*extprocv3.HttpHeaders, error) {
	h := new(extprocv3.HttpHeaders)
	return h, fields(b, 0, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			var err error
			h.Headers, err = readHeaderMap(b)
			return err
		case num == 3 && typ == protowire.VarintType:
			h.EndOfStream = protowire.DecodeBool(v)
			return nil
		}
		return errPlain
	})
}

func readHeaderMap(b []byte) (*corev3.HeaderMap, error) {
	hm := new(corev3.HeaderMap)
	return hm, fields(b, 1<<1, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if num != 1 || typ != protowire.BytesType {
			return errPlain
		}
		hv := new(corev3.HeaderValue)
		hm.Headers = append(hm.Headers, hv)
		return fields(b, 0, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
			if typ != protowire.BytesType {
				return errPlain
			}
			switch num {
			case 1, 2:
				if !utf8.Valid(b) {
					return errPlain
				}
				if num == 1 {
					hv.Key = string(b)
				} else {
					hv.Value = string(b)
				}
			case 3:
				hv.RawValue = append([]byte(nil), b...)
			default:
				return errPlain
			}
			return nil
		})
	})
}

func readBody(b []byte) (*extprocv3.HttpBody, error) {
	body := new(extprocv3.HttpBody)
	return body, fields(b, 0, func(num protowire.Number, typ protowire.Type, v uint64, b []byte) error {
		if num == 1 {
			if typ != protowire.BytesType {
				return errPlain
			}
			body.Body = append([]byte(nil), b...)
			return nil
		}
		if typ != protowire.VarintType {
			return errPlain
		}
		switch num {
		case 2:
			body.EndOfStream = protowire.DecodeBool(v)
		case 3:
			body.EndOfStreamWithoutMessage = protowire.DecodeBool(v)
		case 4:
			body.GrpcMessageCompressed = protowire.DecodeBool(v)
		case 5:
			body.DrainComplete = protowire.DecodeBool(v)
		default:
			return errPlain
		}
		return nil
	})
}

func readProtocolConfig(b []byte) (*extprocv3.ProtocolConfiguration, error) {
	pc := new(extprocv3.ProtocolConfiguration)
	return pc, fields(b, 0, func(num protowire.Number, typ protowire.Type, v uint64, _ []byte) error {
		if typ != protowire.VarintType {
			return errPlain
		}
		switch num {
		case 1:
			pc.RequestBodyMode = procmodev3.ProcessingMode_BodySendMode(int32(v))
		case 2:
			pc.ResponseBodyMode = procmodev3.ProcessingMode_BodySendMode(int32(v))
		case 3:
			pc.SendBodyWithoutWaitingForHeaderResponse = protowire.DecodeBool(v)
		default:
			return errPlain
		}
		return nil
	})
}

// readMapEntry reads a map entry: key 1 (a string) and value 2 (a
// message), both present.
func readMapEntry(b []byte) (key string, val []byte, err error) {
	var haveKey, haveVal bool
	err = fields(b, 0, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if typ != protowire.BytesType {
			return errPlain
		}
		switch num {
		case 1:
			if !utf8.Valid(b) {
				return errPlain
			}
			key, haveKey = string(b), true
		case 2:
			val, haveVal = b, true
		default:
			return errPlain
		}
		return nil
	})
	if err == nil && (!haveKey || !haveVal) {
		err = errPlain
	}
	return key, val, err
}

func readMetadata(b []byte) (*corev3.Metadata, error) {
	md := new(corev3.Metadata)
	return md, fields(b, 1<<1, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if num != 1 || typ != protowire.BytesType {
			return errPlain
		}
		key, val, err := readMapEntry(b)
		if err != nil {
			return err
		}
		if _, dup := md.FilterMetadata[key]; dup {
			return errPlain
		}
		st, err := readStruct(val, 1)
		if err != nil {
			return err
		}
		if md.FilterMetadata == nil {
			md.FilterMetadata = map[string]*structpb.Struct{}
		}
		md.FilterMetadata[key] = st
		return nil
	})
}

func readStruct(b []byte, depth int) (*structpb.Struct, error) {
	if depth > maxDepth {
		return nil, errPlain
	}
	st := new(structpb.Struct)
	return st, fields(b, 1<<1, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
		if num != 1 || typ != protowire.BytesType {
			return errPlain
		}
		key, val, err := readMapEntry(b)
		if err != nil {
			return err
		}
		if _, dup := st.Fields[key]; dup {
			return errPlain
		}
		v, err := readValue(val, depth+1)
		if err != nil {
			return err
		}
		if st.Fields == nil {
			st.Fields = map[string]*structpb.Value{}
		}
		st.Fields[key] = v
		return nil
	})
}

// readValue reads a google.protobuf.Value: exactly one member of its
// oneof kind, or none.
func readValue(b []byte, depth int) (*structpb.Value, error) {
	if depth > maxDepth {
		return nil, errPlain
	}
	v := new(structpb.Value)
	return v, fields(b, 0, func(num protowire.Number, typ protowire.Type, x uint64, b []byte) error {
		if v.Kind != nil {
			return errPlain // a second member of the oneof
		}
		switch {
		case num == 1 && typ == protowire.VarintType:
			v.Kind = &structpb.Value_NullValue{NullValue: structpb.NullValue(int32(x))}
		case num == 2 && typ == protowire.Fixed64Type:
			v.Kind = &structpb.Value_NumberValue{NumberValue: math.Float64frombits(x)}
		case num == 3 && typ == protowire.BytesType:
			if !utf8.Valid(b) {
				return errPlain
			}
			v.Kind = &structpb.Value_StringValue{StringValue: string(b)}
		case num == 4 && typ == protowire.VarintType:
			v.Kind = &structpb.Value_BoolValue{BoolValue: protowire.DecodeBool(x)}
		case num == 5 && typ == protowire.BytesType:
			st, err := readStruct(b, depth+1)
			if err != nil {
				return err
			}
			v.Kind = &structpb.Value_StructValue{StructValue: st}
		case num == 6 && typ == protowire.BytesType:
			l := new(structpb.ListValue)
			if err := fields(b, 1<<1, func(num protowire.Number, typ protowire.Type, _ uint64, b []byte) error {
				if num != 1 || typ != protowire.BytesType {
					return errPlain
				}
				e, err := readValue(b, depth+1)
				l.Values = append(l.Values, e)
				return err
			}); err != nil {
				return err
			}
			v.Kind = &structpb.Value_ListValue{ListValue: l}
		default:
			return errPlain
		}
		return nil
	})
}
