package extauthz

import (
	"bytes"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// envoyCheckRequest is a CheckRequest as Envoy sends one for an MCP
// tools/call (CheckRequestUtils::createHttpCheck, as test/envoydriver
// builds it): peers, time, the headers map, raw_body, the route's
// context extensions and metadata.
func envoyCheckRequest() *authv3.CheckRequest {
	addr := func(ip string, port uint32) *corev3.Address {
		return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			Address: ip, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port}}}}
	}
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_issues","arguments":{"q":"bug"}}}`
	md, _ := structpb.NewStruct(map[string]any{"target": "github", "n": 1.5, "l": []any{"a", true, nil}})
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: addr("10.1.2.3", 51234), Service: "agents"},
		Destination: &authv3.AttributeContext_Peer{Address: addr("10.1.2.4", 10000), Labels: map[string]string{"app": "gw"}},
		Request: &authv3.AttributeContext_Request{
			Time: timestamppb.New(time.Unix(1765000000, 123456789)),
			Http: &authv3.AttributeContext_HttpRequest{
				Id: "1234567", Method: "POST", Path: "/mcp/github?x=1", Host: "gw.test", Scheme: "https", Size: int64(len(body)), Protocol: "HTTP/1.1",
				Headers: map[string]string{
					":method": "POST", ":path": "/mcp/github?x=1", ":authority": "gw.test", ":scheme": "https",
					"authorization":        "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2ln",
					"content-type":         "application/json",
					"accept":               "application/json, text/event-stream",
					"mcp-protocol-version": "2025-06-18", "mcp-session-id": "sess-1",
					"user-agent": "agent/1.0", "x-request-id": "7f1c1a4e-0b9a-4c3e-9a55-3e2f4b6a7c8d",
					"x-forwarded-proto": "https", "x-envoy-internal": "true", "content-length": "104",
					"traceparent":     "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
					PartialBodyHeader: "false",
				},
				RawBody: []byte(body),
			},
		},
		ContextExtensions:    map[string]string{"airlock_target": "github"},
		MetadataContext:      &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{"envoy.filters.http.jwt_authn": md}},
		RouteMetadataContext: &corev3.Metadata{TypedFilterMetadata: map[string]*anypb.Any{"airlock": {TypeUrl: "type.googleapis.com/google.protobuf.Struct", Value: []byte{0x0a, 0x00}}}},
		TlsSession:           &authv3.AttributeContext_TLSSession{Sni: "gw.test"},
	}}
}

// envoyRawHeadersRequest is envoyCheckRequest with encode_raw_headers
// (header_map, a repeated name) and the body as a string.
func envoyRawHeadersRequest() *authv3.CheckRequest {
	cr := envoyCheckRequest()
	h := cr.Attributes.Request.Http
	h.HeaderMap = &corev3.HeaderMap{}
	for _, k := range slices.Sorted(maps.Keys(h.Headers)) {
		h.HeaderMap.Headers = append(h.HeaderMap.Headers, &corev3.HeaderValue{Key: k, RawValue: []byte(h.Headers[k])})
	}
	h.HeaderMap.Headers = append(h.HeaderMap.Headers,
		&corev3.HeaderValue{Key: "accept", Value: "text/plain"},
		&corev3.HeaderValue{Key: "x-dup", RawValue: []byte("1")}, &corev3.HeaderValue{Key: "x-dup", Value: "2"}, &corev3.HeaderValue{Key: "x-dup"})
	h.Headers = nil
	h.Body, h.RawBody = string(h.RawBody), nil
	return cr
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkDecode holds decodeCheckRequest to the generated code: an error
// where proto.Unmarshal errs, else FromCheckRequest of what it decoded,
// keeping nothing of b.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	var cr authv3.CheckRequest
	perr := proto.Unmarshal(b, &cr)
	in := slices.Clone(b)
	var got Request
	derr := decodeCheckRequest(in, &got)
	if (perr == nil) != (derr == nil) {
		t.Fatalf("errors differ on %x: proto.Unmarshal %v, decodeCheckRequest %v", b, perr, derr)
	}
	if perr != nil {
		return
	}
	want := FromCheckRequest(&cr)
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("decoded %x\n got %+v\nwant %+v", b, got, *want)
	}
	for i := range in { // nothing of the message may stay aliased
		in[i] = 0xa5
	}
	if !reflect.DeepEqual(&got, want) {
		t.Fatalf("the Request changed with the message's bytes: it aliases them\n got %+v\nwant %+v", got, *want)
	}
}

