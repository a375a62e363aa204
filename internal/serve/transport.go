package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/mtls"
)

// Transport decides how the gRPC listeners serve. With listen.tls it
// loads the files (an error names the field) and returns the mutual-TLS
// server. Without it every gRPC listener must be on loopback — host names
// resolved now, all of their addresses loopback — unless listen.insecure
// is set: ext_authz answers carry upstream credentials, and ADS hands out
// the data path. airlock validate runs the same check.
func Transport(ctx context.Context, cfg *config.Config, log *slog.Logger) (*mtls.Server, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Listen.TLS.Enabled() {
		t := cfg.Listen.TLS
		mc := mtls.Config{CertFile: t.CertFile, KeyFile: t.KeyFile, ClientCAFile: t.ClientCAFile, AllowedIdentities: t.AllowedIdentities}
		s, err := mtls.New(mc, mtls.Options{Logger: log.With("component", "mtls")})
		if err != nil {
			return nil, prefixTLS(err)
		}
		return s, nil
	}
	if cfg.Listen.Insecure {
		for _, l := range cfg.Listen.GRPCListeners() {
			if l.Addr != "" {
				log.Warn("gRPC listener without TLS (listen.insecure): anyone who reaches it can ask for upstream credentials", "field", l.Field, "address", l.Addr)
			}
		}
		return nil, nil
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var errs []error
	for _, l := range cfg.Listen.GRPCListeners() {
		if l.Addr == "" {
			continue
		}
		lo, err := mtls.Loopback(rctx, l.Addr, nil)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w (cannot tell whether it is loopback; a listener without listen.tls must be)", l.Field, err))
		case !lo:
			errs = append(errs, config.InsecureListenerError(l.Field, l.Addr))
		}
	}
	return nil, errors.Join(errs...)
}

// prefixTLS turns mtls's field errors into airlock.yaml's (under
// listen.tls), so they carry the file position; other errors (a file
// that does not load) get the listen.tls. prefix.
func prefixTLS(err error) error {
	var out []error
	for _, e := range flatten([]error{err}) {
		if fe := (*mtls.FieldError)(nil); errors.As(e, &fe) {
			out = append(out, &config.FieldError{Path: "listen.tls." + fe.Field, Message: fe.Msg})
		} else {
			out = append(out, fmt.Errorf("listen.tls.%w", e))
		}
	}
	return errors.Join(out...)
}

// grpcHeadroom is what a Check or ProcessingRequest carries besides the
// body: headers, attributes, metadata.
const grpcHeadroom = 1 << 20

// upstreamChunk is the most one read from an upstream adds to a body
// Envoy is buffering: a cluster's per_connection_buffer_limit_bytes, left
// at Envoy's 1 MiB default (cluster.proto). ext_proc's BUFFERED_PARTIAL
// sends its queue once it is over the stream's buffer limit
// (processor_state.h queueOverHighLimit), so the message can exceed the
// limit by one such chunk.
const upstreamChunk = 1 << 20

// AuthzMaxRecvMsgSize is the ext_authz server's receive limit: the
// request body Envoy may send (limits.max_request_bytes, with_request_body)
// plus room for the headers and attributes, so a body within the limit
// is never refused by gRPC (whose default is 4 MiB) before airlock reads it.
func AuthzMaxRecvMsgSize(cfg *config.Config) int {
	return max(cfg.Limits.MaxRequestBytes, 0) + grpcHeadroom
}

// ProcMaxRecvMsgSize is the ext_proc server's: the most of a body Envoy
// holds and sends in one message — a buffered request body, or a
// response body buffered whole for masking, both within the stream's
// buffer limit (envoy.StreamBufferLimit: the larger of
// limits.max_request_bytes and limits.max_response_bytes) — plus what
// BUFFERED_PARTIAL can add past it, plus headroom. A response over the
// response limit thus still reaches airlock, which answers it with a
// JSON-RPC error by its id, instead of failing the gRPC stream (which
// Envoy would turn into its own plain 500).
//
// Send limits stay gRPC's default (math.MaxInt32): airlock's answers are
// a masked body, which may be longer than what came, and Envoy's
// envoy_grpc client receives without a limit unless
// max_receive_message_length is set (grpc_service.proto), which airlock
// does not set.
func ProcMaxRecvMsgSize(cfg *config.Config) int {
	return int(envoy.StreamBufferLimit(cfg)) + upstreamChunk + grpcHeadroom
}

func transportName(s *mtls.Server) string {
	if s == nil {
		return "plaintext"
	}
	return "mutual TLS"
}
