package audit

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/syncbuf"
)

// fakeDest collects event ids; send can be blocked or made to fail.
type fakeDest struct {
	mu      sync.Mutex
	got     map[string]int // event id → times stored
	gate    chan struct{}  // when non-nil, send waits for it to close
	failN   int            // fail this many sends first
	batches int
	maxRows int // the most rows one send carried
}

func newFakeDest() *fakeDest { return &fakeDest{got: map[string]int{}} }

func (d *fakeDest) NewBatch() Batch { return &fakeBatch{d: d} }

func (d *fakeDest) ids() map[string]int {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]int, len(d.got))
	for k, v := range d.got {
		out[k] = v
	}
	return out
}

// rowID is a row's id, whatever its kind.
func rowID(r Record) string {
	switch v := r.(type) {
	case *Event:
		return v.EventID
	case *Decision:
		return v.DecisionID
	case *RequestEvent:
		return v.EventID
	case *GrantEvent:
		return v.EventID
	}
	return ""
}

type fakeBatch struct {
	d   *fakeDest
	ids []string
}

func (b *fakeBatch) Add(r Record) { b.ids = append(b.ids, strings.Clone(rowID(r))) } // r is only valid during Add
func (b *fakeBatch) Len() int     { return len(b.ids) }
func (b *fakeBatch) Reset()       { b.ids = b.ids[:0] }

func (b *fakeBatch) Send(ctx context.Context) error {
	b.d.mu.Lock()
	gate := b.d.gate
	b.d.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	b.d.mu.Lock()
	defer b.d.mu.Unlock()
	if b.d.failN > 0 {
		b.d.failN--
		return errors.New("injected failure")
	}
	b.d.batches++
	b.d.maxRows = max(b.d.maxRows, len(b.ids))
	for _, id := range b.ids {
		b.d.got[id]++
	}
	return nil
}

func spoolConfig(t *testing.T) SpoolConfig {
	c := Defaults().Spool
	c.Dir = t.TempDir()
	c.FsyncInterval = 5 * time.Millisecond
	c.SegmentBytes = 16 << 10
	c.MaxBytes = 64 << 20
	return c
}

// startSpool runs a spool and shipper over dest (batches of 500 rows).
func startSpool(t *testing.T, cfg SpoolConfig, dest batcher, log *slog.Logger) (*spool, *shipper) {
	t.Helper()
	return startSpoolBatch(t, cfg, dest, log, 0)
}

// startSpoolBatch is startSpool with batches also cut at batchBytes.
func startSpoolBatch(t *testing.T, cfg SpoolConfig, dest batcher, log *slog.Logger, batchBytes int) (*spool, *shipper) {
	t.Helper()
	m := newMetrics(nil)
	sp, err := openSpool(cfg, 20*time.Millisecond, newPreparer(64<<10, nil), m, log)
	if err != nil {
		t.Fatal(err)
	}
	sh := startShipper(sp, dest, 500, batchBytes, log, m, nil)
	t.Cleanup(func() {
		sp.closeWriter()
		sh.cancel()
		<-sh.done
		sp.unlock()
	})
	return sp, sh
}

// TestRecordNeverWaitsForDestination: with the destination stuck, every
// Record returns (the data path never waits for shipping); once it is
// unstuck every row arrives exactly once.
func TestRecordNeverWaitsForDestination(t *testing.T) {
	dest := newFakeDest()
	dest.gate = make(chan struct{})
	sp, _ := startSpool(t, spoolConfig(t), dest, nopLog())
	want := map[string]int{}
	for i := range 5000 {
		e := &Event{SessionID: "s", Direction: DirRequest, Payload: strings.Repeat("x", i%200)}
		if err := sp.Record(e); err != nil {
			t.Fatal(err)
		}
		want[e.EventID] = 1
	}
	if n := len(dest.ids()); n != 0 {
		t.Fatalf("%d rows stored through a closed gate", n)
	}
	close(dest.gate)
	if err := sp.drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, dest.ids()); d != "" {
		t.Fatalf("stored ids (-want +got):\n%s", d)
	}
	if dest.batches < 10 {
		t.Fatalf("%d batches for 5000 rows with batch size 500", dest.batches)
	}
}

