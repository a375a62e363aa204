package audit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"time"
	"unsafe"
)

// The spool stores each row as: a version byte (versionFlag|version), one
// kind byte, then the row's fields in a fixed order — strings and lists as
// a uvarint length and the bytes, integers as zig-zag varints, floats as 8
// little-endian bytes, times as nanoseconds since the Unix epoch (0 for
// the zero time).
//
// Version 1 is the format before versions: no version byte, the kind byte
// first. Its kinds are 1–4, so a first byte with versionFlag set cannot be
// a v1 record, and the decoder reads both. v1 and v2 carry the same fields.
// v3 appends Seq to request and grant rows (older records decode with
// Seq 0). v4 appends TraceID to decision rows (older: "").
//
// A spool outlives the binary that wrote it (rows wait for ClickHouse
// across an upgrade, or a downgrade), so the decoder reads every version
// up to recordVersion. To add a field: bump recordVersion, append the
// field at the end of its kind in appendRecord, and decode it in
// decodeRecord only when the record's version is at least the new one
// (older records leave it zero). A record of a version above recordVersion was
// written by a newer airlock: the decoder returns a *FutureVersionError
// and the shipper keeps its segment for that newer airlock (shipper.go)
// instead of skipping it as corrupt.

const (
	// versionFlag marks a first byte as a version byte (v2 on).
	versionFlag = 0x80
	// recordVersion is the version appendRecord writes.
	recordVersion = 4
	// versionSeq is the first version with RequestEvent.Seq and GrantEvent.Seq.
	versionSeq = 3
	// versionTraceID is the first version with Decision.TraceID.
	versionTraceID = 4
)

// FutureVersionError says a spool record was written by a newer airlock
// in a format this one does not know.
type FutureVersionError struct {
	Version int
}

func (e *FutureVersionError) Error() string {
	return fmt.Sprintf("audit: spool record of format v%d, newer than this airlock reads (v%d): written by a newer airlock", e.Version, recordVersion)
}

// payloadVersion returns the version of an encoded record (1 for a record
// without a version byte; 0 for an empty one).
func payloadVersion(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0]&versionFlag != 0:
		return int(b[0] &^ versionFlag)
	default:
		return 1
	}
}

// appendRecord appends the encoding of r (already prepared) to b, in the
// current version.
func appendRecord(b []byte, r Record) []byte {
	b = append(b, versionFlag|recordVersion)
	switch v := r.(type) {
	case *Event:
		b = append(b, byte(kindEvent))
		b = appendStr(b, v.EventID)
		b = appendTime(b, v.Time)
		b = appendStr(b, v.SessionID)
		b = appendStr(b, v.Principal)
		b = appendStr(b, v.ClientID)
		b = appendStr(b, v.Issuer)
		b = appendStr(b, v.Target)
		b = appendStr(b, string(v.Direction))
		b = appendStr(b, v.Method)
		b = appendStr(b, v.Tool)
		b = appendStr(b, v.JSONRPCID)
		b = appendStr(b, v.DecisionID)
		b = appendStr(b, v.GrantID)
		b = binary.AppendVarint(b, int64(v.Status))
		b = appendStr(b, v.Outcome)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v.LatencyMS))
		b = appendCounts(b, v.Masked)
		b = appendStr(b, v.Payload)
		b = appendBool(b, v.Truncated)
		b = binary.AppendVarint(b, v.Bytes)
	case *Decision:
		b = append(b, byte(kindDecision))
		b = appendStr(b, v.DecisionID)
		b = appendTime(b, v.Time)
		b = appendStr(b, v.SessionID)
		b = appendStr(b, v.Principal)
		b = appendStr(b, v.ClientID)
		b = appendStr(b, v.Issuer)
		b = appendStr(b, v.Target)
		b = appendStr(b, v.Method)
		b = appendStr(b, v.Tool)
		b = appendStr(b, v.JSONRPCID)
		b = appendStr(b, v.Outcome)
		b = appendStr(b, v.Reason)
		b = appendStr(b, v.PolicyVersion)
		b = appendStr(b, v.GrantID)
		b = appendStr(b, v.RequestID)
		b = binary.AppendVarint(b, int64(v.Status))
		b = binary.AppendVarint(b, v.LatencyUS)
		b = appendStr(b, v.TraceID)
	case *RequestEvent:
		b = append(b, byte(kindRequest))
		b = appendStr(b, v.EventID)
		b = appendTime(b, v.Time)
		b = appendStr(b, v.RequestID)
		b = appendStr(b, v.FromState)
		b = appendStr(b, v.ToState)
		b = appendStr(b, v.Actor)
		b = appendStr(b, v.Principal)
		b = appendStr(b, v.ClientID)
		b = appendStr(b, v.Target)
		b = appendStr(b, v.Method)
		b = appendStr(b, v.Tool)
		b = appendStr(b, v.Reason)
		b = appendStr(b, v.DecisionID)
		b = appendStr(b, v.GrantID)
		b = binary.AppendUvarint(b, v.Seq)
	case *GrantEvent:
		b = append(b, byte(kindGrant))
		b = appendStr(b, v.EventID)
		b = appendTime(b, v.Time)
		b = appendStr(b, v.GrantID)
		b = appendStr(b, v.Transition)
		b = appendStr(b, v.Actor)
		b = appendStr(b, v.Principal)
		b = appendStr(b, v.ClientID)
		b = appendStr(b, v.Target)
		b = binary.AppendUvarint(b, uint64(len(v.Tools)))
		for _, t := range v.Tools {
			b = appendStr(b, t)
		}
		b = appendStr(b, v.RequestID)
		b = appendTime(b, v.ExpiresAt)
		b = binary.AppendVarint(b, v.UsesLeft)
		b = appendStr(b, v.Reason)
		b = binary.AppendUvarint(b, v.Seq)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// appendCounts writes a mask-count map sorted by type, so equal maps
