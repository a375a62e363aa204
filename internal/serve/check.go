package serve

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants/pgstore"
	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/mtls"
	"github.com/airlock-mcp/airlock/internal/notify"
	"github.com/airlock-mcp/airlock/internal/policy/rego"
	"github.com/airlock-mcp/airlock/internal/slackapp"
)

// CheckOptions tune Check.
type CheckOptions struct {
	// SkipCredentials leaves the upstream credentials and the webhooks'
	// environment unread (airlock validate --skip-credentials, e.g. in CI
	// without the secrets).
	SkipCredentials bool
	// Logger receives the warnings of setting up the gRPC transport.
	// Default: discard.
	Logger *slog.Logger
}

// Checked is what Check learned about a configuration that passed.
type Checked struct {
	// PolicyVersion is the version of the policy as compiled now.
	PolicyVersion string
	// GRPCTransport says how the gRPC listeners serve: "mutual TLS",
	// "plaintext on loopback" or "plaintext (listen.insecure)".
	GRPCTransport string
	// Notes name what could not be checked, and why.
	Notes []string
	// TLS serves the gRPC listeners' certificates (listen.tls, files
	// loaded); nil when they are plaintext.
	TLS *mtls.Server
}

// Check runs the checks of a parsed configuration that need airlock's
// parts, which config.Validate (imported by every part, so importing
// none) cannot make: masking profiles compile and every target's profile
// exists, the policy compiles, upstream credentials and the webhooks' URLs
// and signing keys can be read from the environment, the gRPC
// transport can be set up (TLS files load, plaintext listeners are on
// loopback, host names resolved) and Envoy's configuration renders.
// airlock validate and Start both call it, so validate passes exactly
// the configurations serve accepts (bar the issuers, which are reached
// only when serving). Every problem is returned, joined; field errors
// carry the file position when cfg came from config.Parse.
func Check(ctx context.Context, cfg *config.Config, opts CheckOptions) (*Checked, error) {
	var errs []error
	chk := &Checked{GRPCTransport: "plaintext on loopback"}
	profiles, err := mask.NewSet(cfg.Masking.Profiles)
	if err != nil {
		errs = append(errs, &config.FieldError{Path: "masking.profiles", Message: err.Error()})
	} else {
		for i, t := range cfg.Targets {
			if _, err := profiles.Get(t.MaskingProfile); err != nil {
				errs = append(errs, &config.FieldError{Path: fmt.Sprintf("targets[%d].masking_profile", i), Message: err.Error()})
			}
		}
	}
	if eng, err := rego.Load(cfg.Policy.Dir, cfg.Policy.Query); err != nil {
		errs = append(errs, err)
	} else {
		chk.PolicyVersion = eng.Version()
	}
	if !opts.SkipCredentials {
		for i, t := range cfg.Targets {
			if _, err := t.Credential.Resolve(); err != nil {
				errs = append(errs, &config.FieldError{Path: fmt.Sprintf("targets[%d].credential", i), Message: fmt.Sprintf("target %s: %v", t.Name, err)})
			}
		}
		// Webhook URLs and signing keys from the environment, which
		// notify.New refuses to start without.
		errs = append(errs, notify.CheckEnvironment(cfg.Notifications, nil))
		errs = append(errs, slackapp.CheckEnvironment(cfg.Notifications.SlackApp, nil))
		errs = append(errs, pgstore.CheckEnvironment(cfg.Grants)) // the shared grant store's DSN
	}
	// The gRPC transport as serving sets it up: TLS files loaded, or
	// every plaintext listener on loopback (host names resolved).
	if chk.TLS, err = Transport(ctx, cfg, opts.Logger); err != nil {
		errs = append(errs, err)
	} else if cfg.Listen.TLS.Enabled() {
		chk.GRPCTransport = "mutual TLS"
	} else if cfg.Listen.Insecure {
		chk.GRPCTransport = "plaintext (listen.insecure)"
	}
	if cfg.Listen.TLS.Enabled() && !cfg.Listen.TLS.Envoy.Configured() {
		// Envoy is configured elsewhere (Istio, Envoy Gateway): airlock
		// cannot render a configuration that reaches its listeners.
		chk.Notes = append(chk.Notes, "Envoy config not checked: listen.tls is set without listen.tls.envoy")
	} else if _, err := envoy.Build(cfg, envoy.Options{}); err != nil {
		errs = append(errs, fmt.Errorf("envoy config: %w", err))
	}
	if err := errors.Join(flatten(errs)...); err != nil {
		return nil, cfg.Locate(err)
	}
	return chk, nil
}

// flatten splits joined errors into their parts, recursively, so that
// config.Locate sees every field error.
func flatten(errs []error) []error {
	var out []error
	for _, err := range errs {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			out = append(out, flatten(j.Unwrap())...)
		} else if err != nil {
			out = append(out, err)
		}
	}
	return out
}
