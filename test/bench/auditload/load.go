package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/airlock-mcp/airlock/internal/audit"
	auditch "github.com/airlock-mcp/airlock/internal/audit/clickhouse"
	chtest "github.com/airlock-mcp/airlock/test/clickhouse"
)

type options struct {
	N, Rate, Producers, Sessions, PayloadBytes, BatchSize int
	Duration                                              time.Duration
	ClickHouse, SpoolDir                                  string
}

type result struct {
	ServerVersion  string        `json:"server_version"`
	Producers      int           `json:"producers"`
	PayloadBytes   int           `json:"payload_bytes"`
	BatchSize      int           `json:"batch_size"`
	OfferedRate    int           `json:"offered_rate,omitempty"`
	Offered        time.Duration `json:"offered_ns,omitempty"`
	Recorded       int64         `json:"recorded"`
	RecordTime     time.Duration `json:"record_ns"`
	RecordRate     float64       `json:"record_events_per_s"`
	Total          time.Duration `json:"total_ns"`
	SustainedRate  float64       `json:"sustained_events_per_s"`
	Lag            time.Duration `json:"lag_ns"`
	PeakSpoolBytes int64         `json:"peak_spool_bytes"`
	CPUPerEventUS  float64       `json:"cpu_per_event_us"`            // this process (producers, spool, shipper, client)
	CHCPUPerEvent  float64       `json:"clickhouse_cpu_per_event_us"` // the ClickHouse server (0 when not ours)
	IdlePeak       float64       `json:"idle_2core_peak_events_per_s"`
	StoredFinal    uint64        `json:"stored_final"`
	DistinctIDs    uint64        `json:"distinct_ids"`
	Dropped        int64         `json:"dropped"`
	ShipErrors     int64         `json:"ship_errors"`
}

// ZeroLoss: every recorded event is stored exactly once and none dropped.
func (r result) ZeroLoss() bool {
	return r.Dropped == 0 && r.StoredFinal == uint64(r.Recorded) && r.DistinctIDs == uint64(r.Recorded)
}

