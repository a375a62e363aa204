package clickhouse

import (
	"context"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// BenchmarkEventColumns adds a decoded event to the ClickHouse columns,
// the step after audit's BenchmarkDecodeRecord on the shipper's path.
func BenchmarkEventColumns(b *testing.B) {
	e := sessionEvents("s1", 1, t0)[0]
	e.EventID = audit.NewID()
	e.Masked = map[string]int{"aws_access_key": 1}
	cols := &eventCols{}
	b.ReportAllocs()
	for b.Loop() {
		cols.add(e)
		if cols.len() == 10000 {
			cols.reset()
		}
	}
}

// BenchmarkRecord measures Record plus the spool's writer and shipper,
// into a destination that builds the ClickHouse columns (as the real
// batch does) and drops them.
func BenchmarkRecord(b *testing.B) {
	cfg := audit.Defaults()
	cfg.ClickHouse.Addr = "127.0.0.1:1" // never dialled: the destination is discardDest
	cfg.ClickHouse.BatchSize = 10000
	cfg.ClickHouse.FlushInterval = time.Second
	cfg.Spool.Dir = b.TempDir()
	p, err := audit.OpenPipeline(cfg, discardDest{}, audit.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p.Close(ctx)
	}()
	tmpl := sessionEvents("s1", 1, t0)[0]
	tmpl.Masked = map[string]int{"aws_access_key": 1}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e := *tmpl
			e.EventID, e.Time = "", time.Time{}
			if err := p.Record(&e); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// discardDest accepts and forgets everything.
type discardDest struct{}

func (discardDest) NewBatch() audit.Batch { return &discardBatch{cols: &eventCols{}} }
func (discardDest) Close() error          { return nil }
func (discardDest) Sessions(context.Context, audit.SessionFilter) ([]audit.SessionSummary, error) {
	return nil, nil
}
func (discardDest) Replay(context.Context, string) (*audit.Trail, error) {
	return nil, audit.ErrNoSession
}

type discardBatch struct{ cols *eventCols }

func (b *discardBatch) Add(r audit.Record) {
	if e, ok := r.(*audit.Event); ok {
		b.cols.add(e)
	}
}
func (b *discardBatch) Len() int                   { return b.cols.len() }
func (b *discardBatch) Send(context.Context) error { return nil }
func (b *discardBatch) Reset()                     { b.cols.reset() }