// encode equally.
func appendCounts(b []byte, m map[string]int) []byte {
	b = binary.AppendUvarint(b, uint64(len(m)))
	if len(m) == 0 {
		return b
	}
	var stack [8]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		b = appendStr(b, k)
		b = binary.AppendVarint(b, int64(m[k]))
	}
	return b
}

var errShort = errors.New("truncated field")

// decoder reads one encoded row. With alias set, strings point into the
// input instead of copying it: they are then valid only while the input
// is not modified (the shipper reads the next segment into the same
// buffer, so what keeps a row past Batch.Add copies it).
type decoder struct {
	b     []byte
	alias bool
	err   error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.b = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) int() int {
	v := d.varint()
	if v > math.MaxInt32 || v < math.MinInt32 {
		d.fail(fmt.Errorf("integer %d out of range", v))
		return 0
	}
	return int(v)
}

func (d *decoder) str() string {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(errShort)
		return ""
	}
	if n == 0 {
		return ""
	}
	var s string
	if d.alias {
		s = unsafe.String(&d.b[0], int(n))
	} else {
		s = string(d.b[:n])
	}
	d.b = d.b[n:]
	return s
}

func (d *decoder) time() time.Time {
	ns := d.varint()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns).UTC()
}

func (d *decoder) float() float64 {
	if len(d.b) < 8 {
		d.fail(errShort)
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) bool() bool {
	if len(d.b) < 1 {
		d.fail(errShort)
		return false
	}
	v := d.b[0]
	d.b = d.b[1:]
	if v > 1 {
		d.fail(fmt.Errorf("bad boolean byte %d", v))
	}
	return v == 1
}

// count reads a list length, refusing one longer than the bytes left
// could hold (each element takes at least one byte).
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail(fmt.Errorf("list of %d elements in %d bytes", n, len(d.b)))
		return 0
	}
	return int(n)
}

// counts decodes mask counts into reuse (cleared) when given.
func (d *decoder) counts(reuse map[string]int) map[string]int {
	n := d.count()
	if n == 0 {
		return nil
	}
	m := reuse
	if m == nil {
		m = make(map[string]int, n)
	} else {
		clear(m)
	}
	for i := 0; i < n && d.err == nil; i++ {
		k := d.str()
		m[k] = d.int()
	}
	return m
}

// scratch holds one row of each kind for decodeRecord to fill in place,
// and a mask-count map it reuses.
type scratch struct {
	ev     Event
	dec    Decision
	req    RequestEvent
	gr     GrantEvent
	masked map[string]int
}

