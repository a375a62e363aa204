package clickhouse

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// TestRetentionDropsOldPartitions: day partitions older than the
// retention go, in every table; newer ones stay. On a cluster the local
// tables' partitions go ON CLUSTER, from every replica.
func TestRetentionDropsOldPartitions(t *testing.T) {
	for _, tt := range []struct {
		name    string
		cluster bool
	}{{"one server", false}, {"cluster", true}} {
		t.Run(tt.name, func(t *testing.T) { testRetention(t, tt.cluster) })
	}
}

func testRetention(t *testing.T, onCluster bool) {
	db := testDB(t)
	var (
		cfg   audit.Config
		addrs []string
		suf   string
	)
	if onCluster {
		c := sharedCluster(t)
		cfg, addrs, suf = clusterConfig(t, c, db), c.Addrs(), "_local"
	} else {
		s := sharedServer(t)
		cfg, addrs = testConfig(t, s.Addr(), db), []string{s.Addr()}
	}
	cfg.ClickHouse.RetentionDays = 5
	p, ch, err := openPipeline(cfg, audit.Options{}, -1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(ctxT(t, 10*time.Second)) })
	now := time.Now().UTC()
	ages := []int{0, 2, 5, 6, 40}
	for _, age := range ages {
		at := now.AddDate(0, 0, -age)
		for _, r := range []audit.Record{
			&audit.Event{Time: at, SessionID: "s"},
			&audit.Decision{Time: at},
			&audit.RequestEvent{Time: at, RequestID: "r"},
			&audit.GrantEvent{Time: at, GrantID: "g"},
		} {
			if err := p.Record(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := p.Drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	dropped, err := ch.dropExpired(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, age := range []int{6, 40} {
		d := now.AddDate(0, 0, -age).Format("20060102")
		for _, table := range []string{"decisions", "events", "grant_events", "request_events"} {
			want = append(want, table+suf+"/"+d)
		}
	}
	sort.Strings(want)
	sort.Strings(dropped)
	if d := cmp.Diff(want, dropped); d != "" {
		t.Fatalf("dropped (-want +got):\n%s", d)
	}
	for _, addr := range addrs {
		conn := connect(t, addr)
		for _, table := range []string{"events", "decisions", "request_events", "grant_events"} {
			if onCluster {
				if err := conn.Exec(ctxT(t, time.Minute), "SYSTEM SYNC REPLICA "+db+"."+table+suf); err != nil {
					t.Fatal(err)
				}
			}
			if n := count(t, conn, "SELECT count() FROM "+db+"."+table+suf+" FINAL"); n != 3 {
				t.Errorf("%s: %s keeps %d rows, want 3 (ages 0, 2, 5 days)", addr, table+suf, n)
			}
		}
	}
	// A second sweep finds nothing more.
	if again, err := ch.dropExpired(context.Background(), now); err != nil || len(again) != 0 {
		t.Fatalf("second sweep: %v %v", again, err)
	}
}
