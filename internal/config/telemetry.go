package config

import (
	"errors"
	"fmt"
	"net/url"
	"time"
)

// Tracing exporters (telemetry.tracing.exporter).
const (
	ExporterNone     = ""          // tracing off (the default): a no-op tracer
	ExporterOTLPGRPC = "otlp-grpc" // OTLP over gRPC (port 4317)
	ExporterOTLPHTTP = "otlp-http" // OTLP over HTTP/protobuf (port 4318)
)

// Propagators airlock reads a caller's trace context with
// (telemetry.tracing.propagators).
const (
	PropagatorTraceContext = "tracecontext" // W3C traceparent / tracestate
	PropagatorB3           = "b3"           // Zipkin x-b3-* (multi) and b3 (single)
)

// Telemetry is the telemetry section of airlock.yaml.
type Telemetry struct {
	Tracing Tracing `yaml:"tracing"`
}

// Tracing is OpenTelemetry tracing: off unless Exporter is set. Spans
// continue the trace Envoy sends (traceparent, x-b3-*) and go to an OTLP
// collector. Headers (e.g. an API key of a hosted collector) are sent
// with every export and never logged.
type Tracing struct {
	// Exporter is "" (off), otlp-grpc or otlp-http.
	Exporter string `yaml:"exporter"`
	// Endpoint is the collector: host:port for otlp-grpc, a URL
	// (http://collector:4318) for otlp-http.
	Endpoint string `yaml:"endpoint"`
	// Insecure sends OTLP over plaintext (a collector on loopback or in
	// the pod); default false: TLS.
	Insecure bool              `yaml:"insecure"`
	Headers  map[string]string `yaml:"headers"`
	// SampleRatio samples this share of the traces a caller did not
	// decide about (parent-based: a sampled traceparent is always
	// followed). Default 1.
	SampleRatio *float64 `yaml:"sample_ratio"`
	// ServiceName is the service.name resource attribute. Default airlock.
	ServiceName string `yaml:"service_name"`
	// Propagators read (and write) the trace context. Default
	// [tracecontext, b3].
	Propagators []string `yaml:"propagators"`
	// ExportTimeout bounds one export. Default 10s.
	ExportTimeout time.Duration `yaml:"export_timeout"`
}

// Enabled says whether spans are recorded and exported.
func (t *Tracing) Enabled() bool { return t.Exporter != ExporterNone }

// Ratio is the sampling ratio (default 1).
func (t *Tracing) Ratio() float64 {
	if t.SampleRatio == nil {
		return 1
	}
	return *t.SampleRatio
}

// Decision-log sinks (decision_log.sink).
const (
	DecisionLogOff    = ""       // no decision log (the default)
	DecisionLogStdout = "stdout" // one JSON record a line on standard output
	DecisionLogFile   = "file"   // one JSON record a line appended to path
	DecisionLogHTTP   = "http"   // batches POSTed as a JSON array, as OPA's decision-log plugin does
)

// DecisionLog is the decision_log section: each decision in OPA's
// decision-log shape, masked, sent asynchronously to one sink.
type DecisionLog struct {
	Sink string `yaml:"sink"`
	// Path is the file the file sink appends to.
	Path string `yaml:"path"`
	// URL is where the http sink POSTs batches; URLEnv names an
	// environment variable holding it instead. Never logged.
	URL     string            `yaml:"url"`
	URLEnv  string            `yaml:"url_env"`
	Headers map[string]string `yaml:"headers"`
	// QueueSize bounds the records waiting for the sink; a record that
	// finds it full is dropped and counted
	// (airlock_decision_log_dropped_total). Default 10000.
	QueueSize int `yaml:"queue_size"`
	// BatchSize is the most records one write or POST carries. Default 100.
	BatchSize int `yaml:"batch_size"`
	// FlushInterval is the longest a record waits for its batch to fill.
	// Default 1s.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxRetries is how often a failed POST is retried (backoff doubling
	// from RetryBackoff) before its batch is dropped and counted. Default 5.
	MaxRetries   int           `yaml:"max_retries"`
	RetryBackoff time.Duration `yaml:"retry_backoff"`
	// Labels are added to every record's labels (besides id and version).
	Labels map[string]string `yaml:"labels"`
}

