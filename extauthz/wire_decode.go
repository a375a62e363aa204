package extauthz

import (
	"errors"
	"strings"
	"sync"
	"unicode/utf8"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// This file reads Envoy's CheckRequest straight from its protobuf bytes
// into a Request: what FromCheckRequest(proto.Unmarshal(b)) gives, without
// the generated messages in between (the headers map that the generated
// code fills through reflection was a sixth of airlock's CPU under load).
//
// It reads the fields FromCheckRequest reads and checks every other byte
// as proto.Unmarshal would decode it (the message descriptors of the
// generated code say what each field is), so that it accepts exactly
// what proto.Unmarshal accepts:
//   - a known field of the wrong wire type is an unknown field, skipped;
//   - unknown fields are skipped as protowire skips them (groups
//     included);
//   - a proto3 string that is not valid UTF-8 is an error, wherever it
//     is;
//   - the last value of a scalar wins, map entries merge (last wins), a
//     message field repeated is merged, repeated fields append;
//   - messages nest at most protowire.DefaultRecursionLimit deep (map
//     entries count, as the generated code counts them).
//
// FuzzDecodeCheckRequest holds it to the generated code.

var (
	errWireDecode     = errors.New("extauthz: malformed CheckRequest")
	errWireUTF8       = errors.New("extauthz: CheckRequest string is not valid UTF-8")
	errWireDepth      = errors.New("extauthz: CheckRequest exceeds maximum recursion depth")
	errWireGroup      = errors.New("extauthz: CheckRequest has a group field, which the wire decoder does not read")
	errWireUnknown    = errors.New("unknown field") // internal: the field is skipped
	checkRequestDesc  = (*authv3.CheckRequest)(nil).ProtoReflect().Descriptor()
	attributesDesc    = checkRequestDesc.Fields().ByNumber(1).Message()
	attrRequestDesc   = attributesDesc.Fields().ByNumber(4).Message()
	httpRequestDesc   = attrRequestDesc.Fields().ByNumber(2).Message()
	headerMapDesc     = httpRequestDesc.Fields().ByNumber(13).Message()
	headerValueDesc   = headerMapDesc.Fields().ByNumber(1).Message()
	stringMapEntryDsc = httpRequestDesc.Fields().ByNumber(3).Message()
)

// Field numbers of what the decoder reads.
const (
	fieldCheckAttributes       = 1  // CheckRequest.attributes
	fieldAttrRequest           = 4  // AttributeContext.request
	fieldAttrContextExtensions = 10 // AttributeContext.context_extensions
	fieldRequestHTTP           = 2  // AttributeContext.Request.http
	fieldHTTPMethod            = 2
	fieldHTTPHeaders           = 3
	fieldHTTPPath              = 4
	fieldHTTPHost              = 5
	fieldHTTPScheme            = 6
	fieldHTTPBody              = 11
	fieldHTTPRawBody           = 12
	fieldHTTPHeaderMap         = 13
	fieldHeaderMapHeaders      = 1 // HeaderMap.headers
	fieldHeaderValueKey        = 1 // HeaderValue.key
	fieldHeaderValueValue      = 2
	fieldHeaderValueRawValue   = 3
	fieldMapKey                = 1 // a map entry's key
	fieldMapValue              = 2
)

// kv is a map entry as read, aliasing the message bytes.
type kv struct{ k, v []byte }

// rawHeader is a header_map entry as read, aliasing the message bytes.
type rawHeader struct{ key, value, raw []byte }

// checkDecoder holds what one CheckRequest says, as slices of its bytes,
// until finish copies them out. Entries are kept in the order read: the
// last of a repeated map key wins, header_map's duplicates join in order.
type checkDecoder struct {
	method, path, host, scheme []byte
	body, rawBody              []byte
	headers                    []kv
	contextExtensions          []kv
	headerMap                  []rawHeader
	hasHeaderMap               bool // header_map present (even empty)
	// The headers and context_extensions fields were present, even with
	// no entry: the generated code makes a map for a map field it meets
	// before it looks at the wire type (a field of the wrong type, skipped,
	// still leaves an empty map), and FromCheckRequest reads header_map
	// only when there is no headers map.
	hasHeaders, hasContextExtensions bool
}

// decodeCheckRequest reads a CheckRequest's bytes into req (the zero
// Request), as FromCheckRequest(proto.Unmarshal(b)) would give it. req
// keeps nothing aliasing b.
func decodeCheckRequest(b []byte, req *Request) error {
	d := decoders.Get().(*checkDecoder)
	defer d.release()
	if err := d.checkRequest(b, protowire.DefaultRecursionLimit); err != nil {
		return err
	}
	d.finish(req)
	return nil
}

// decoders keeps checkDecoders, whose entry lists are reused.
var decoders = sync.Pool{New: func() any { return new(checkDecoder) }}

// maxPooledEntries bounds the entry lists a pooled decoder keeps: a
// request with more headers does not pin its lists.
const maxPooledEntries = 256

// release forgets the message (nothing pooled aliases a gRPC buffer) and
// pools d.
func (d *checkDecoder) release() {
	if cap(d.headers) > maxPooledEntries || cap(d.headerMap) > maxPooledEntries || cap(d.contextExtensions) > maxPooledEntries {
		return
	}
	clear(d.headers)
	clear(d.headerMap)
	clear(d.contextExtensions)
	*d = checkDecoder{headers: d.headers[:0], headerMap: d.headerMap[:0], contextExtensions: d.contextExtensions[:0]}
	decoders.Put(d)
}

// finish copies what was read into req: the strings in one allocation,
// the body in another. The strings share that allocation: whatever keeps
// one beyond the Check (the session table, an access request) keeps a
// copy (strings.Clone), not to pin them all, the token among them.
func (d *checkDecoder) finish(req *Request) {
	useMap := !d.hasHeaders // FromCheckRequest: the headers map, else header_map
	n := len(d.method) + len(d.path) + len(d.host) + len(d.scheme)
	for _, e := range d.headers {
		n += len(e.k) + len(e.v)
	}
	for _, e := range d.contextExtensions {
		n += len(e.k) + len(e.v)
	}
	if useMap {
		for _, h := range d.headerMap {
			n += len(h.key) + max(len(h.raw), len(h.value)) + 1 // 1: a joining comma
		}
	}
	var sb strings.Builder
	sb.Grow(n)
	// str copies b into sb and returns it. sb only appends: what it
	// returned earlier never changes, even when it grows (it was grown to
	// hold everything but the joins of a header_map name repeated more
	// than once).
	str := func(b []byte) string {
		if len(b) == 0 {
			return ""
		}
		start := sb.Len()
		sb.Write(b)
		return sb.String()[start:]
	}
	req.Method, req.Path, req.Host, req.Scheme = str(d.method), str(d.path), str(d.host), str(d.scheme)
	switch {
	case d.hasHeaders:
		req.Headers = make(map[string]string, len(d.headers))
		for _, e := range d.headers {
			req.Headers[str(e.k)] = str(e.v)
		}
	case d.hasHeaderMap:
		req.Headers = make(map[string]string, len(d.headerMap))
		for _, h := range d.headerMap {
			v := h.raw
			if len(v) == 0 {
				v = h.value
			}
			k := str(h.key)
			if prev, ok := req.Headers[k]; ok {
				// Joined as FromCheckRequest joins (prev + "," + v).
				start := sb.Len()
				sb.WriteString(prev)
				sb.WriteByte(',')
				sb.Write(v)
				req.Headers[k] = sb.String()[start:]
				continue
			}
			req.Headers[k] = str(v)
		}
	default:
		req.Headers = map[string]string{}
	}
	if d.hasContextExtensions {
		req.ContextExtensions = make(map[string]string, len(d.contextExtensions))
		for _, e := range d.contextExtensions {
			req.ContextExtensions[str(e.k)] = str(e.v)
		}
	}
	if len(d.rawBody) > 0 {
		req.Body = append([]byte(nil), d.rawBody...)
	} else if len(d.body) > 0 {
		req.Body = append([]byte(nil), d.body...)
	}
	req.Truncated = req.Headers[PartialBodyHeader] == "true"
	if req.Method == "" {
		req.Method = req.Headers[":method"]
	}
	if req.Path == "" {
		req.Path = req.Headers[":path"]
	}
}

func (d *checkDecoder) checkRequest(b []byte, depth int) error {
	return d.only(b, depth, checkRequestDesc, fieldCheckAttributes, (*checkDecoder).attributes)
}

// only reads b, a message of md, for its field (a message) alone, which
// read reads (each occurrence in turn: protobuf merges them); every other
// field is checked and skipped as the generated code would.
func (d *checkDecoder) only(b []byte, depth int, md protoreflect.MessageDescriptor, field protowire.Number, read func(*checkDecoder, []byte, int) error) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	for len(b) > 0 {
		num, wtyp, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if num == field && wtyp == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWireDecode
			}
			if err := read(d, v, depth); err != nil {
				return err
			}
			b = b[n:]
			continue
		}
		if n, err = skipField(md, num, wtyp, b, depth); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (d *checkDecoder) attributes(b []byte, depth int) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	for len(b) > 0 {
		num, wtyp, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		switch {
		case num == fieldAttrRequest && wtyp == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWireDecode
			}
			if err := d.request(v, depth); err != nil {
				return err
			}
			b = b[n:]
		case num == fieldAttrContextExtensions:
			d.hasContextExtensions = true
			var e kv
			if n, err = consumeStringMapEntry(wtyp, b, depth, &e); err == errWireUnknown {
				n, err = skipUnknown(num, wtyp, b)
			} else if err == nil {
				d.contextExtensions = append(d.contextExtensions, e)
			}
			if err != nil {
				return err
			}
			b = b[n:]
		default:
			if n, err = skipField(attributesDesc, num, wtyp, b, depth); err != nil {
				return err
			}
			b = b[n:]
		}
	}
	return nil
}

