package decisionlog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/mask"
)

// Reasons a record is dropped (airlock_decision_log_records_dropped_total{reason}).
const (
	DropQueueFull  = "queue_full"  // the queue was full: the sink is down or slower than the decisions
	DropSinkFailed = "sink_failed" // the sink refused the batch after every retry
	DropEncode     = "encode"      // the record could not be encoded
)

// Options are a Logger's collaborators.
type Options struct {
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Profiles gives a target's masking profile (mask.Default when nil or
	// when it returns nil).
	Profiles func(target string) *mask.Profile
	// Query is the policy query (data.airlock.decision), recorded as path.
	Query string
	// ID and Version are labels.id and labels.version (the instance and
	// airlock's version).
	ID, Version string
	// Stdout is the stdout sink's writer (os.Stdout when nil).
	Stdout io.Writer
	// HTTPClient is the http sink's client (a 10s-timeout client when nil).
	HTTPClient *http.Client
}

// Logger queues decisions and writes them to one sink. A nil *Logger
// logs nothing.
type Logger struct {
	cfg     config.DecisionLog
	opts    Options
	log     *slog.Logger
	labels  map[string]string
	path    string
	sink    sink
	q       chan Entry
	done    chan struct{}
	closing chan struct{}
	once    sync.Once
	// mu orders Log against Close: once Close holds it, no Log is
	// between its check of closed and its send, so the worker's final
	// drain sees every record that was queued.
	mu     sync.RWMutex
	closed bool
	// labelsJSON is labels encoded, once (labels do not change after
	// start).
	labelsOnce sync.Once
	labelsJSON []byte
	// principals caches the masked, encoded principals recently logged.
	principals principalCache
	// clean caches header values, paths, URIs and reasons the masker
	// left unchanged.
	clean cleanCache
	// arena holds the encoded records of the batch being sent, each
	// followed by a newline; ends and recs index it (worker only).
	arena []byte
	ends  []int
	recs  [][]byte

	written  prometheus.Counter
	dropped  *prometheus.CounterVec
	batches  *prometheus.CounterVec
	queueLen prometheus.GaugeFunc
}

// New builds the Logger cfg asks for and starts its worker; nil (and no
// error) when the decision log is off.
func New(cfg config.DecisionLog, opts Options) (*Logger, error) {
	if !cfg.Enabled() {
		return nil, nil
	}
	s, err := newSink(cfg, opts)
	if err != nil {
		return nil, err
	}
	return start(cfg, opts, s), nil
}

func start(cfg config.DecisionLog, opts Options, s sink) *Logger {
	l := &Logger{
		cfg: cfg, opts: opts, log: opts.Logger, sink: s, path: QueryPath(opts.Query),
		q: make(chan Entry, cfg.QueueSize), done: make(chan struct{}), closing: make(chan struct{}),
		labels: map[string]string{"id": opts.ID, "version": opts.Version},
	}
	if l.path == "" {
		l.path = "airlock/decision"
	}
	maps.Copy(l.labels, cfg.Labels)
	l.labels["id"], l.labels["version"] = opts.ID, opts.Version
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	l.written = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "airlock_decision_log_records_written_total", Help: "Decision-log records the sink accepted.",
	})
	l.dropped = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "airlock_decision_log_records_dropped_total",
		Help: "Decision-log records dropped, by reason: queue_full (sink down or slow), sink_failed (refused after every retry), encode.",
	}, []string{"reason"})
	l.batches = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "airlock_decision_log_batches_total", Help: "Decision-log batches sent to the sink, by result (ok, retried, failed).",
	}, []string{"result"})
	l.queueLen = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "airlock_decision_log_queue_records", Help: "Decision-log records waiting for the sink.",
	}, func() float64 { return float64(len(l.q)) })
	for _, r := range []string{DropQueueFull, DropSinkFailed, DropEncode} {
		l.dropped.WithLabelValues(r)
	}
	for _, r := range []string{"ok", "retried", "failed"} {
		l.batches.WithLabelValues(r)
	}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(l.written, l.dropped, l.batches, l.queueLen)
	}
	go l.run()
	return l
}

// Log queues e and returns at once; a full queue drops e and counts it.
// It never blocks.
func (l *Logger) Log(e Entry) {
	if l == nil {
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		l.dropped.WithLabelValues(DropQueueFull).Inc()
		return
	}
	select {
	case l.q <- e:
	default:
		l.dropped.WithLabelValues(DropQueueFull).Inc()
	}
}

