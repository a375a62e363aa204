// Package extproc answers Envoy's external processing filter: for every
// HTTP exchange on an MCP endpoint it sees the request and the response,
// masks secrets in the response (SSE streams event by event with a
// carry-over buffer across chunks; every other body buffered and masked by
// what it holds — JSON, JSON lines or text — whatever its label; UTF-16
// decoded and encoded back, see charset.go) and records every MCP message,
// masked, for the audit trail. Processor and Stream are the
// gRPC-free core; grpc.go adapts them to envoy.service.ext_proc.v3,
// reading Envoy's messages with hand-written wire code where they are
// encoded the plain way (wire_req.go, fuzzed against proto.Unmarshal).
//
// Plaintext for masking, or nothing: every byte the agent receives has
// been masked, or the response is withheld and the agent gets a JSON-RPC
// error by its request's id (an array for a batch), with an "error" record
// in the audit trail saying why. In particular:
//
//   - A response with a content-encoding other than identity is refused
//     (502), never decompressed: decompressing would put a zip-bomb-sized
//     buffer and a second reading of the bytes (gzip, br, zstd, deflate,
//     stacked codings) between the server and what airlock decides on,
//     and re-encoding would hand the agent bytes airlock never read.
//     airlock's routes ask upstreams for accept-encoding: identity, so a
//     compliant server never compresses.
//   - The response body mode Envoy announces in protocol_config decides
//     how the body is read; a mode that would let bytes pass unseen
//     (NONE, BUFFERED_PARTIAL past Envoy's buffer, no protocol_config) is
//     switched with mode_override when Options.ModeOverride says Envoy
//     honours it, and refused otherwise (see Stream.planBody).
package extproc

import (
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/tracing"
)

// Profiles finds masking profiles by name.
type Profiles interface {
	Get(name string) (*mask.Profile, error)
}

// Options configure a Processor.
type Options struct {
	Profiles Profiles
	// Recorder takes the audit events of every message, masked; it must
	// not block (the audit pipeline spools). An error means the audit
	// trail cannot take the message and the configured policy is to fail
	// closed: the exchange is then failed. nil: nothing recorded.
	Recorder audit.Sink
	Logger   *slog.Logger
	Registry prometheus.Registerer
	// MaxEventBytes bounds one SSE event (and the memory of a stream). A
	// bigger event cannot be masked and is not passed on: the client gets
	// instead a JSON-RPC error event by each request id the stream has not
	// answered, the audit trail an "error" record each, and the stream
	// ends there (a stream with no request ids gets an error with a null
	// id and goes on). Default 1 MiB (masking.max_event_bytes).
	MaxEventBytes int
	// MaxBodyBytes bounds a buffered (JSON or text) response
	// (limits.max_response_bytes); a bigger one is answered with a
	// JSON-RPC error by its request's id rather than passed unmasked.
	// Default 8 MiB.
	MaxBodyBytes int
	// MaxRequestBytes is the largest request body Envoy lets through
	// (limits.max_request_bytes): a request body is kept up to the larger
	// of it and MaxBodyBytes, so a response withheld later still answers
	// each of its ids. 0: MaxBodyBytes alone.
	MaxRequestBytes int
	// MaxRecordBytes caps the payload stored per message. Default 64 KiB.
	MaxRecordBytes int
	// ModeOverride says Envoy honours mode_override (allow_mode_override
	// on, allowed_override_modes unset, not full duplex), as in the
	// configuration airlock renders. Only then is a response whose body
	// Envoy would not send whole (response_body_mode NONE, or SSE in
	// BUFFERED_PARTIAL) switched to a mode airlock can mask; otherwise it
	// is refused. Off by default: the processor cannot see Envoy's config.
	ModeOverride bool
	// MaxStreams is the size of Envoy's airlock_proc circuit breaker
	// (limits.max_streams); a stream that arrives with that many open is
	// counted as filling it. 0: not counted.
	MaxStreams int
	// Targets are the configured target names: the values of the target
	// label of airlock_proc_masked_total (any other is counted as "other").
	Targets []string
	Now     func() time.Time
	// Tracing traces each stream (nil: off).
	Tracing *tracing.Tracing
}

// Processor holds what all streams share.
type Processor struct {
	opts     Options
	log      *slog.Logger
	metrics  *metrics
	targets  map[string]struct{}
	inFlight atomic.Int64
}

// enter counts a stream open until the returned func is called. Each MCP
// exchange keeps its ext_proc stream for its life, so with MaxStreams open
// Envoy's airlock_proc breaker is full and the next exchange is refused
// without reaching airlock: a failed stream, which ext_proc, with
// failure_mode_allow off, answers with a 500 (ext_proc.cc onGrpcError).
func (p *Processor) enter() (leave func()) {
	n := p.inFlight.Add(1)
	p.metrics.inFlight.Inc()
	if max := int64(p.opts.MaxStreams); max > 0 && n >= max {
		p.metrics.saturated.Inc()
		if n == max {
			p.log.Warn("ext_proc circuit breaker full: Envoy refuses further MCP exchanges until streams end (limits.max_streams)", "in_flight", n)
		}
	}
	return func() {
		p.inFlight.Add(-1)
		p.metrics.inFlight.Dec()
	}
}

// New builds a Processor.
func New(opts Options) *Processor {
	if opts.MaxEventBytes <= 0 {
		opts.MaxEventBytes = 1 << 20
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 8 << 20
	}
	if opts.MaxRecordBytes <= 0 {
		opts.MaxRecordBytes = 64 << 10
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	p := &Processor{opts: opts, log: log, metrics: newMetrics(opts.Registry), targets: make(map[string]struct{}, len(opts.Targets))}
	for _, t := range opts.Targets {
		p.targets[t] = struct{}{}
	}
	return p
}