func (d *checkDecoder) request(b []byte, depth int) error {
	return d.only(b, depth, attrRequestDesc, fieldRequestHTTP, (*checkDecoder).http)
}

func (d *checkDecoder) http(b []byte, depth int) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	for len(b) > 0 {
		num, wtyp, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		var dst *[]byte // a string or bytes field read (last wins)
		utf8Checked := true
		switch num {
		case fieldHTTPMethod:
			dst = &d.method
		case fieldHTTPPath:
			dst = &d.path
		case fieldHTTPHost:
			dst = &d.host
		case fieldHTTPScheme:
			dst = &d.scheme
		case fieldHTTPBody:
			dst = &d.body
		case fieldHTTPRawBody:
			dst, utf8Checked = &d.rawBody, false
		case fieldHTTPHeaders:
			d.hasHeaders = true
			var e kv
			if n, err = consumeStringMapEntry(wtyp, b, depth, &e); err == errWireUnknown {
				n, err = skipUnknown(num, wtyp, b)
			} else if err == nil {
				d.headers = append(d.headers, e)
			}
			if err != nil {
				return err
			}
			b = b[n:]
			continue
		case fieldHTTPHeaderMap:
			if wtyp != protowire.BytesType {
				break
			}
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWireDecode
			}
			d.hasHeaderMap = true
			if err := d.headerMapMsg(v, depth); err != nil {
				return err
			}
			b = b[n:]
			continue
		}
		if dst != nil && wtyp == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWireDecode
			}
			if utf8Checked && !utf8.Valid(v) {
				return errWireUTF8
			}
			*dst = v
			b = b[n:]
			continue
		}
		if n, err = skipField(httpRequestDesc, num, wtyp, b, depth); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