// Close stops taking records, writes what is queued (retrying until ctx
// ends) and closes the sink.
func (l *Logger) Close(ctx context.Context) error {
	if l == nil {
		return nil
	}
	l.once.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.closing)
	})
	select {
	case <-l.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return l.sink.Close()
}

// Dropped is how many records were dropped for reason (tests, operators).
func (l *Logger) Dropped(reason string) float64 {
	var m = &dtoMetric{}
	_ = l.dropped.WithLabelValues(reason).(prometheus.Metric).Write(m.m())
	return m.value()
}

func (l *Logger) run() {
	defer close(l.done)
	tick := time.NewTicker(l.cfg.FlushInterval)
	defer tick.Stop()
	batch := make([]Entry, 0, l.cfg.BatchSize)
	flush := func() {
		if len(batch) > 0 {
			l.send(batch)
			// Emptied, not only cut: the sent entries' inputs (headers,
			// bodies, principals) must not stay live until overwritten.
			clear(batch)
			batch = batch[:0]
		}
	}
	for {
		select {
		case e := <-l.q:
			batch = append(batch, e)
			if len(batch) >= l.cfg.BatchSize {
				flush()
			}
		case <-tick.C:
			flush()
		case <-l.closing:
			for {
				select {
				case e := <-l.q:
					batch = append(batch, e)
					if len(batch) >= l.cfg.BatchSize {
						flush()
					}
				default:
					flush()
					return
				}
			}
		}
	}
}

// send masks, encodes and writes one batch, retrying the sink with a
// doubling backoff.
func (l *Logger) send(batch []Entry) {
	// The batch's records are encoded one after the other into the
	// worker's arena, each followed by a newline, reused from batch to
	// batch (no sink keeps a record past Write): a line sink writes the
	// arena as it is, the others get the records without their newlines.
	arena, ends := l.arena[:0], l.ends[:0]
	for i := range batch {
		var err error
		if arena, err = l.appendEncoded(arena, &batch[i]); err != nil {
			l.dropped.WithLabelValues(DropEncode).Inc()
			l.log.Error("decision log: a record could not be encoded; dropped", "decision_id", batch[i].DecisionID, "error", err)
			continue
		}
		ends = append(ends, len(arena))
		arena = append(arena, '\n')
	}
	if cap(arena) <= maxArena {
		l.arena = arena
	}
	l.ends = ends
	if len(ends) == 0 {
		return
	}
	recs := l.recs[:0]
	start := 0
	for _, end := range ends {
		recs = append(recs, arena[start:end:end])
		start = end + 1
	}
	defer func() {
		clear(recs) // the arena is not kept past maxArena: do not pin it
		l.recs = recs[:0]
	}()
	write := func() error { return l.sink.Write(recs) }
	if ls, ok := l.sink.(*lineSink); ok {
		write = func() error { return ls.writeLines(arena) }
	}
	backoff := l.cfg.RetryBackoff
	for attempt := 0; ; attempt++ {
		err := write()
		if err == nil {
			l.written.Add(float64(len(recs)))
			l.batches.WithLabelValues("ok").Inc()
			return
		}
		var perm permanentError
		if attempt >= l.cfg.MaxRetries || errors.As(err, &perm) {
			l.batches.WithLabelValues("failed").Inc()
			l.dropped.WithLabelValues(DropSinkFailed).Add(float64(len(recs)))
			l.log.Error("decision log: the sink refused a batch; its records are dropped", "records", len(recs), "attempts", attempt+1, "error", err)
			return
		}
		l.batches.WithLabelValues("retried").Inc()
		l.log.Warn("decision log: the sink failed; retrying", "records", len(recs), "attempt", attempt+1, "backoff", backoff, "error", err)
		t := time.NewTimer(backoff)
		<-t.C
		backoff = min(backoff*2, 30*time.Second)
	}
}

