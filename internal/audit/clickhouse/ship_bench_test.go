package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/cputime"
)

// benchDecisions are n decision rows as ext_authz records them.
func benchDecisions(n int) []*audit.Decision {
	out := make([]*audit.Decision, n)
	for i := range out {
		out[i] = &audit.Decision{
			DecisionID: audit.NewID(), Time: t0.Add(time.Duration(i) * time.Microsecond), SessionID: fmt.Sprintf("sess-%d", i%100),
			Principal: fmt.Sprintf("user%d@example.com", i%100), ClientID: "agent-1", Issuer: "https://issuer.example", Target: "github",
			Method: "tools/call", Tool: "search_issues", JSONRPCID: fmt.Sprint(i), Outcome: "allow", Reason: "policy allows search_issues",
			PolicyVersion: "sha256:0123456789abcdef", Status: 200, LatencyUS: 85, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		}
	}
	return out
}

// BenchmarkSendDecisions is the ClickHouse batch alone, into a real
// ClickHouse: each op adds 1,000 or 10,000 (the default batch_size)
// decision rows, sends them with one INSERT and resets the batch for the
// next, as the shipper does. B/op and allocs/op are per op (divide by the
// rows for a row's share).
func BenchmarkSendDecisions(b *testing.B) {
	srv := sharedServer(b)
	for _, rows := range []int{1000, 10000} {
		b.Run(fmt.Sprint(rows), func(b *testing.B) {
			cfg := testConfig(b, srv.Addr(), testDB(b))
			ch, err := dialClickHouse(cfg.ClickHouse, nopLog())
			if err != nil {
				b.Fatal(err)
			}
			defer ch.close()
			recs := benchDecisions(rows)
			batch := ch.newBatch()
			ctx := context.Background()
			send := func() {
				for _, r := range recs {
					batch.Add(r)
				}
				if err := batch.Send(ctx); err != nil {
					b.Fatal(err)
				}
				batch.Reset()
			}
			send() // the schema, and the batch's first growth
			b.ReportAllocs()
			for b.Loop() {
				send()
			}
		})
	}
}

// BenchmarkShipDecisions is the whole audit path of a decision into a
// real ClickHouse: Record (into the spool), the spool's writer, the
// shipper's read and decode, the batch and the INSERT. Per op: one row
// (BenchmarkShipDecisions -benchtime 100000x: batches of 10,000 rows).
// cpu-µs/op is the process CPU per row (every goroutine: the recording
// loop, the spool's writer, the shipper, the collector; not ClickHouse's).
func BenchmarkShipDecisions(b *testing.B) {
	srv := sharedServer(b)
	cfg := testConfig(b, srv.Addr(), testDB(b))
	cfg.ClickHouse.FlushInterval = 200 * time.Millisecond
	p := startPipeline(b, cfg, audit.Options{})
	recs := benchDecisions(1000)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The schema, and a few batches: a steady state, not the batches'
	// first growth.
	for i := range 25000 {
		d := *recs[i%len(recs)]
		d.DecisionID = ""
		if err := p.Record(&d); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cputime.Process()
	for i := 0; i < b.N; i++ {
		d := *recs[i%len(recs)]
		d.DecisionID = ""
		if err := p.Record(&d); err != nil {
			b.Fatal(err)
		}
	}
	if err := p.Drain(ctx); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64((cputime.Process()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
}