func (d *checkDecoder) headerMapMsg(b []byte, depth int) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	for len(b) > 0 {
		num, wtyp, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if num == fieldHeaderMapHeaders && wtyp == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWireDecode
			}
			var h rawHeader
			if err := headerValue(v, depth, &h); err != nil {
				return err
			}
			d.headerMap = append(d.headerMap, h)
			b = b[n:]
			continue
		}
		if n, err = skipField(headerMapDesc, num, wtyp, b, depth); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// headerValue reads a config.core.v3.HeaderValue.
func headerValue(b []byte, depth int, h *rawHeader) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	for len(b) > 0 {
		num, wtyp, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		var dst *[]byte
		switch num {
		case fieldHeaderValueKey:
			dst = &h.key
		case fieldHeaderValueValue:
			dst = &h.value
		case fieldHeaderValueRawValue:
			dst = &h.raw
		}
		if dst != nil && wtyp == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return errWireDecode
			}
			if num != fieldHeaderValueRawValue && !utf8.Valid(v) {
				return errWireUTF8
			}
			*dst = v
			b = b[n:]
			continue
		}
		if n, err = skipField(headerValueDesc, num, wtyp, b, depth); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// consumeStringMapEntry reads one entry of a map<string, string> (key and
// value both proto3 strings) into e, as the generated code reads it: the
// entry counts one level of depth, an absent key or value is "", the last
// of each wins, other fields are skipped. errWireUnknown: the field is not
// length-delimited and is skipped as an unknown one.
func consumeStringMapEntry(wtyp protowire.Type, b []byte, depth int, e *kv) (int, error) {
	if depth--; depth < 0 {
		return 0, errWireDepth
	}
	if wtyp != protowire.BytesType {
		return 0, errWireUnknown
	}
	b, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, errWireDecode
	}
	for len(b) > 0 {
		num, wtyp, m := protowire.ConsumeTag(b)
		if m < 0 || num > protowire.MaxValidNumber {
			return 0, errWireDecode
		}
		b = b[m:]
		if (num == fieldMapKey || num == fieldMapValue) && wtyp == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return 0, errWireDecode
			}
			if !utf8.Valid(v) {
				return 0, errWireUTF8
			}
			if num == fieldMapKey {
				e.k = v
			} else {
				e.v = v
			}
			b = b[m:]
			continue
		}
		m, err := skipUnknown(num, wtyp, b)
		if err != nil {
			return 0, err
		}
		b = b[m:]
	}
	return n, nil
}