// field is one protobuf field, hand-encoded, for the edge cases.
func field(num protowire.Number, typ protowire.Type, v ...[]byte) []byte {
	b := protowire.AppendTag(nil, num, typ)
	switch typ {
	case protowire.BytesType:
		return protowire.AppendBytes(b, bytes.Join(v, nil))
	case protowire.StartGroupType:
		b = append(b, bytes.Join(v, nil)...)
		return protowire.AppendTag(b, num, protowire.EndGroupType)
	}
	return append(b, bytes.Join(v, nil)...)
}

func str(num protowire.Number, s string) []byte { return field(num, protowire.BytesType, []byte(s)) }
func msg(num protowire.Number, v ...[]byte) []byte {
	return field(num, protowire.BytesType, v...)
}
func varint(num protowire.Number, v uint64) []byte {
	return field(num, protowire.VarintType, protowire.AppendVarint(nil, v))
}
func entry(num protowire.Number, k, v string) []byte { return msg(num, str(1, k), str(2, v)) }

// httpReq wraps HttpRequest fields into a CheckRequest.
func httpReq(fields ...[]byte) []byte { return msg(1, msg(4, msg(2, fields...))) }

// nested is a CheckRequest whose messages nest depth deep (as
// proto.Unmarshal counts: each message and each map entry one level),
// through google.protobuf.Structs in metadata_context: CheckRequest,
// AttributeContext, Metadata and its filter_metadata entry, then a Struct
// holding an entry holding a Value holding a Struct, and so on.
func nested(depth int) []byte {
	return msg(1, msg(11, msg(1, str(1, "ns"), msg(2, structOf(depth-4)))))
}

// structOf is the fields of a Struct nesting u levels, itself included.
func structOf(u int) []byte {
	var inner []byte // Struct{}
	switch {
	case u <= 1:
	case u == 2:
		inner = msg(1, str(1, "a")) // Struct{"a": entry without a value}
	case u == 3:
		inner = msg(1, str(1, "a"), msg(2)) // Struct{"a": Value{}}
	default:
		inner = msg(1, str(1, "a"), msg(2, msg(5, structOf(u-3)))) // Struct{"a": Value{struct_value: ...}}
	}
	return inner
}

