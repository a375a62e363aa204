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

	// retentionEvery is how often retention sweeps (default 1h; negative:
	// never, for tests that sweep by hand).
	retentionEvery time.Duration
	// crashBeforeDelete simulates a crash between a batch being
	// acknowledged and its segments being deleted (tests).
	crashBeforeDelete func() bool
}

func (o Options) logger() *slog.Logger {
	if o.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return o.Logger
}

// Open starts the audit backend cfg describes: the spool and its shipper
// to ClickHouse when cfg.ClickHouse.Addr is set, else the embedded store.
// A ClickHouse that is down does not make Open fail: rows wait in the
// spool until it answers.
func Open(ctx context.Context, cfg Config, opts Options) (Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClickHouse.Addr != "" {
		return OpenPipeline(cfg, opts)
	}
	return OpenEmbedded(cfg, opts)
}

// OpenStore opens the store for the `sessions` and `replay` commands:
// ClickHouse when configured, else the embedded store's directory, read
// only (a running `airlock serve` may be writing it).
func OpenStore(ctx context.Context, cfg Config, opts Options) (StoreCloser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClickHouse.Addr != "" {
		return OpenClickHouseStore(ctx, cfg.ClickHouse, opts.logger())
	}
	return OpenEmbeddedReader(cfg.Embedded.Dir)
}

// StoreCloser is a Store to close after use.
type StoreCloser interface {
	Store
	Close() error
}

// Pipeline records rows into the spool and ships them to ClickHouse; it
// answers Sessions and Replay from ClickHouse.
type Pipeline struct {
	*ClickHouseStore
	sp      *spool
	sh      *shipper
	m       *metrics
	log     *slog.Logger
	cancel  context.CancelFunc // stops the retention loop
	retDone chan struct{}
}

// OpenPipeline opens the spool (shipping whatever an earlier run left
// in it) and starts shipping to ClickHouse in the background.
func OpenPipeline(cfg Config, opts Options) (*Pipeline, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClickHouse.Addr == "" {
		return nil, errors.New("audit: clickhouse.addr is empty")
	}
	log := opts.logger().With("component", "audit")
	m := newMetrics(opts.Registerer)
	ch, err := dialClickHouse(cfg.ClickHouse, log, m)
	if err != nil {
		return nil, err
	}
	sp, err := openSpool(cfg.Spool, cfg.ClickHouse.FlushInterval, newPreparer(cfg.PayloadMaxBytes, opts.Now), m, log)
	if err != nil {
		ch.close()
		return nil, err
	}
	p := &Pipeline{ClickHouseStore: &ClickHouseStore{ch: ch}, sp: sp, m: m, log: log, retDone: make(chan struct{})}
	p.sh = startShipper(sp, ch, cfg.ClickHouse.BatchSize, log, m, opts.crashBeforeDelete)
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	every := opts.retentionEvery
	if every == 0 {
		every = time.Hour
	}
	go func() {
		defer close(p.retDone)
		if every > 0 {
			ch.retentionLoop(ctx, every)
		}
	}()
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
	p.cancel()
	<-p.retDone
	p.sp.unlock()
	if p.sp.pending() {
		p.log.Warn("audit: closed with rows still in the spool; they are shipped at the next start", "bytes", p.Stats().SpoolBytes)
	}
	return p.ch.close()
}
