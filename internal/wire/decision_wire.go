package wire

import (
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of google.protobuf.Struct, Value and ListValue, and of a
// map entry, as AppendStruct writes them.
const (
	fieldStructFields   = 1 // Struct.fields (map<string, Value>)
	fieldEntryKey       = 1
	fieldEntryValue     = 2
	fieldValueString    = 3 // Value.string_value
	fieldValueBool      = 4 // Value.bool_value
	fieldValueList      = 6 // Value.list_value
	fieldListValueValue = 1 // ListValue.values
)

// structField is one key of the Struct: whether the Decision has it and
// how its value is written.
type structField struct {
	key string
	// str is the field's string; opt: left out when empty.
	str func(d *Decision) string
	opt bool
	// Otherwise a bool (the record flag, or batch's true) or a list.
	boolean func(d *Decision) (v, present bool)
	list    func(d *Decision) (v []string, present bool)
}

// structFields are the keys Struct writes, sorted by key: AppendStruct
// writes the map in that order, as a deterministic proto.Marshal does.
var structFields = []structField{
	{key: KeyBatch, boolean: func(d *Decision) (bool, bool) { return true, d.Batch }},
	{key: KeyClientID, str: func(d *Decision) string { return d.ClientID }},
	{key: KeyDecisionID, str: func(d *Decision) string { return d.DecisionID }},
	{key: KeyGrant, str: func(d *Decision) string { return d.Grant }, opt: true},
	{key: KeyIDs, list: func(d *Decision) ([]string, bool) { return d.IDs, d.Batch }},
	{key: KeyIssuer, str: func(d *Decision) string { return d.Issuer }},
	{key: KeyMaskingProfile, str: func(d *Decision) string { return d.MaskingProfile }},
	{key: KeyMethod, str: func(d *Decision) string { return d.Method }, opt: true},
	{key: KeyMethods, list: func(d *Decision) ([]string, bool) { return d.Methods, d.Batch }},
	{key: KeyPolicyVersion, str: func(d *Decision) string { return d.PolicyVersion }},
	{key: KeyPrincipal, str: func(d *Decision) string { return d.Principal }},
	{key: KeyProtocol, str: func(d *Decision) string { return d.Protocol }},
	{key: KeyRecord, boolean: func(d *Decision) (bool, bool) { return d.Record, true }},
	{key: KeySessionID, str: func(d *Decision) string { return d.SessionID }, opt: true},
	{key: KeyTarget, str: func(d *Decision) string { return d.Target }},
	{key: KeyTool, str: func(d *Decision) string { return d.Tool }, opt: true},
	{key: KeyTools, list: func(d *Decision) ([]string, bool) { return d.Tools, d.Batch }},
}

// AppendStruct appends to b the protobuf encoding of the Struct that
// Struct returns (the message's fields, without a tag or length): the
// same Struct, written without building it, its map entries in key order
// as a deterministic proto.Marshal writes them. Like Struct it refuses a
// string that is not valid UTF-8, and b is then returned as it was.
func (d *Decision) AppendStruct(b []byte) ([]byte, error) {
	for _, f := range structFields {
		switch {
		case f.str != nil:
			if !utf8.ValidString(f.str(d)) {
				return b, errInvalidUTF8
			}
		case f.list != nil:
			l, ok := f.list(d)
			for _, v := range l {
				if ok && !utf8.ValidString(v) {
					return b, errInvalidUTF8
				}
			}
		}
	}
	for _, f := range structFields {
		switch {
		case f.str != nil:
			if v := f.str(d); v != "" || !f.opt {
				b = appendEntry(b, f.key, 1+protowire.SizeBytes(len(v)))
				b = protowire.AppendTag(b, fieldValueString, protowire.BytesType)
				b = protowire.AppendString(b, v)
			}
		case f.boolean != nil:
			if v, ok := f.boolean(d); ok {
				b = appendEntry(b, f.key, 2)
				b = protowire.AppendTag(b, fieldValueBool, protowire.VarintType)
				b = protowire.AppendVarint(b, protowire.EncodeBool(v))
			}
		default:
			l, ok := f.list(d)
			if !ok {
				continue
			}
			n := 0 // the ListValue's size
			for _, v := range l {
				n += 1 + protowire.SizeBytes(1+protowire.SizeBytes(len(v)))
			}
			b = appendEntry(b, f.key, 1+protowire.SizeBytes(n))
			b = protowire.AppendTag(b, fieldValueList, protowire.BytesType)
			b = protowire.AppendVarint(b, uint64(n))
			for _, v := range l {
				b = protowire.AppendTag(b, fieldListValueValue, protowire.BytesType)
				b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(v))))
				b = protowire.AppendTag(b, fieldValueString, protowire.BytesType)
				b = protowire.AppendString(b, v)
			}
		}
	}
	return b, nil
}

// appendEntry appends the head of a Struct.fields entry: its tag and
// length, the key, and the value's tag and length (valueSize bytes of
// google.protobuf.Value follow).
func appendEntry(b []byte, key string, valueSize int) []byte {
	b = protowire.AppendTag(b, fieldStructFields, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(1+protowire.SizeBytes(len(key))+1+protowire.SizeBytes(valueSize)))
	b = protowire.AppendTag(b, fieldEntryKey, protowire.BytesType)
	b = protowire.AppendString(b, key)
	b = protowire.AppendTag(b, fieldEntryValue, protowire.BytesType)
	return protowire.AppendVarint(b, uint64(valueSize))
}