// consumeTag reads a field's tag as the generated code does: a field
// number from 1 to protowire.MaxValidNumber; an end-group tag outside a
// group is an error.
func consumeTag(b []byte) (protowire.Number, protowire.Type, int, error) {
	tag, n := protowire.ConsumeVarint(b)
	if n < 0 {
		return 0, 0, 0, errWireDecode
	}
	num := tag >> 3
	if num < uint64(protowire.MinValidNumber) || num > uint64(protowire.MaxValidNumber) {
		return 0, 0, 0, errWireDecode
	}
	wtyp := protowire.Type(tag & 7)
	if wtyp == protowire.EndGroupType {
		return 0, 0, 0, errWireDecode
	}
	return protowire.Number(num), wtyp, n, nil
}

// skipUnknown skips an unknown field's value as protowire does.
func skipUnknown(num protowire.Number, wtyp protowire.Type, b []byte) (int, error) {
	n := protowire.ConsumeFieldValue(num, wtyp, b)
	if n < 0 {
		return 0, errWireDecode
	}
	return n, nil
}

// skipField checks the value of field num of a message md (wire type
// wtyp, at b) as the generated code would decode it, without keeping it,
// and returns its length: a field md does not have, or has with another
// wire type, is unknown and skipped as protowire skips it. depth is what
// is left at md's level.
func skipField(md protoreflect.MessageDescriptor, num protowire.Number, wtyp protowire.Type, b []byte, depth int) (int, error) {
	if fd := md.Fields().ByNumber(num); fd != nil {
		n, err := skipKnown(fd, wtyp, b, depth)
		if err != errWireUnknown {
			return n, err
		}
	}
	return skipUnknown(num, wtyp, b)
}

