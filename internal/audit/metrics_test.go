package audit

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The ship lag is the age of the oldest row of the last batch written,
// and the last ship time moves only when a batch is written: with the
// destination down neither moves; once it is back they show how far it
// trailed.
func TestShipLag(t *testing.T) {
	tests := []struct {
		name    string
		age     time.Duration // of the oldest row recorded
		kinds   []Record
		minLag  time.Duration
		failFor int // sends that fail first
	}{
		{"an old event", 90 * time.Second, nil, 90 * time.Second, 0},
		{"decisions and grant events, destination failing first", 10 * time.Minute,
			[]Record{&Decision{DecisionID: "d-1"}, &GrantEvent{EventID: "g-1"}}, 10 * time.Minute, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			m := newMetrics(reg)
			dest := newFakeDest()
			dest.gate = make(chan struct{})
			dest.failN = tt.failFor
			sp, err := openSpool(spoolConfig(t), 20*time.Millisecond, newPreparer(64<<10, nil), m, nopLog())
			if err != nil {
				t.Fatal(err)
			}
			sh := startShipper(sp, dest, 500, 0, nopLog(), m, nil)
			t.Cleanup(func() {
				sp.closeWriter()
				sh.cancel()
				<-sh.done
				sp.unlock()
			})
			before := time.Now()
			old := before.Add(-tt.age)
			if err := sp.Record(&Event{EventID: "e-old", SessionID: "s", Direction: DirRequest, Time: old}); err != nil {
				t.Fatal(err)
			}
			for _, r := range tt.kinds {
				if err := sp.Record(r); err != nil { // time zero: now
					t.Fatal(err)
				}
			}
			if got := testutil.ToFloat64(m.lastShip); got != 0 {
				t.Fatalf("last ship %v before any batch was written", got)
			}
			close(dest.gate)
			waitUntil(t, "the rows to ship", func() bool { return dest.ids()["e-old"] == 1 })
			waitUntil(t, "the metrics to follow", func() bool { return testutil.ToFloat64(m.lastShip) > 0 })
			if lag := testutil.ToFloat64(m.shipLag); lag < tt.minLag.Seconds() {
				t.Errorf("airlock_audit_ship_lag_seconds = %v, want at least %v", lag, tt.minLag.Seconds())
			}
			if last := testutil.ToFloat64(m.lastShip); last < float64(before.Unix()) {
				t.Errorf("airlock_audit_last_ship_timestamp_seconds = %v, before the rows were recorded (%d)", last, before.Unix())
			}
			if got := testutil.ToFloat64(m.shipErrs); got != float64(tt.failFor) {
				t.Errorf("ship errors %v, want %d", got, tt.failFor)
			}
			if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
				t.Errorf("promlint: %v %v", problems, err)
			}
		})
	}
}

// waitUntil polls cond (the shipper works on its own goroutines).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