func load(ctx context.Context, o options, logw io.Writer) (result, error) {
	res := result{Producers: o.Producers, PayloadBytes: o.PayloadBytes, BatchSize: o.BatchSize}
	addr := o.ClickHouse
	chPid := 0
	if addr == "" {
		srv, err := chtest.Start(ctx, chtest.Options{})
		if err != nil {
			return res, err
		}
		defer srv.Close()
		addr, chPid = srv.Addr(), srv.Pid()
	}
	spool := o.SpoolDir
	if spool == "" {
		d, err := os.MkdirTemp("", "auditload-spool-")
		if err != nil {
			return res, err
		}
		defer os.RemoveAll(d)
		spool = d
	}
	db := fmt.Sprintf("auditload_%d", time.Now().UnixNano())
	cfg := audit.Defaults()
	cfg.ClickHouse.Addr = addr
	cfg.ClickHouse.Database = db
	cfg.ClickHouse.BatchSize = o.BatchSize
	cfg.ClickHouse.RetentionDays = 0
	cfg.Spool.Dir = spool
	cfg.Spool.MaxBytes = 8 << 30
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelWarn}))
	p, err := auditch.OpenPipeline(cfg, audit.Options{Logger: log})
	if err != nil {
		return res, err
	}
	defer p.Close(context.Background())

	conn, err := chgo.Open(&chgo.Options{Addr: []string{addr}, ReadTimeout: 5 * time.Minute})
	if err != nil {
		return res, err
	}
	defer conn.Close()
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&res.ServerVersion); err != nil {
		return res, err
	}
	// Create the schema before the clock starts.
	warm := &audit.Event{SessionID: "warm-up"}
	if err := p.Record(warm); err != nil {
		return res, err
	}
	if err := p.Drain(ctx); err != nil {
		return res, err
	}
	if err := conn.Exec(ctx, "TRUNCATE TABLE "+db+".events"); err != nil {
		// 18.16 has TRUNCATE; if not, count the warm-up row instead.
		return res, fmt.Errorf("emptying the events table: %w", err)
	}

	var peak atomic.Int64
	stopPeak := make(chan struct{})
	go func() {
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopPeak:
				return
			case <-t.C:
				if b := p.Stats().SpoolBytes; b > peak.Load() {
					peak.Store(b)
				}
			}
		}
	}()

	cpu0, ch0 := selfCPU(), procCPU(chPid)
	payload := `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"` + strings.Repeat("x", max(o.PayloadBytes-60, 0)) + `"}]}}`
	start := time.Now()
	var recorded atomic.Int64
	var recErr atomic.Value
	var wg sync.WaitGroup
	perProducer := o.N / o.Producers
	deadline := start.Add(o.Duration)
	for w := range o.Producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			dirs := []audit.Direction{audit.DirRequest, audit.DirResponse}
			for i := 0; ; i++ {
				if o.Rate > 0 {
					// Open loop: event k of this producer is due at start + k/rate·producers.
					due := start.Add(time.Duration(float64(i) * float64(time.Second) * float64(o.Producers) / float64(o.Rate)))
					if !due.Before(deadline) {
						return
					}
					if d := time.Until(due); d > 0 {
						time.Sleep(d)
					}
				} else if i >= perProducer {
					return
				}
				e := &audit.Event{
					SessionID: fmt.Sprintf("s-%d-%d", w, i%max(o.Sessions/o.Producers, 1)),
					Principal: "user" + fmt.Sprint(i%50) + "@example.com", ClientID: "agent-1", Issuer: "https://issuer.example",
					Target: "github", Direction: dirs[i%2], Method: "tools/call", Tool: "search_issues", JSONRPCID: fmt.Sprint(i),
					Status: 200, Outcome: "allow", LatencyMS: 12.5, Payload: payload,
				}
				if i%10 == 0 {
					e.Masked = map[string]int{"aws_access_key": 1}
				}
				if err := p.Record(e); err != nil {
					recErr.Store(err)
					return
				}
				recorded.Add(1)
			}
		}()
	}
	wg.Wait()
	recorded0 := time.Now()
	if err, _ := recErr.Load().(error); err != nil {
		return res, err
	}
	if err := p.Drain(ctx); err != nil {
		return res, err
	}
	end := time.Now()
	close(stopPeak)
	cpu1, ch1 := selfCPU(), procCPU(chPid)

	st := p.Stats()
	res.OfferedRate, res.Offered = o.Rate, 0
	if o.Rate > 0 {
		res.Offered = o.Duration
	}
	res.Recorded = recorded.Load()
	res.RecordTime = recorded0.Sub(start)
	res.RecordRate = float64(res.Recorded) / res.RecordTime.Seconds()
	res.Total = end.Sub(start)
	res.SustainedRate = float64(res.Recorded) / res.Total.Seconds()
	res.Lag = end.Sub(recorded0)
	res.PeakSpoolBytes = peak.Load()
	if res.Recorded > 0 {
		res.CPUPerEventUS = float64((cpu1 - cpu0).Microseconds()) / float64(res.Recorded)
		res.CHCPUPerEvent = float64((ch1 - ch0).Microseconds()) / float64(res.Recorded)
		if per := res.CPUPerEventUS + res.CHCPUPerEvent; per > 0 {
			res.IdlePeak = 2e6 / per
		}
	}
	res.Dropped = st.Dropped + st.Rejected
	res.ShipErrors = st.ShipErrors
	if err := conn.QueryRow(ctx, "SELECT count() FROM "+db+".events FINAL").Scan(&res.StoredFinal); err != nil {
		return res, err
	}
	if err := conn.QueryRow(ctx, "SELECT uniqExact(event_id) FROM "+db+".events").Scan(&res.DistinctIDs); err != nil {
		return res, err
	}
	if err := conn.Exec(ctx, "DROP DATABASE "+db); err != nil {
		return res, err
	}
	return res, nil
}

// selfCPU is this process's user+system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the user+system CPU time of process pid (0 if unknown), from
// /proc/<pid>/stat (fields 14 and 15, in clock ticks of 1/100 s).
func procCPU(pid int) time.Duration {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	sy, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+sy) * 10 * time.Millisecond
}