// Enabled says whether decisions are logged.
func (d *DecisionLog) Enabled() bool { return d.Sink != DecisionLogOff }

func (d *DecisionLog) applyDefaults() {
	if d.QueueSize == 0 {
		d.QueueSize = 10000
	}
	if d.BatchSize == 0 {
		d.BatchSize = 100
	}
	if d.FlushInterval == 0 {
		d.FlushInterval = time.Second
	}
	if d.MaxRetries == 0 {
		d.MaxRetries = 5
	}
	if d.RetryBackoff == 0 {
		d.RetryBackoff = 500 * time.Millisecond
	}
}

func (t *Tracing) applyDefaults() {
	if t.ServiceName == "" {
		t.ServiceName = "airlock"
	}
	if t.Propagators == nil {
		t.Propagators = []string{PropagatorTraceContext, PropagatorB3}
	}
	if t.ExportTimeout == 0 {
		t.ExportTimeout = 10 * time.Second
	}
}

// Validate checks the telemetry section.
func (t *Telemetry) Validate() error {
	var errs []error
	tr := &t.Tracing
	switch tr.Exporter {
	case ExporterNone:
	case ExporterOTLPGRPC:
		if tr.Endpoint == "" {
			errs = append(errs, fieldErr("telemetry.tracing.endpoint", "otlp-grpc needs the collector's host:port"))
		}
	case ExporterOTLPHTTP:
		if u, err := url.Parse(tr.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fieldErr("telemetry.tracing.endpoint", "otlp-http needs the collector's URL such as http://collector:4318"))
		}
	default:
		errs = append(errs, fieldErr("telemetry.tracing.exporter", "%q is not one of otlp-grpc, otlp-http (or empty: off)", tr.Exporter))
	}
	if tr.SampleRatio != nil && (*tr.SampleRatio < 0 || *tr.SampleRatio > 1) {
		errs = append(errs, fieldErr("telemetry.tracing.sample_ratio", "%v is outside 0..1", *tr.SampleRatio))
	}
	for i, p := range tr.Propagators {
		if p != PropagatorTraceContext && p != PropagatorB3 {
			errs = append(errs, fieldErr(fmt.Sprintf("telemetry.tracing.propagators[%d]", i), "%q is not tracecontext or b3", p))
		}
	}
	if tr.ExportTimeout < 0 {
		errs = append(errs, fieldErr("telemetry.tracing.export_timeout", "must not be negative"))
	}
	return errors.Join(errs...)
}

// Validate checks the decision_log section.
func (d *DecisionLog) Validate() error {
	var errs []error
	switch d.Sink {
	case DecisionLogOff, DecisionLogStdout:
	case DecisionLogFile:
		if d.Path == "" {
			errs = append(errs, fieldErr("decision_log.path", "the file sink needs a path"))
		}
	case DecisionLogHTTP:
		if (d.URL == "") == (d.URLEnv == "") {
			errs = append(errs, fieldErr("decision_log.url", "the http sink needs one of url and url_env"))
		} else if d.URL != "" {
			if u, err := url.Parse(d.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, fieldErr("decision_log.url", "not an http(s) URL"))
			}
		}
	default:
		errs = append(errs, fieldErr("decision_log.sink", "%q is not one of stdout, file, http (or empty: off)", d.Sink))
	}
	if d.QueueSize < 1 {
		errs = append(errs, fieldErr("decision_log.queue_size", "must be at least 1"))
	}
	if d.BatchSize < 1 || d.BatchSize > d.QueueSize {
		errs = append(errs, fieldErr("decision_log.batch_size", "must be 1..queue_size"))
	}
	if d.FlushInterval < 10*time.Millisecond {
		errs = append(errs, fieldErr("decision_log.flush_interval", "must be at least 10ms"))
	}
	if d.MaxRetries < 0 {
		errs = append(errs, fieldErr("decision_log.max_retries", "must not be negative"))
	}
	if d.RetryBackoff < time.Millisecond {
		errs = append(errs, fieldErr("decision_log.retry_backoff", "must be at least 1ms"))
	}
	return errors.Join(errs...)
}
