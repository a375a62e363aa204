package clickhouse

import (
	"context"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// Open starts the audit backend cfg describes: the spool and its shipper
// to ClickHouse when cfg.ClickHouse has an address, else the embedded store.
// A ClickHouse that is down does not make Open fail: rows wait in the
// spool until it answers. It lives here, not in internal/audit, because
// choosing ClickHouse needs clickhouse-go, which only this package links.
func Open(ctx context.Context, cfg audit.Config, opts audit.Options) (audit.Recorder, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClickHouse.Enabled() {
		return OpenPipeline(cfg, opts)
	}
	return audit.OpenEmbedded(cfg, opts)
}

// OpenStore opens the store for the `sessions` and `replay` commands:
// ClickHouse when configured, else the embedded store's directory, read
// only (a running `airlock serve` may be writing it).
func OpenStore(ctx context.Context, cfg audit.Config, opts audit.Options) (audit.StoreCloser, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.ClickHouse.Enabled() {
		return Connect(ctx, cfg.ClickHouse, opts.LoggerOrDiscard())
	}
	return audit.OpenEmbeddedReader(cfg.Embedded.Dir)
}

// OpenPipeline opens the spool (shipping whatever an earlier run left in
// it), starts shipping to ClickHouse in the background and sweeps
// retention every hour.
func OpenPipeline(cfg audit.Config, opts audit.Options) (*audit.Pipeline, error) {
	p, _, err := openPipeline(cfg, opts, time.Hour)
	return p, err
}

// openPipeline is OpenPipeline with the retention interval (negative:
// never, for tests that sweep by hand); it also returns the connection.
func openPipeline(cfg audit.Config, opts audit.Options, retentionEvery time.Duration) (*audit.Pipeline, *clickHouse, error) {
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	ch, err := dialClickHouse(cfg.ClickHouse, opts.LoggerOrDiscard().With("component", "audit"))
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if retentionEvery > 0 {
			ch.retentionLoop(ctx, retentionEvery)
		}
	}()
	store := &Store{ch: ch, stopRetention: func() { cancel(); <-done }}
	p, err := audit.OpenPipeline(cfg, store, opts)
	if err != nil {
		return nil, nil, err
	}
	return p, ch, nil
}
