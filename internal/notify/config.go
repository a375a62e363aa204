package notify

import (
	"strings"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
)

// Formats of a webhook body.
const (
	FormatGeneric = config.FormatGeneric // airlock's JSON event (see docs/grants.md)
	FormatSlack   = config.FormatSlack   // a Slack incoming-webhook message (text and blocks)
)

// Config is the notifications section of airlock.yaml and Webhook one
// receiver, defined, defaulted (ApplyDefaults) and validated in package
// config. Validation errors are *config.FieldError.
type (
	Config  = config.Notifications
	Webhook = config.Webhook
)

// DefaultEvents are sent when a webhook lists none (see
// config.DefaultWebhookEvents).
var DefaultEvents = config.DefaultWebhookEvents

// Defaults returns the notifications configuration used when nothing is
// set: no webhooks.
func Defaults() Config { return config.NotificationsDefaults() }

// matches reports whether event type t is selected by patterns.
func matches(patterns []string, t grants.EventType) bool {
	for _, p := range patterns {
		switch {
		case p == "*", p == string(t):
			return true
		case strings.HasSuffix(p, ".*") && strings.HasPrefix(string(t), p[:len(p)-1]):
			return true
		}
	}
	return false
}
