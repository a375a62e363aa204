package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

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

// AuthzMaxRecvMsgSize is the ext_authz server's receive limit: the
// request body Envoy may send (limits.max_request_bytes, with_request_body)
// plus room for the headers and attributes, so a body within the limit
// is never refused by gRPC (whose default is 4 MiB) before airlock reads it.
func AuthzMaxRecvMsgSize(cfg *config.Config) int {
	return max(cfg.Limits.MaxRequestBytes, 0) + grpcHeadroom
}

// ProcMaxRecvMsgSize is the ext_proc server's: a buffered request body
// (up to limits.max_request_bytes) or a JSON response body buffered whole
// for masking (up to masking.max_body_bytes), plus headroom.
func ProcMaxRecvMsgSize(cfg *config.Config) int {
	return max(cfg.Limits.MaxRequestBytes, cfg.Masking.MaxBodyBytes, 0) + grpcHeadroom
}

func transportName(s *mtls.Server) string {
	if s == nil {
		return "plaintext"
	}
	return "mutual TLS"
}