// validateMessage checks a whole message of type md (b its bytes) as
// proto.Unmarshal would decode it.
func validateMessage(md protoreflect.MessageDescriptor, b []byte, depth int) error {
	if depth--; depth < 0 {
		return errWireDepth
	}
	for len(b) > 0 {
		num, wtyp, n, err := consumeTag(b)
		if err != nil {
			return err
		}
		b = b[n:]
		if n, err = skipField(md, num, wtyp, b, depth); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// skipKnown is skipField for a field md has. errWireUnknown: the wire
// type is not the field's, so the field is unknown.
func skipKnown(fd protoreflect.FieldDescriptor, wtyp protowire.Type, b []byte, depth int) (int, error) {
	switch {
	case fd.IsMap():
		return skipMapEntry(fd, wtyp, b, depth)
	case fd.IsList() && wtyp == protowire.BytesType && packable(fd.Kind()):
		// A packed run; the generated code reads either form of a
		// repeated scalar.
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errWireDecode
		}
		for len(v) > 0 {
			var m int
			switch scalarWireType(fd.Kind()) {
			case protowire.VarintType:
				_, m = protowire.ConsumeVarint(v)
			case protowire.Fixed32Type:
				_, m = protowire.ConsumeFixed32(v)
			default:
				_, m = protowire.ConsumeFixed64(v)
			}
			if m < 0 {
				return 0, errWireDecode
			}
			v = v[m:]
		}
		return n, nil
	}
	return skipValue(fd, wtyp, b, depth)
}

// skipMapEntry checks one entry of the map field fd.
func skipMapEntry(fd protoreflect.FieldDescriptor, wtyp protowire.Type, b []byte, depth int) (int, error) {
	if depth--; depth < 0 {
		return 0, errWireDepth
	}
	if wtyp != protowire.BytesType {
		return 0, errWireUnknown
	}
	b, n := protowire.ConsumeBytes(b)
	if n < 0 {
		return 0, errWireDecode
	}
	for len(b) > 0 {
		num, wtyp, m := protowire.ConsumeTag(b)
		if m < 0 || num > protowire.MaxValidNumber {
			return 0, errWireDecode
		}
		b = b[m:]
		err := errWireUnknown
		switch num {
		case fieldMapKey:
			m, err = skipValue(fd.MapKey(), wtyp, b, depth)
		case fieldMapValue:
			m, err = skipValue(fd.MapValue(), wtyp, b, depth)
		}
		if err == errWireUnknown {
			m, err = skipUnknown(num, wtyp, b)
		}
		if err != nil {
			return 0, err
		}
		b = b[m:]
	}
	return n, nil
}

// skipValue checks one value of field fd (singular, or one element of a
// repeated field).
func skipValue(fd protoreflect.FieldDescriptor, wtyp protowire.Type, b []byte, depth int) (int, error) {
	k := fd.Kind()
	switch k {
	case protoreflect.GroupKind:
		return 0, errWireGroup // no message airlock reads has one (TestWireDescriptors)
	case protoreflect.MessageKind:
		if wtyp != protowire.BytesType {
			return 0, errWireUnknown
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errWireDecode
		}
		return n, validateMessage(fd.Message(), v, depth)
	case protoreflect.StringKind, protoreflect.BytesKind:
		if wtyp != protowire.BytesType {
			return 0, errWireUnknown
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return 0, errWireDecode
		}
		if k == protoreflect.StringKind && enforceUTF8(fd) && !utf8.Valid(v) {
			return 0, errWireUTF8
		}
		return n, nil
	}
	if wtyp != scalarWireType(k) {
		return 0, errWireUnknown
	}
	var n int
	switch wtyp {
	case protowire.VarintType:
		_, n = protowire.ConsumeVarint(b)
	case protowire.Fixed32Type:
		_, n = protowire.ConsumeFixed32(b)
	default:
		_, n = protowire.ConsumeFixed64(b)
	}
	if n < 0 {
		return 0, errWireDecode
	}
	return n, nil
}

// packable: a repeated field of kind k may be packed.
func packable(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.StringKind, protoreflect.BytesKind, protoreflect.MessageKind, protoreflect.GroupKind:
		return false
	}
	return true
}

// scalarWireType is the wire type of a numeric kind.
func scalarWireType(k protoreflect.Kind) protowire.Type {
	switch k {
	case protoreflect.Fixed32Kind, protoreflect.Sfixed32Kind, protoreflect.FloatKind:
		return protowire.Fixed32Type
	case protoreflect.Fixed64Kind, protoreflect.Sfixed64Kind, protoreflect.DoubleKind:
		return protowire.Fixed64Type
	}
	return protowire.VarintType
}

// enforceUTF8 is the generated code's rule (internal/strs.EnforceUTF8):
// proto3 strings are checked, editions say per field.
func enforceUTF8(fd protoreflect.FieldDescriptor) bool {
	if fd.Syntax() == protoreflect.Editions {
		if e, ok := fd.(interface{ EnforceUTF8() bool }); ok {
			return e.EnforceUTF8()
		}
	}
	return fd.Syntax() == protoreflect.Proto3
}
