package audit

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// FuzzDecodeRecord: any bytes decode to a row or an error, never a panic;
// a decoded row re-encodes to the same bytes.
func FuzzDecodeRecord(f *testing.F) {
	for _, r := range sampleRecords() {
		f.Add(appendRecord(nil, r))
	}
	f.Add([]byte{})
	f.Add([]byte{byte(kindGrant), 0, 0})
	nan := appendRecord(nil, &Event{})
	f.Add(nan)
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeRecord(b, false, nil)
		if err != nil {
			return
		}
		again, err := decodeRecord(appendRecord(nil, r), true, nil)
		if err != nil {
			t.Fatalf("re-encoded row does not decode: %v", err)
		}
		if d := cmp.Diff(r, again, cmpopts.EquateNaNs()); d != "" {
			t.Fatalf("re-encode changed the row (-first +second):\n%s", d)
		}
	})
}

// FuzzParseSegment: any file contents parse without panic, and every
// payload returned lies inside the input with a matching frame.
func FuzzParseSegment(f *testing.F) {
	seg := []byte(segMagic)
	for _, r := range sampleRecords() {
		seg = appendFrame(seg, r)
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-3])
	f.Add([]byte(segMagic))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ps, dropped, err := parseSegment(b)
		if err != nil {
			return
		}
		total := dropped
		if len(b) >= len(segMagic) {
			total += len(segMagic)
		}
		for _, p := range ps {
			total += frameHeader + len(p)
		}
		if total != len(b) {
			t.Fatalf("frames (%d payloads) and dropped %d account for %d of %d bytes", len(ps), dropped, total, len(b))
		}
	})
}