// TestBatchBytesBound: rows with large payloads are sent in batches cut
// at batch_bytes, not batch_size rows (which would hold 500 of them in
// memory); every row arrives once.
func TestBatchBytesBound(t *testing.T) {
	for _, tc := range []struct {
		name       string
		batchBytes int
		payload    int
		wantMax    int // the most rows a batch may carry
	}{
		{"4 KiB rows, 64 KiB batches", 64 << 10, 4 << 10, 16},
		{"tiny rows, bound by rows", 64 << 10, 10, 500},
		{"no byte bound", 0, 4 << 10, 500},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dest := newFakeDest()
			dest.gate = make(chan struct{}) // let rows pile up so batches fill
			cfg := spoolConfig(t)
			sp, _ := startSpoolBatch(t, cfg, dest, nopLog(), tc.batchBytes)
			want := map[string]int{}
			for range 1000 {
				e := &Event{SessionID: "s", Direction: DirResponse, Payload: strings.Repeat("y", tc.payload)}
				if err := sp.Record(e); err != nil {
					t.Fatal(err)
				}
				want[e.EventID] = 1
			}
			// Wait for the rows to be in sealed segments before opening
			// the gate, so the reader finds them all at once and fills
			// its batches as far as the bounds let it.
			waitSealed(t, cfg.Dir, int64(1000*tc.payload*3/4))
			close(dest.gate)
			if err := sp.drain(ctxT(t, time.Minute)); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(want, dest.ids()); d != "" {
				t.Fatalf("stored ids (-want +got):\n%s", d)
			}
			if dest.maxRows > tc.wantMax {
				t.Fatalf("a batch carried %d rows, want at most %d", dest.maxRows, tc.wantMax)
			}
			// Without the bound the same rows fill batches past what 64 KiB
			// holds (they reach 388..500 rows): else the test shows nothing.
			if tc.batchBytes == 0 && dest.maxRows <= 16 {
				t.Fatalf("without a byte bound batches stayed at %d rows: the test no longer fills them", dest.maxRows)
			}
		})
	}
}

// waitSealed waits until dir's sealed segments hold at least n bytes.
func waitSealed(t *testing.T, dir string, n int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, _ := filepath.Glob(filepath.Join(dir, "*"+sealedExt))
		var size int64
		for _, f := range m {
			if fi, err := os.Stat(f); err == nil {
				size += fi.Size()
			}
		}
		if size >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes in sealed segments after 30s, want %d", size, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestShipRetries: failed sends are retried until they succeed; nothing
// is lost.
func TestShipRetries(t *testing.T) {
	dest := newFakeDest()
	dest.failN = 3
	sp, _ := startSpool(t, spoolConfig(t), dest, nopLog())
	want := map[string]int{}
	for range 1200 {
		e := &Event{SessionID: "s"}
		if err := sp.Record(e); err != nil {
			t.Fatal(err)
		}
		want[e.EventID] = 1
	}
	if err := sp.drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, dest.ids()); d != "" {
		t.Fatalf("stored ids (-want +got):\n%s", d)
	}
}

// TestSpoolRecoversLeftovers: segments left by a run that died — a sealed
// one and an open one with a torn last record — are shipped at the next
// open; the torn record is skipped and counted.
func TestSpoolRecoversLeftovers(t *testing.T) {
	cfg := spoolConfig(t)
	var want []string
	seg := func(n int) []byte {
		b := []byte(segMagic)
		for range n {
			e := &Event{EventID: NewID(), Time: t0, SessionID: "left"}
			want = append(want, e.EventID)
			b = appendFrame(b, e)
		}
		return b
	}
	if err := os.WriteFile(segmentFile(cfg.Dir, 7, sealedExt), seg(3), 0o600); err != nil {
		t.Fatal(err)
	}
	open := seg(2)
	torn := appendFrame(nil, &Event{EventID: "torn", Time: t0})
	open = append(open, torn[:len(torn)-5]...)
	if err := os.WriteFile(segmentFile(cfg.Dir, 8, openExt), open, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cfg.Dir, "README"), []byte("not a segment"), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	dest := newFakeDest()
	sp, _ := startSpool(t, cfg, dest, slog.New(slog.NewTextHandler(&logs, nil)))
	// New rows go to segments after the leftovers.
	e := &Event{SessionID: "new"}
	if err := sp.Record(e); err != nil {
		t.Fatal(err)
	}
	want = append(want, e.EventID)
	if err := sp.drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	wantIDs := map[string]int{}
	for _, id := range want {
		wantIDs[id] = 1
	}
	if d := cmp.Diff(wantIDs, dest.ids()); d != "" {
		t.Fatalf("stored ids (-want +got):\n%s", d)
	}
	if n := sp.m.nCorrupt.Load(); n != int64(len(torn)-5) {
		t.Fatalf("corrupt bytes %d, want %d", n, len(torn)-5)
	}
	if !strings.Contains(logs.String(), "torn") {
		t.Fatalf("no log about the torn tail:\n%s", logs.String())
	}
	left, _ := listSegments(cfg.Dir)
	if len(left) != 0 {
		t.Fatalf("segments left after drain: %+v", left)
	}
}

