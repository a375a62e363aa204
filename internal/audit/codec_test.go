package audit

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// sampleRecords has one row of each kind with every field set, and edge
// cases: empty strings, zero times, unicode, large values.
func sampleRecords() []Record {
	return []Record{
		&Event{
			EventID: "0b6f3c52-4bd5-4a4e-9a6e-0d0c3f1a2b3c", Time: t0, SessionID: "sess-1", Principal: "alice@example.com",
			ClientID: "agent-1", Issuer: "https://issuer.example", Target: "github", Direction: DirRequest,
			Method: "tools/call", Tool: "search_issues", JSONRPCID: `"abc"`, DecisionID: "dec-1", GrantID: "grant-1",
			Status: 200, Outcome: "allow", LatencyMS: 12.5, Masked: map[string]int{"aws_access_key": 2, "field:password": 1},
			Payload: `{"jsonrpc":"2.0","id":"abc","method":"tools/call"}`, Truncated: true, Bytes: 1 << 40,
		},
		&Event{EventID: "e2", Time: t0, Direction: DirSSEEvent, Payload: "données ✓"},
		&Decision{
			DecisionID: "dec-1", Time: t0, SessionID: "sess-1", Principal: "alice@example.com", ClientID: "agent-1",
			Issuer: "https://issuer.example", Target: "github", Method: "tools/call", Tool: "delete_repo", JSONRPCID: "7",
			Outcome: "deny", Reason: "tool delete_repo needs approval", PolicyVersion: "sha256:abc", GrantID: "",
			RequestID: "req-1", Status: 403, LatencyUS: 1234,
		},
		&RequestEvent{
			EventID: "r1", Time: t0, RequestID: "req-1", FromState: "pending", ToState: "approved", Actor: "bob@example.com",
			Principal: "alice@example.com", ClientID: "agent-1", Target: "github", Method: "tools/call", Tool: "delete_repo",
			Reason: "cleanup", DecisionID: "dec-1", GrantID: "grant-1", Seq: 9,
		},
		&GrantEvent{
			EventID: "g1", Time: t0, GrantID: "grant-1", Transition: "issued", Actor: "bob@example.com", Principal: "alice@example.com",
			ClientID: "agent-1", Target: "github", Tools: []string{"delete_repo", "create_repo"}, RequestID: "req-1",
			ExpiresAt: t0.Add(time.Hour), UsesLeft: -1, Reason: "approved", Seq: 1 << 32,
		},
		&GrantEvent{EventID: "g2", Time: t0, GrantID: "grant-1", Transition: "expired"},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, r := range sampleRecords() {
		t.Run(r.kind().String(), func(t *testing.T) {
			enc := appendRecord(nil, r)
			for _, alias := range []bool{false, true} {
				got, err := decodeRecord(enc, alias, nil)
				if err != nil {
					t.Fatal(err)
				}
				if d := cmp.Diff(r, got); d != "" {
					t.Errorf("alias=%v: round trip (-want +got):\n%s", alias, d)
				}
			}
			// Every strict prefix is an error, never a panic or a row.
			for i := range len(enc) {
				if got, err := decodeRecord(enc[:i], false, nil); err == nil {
					t.Fatalf("prefix of %d/%d bytes decoded as %+v", i, len(enc), got)
				}
			}
			// A trailing byte is refused.
			if _, err := decodeRecord(append(enc, 0), false, nil); err == nil {
				t.Fatal("trailing byte accepted")
			}
		})
	}
}

func TestDecodeIntoReuses(t *testing.T) {
	var sc scratch
	recs := sampleRecords()
	a, _ := decodeRecord(appendRecord(nil, recs[0]), false, &sc)
	b, _ := decodeRecord(appendRecord(nil, recs[1]), false, &sc)
	if a != b {
		t.Fatal("scratch row not reused")
	}
	if d := cmp.Diff(recs[1], b); d != "" {
		t.Fatalf("second decode kept fields of the first (-want +got):\n%s", d)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"unknown kind", []byte{99}},
		{"kind zero", []byte{0}},
		{"string longer than input", []byte{byte(kindEvent), 50, 'a'}},
		{"bad bool", func() []byte {
			b := appendRecord(nil, &Event{})
			// Truncated is the byte before the final varint (Bytes = 0).
			b[len(b)-2] = 7
			return b
		}()},
		{"huge list", []byte{byte(kindGrant), 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r, err := decodeRecord(tt.in, false, nil); err == nil {
				t.Fatalf("decoded %+v", r)
			}
		})
	}
}