// decodeRecord decodes one row encoded by appendRecord. With into nil it
// allocates the row; else it overwrites and returns the matching row of
// into (its Masked map included), valid until the next call with the
// same into.
func decodeRecord(b []byte, alias bool, into *scratch) (Record, error) {
	if len(b) == 0 {
		return nil, errors.New("audit: empty record")
	}
	// version is the record's format: a field added in a later version is
	// decoded only when version is at least that one.
	version := payloadVersion(b)
	switch {
	case version > recordVersion:
		return nil, &FutureVersionError{Version: version}
	case b[0]&versionFlag == 0:
		// v1: no version byte, the kind first.
	case version < 2:
		return nil, fmt.Errorf("audit: bad record version byte %#x", b[0])
	default:
		b = b[1:]
		if len(b) == 0 {
			return nil, fmt.Errorf("audit: v%d record without a kind", version)
		}
	}
	var reuse map[string]int
	if into == nil {
		into = new(scratch)
	} else {
		if into.masked == nil {
			into.masked = make(map[string]int, 4)
		}
		reuse = into.masked
	}
	d := decoder{b: b[1:], alias: alias}
	var r Record
	switch kind(b[0]) {
	case kindEvent:
		v := &into.ev
		*v = Event{}
		v.EventID = d.str()
		v.Time = d.time()
		v.SessionID = d.str()
		v.Principal = d.str()
		v.ClientID = d.str()
		v.Issuer = d.str()
		v.Target = d.str()
		v.Direction = Direction(d.str())
		v.Method = d.str()
		v.Tool = d.str()
		v.JSONRPCID = d.str()
		v.DecisionID = d.str()
		v.GrantID = d.str()
		v.Status = d.int()
		v.Outcome = d.str()
		v.LatencyMS = d.float()
		v.Masked = d.counts(reuse)
		v.Payload = d.str()
		v.Truncated = d.bool()
		v.Bytes = d.varint()
		r = v
	case kindDecision:
		v := &into.dec
		*v = Decision{}
		v.DecisionID = d.str()
		v.Time = d.time()
		v.SessionID = d.str()
		v.Principal = d.str()
		v.ClientID = d.str()
		v.Issuer = d.str()
		v.Target = d.str()
		v.Method = d.str()
		v.Tool = d.str()
		v.JSONRPCID = d.str()
		v.Outcome = d.str()
		v.Reason = d.str()
		v.PolicyVersion = d.str()
		v.GrantID = d.str()
		v.RequestID = d.str()
		v.Status = d.int()
		v.LatencyUS = d.varint()
		if version >= versionTraceID {
			v.TraceID = d.str()
		}
		r = v
	case kindRequest:
		v := &into.req
		*v = RequestEvent{}
		v.EventID = d.str()
		v.Time = d.time()
		v.RequestID = d.str()
		v.FromState = d.str()
		v.ToState = d.str()
		v.Actor = d.str()
		v.Principal = d.str()
		v.ClientID = d.str()
		v.Target = d.str()
		v.Method = d.str()
		v.Tool = d.str()
		v.Reason = d.str()
		v.DecisionID = d.str()
		v.GrantID = d.str()
		if version >= versionSeq {
			v.Seq = d.uvarint()
		}
		r = v
	case kindGrant:
		v := &into.gr
		*v = GrantEvent{}
		v.EventID = d.str()
		v.Time = d.time()
		v.GrantID = d.str()
		v.Transition = d.str()
		v.Actor = d.str()
		v.Principal = d.str()
		v.ClientID = d.str()
		v.Target = d.str()
		if n := d.count(); n > 0 {
			v.Tools = make([]string, 0, n)
			for i := 0; i < n && d.err == nil; i++ {
				v.Tools = append(v.Tools, d.str())
			}
		}
		v.RequestID = d.str()
		v.ExpiresAt = d.time()
		v.UsesLeft = d.varint()
		v.Reason = d.str()
		if version >= versionSeq {
			v.Seq = d.uvarint()
		}
		r = v
	default:
		return nil, fmt.Errorf("audit: unknown record kind %d", b[0])
	}
	if d.err != nil {
		return nil, fmt.Errorf("audit: decoding %s record: %w", kind(b[0]), d.err)
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("audit: decoding %s record: %d bytes left over", kind(b[0]), len(d.b))
	}
	return r, nil
}
