package audit

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRetentionCutoff(t *testing.T) {
	now := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		days int
		want uint32
	}{
		{1, 20260228},
		{30, 20260130},
		{365, 20250301},
	}
	for _, tt := range tests {
		if got := retentionCutoff(now, tt.days); got != tt.want {
			t.Errorf("retentionCutoff(%d) = %d, want %d", tt.days, got, tt.want)
		}
	}
}

// TestRetentionDropsOldPartitions: day partitions older than the
// retention go, in every table; newer ones stay.
func TestRetentionDropsOldPartitions(t *testing.T) {
	s := sharedServer(t)
	db := testDB(t)
	cfg := testConfig(t, s.Addr(), db)
	cfg.ClickHouse.RetentionDays = 5
	p := openPipeline(t, cfg, Options{retentionEvery: -1})
	now := time.Now().UTC()
	ages := []int{0, 2, 5, 6, 40}
	for _, age := range ages {
		at := now.AddDate(0, 0, -age)
		for _, r := range []Record{
			&Event{Time: at, SessionID: "s"},
			&Decision{Time: at},
			&RequestEvent{Time: at, RequestID: "r"},
			&GrantEvent{Time: at, GrantID: "g"},
		} {
			if err := p.Record(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	dropped, err := p.ch.dropExpired(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, age := range []int{6, 40} {
		d := now.AddDate(0, 0, -age).Format("20060102")
		for _, table := range []string{"decisions", "events", "grant_events", "request_events"} {
			want = append(want, table+"/"+d)
		}
	}
	sort.Strings(want)
	sort.Strings(dropped)
	if d := cmp.Diff(want, dropped); d != "" {
		t.Fatalf("dropped (-want +got):\n%s", d)
	}
	conn := connect(t, s.Addr())
	for _, table := range []string{"events", "decisions", "request_events", "grant_events"} {
		if n := count(t, conn, "SELECT count() FROM "+db+"."+table+" FINAL"); n != 3 {
			t.Errorf("%s keeps %d rows, want 3 (ages 0, 2, 5 days)", table, n)
		}
	}
	// A second sweep finds nothing more.
	if again, err := p.ch.dropExpired(context.Background(), now); err != nil || len(again) != 0 {
		t.Fatalf("second sweep: %v %v", again, err)
	}
}