func TestFrameAndParseSegment(t *testing.T) {
	recs := sampleRecords()
	data := []byte(segMagic)
	for _, r := range recs {
		data = appendFrame(data, r)
	}
	payloads, dropped, err := parseSegment(data)
	if err != nil || dropped != 0 || len(payloads) != len(recs) {
		t.Fatalf("got %d payloads, dropped %d, err %v", len(payloads), dropped, err)
	}
	for i, p := range payloads {
		got, err := decodeRecord(p, false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(recs[i], got); d != "" {
			t.Errorf("record %d (-want +got):\n%s", i, d)
		}
	}
	// A torn tail: every cut keeps exactly the whole frames before it.
	full := len(data)
	var ends []int // offset after each frame
	off := len(segMagic)
	for _, p := range payloads {
		off += frameHeader + len(p)
		ends = append(ends, off)
	}
	for cut := len(segMagic); cut <= full; cut++ {
		ps, dropped, err := parseSegment(data[:cut])
		if err != nil {
			t.Fatal(err)
		}
		want, last := 0, len(segMagic)
		for _, e := range ends {
			if e <= cut {
				want, last = want+1, e
			}
		}
		if len(ps) != want || dropped != cut-last {
			t.Fatalf("cut at %d: %d frames dropping %d, want %d dropping %d", cut, len(ps), dropped, want, cut-last)
		}
	}
	// A flipped bit stops reading at that frame.
	bad := append([]byte(nil), data...)
	bad[len(segMagic)+frameHeader+3] ^= 0x40
	ps, dropped, _ := parseSegment(bad)
	if len(ps) != 0 || dropped != full-len(segMagic) {
		t.Fatalf("corrupt first frame: %d frames, dropped %d", len(ps), dropped)
	}
	if _, _, err := parseSegment([]byte("NOTASEGMENT....")); err == nil {
		t.Fatal("bad magic accepted")
	}
	if ps, dropped, err := parseSegment([]byte("ALS")); err != nil || len(ps) != 0 || dropped != 3 {
		t.Fatalf("short file: %d frames, dropped %d, err %v", len(ps), dropped, err)
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	e := sessionEvents("s1", 1, t0)[0]
	e.EventID = NewID()
	e.Masked = map[string]int{"aws_access_key": 1}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = appendFrame(buf[:0], e)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeRecord decodes a spool record as the shipper does (in
// place, aliasing); BenchmarkEventColumns in internal/audit/clickhouse
// measures the step after it.
func BenchmarkDecodeRecord(b *testing.B) {
	e := sessionEvents("s1", 1, t0)[0]
	e.EventID = NewID()
	e.Masked = map[string]int{"aws_access_key": 1}
	enc := appendRecord(nil, e)
	var sc scratch
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeRecord(enc, true, &sc); err != nil {
			b.Fatal(err)
		}
	}
}

// v1Records are the rows of testdata/spool-v1.seg, a segment written by
// the codec before records carried a version (spelled out here, not taken
// from sampleRecords, so that the fixture's meaning cannot drift).
func v1Records() []Record {
	at := time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)
	return []Record{
		&Event{
			EventID: "0b6f3c52-4bd5-4a4e-9a6e-0d0c3f1a2b3c", Time: at, SessionID: "sess-1", Principal: "alice@example.com",
			ClientID: "agent-1", Issuer: "https://issuer.example", Target: "github", Direction: DirRequest,
			Method: "tools/call", Tool: "search_issues", JSONRPCID: `"abc"`, DecisionID: "dec-1", GrantID: "grant-1",
			Status: 200, Outcome: "allow", LatencyMS: 12.5, Masked: map[string]int{"aws_access_key": 2, "field:password": 1},
			Payload: `{"jsonrpc":"2.0","id":"abc","method":"tools/call"}`, Truncated: true, Bytes: 1 << 40,
		},
		&Event{EventID: "e2", Time: at, Direction: DirSSEEvent, Payload: "données ✓"},
		&Decision{
			DecisionID: "dec-1", Time: at, SessionID: "sess-1", Principal: "alice@example.com", ClientID: "agent-1",
			Issuer: "https://issuer.example", Target: "github", Method: "tools/call", Tool: "delete_repo", JSONRPCID: "7",
			Outcome: "deny", Reason: "tool delete_repo needs approval", PolicyVersion: "sha256:abc",
			RequestID: "req-1", Status: 403, LatencyUS: 1234,
		},
		&RequestEvent{
			EventID: "r1", Time: at, RequestID: "req-1", FromState: "pending", ToState: "approved", Actor: "bob@example.com",
			Principal: "alice@example.com", ClientID: "agent-1", Target: "github", Method: "tools/call", Tool: "delete_repo",
			Reason: "cleanup", DecisionID: "dec-1", GrantID: "grant-1",
		},
		&GrantEvent{
			EventID: "g1", Time: at, GrantID: "grant-1", Transition: "issued", Actor: "bob@example.com", Principal: "alice@example.com",
			ClientID: "agent-1", Target: "github", Tools: []string{"delete_repo", "create_repo"}, RequestID: "req-1",
			ExpiresAt: at.Add(time.Hour), UsesLeft: -1, Reason: "approved",
		},
		&GrantEvent{EventID: "g2", Time: at, GrantID: "grant-1", Transition: "expired"},
	}
}

// TestDecodeV1Segment: a segment the unversioned (v1) codec wrote decodes
// field for field, so rows an older airlock left unsent survive an upgrade.
func TestDecodeV1Segment(t *testing.T) {
	data, err := os.ReadFile("testdata/spool-v1.seg")
	if err != nil {
		t.Fatal(err)
	}
	payloads, dropped, err := parseSegment(data)
	if err != nil || dropped != 0 {
		t.Fatalf("parse: dropped %d, err %v", dropped, err)
	}
	want := v1Records()
	if len(payloads) != len(want) {
		t.Fatalf("%d records, want %d", len(payloads), len(want))
	}
	for i, p := range payloads {
		if v := payloadVersion(p); v != 1 {
			t.Fatalf("record %d: version %d, want 1 (the fixture must stay a v1 segment)", i, v)
		}
		for _, alias := range []bool{false, true} {
			got, err := decodeRecord(p, alias, nil)
			if err != nil {
				t.Fatalf("record %d: %v", i, err)
			}
			if d := cmp.Diff(want[i], got); d != "" {
				t.Errorf("record %d alias=%v (-want +got):\n%s", i, alias, d)
			}
		}
	}
}

// TestEncodeWritesCurrentVersion: new records carry the version byte, and
// a v4 record is a v1 record behind it, plus Seq at the end of request and
// grant rows (v2 had the fields of v1; v3 added Seq) and TraceID at the
// end of decision rows (v4).
func TestEncodeWritesCurrentVersion(t *testing.T) {
	data, err := os.ReadFile("testdata/spool-v1.seg")
	if err != nil {
		t.Fatal(err)
	}
	v1, _, _ := parseSegment(data)
	for i, r := range v1Records() {
		enc := appendRecord(nil, r)
		if payloadVersion(enc) != recordVersion || enc[0] != versionFlag|recordVersion {
			t.Fatalf("record %d: first byte %#x, want version %d", i, enc[0], recordVersion)
		}
		body := v1[i]
		if k := r.kind(); k == kindRequest || k == kindGrant {
			body = append(bytes.Clone(body), 0) // Seq 0
		} else if k == kindDecision {
			body = append(bytes.Clone(body), 0) // TraceID ""
		}
		if !bytes.Equal(enc[1:], body) {
			t.Errorf("record %d: v%d body differs from the v1 record (+ Seq, + TraceID)", i, recordVersion)
		}
	}
}

// TestDecodeV2Records: a v2 record (the v1 fields behind a version byte,
// no Seq) still decodes, with Seq 0, so a spool left by the airlock before
// Seq ships after an upgrade.
func TestDecodeV2Records(t *testing.T) {
	data, err := os.ReadFile("testdata/spool-v1.seg")
	if err != nil {
		t.Fatal(err)
	}
	v1, _, _ := parseSegment(data)
	want := v1Records()
	for i, p := range v1 {
		v2 := append([]byte{versionFlag | 2}, p...)
		got, err := decodeRecord(v2, false, nil)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if d := cmp.Diff(want[i], got); d != "" {
			t.Errorf("record %d (-want +got):\n%s", i, d)
		}
	}
}

// TestSeqRoundTrip: Seq survives the spool for both kinds that carry it.
func TestSeqRoundTrip(t *testing.T) {
	for _, r := range []Record{
		&RequestEvent{EventID: "r", RequestID: "req-1", ToState: "approved", Seq: 1<<40 + 7},
		&GrantEvent{EventID: "g", GrantID: "grant-1", Transition: "used", Seq: 3},
	} {
		got, err := decodeRecord(appendRecord(nil, r), false, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(r, got); d != "" {
			t.Errorf("(-want +got):\n%s", d)
		}
	}
}

// TestDecodeFutureVersion: a record of a newer format is reported as such
// (a *FutureVersionError), not as corrupt; version bytes no airlock writes
// are refused.
func TestDecodeFutureVersion(t *testing.T) {
	enc := appendRecord(nil, &Event{EventID: "e"})
	future := append([]byte{versionFlag | (recordVersion + 1)}, enc[1:]...)
	_, err := decodeRecord(future, false, nil)
	var fv *FutureVersionError
	if !errors.As(err, &fv) || fv.Version != recordVersion+1 {
		t.Fatalf("err = %v, want a FutureVersionError for v%d", err, recordVersion+1)
	}
	for _, b := range [][]byte{{versionFlag}, {versionFlag | 1, byte(kindEvent)}, {versionFlag | recordVersion}} {
		if r, err := decodeRecord(b, false, nil); err == nil || errors.As(err, &fv) {
			t.Errorf("% x: got %+v, %v; want a decoding error", b, r, err)
		}
	}
}
