//go:build !race

package mask

// Allocation tests. The race detector makes sync.Pool drop items on
// purpose, so these are built without it.

import (
	"bytes"
	"testing"
)

func TestMaskJSONCleanIsSameSliceWithoutAllocating(t *testing.T) {
	for _, d := range corpus(false) {
		out, counts, err := Default().MaskJSON(d)
		if err != nil || &out[0] != &d[0] || len(out) != len(d) || counts != nil {
			t.Fatalf("clean document: err %v, same slice %v, counts %v", err, &out[0] == &d[0], counts)
		}
		allocs := testing.AllocsPerRun(50, func() {
			if _, _, err := Default().MaskJSON(d); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("MaskJSON allocated %v times on a clean document", allocs)
		}
	}
}

func TestSSECleanEventsDoNotAllocate(t *testing.T) {
	stream := sseStream(corpus(false))
	m := NewSSEMasker(Default(), 1<<20)
	if out, err := m.Write(stream); err != nil || !bytes.Equal(out, stream) {
		t.Fatalf("warm-up: err %v, output equal %v", err, bytes.Equal(out, stream))
	}
	allocs := testing.AllocsPerRun(20, func() {
		if _, err := m.Write(stream); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("Write allocated %v times on clean events", allocs)
	}
}