// Record is e in OPA's decision-log shape, masked.
func (l *Logger) Record(e *Entry) *Record {
	p := l.profile(e.Target)
	r := &Record{
		Labels: l.labels, DecisionID: e.DecisionID, TraceID: e.TraceID, SpanID: e.SpanID, Path: l.path,
		XRequestID: e.XRequestID, Timestamp: e.Time.UTC(),
		Gateway: Gateway{Target: e.Target, Outcome: e.Outcome, Status: e.Status, Reason: maskText(p, e.Reason)},
	}
	if e.PolicyVersion != "" {
		r.Bundles = map[string]Bundle{BundleName: {Revision: e.PolicyVersion}}
	}
	if e.Duration > 0 {
		r.Metrics = map[string]int64{"timer_airlock_check_ns": e.Duration.Nanoseconds()}
	}
	if e.Input != nil {
		r.Input, _ = json.Marshal(EncodeInput(e.Input, p))
	}
	if e.Result != nil {
		r.Result, _ = json.Marshal(EncodeResult(e.Result, p))
	}
	return r
}

// maxArena is the largest encoding arena kept between batches: a batch
// of unusually large records does not pin its memory.
const maxArena = 4 << 20

// sink writes batches of encoded records; it keeps none of them after
// Write returns.
type sink interface {
	Write(records [][]byte) error
	Close() error
}

// permanentError is a refusal retrying cannot fix (an HTTP 4xx but 408
// and 429).
type permanentError struct{ error }

func newSink(cfg config.DecisionLog, opts Options) (sink, error) {
	switch cfg.Sink {
	case config.DecisionLogStdout:
		w := opts.Stdout
		if w == nil {
			w = os.Stdout
		}
		return &lineSink{w: w}, nil
	case config.DecisionLogFile:
		f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("decision_log.path: %w", err)
		}
		return &lineSink{w: f, c: f}, nil
	case config.DecisionLogHTTP:
		u := cfg.URL
		if cfg.URLEnv != "" {
			if u = os.Getenv(cfg.URLEnv); u == "" {
				return nil, fmt.Errorf("decision_log.url_env: $%s is empty", cfg.URLEnv)
			}
		}
		c := opts.HTTPClient
		if c == nil {
			c = &http.Client{Timeout: 10 * time.Second}
		}
		return &httpSink{url: u, headers: cfg.Headers, client: c}, nil
	}
	return nil, fmt.Errorf("decision_log.sink: %q is not a sink", cfg.Sink)
}

// lineSink writes one JSON record a line (stdout, file), a batch in one
// Write.
type lineSink struct {
	mu sync.Mutex
	w  io.Writer
	c  io.Closer
}

// Write writes recs one a line. The worker does not call it: it hands a
// line sink its arena, already in lines, through writeLines.
func (s *lineSink) Write(recs [][]byte) error {
	n := len(recs)
	for _, r := range recs {
		n += len(r)
	}
	lines := make([]byte, 0, n)
	for _, r := range recs {
		lines = append(lines, r...)
		lines = append(lines, '\n')
	}
	return s.writeLines(lines)
}

// writeLines writes lines, records each followed by a newline (the
// worker's arena), in one Write, without copying them.
func (s *lineSink) writeLines(lines []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.w.Write(lines)
	return err
}

func (s *lineSink) Close() error {
	if s.c != nil {
		return s.c.Close()
	}
	return nil
}

// httpSink POSTs a batch as a JSON array, as OPA's decision-log plugin
// does (uncompressed).
type httpSink struct {
	url     string
	headers map[string]string
	client  *http.Client
}

func (s *httpSink) Write(recs [][]byte) error {
	// The body is allocated once at its size (a growing buffer allocated
	// about twice the batch); not reused, as the transport may still
	// read a body after Do returns.
	n := len(recs) + 1
	for _, r := range recs {
		n += len(r)
	}
	buf := make([]byte, 0, n)
	buf = append(buf, '[')
	for i, r := range recs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, r...)
	}
	buf = append(buf, ']')
	req, err := http.NewRequest(http.MethodPost, s.url, bytes.NewReader(buf))
	if err != nil {
		return permanentError{errors.New("decision log: bad sink URL")} // never the URL: it may hold a secret
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range s.headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return errors.New("decision log: POST failed") // url.Error carries the URL
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return nil
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		return fmt.Errorf("decision log: sink answered %d", resp.StatusCode)
	default:
		return permanentError{fmt.Errorf("decision log: sink answered %d", resp.StatusCode)}
	}
}

func (s *httpSink) Close() error { return nil }
