package audit

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Options are what Open needs besides the configuration.
type Options struct {
	Logger     *slog.Logger          // default: discard
	Registerer prometheus.Registerer // metrics are registered here when set
	Now        func() time.Time      // clock for rows recorded without a time; default time.Now

	// retentionEvery is how often the embedded store's retention sweeps
	// (default 1h; negative: never, for tests that sweep by hand).
	retentionEvery time.Duration
	// CrashBeforeDelete, when set, is asked before the shipper deletes
	// segments whose rows were acknowledged; true stops the shipper there,
	// as a crash would. Only the at-least-once tests of
	// internal/audit/clickhouse set it.
	CrashBeforeDelete func() bool
}

// LoggerOrDiscard is Logger, or a logger that discards when it is nil.
func (o Options) LoggerOrDiscard() *slog.Logger { return o.logger() }

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// StoreCloser is a Store to close after use.
type StoreCloser interface {
	Store
	Close() error
}

// Destination is where a Pipeline ships its rows and what answers its
// Sessions and Replay: ClickHouse (internal/audit/clickhouse). Keeping it
// an interface keeps clickhouse-go out of everything that only records.
type Destination interface {
	Store
	// NewBatch returns an empty batch; the shipper keeps two in turn.
	NewBatch() Batch
	// Close releases the destination after the shipper stopped.
	Close() error
}

// Batch collects rows and writes them. Send writes the rows not yet
// acknowledged and may be called again after an error; rows a failed
// attempt did store are stored again (the destination de-duplicates by
// id). The shipper counts the rows as shipped once Send returns nil.
type Batch interface {
	// Add adds r's row. r, its strings and its slices are valid only
	// during the call (the shipper decodes rows in place, their strings
	// aliasing the segment it read, whose buffer it reads the next
	// segment into): a Batch copies what it keeps.
	Add(r Record)
	Len() int
	Send(ctx context.Context) error
	Reset()
}

// Pipeline records rows into the spool and ships them to its
// Destination; it answers Sessions and Replay from the Destination.
type Pipeline struct {
	Store
	dest Destination
	sp   *spool
	sh   *shipper
	m    *metrics
	log  *slog.Logger
}

// OpenPipeline opens the spool (shipping whatever an earlier run left
// in it) and starts shipping to dest in the background. The Pipeline
// owns dest from then on: Close closes it, and so does a failed open.
func OpenPipeline(cfg Config, dest Destination, opts Options) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		dest.Close()
		return nil, err
	}
	if !cfg.ClickHouse.Enabled() {
		dest.Close()
		return nil, errors.New("audit: clickhouse.addr and clickhouse.addrs are empty")
	}
	log := opts.logger().With("component", "audit")
	m := newMetrics(opts.Registerer)
	sp, err := openSpool(cfg.Spool, cfg.ClickHouse.FlushInterval, newPreparer(cfg.PayloadMaxBytes, opts.Now), m, log)
	if err != nil {
		dest.Close()
		return nil, err
	}
	p := &Pipeline{Store: dest, dest: dest, sp: sp, m: m, log: log}
	p.sh = startShipper(sp, dest, cfg.ClickHouse.BatchSize, cfg.ClickHouse.BatchBytes, log, m, opts.CrashBeforeDelete)
	return p, nil
}

// Record puts r in the spool; see Sink.
func (p *Pipeline) Record(r Record) error { return p.sp.Record(r) }

// Drain seals the open segment and waits until ClickHouse acknowledged
// every row recorded so far.
func (p *Pipeline) Drain(ctx context.Context) error { return p.sp.drain(ctx) }

// Stats returns the pipeline's counters.
func (p *Pipeline) Stats() Stats {
	st := p.m.stats()
	p.sp.mu.Lock()
	st.SpoolBytes, st.Full, st.Segments = p.sp.used, p.sp.full, p.sp.nsegs
	p.sp.mu.Unlock()
	return st
}

// Close stops accepting rows, writes and seals what is buffered, ships
// until the spool is empty or ctx ends, and closes the connection. Rows
// not shipped stay in the spool for the next start.
func (p *Pipeline) Close(ctx context.Context) error {
	p.sp.closeWriter()
	select {
	case <-p.sh.done:
	case <-ctx.Done():
		p.sh.cancel()
		<-p.sh.done
	}
	p.sh.cancel()
	p.sp.unlock()
	if p.sp.pending() {
		p.log.Warn("audit: closed with rows still in the spool; they are shipped at the next start", "bytes", p.Stats().SpoolBytes)
	}
	return p.dest.Close()
}