func TestDecodeCheckRequestEdges(t *testing.T) {
	invalid := "caf\xc3"
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"real request", marshal(t, envoyCheckRequest())},
		{"real request, header_map and body", marshal(t, envoyRawHeadersRequest())},
		{"last scalar wins", httpReq(str(2, "GET"), str(4, "/a"), str(2, "POST"), str(4, ""), str(5, "h1"), str(5, "h2"))},
		{"map entries merge, last wins", httpReq(entry(3, "a", "1"), entry(3, "b", "2"), entry(3, "a", "3"))},
		{"map entry without key or value", httpReq(msg(3, str(2, "v")), msg(3, str(1, "k")), msg(3))},
		{"map entry fields repeated, last wins", httpReq(msg(3, str(1, "k1"), str(2, "v1"), str(1, "k2"), str(2, "v2")))},
		{"map entry with unknown and wrong-type fields", httpReq(msg(3, varint(1, 5), str(1, "k"), varint(2, 1), str(2, "v"), varint(9, 1), field(3, protowire.StartGroupType)))},
		{"map entry invalid UTF-8 key", httpReq(entry(3, invalid, "v"))},
		{"map entry invalid UTF-8 value", httpReq(entry(3, "k", invalid))},
		{"map field of the wrong wire type", httpReq(varint(3, 7), entry(3, "a", "1"))},
		{"map field of the wrong wire type alone: an empty map", httpReq(varint(3, 7))},
		{"map field of the wrong wire type hides header_map", httpReq(msg(13, msg(1, str(1, "k"), str(2, "v"))), field(3, protowire.Fixed32Type, []byte{1, 2, 3, 4}))},
		{"map field, empty entry hides header_map", httpReq(msg(3), msg(13, msg(1, str(1, "k"), str(2, "v"))))},
		{"context_extensions of the wrong wire type: an empty map", msg(1, field(10, protowire.StartGroupType))},
		{"message repeated is merged", append(append(httpReq(str(2, "GET"), entry(3, "a", "1")), httpReq(str(4, "/p"), entry(3, "b", "2"))...),
			msg(1, msg(10, str(1, "airlock_target"), str(2, "t")), msg(4, msg(2, str(5, "host"))))...)},
		{"attributes repeated with context_extensions", append(msg(1, entry(10, "k", "1")), msg(1, entry(10, "k", "2"), entry(10, "j", "3"))...)},
		{"context_extensions invalid UTF-8", msg(1, entry(10, "k", invalid))},
		{"method invalid UTF-8", httpReq(str(2, invalid))},
		{"body invalid UTF-8", httpReq(str(11, invalid))},
		{"raw_body any bytes", httpReq(str(12, invalid))},
		{"raw_body wins over body", httpReq(str(11, "text"), str(12, "raw"))},
		{"empty raw_body: body", httpReq(str(12, "raw"), str(11, "text"), str(12, ""))},
		{"body only", httpReq(str(11, "text"))},
		{"pseudo-headers fill method and path", httpReq(entry(3, ":method", "PUT"), entry(3, ":path", "/x"))},
		{"partial body", httpReq(entry(3, PartialBodyHeader, "true"))},
		{"header_map joins duplicates in order", httpReq(msg(13, msg(1, str(1, "a"), str(2, "1")), msg(1, str(1, "a"), str(3, "2")), msg(1, str(1, "a"))),
			msg(13, msg(1, str(1, "a"), str(2, "v"), str(3, ""))))},
		{"header_map raw_value wins over value", httpReq(msg(13, msg(1, str(1, "k"), str(3, "raw"), str(2, "val"))))},
		{"header_map empty", httpReq(msg(13))},
		{"header_map ignored beside headers", httpReq(msg(13, msg(1, str(1, "k"), str(2, "v"))), entry(3, "a", "1"))},
		{"header_map validated beside headers", httpReq(entry(3, "a", "1"), msg(13, msg(1, str(1, invalid))))},
		{"header_map raw_value any bytes", httpReq(msg(13, msg(1, str(1, "k"), str(3, invalid))))},
		{"header_map value invalid UTF-8", httpReq(msg(13, msg(1, str(1, "k"), str(2, invalid))))},
		{"header_map key of the wrong type", httpReq(msg(13, msg(1, varint(1, 3), str(2, "v"))))},
		{"header_map of the wrong type", httpReq(varint(13, 1))},
		{"header_map headers of the wrong type", httpReq(msg(13, varint(1, 1)))},
		{"HeaderValue repeated fields", httpReq(msg(13, msg(1, str(1, "a"), str(1, "b"), str(2, "x"), str(2, "y"))))},
		{"read fields of the wrong wire type are unknown", httpReq(varint(2, 1), field(4, protowire.Fixed32Type, []byte{1, 2, 3, 4}), field(5, protowire.Fixed64Type, make([]byte, 8)), field(12, protowire.StartGroupType))},
		{"wrong wire type for attributes", varint(1, 1)},
		{"wrong wire type for request and http", msg(1, varint(4, 1), msg(4, varint(2, 1)))},
		{"unknown fields of each type", append(httpReq(varint(99, 1), field(100, protowire.Fixed32Type, []byte{1, 2, 3, 4}), field(101, protowire.Fixed64Type, make([]byte, 8)),
			str(102, "x"), field(103, protowire.StartGroupType, varint(1, 1), field(2, protowire.StartGroupType))), varint(7, 1)...)},
		{"unknown group, invalid inside", httpReq(field(103, protowire.StartGroupType, []byte{0x08}))},
		{"unknown group, mismatched end", httpReq(append(protowire.AppendTag(nil, 103, protowire.StartGroupType), protowire.AppendTag(nil, 104, protowire.EndGroupType)...))},
		{"end group at top level", protowire.AppendTag(nil, 1, protowire.EndGroupType)},
		{"end group in http", httpReq(protowire.AppendTag(nil, 3, protowire.EndGroupType))},
		{"reserved wire type", []byte{0x0e}},
		{"field number 0", []byte{0x02, 0x00}},
		{"field number too large", protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3|2)},
		{"field number too large in a map entry", httpReq(msg(3, protowire.AppendVarint(nil, uint64(protowire.MaxValidNumber+1)<<3)))},
		{"truncated length", []byte{0x0a, 0x05, 0x22}},
		{"truncated varint", []byte{0x08, 0x80}},
		{"overlong varint", httpReq(append([]byte{0x48}, bytes.Repeat([]byte{0xff}, 10)...))},
		{"truncated inside http", msg(1, msg(4, []byte{0x12, 0x03, 0x12, 0x05, 0x41}))},
		{"skipped string invalid UTF-8: id", httpReq(str(1, invalid))},
		{"skipped string invalid UTF-8: query", httpReq(str(7, invalid))},
		{"skipped string invalid UTF-8: source address", msg(1, msg(1, msg(1, msg(1, str(2, invalid)))))},
		{"skipped string invalid UTF-8: peer label", msg(1, msg(2, entry(3, "k", invalid)))},
		{"skipped string invalid UTF-8: metadata Struct key", msg(1, msg(11, msg(1, str(1, "ns"), msg(2, msg(1, str(1, invalid))))))},
		{"skipped bytes: Any value", msg(1, msg(13, msg(2, str(1, "ns"), msg(2, str(2, invalid)))))},
		{"skipped field of the wrong wire type", msg(1, varint(1, 1), varint(11, 2), msg(12, varint(1, 3)))},
		{"skipped scalar of the wrong wire type", httpReq(str(9, "x"))},
		{"skipped: port as fixed32", msg(1, msg(1, msg(1, msg(1, field(3, protowire.Fixed32Type, []byte{1, 2, 3, 4})))))},
		{"skipped double in a Struct", msg(1, msg(11, msg(1, str(1, "ns"), msg(2, msg(1, str(1, "k"), msg(2, field(2, protowire.Fixed64Type, make([]byte, 8))))))))},
		{"skipped double, truncated", msg(1, msg(11, msg(1, str(1, "ns"), msg(2, msg(1, str(1, "k"), msg(2, field(2, protowire.Fixed64Type, make([]byte, 7))))))))},
		{"depth: at the limit", nested(protowire.DefaultRecursionLimit)},
		{"depth: over the limit", nested(protowire.DefaultRecursionLimit + 1)},
	} {
		t.Run(tc.name, func(t *testing.T) { checkDecode(t, tc.b) })
	}
}