// TestSpoolLocked: a second process (here: a second open) cannot use a
// spool directory in use.
func TestSpoolLocked(t *testing.T) {
	cfg := spoolConfig(t)
	startSpool(t, cfg, newFakeDest(), nopLog())
	if _, err := openSpool(cfg, time.Second, newPreparer(0, nil), newMetrics(nil), nopLog()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second open: %v", err)
	}
}

func TestRecordNil(t *testing.T) {
	sp, _ := startSpool(t, spoolConfig(t), newFakeDest(), nopLog())
	var e *Event
	if err := sp.Record(e); !errors.Is(err, ErrNilRecord) {
		t.Fatalf("got %v", err)
	}
	if err := sp.Record(nil); !errors.Is(err, ErrNilRecord) {
		t.Fatalf("got %v", err)
	}
}

func TestPreparerStampsIncrease(t *testing.T) {
	fixed := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := newPreparer(8, func() time.Time { return fixed })
	var last time.Time
	for i := range 100 {
		e := &Event{Payload: "ééééé"} // 10 bytes; cap 8 cuts at a rune boundary
		if err := p.prepare(e); err != nil {
			t.Fatal(err)
		}
		if !e.Time.After(last) {
			t.Fatalf("stamp %d not after the previous one", i)
		}
		last = e.Time
		if e.Payload != "éééé" || !e.Truncated || e.Bytes != 10 {
			t.Fatalf("payload %q truncated %v bytes %d", e.Payload, e.Truncated, e.Bytes)
		}
	}
}

// TestFutureSegmentKept: a segment holding a record of a newer format (a
// newer airlock ran here before this one) is not shipped, not deleted and
// not counted as corrupt: it is kept as .future for a newer airlock,
// counted, and logged; the segments around it ship. A v1 segment left by
// an older airlock ships.
func TestFutureSegmentKept(t *testing.T) {
	cfg := spoolConfig(t)
	frame := func(b, p []byte) []byte {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(p)))
		b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(p, crcTable))
		return append(b, p...)
	}
	now := appendRecord(nil, &Event{EventID: "kept-with-future"})
	future := append([]byte{versionFlag | (recordVersion + 1)}, appendRecord(nil, &Event{EventID: "future"})[1:]...)
	seg1 := frame(frame([]byte(segMagic), now), future)
	if err := os.WriteFile(segmentFile(cfg.Dir, 1, sealedExt), seg1, 0o600); err != nil {
		t.Fatal(err)
	}
	v1, err := os.ReadFile("testdata/spool-v1.seg")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segmentFile(cfg.Dir, 2, sealedExt), v1, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs syncbuf.Buffer
	dest := newFakeDest()
	sp, _ := startSpool(t, cfg, dest, slog.New(slog.NewTextHandler(&logs, nil)))
	if err := sp.drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, r := range v1Records() {
		want[rowID(r)] = 1
	}
	if d := cmp.Diff(want, dest.ids()); d != "" {
		t.Fatalf("shipped ids (-want +got):\n%s", d)
	}
	kept := segmentFile(cfg.Dir, 1, futureExt)
	if got, err := os.ReadFile(kept); err != nil || !bytes.Equal(got, seg1) {
		t.Fatalf("future segment not kept intact at %s: %v", kept, err)
	}
	st := sp.m.stats()
	if st.Future != 1 || st.Corrupt != 0 {
		t.Fatalf("stats %+v: want 1 future record, nothing corrupt", st)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "newer airlock") {
		t.Fatalf("no error logged:\n%s", logs.String())
	}

	// The next start (by this airlock) finds the kept segment again and
	// keeps it again; one that reads the format would ship it.
	sp.closeWriter()
	segs, err := listSegments(cfg.Dir)
	if err != nil || len(segs) != 1 || segs[0].path != kept {
		t.Fatalf("segments after shipping: %+v, %v", segs, err)
	}
}
