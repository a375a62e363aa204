package extauthz

import (
	"errors"
	"sync"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// This file writes the CheckResponse for a Result straight to protobuf
// bytes: what proto.Marshal(toCheckResponse(r)) writes (a deterministic
// one: the metadata's keys sorted), without the
// generated messages and the Struct in between. FuzzAppendCheckResponse
// holds it to toCheckResponse.

// errWireEncodeUTF8 is proto.Marshal's refusal of a string that is not
// valid UTF-8 (gRPC then fails the call, and Envoy denies it).
var errWireEncodeUTF8 = errors.New("extauthz: CheckResponse string is not valid UTF-8")

// Field numbers of what appendCheckResponse writes.
const (
	fieldRespStatus           = 1 // CheckResponse.status (google.rpc.Status)
	fieldRespDenied           = 2 // CheckResponse.denied_response
	fieldRespOK               = 3 // CheckResponse.ok_response
	fieldRespDynamicMetadata  = 4 // CheckResponse.dynamic_metadata (google.protobuf.Struct)
	fieldStatusCode           = 1 // google.rpc.Status.code
	fieldStatusMessage        = 2
	fieldDeniedStatus         = 1 // DeniedHttpResponse.status (envoy.type.v3.HttpStatus)
	fieldDeniedHeaders        = 2
	fieldDeniedBody           = 3
	fieldHTTPStatusCode       = 1 // HttpStatus.code
	fieldOKHeaders            = 2 // OkHttpResponse.headers
	fieldOKHeadersToRemove    = 5
	fieldOptionHeader         = 1 // HeaderValueOption.header (HeaderValue)
	fieldOptionAppendAction   = 3
	fieldHeaderValueKeyOut    = 1 // HeaderValue.key
	fieldHeaderValueValueOut  = 2
	headerOptionAppendActionV = int32(corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD)
)

// encodeCheckResponse is r's CheckResponse in a buffer of its own, of
// exactly its size: written into a pooled scratch buffer, then copied,
// so that the answer is one allocation of what it weighs.
func encodeCheckResponse(r *Result) ([]byte, error) {
	sp := responseScratch.Get().(*[]byte)
	out, err := appendCheckResponse((*sp)[:0], r)
	var b []byte
	if err == nil {
		b = make([]byte, len(out))
		copy(b, out)
	}
	if cap(out) <= maxResponseScratch {
		if out != nil {
			*sp = out[:0]
		}
		responseScratch.Put(sp)
	}
	return b, err
}

// responseScratch keeps the buffers encodeCheckResponse writes into.
var responseScratch = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

// maxResponseScratch bounds a pooled buffer: a large denial body does
// not stay pinned.
const maxResponseScratch = 64 << 10

// appendCheckResponse appends the CheckResponse that toCheckResponse(r)
// is to b. It refuses a
// string proto.Marshal refuses (not valid UTF-8), except in the dynamic
// metadata, which is then left out, as toCheckResponse leaves it out.
func appendCheckResponse(b []byte, r *Result) ([]byte, error) {
	allow := r.Status == 200 && !r.Denied
	if err := checkResponseUTF8(r, allow); err != nil {
		return nil, err
	}
	// Fields in the order proto.Marshal writes them: status, then
	// dynamic_metadata, then the http_response oneof (oneofs go last).
	c := code.Code_OK
	if !allow {
		c = deniedCode(r.Status)
	}
	b = protowire.AppendTag(b, fieldRespStatus, protowire.BytesType)
	at := len(b)
	b = append(b, 0) // the length, written by closeLen
	b = appendInt32(b, fieldStatusCode, int32(c))
	if !allow {
		b = appendString(b, fieldStatusMessage, r.Reason)
	}
	b = closeLen(b, at)

	if r.Metadata != nil {
		b = protowire.AppendTag(b, fieldRespDynamicMetadata, protowire.BytesType)
		at := len(b)
		b = append(b, 0)
		var err error
		if b, err = r.Metadata.AppendStruct(b); err != nil {
			// As toCheckResponse: metadata protobuf cannot carry is
			// left out rather than fail the answer.
			b = b[:at-1]
		} else {
			b = closeLen(b, at)
		}
	}

	if allow {
		b = protowire.AppendTag(b, fieldRespOK, protowire.BytesType)
		at := len(b)
		b = append(b, 0)
		for _, h := range r.SetHeaders {
			b = appendHeaderOption(b, fieldOKHeaders, h)
		}
		for _, name := range r.RemoveHeaders {
			b = protowire.AppendTag(b, fieldOKHeadersToRemove, protowire.BytesType)
			b = protowire.AppendString(b, name)
		}
		return closeLen(b, at), nil
	}
	b = protowire.AppendTag(b, fieldRespDenied, protowire.BytesType)
	at = len(b)
	b = append(b, 0)
	b = protowire.AppendTag(b, fieldDeniedStatus, protowire.BytesType)
	st := len(b)
	b = append(b, 0)
	b = appendInt32(b, fieldHTTPStatusCode, int32(r.Status))
	b = closeLen(b, st)
	for _, h := range r.ResponseHeaders {
		b = appendHeaderOption(b, fieldDeniedHeaders, h)
	}
	b = appendHeaderOption(b, fieldDeniedHeaders, Header{wire.HeaderDecisionID, r.DecisionID})
	b = appendBytes(b, fieldDeniedBody, r.Body)
	return closeLen(b, at), nil
}

// checkResponseUTF8 refuses, as proto.Marshal would, a string of the
// response (the metadata aside) that is not valid UTF-8.
func checkResponseUTF8(r *Result, allow bool) error {
	valid := func(hs []Header) bool {
		for _, h := range hs {
			if !utf8.ValidString(h.Name) || !utf8.ValidString(h.Value) {
				return false
			}
		}
		return true
	}
	if allow {
		if !valid(r.SetHeaders) {
			return errWireEncodeUTF8
		}
		for _, name := range r.RemoveHeaders {
			if !utf8.ValidString(name) {
				return errWireEncodeUTF8
			}
		}
		return nil
	}
	if !utf8.ValidString(r.Reason) || !utf8.ValidString(r.DecisionID) || !utf8.Valid(r.Body) || !valid(r.ResponseHeaders) {
		return errWireEncodeUTF8
	}
	return nil
}

// appendHeaderOption appends a HeaderValueOption that overwrites the
// header (headerOption's).
func appendHeaderOption(b []byte, num protowire.Number, h Header) []byte {
	value := 0 // the HeaderValue's size
	if h.Name != "" {
		value += 1 + protowire.SizeBytes(len(h.Name))
	}
	if h.Value != "" {
		value += 1 + protowire.SizeBytes(len(h.Value))
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(value)+2))
	b = protowire.AppendTag(b, fieldOptionHeader, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(value))
	b = appendString(b, fieldHeaderValueKeyOut, h.Name)
	b = appendString(b, fieldHeaderValueValueOut, h.Value)
	return appendInt32(b, fieldOptionAppendAction, headerOptionAppendActionV)
}

// appendString appends a proto3 string field (nothing when empty).
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// appendBytes appends a proto3 string field from bytes (nothing when
// empty).
func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// appendInt32 appends a proto3 int32 or enum field (nothing when 0).
func appendInt32(b []byte, num protowire.Number, v int32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, uint64(int64(v)))
}

// closeLen writes the length of what follows b[at] into b[at], a byte
// reserved for it, moving that up when the length needs more bytes.
func closeLen(b []byte, at int) []byte {
	n := len(b) - at - 1
	if n < 0x80 {
		b[at] = byte(n)
		return b
	}
	size := protowire.SizeVarint(uint64(n))
	b = append(b, make([]byte, size-1)...)
	copy(b[at+size:], b[at+1:at+1+n])
	protowire.AppendVarint(b[:at], uint64(n))
	return b
}