// TestDecodeDepthBoundary walks the recursion limit level by level, so
// that it falls on a map entry, a Value and a Struct in turn: the decoder
// errs exactly where proto.Unmarshal does, and the walk crosses it.
func TestDecodeDepthBoundary(t *testing.T) {
	var ok, refused int
	for depth := protowire.DefaultRecursionLimit - 4; depth <= protowire.DefaultRecursionLimit+4; depth++ {
		checkDecode(t, nested(depth))
		if proto.Unmarshal(nested(depth), new(authv3.CheckRequest)) == nil {
			ok++
		} else {
			refused++
		}
	}
	if ok == 0 || refused == 0 {
		t.Fatalf("the walk does not cross the limit: %d decoded, %d refused", ok, refused)
	}
}

// TestWireDescriptors: the decoder's field numbers are the generated
// code's, and every message a CheckRequest can hold is proto3 without
// groups or extensions (what skipField relies on).
func TestWireDescriptors(t *testing.T) {
	for _, tc := range []struct {
		md   protoreflect.MessageDescriptor
		num  protowire.Number
		name protoreflect.Name
	}{
		{checkRequestDesc, fieldCheckAttributes, "attributes"},
		{attributesDesc, fieldAttrRequest, "request"},
		{attributesDesc, fieldAttrContextExtensions, "context_extensions"},
		{attrRequestDesc, fieldRequestHTTP, "http"},
		{httpRequestDesc, fieldHTTPMethod, "method"},
		{httpRequestDesc, fieldHTTPHeaders, "headers"},
		{httpRequestDesc, fieldHTTPPath, "path"},
		{httpRequestDesc, fieldHTTPHost, "host"},
		{httpRequestDesc, fieldHTTPScheme, "scheme"},
		{httpRequestDesc, fieldHTTPBody, "body"},
		{httpRequestDesc, fieldHTTPRawBody, "raw_body"},
		{httpRequestDesc, fieldHTTPHeaderMap, "header_map"},
		{headerMapDesc, fieldHeaderMapHeaders, "headers"},
		{headerValueDesc, fieldHeaderValueKey, "key"},
		{headerValueDesc, fieldHeaderValueValue, "value"},
		{headerValueDesc, fieldHeaderValueRawValue, "raw_value"},
	} {
		if fd := tc.md.Fields().ByNumber(tc.num); fd == nil || fd.Name() != tc.name {
			t.Errorf("%s field %d is %v, want %s", tc.md.FullName(), tc.num, fd, tc.name)
		}
	}
	for _, fd := range []protoreflect.FieldDescriptor{attributesDesc.Fields().ByNumber(fieldAttrContextExtensions), httpRequestDesc.Fields().ByNumber(fieldHTTPHeaders)} {
		if !fd.IsMap() || fd.MapKey().Kind() != protoreflect.StringKind || fd.MapValue().Kind() != protoreflect.StringKind || !enforceUTF8(fd.MapKey()) || !enforceUTF8(fd.MapValue()) {
			t.Errorf("%s is not a map<string, string> of checked strings", fd.FullName())
		}
	}
	for _, n := range []protowire.Number{fieldHTTPMethod, fieldHTTPPath, fieldHTTPHost, fieldHTTPScheme, fieldHTTPBody} {
		if fd := httpRequestDesc.Fields().ByNumber(n); fd.Kind() != protoreflect.StringKind || fd.IsList() || !enforceUTF8(fd) {
			t.Errorf("%s is not a checked singular string", fd.FullName())
		}
	}
	if fd := httpRequestDesc.Fields().ByNumber(fieldHTTPRawBody); fd.Kind() != protoreflect.BytesKind || fd.IsList() {
		t.Errorf("%s is not singular bytes", fd.FullName())
	}
	if fd := headerMapDesc.Fields().ByNumber(fieldHeaderMapHeaders); !fd.IsList() || fd.Message() != headerValueDesc {
		t.Errorf("%s is not a repeated HeaderValue", fd.FullName())
	}
	seen := map[protoreflect.FullName]bool{}
	var walk func(md protoreflect.MessageDescriptor)
	walk = func(md protoreflect.MessageDescriptor) {
		if seen[md.FullName()] {
			return
		}
		seen[md.FullName()] = true
		if md.Syntax() != protoreflect.Proto3 {
			t.Errorf("%s is %s, not proto3", md.FullName(), md.Syntax())
		}
		if md.ExtensionRanges().Len() > 0 {
			t.Errorf("%s has extension ranges", md.FullName())
		}
		for i := range md.Fields().Len() {
			fd := md.Fields().Get(i)
			if fd.Kind() == protoreflect.GroupKind {
				t.Errorf("%s is a group", fd.FullName())
			}
			if fd.Kind() == protoreflect.StringKind && !enforceUTF8(fd) {
				t.Errorf("%s: a string not checked for UTF-8", fd.FullName())
			}
			if fd.Message() != nil {
				walk(fd.Message())
			}
		}
	}
	walk(checkRequestDesc)
	if len(seen) < 20 {
		t.Fatalf("walked only %d messages", len(seen))
	}
}

// FuzzDecodeCheckRequest: decodeCheckRequest(b) is
// FromCheckRequest(proto.Unmarshal(b)), and errs iff proto.Unmarshal
// errs, on real requests mutated and on any bytes.
func FuzzDecodeCheckRequest(f *testing.F) {
	f.Add(marshal(f, envoyCheckRequest()))
	f.Add(marshal(f, envoyRawHeadersRequest()))
	f.Add(httpReq(str(2, "GET"), entry(3, "a", "1"), msg(13, msg(1, str(1, "a"), str(3, "2"))), str(11, "b"), str(12, "r")))
	f.Add(append(msg(1, entry(10, "k", "1")), msg(1, entry(10, "k", "2"))...))
	f.Add(httpReq(field(103, protowire.StartGroupType, varint(1, 1)), str(7, "q")))
	f.Add(nested(12))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

// BenchmarkDecodeCheckRequest is reading Envoy's CheckRequest, by the
// generated code then FromCheckRequest ("proto", what the gRPC server did)
// and by decodeCheckRequest ("wire").
func BenchmarkDecodeCheckRequest(b *testing.B) {
	for _, tc := range []struct {
		name string
		cr   *authv3.CheckRequest
	}{{"headers", envoyCheckRequest()}, {"header_map", envoyRawHeadersRequest()}} {
		raw := marshal(b, tc.cr)
		b.Run(tc.name+"/proto", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var cr authv3.CheckRequest
				if err := proto.Unmarshal(raw, &cr); err != nil {
					b.Fatal(err)
				}
				if r := FromCheckRequest(&cr); r.Method == "" {
					b.Fatal("no method")
				}
			}
		})
		b.Run(tc.name+"/wire", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				in := new(checkRequest)
				if err := in.UnmarshalWire(raw); err != nil || in.Method == "" {
					b.Fatal(err)
				}
			}
		})
	}
}
