package config

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"
)

// Formats of a webhook body.
const (
	FormatGeneric = "generic" // airlock's JSON event (see docs/grants.md)
	FormatSlack   = "slack"   // a Slack incoming-webhook message (text and blocks)
)

// Notifications is the notifications section of airlock.yaml: the
// outgoing webhooks on request/grant events. Package notify sends them.
type Notifications struct {
	Webhooks []Webhook `yaml:"webhooks"`
	// QueueSize bounds the events waiting per webhook; when full, the
	// oldest is dropped (and counted). Default 1000.
	QueueSize int `yaml:"queue_size"`
	// SlackApp turns on Approve/Deny buttons in Slack messages (see
	// SlackApp); nil leaves Slack messages with a link only.
	SlackApp *SlackApp `yaml:"slack_app"`
}

// Webhook is one receiver.
type Webhook struct {
	// Name identifies the webhook in logs and statistics ([a-z0-9_-]).
	Name string `yaml:"name"`
	// URL is where events are POSTed; URLEnv names an environment variable
	// holding it instead (a Slack webhook URL is itself a secret). One of
	// the two. URLs are never logged.
	URL    string `yaml:"url"`
	URLEnv string `yaml:"url_env"`
	// Format is generic (default) or slack.
	Format string `yaml:"format"`
	// SecretEnv names the environment variable holding the HMAC-SHA256
	// signing key. Required for generic; optional for slack (Slack does
	// not check it; the URL is the secret).
	SecretEnv string `yaml:"secret_env"`
	// Events are the event types sent: exact names (request.opened),
	// "request.*", "grant.*" or "*". Default DefaultWebhookEvents.
	Events []string `yaml:"events"`
	// MaxAttempts per event, the first included. Default 6.
	MaxAttempts int `yaml:"max_attempts"`
	// Timeout of one attempt. Default 5s.
	Timeout time.Duration `yaml:"timeout"`
	// Backoff is the delay before the first retry; it doubles each time,
	// with jitter, up to MaxBackoff. Defaults 1s and 1m.
	Backoff    time.Duration `yaml:"backoff"`
	MaxBackoff time.Duration `yaml:"max_backoff"`
}

// EventTypeNames lists the name of every request/grant event type, in
// the order of grants.EventTypes (a test there keeps the two equal).
// Webhook event patterns are checked against it; the list is here, not
// taken from grants, so that configuration needs no domain package.
func EventTypeNames() []string {
	return []string{
		"request.opened", "request.joined", "request.decision", "request.decision_refused",
		"request.approved", "request.denied", "request.expired", "request.cancelled",
		"grant.issued", "grant.used", "grant.consumed", "grant.expired", "grant.revoked",
	}
}

// DefaultWebhookEvents are sent when a webhook lists none: every step
// people act on or should know of; not joins, uses of time-bound grants,
// or refused decisions (those are in the audit log).
var DefaultWebhookEvents = []string{
	"request.opened", "request.decision", "request.approved",
	"request.denied", "request.expired", "request.cancelled",
	"grant.issued", "grant.consumed", "grant.expired",
	"grant.revoked",
}

// NotificationsDefaults returns the notifications configuration used when
// nothing is set: no webhooks.
func NotificationsDefaults() Notifications { return Notifications{QueueSize: 1000} }

// ApplyDefaults fills each webhook's unset fields.
func (c *Notifications) ApplyDefaults() {
	if c.QueueSize == 0 {
		c.QueueSize = 1000
	}
	if c.SlackApp != nil {
		c.SlackApp.applyDefaults()
	}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		if w.Format == "" {
			w.Format = FormatGeneric
		}
		if len(w.Events) == 0 {
			w.Events = slices.Clone(DefaultWebhookEvents)
		}
		if w.MaxAttempts == 0 {
			w.MaxAttempts = 6
		}
		if w.Timeout == 0 {
			w.Timeout = 5 * time.Second
		}
		if w.Backoff == 0 {
			w.Backoff = time.Second
		}
		if w.MaxBackoff == 0 {
			w.MaxBackoff = time.Minute
		}
	}
}

var (
	webhookNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,62}$`)
	envRE         = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// Validate checks the configuration (after ApplyDefaults) and returns all
// problems joined, each a *FieldError under notifications. It does not
// read the environment: notify.New does.
func (c *Notifications) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErr("notifications."+field, format, args...))
	}
	if c.QueueSize < 1 || c.QueueSize > 1_000_000 {
		bad("queue_size", "%d is outside 1..1000000", c.QueueSize)
	}
	if c.SlackApp != nil {
		errs = append(errs, c.SlackApp.validate("notifications.slack_app")...)
	}
	names := map[string]bool{}
	for i, w := range c.Webhooks {
		at := func(f string) string { return fmt.Sprintf("webhooks[%d].%s", i, f) }
		switch {
		case !webhookNameRE.MatchString(w.Name):
			bad(at("name"), "%q: want [a-z0-9_-], up to 63 characters", w.Name)
		case names[w.Name]:
			bad(at("name"), "%q is used twice", w.Name)
		}
		names[w.Name] = true
		switch {
		case (w.URL == "") == (w.URLEnv == ""):
			bad(at("url"), "set exactly one of url and url_env")
		case w.URL != "":
			if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				bad(at("url"), "is not an absolute http(s) URL") // the URL may hold a token: not quoted
			}
		case !envRE.MatchString(w.URLEnv):
			bad(at("url_env"), "%q is not an environment variable name", w.URLEnv)
		}
		switch w.Format {
		case FormatGeneric:
			if w.SecretEnv == "" {
				bad(at("secret_env"), "a generic webhook must be signed: name the variable holding its key")
			}
		case FormatSlack:
		default:
			bad(at("format"), "%q: want generic or slack", w.Format)
		}
		if w.SecretEnv != "" && !envRE.MatchString(w.SecretEnv) {
			bad(at("secret_env"), "%q is not an environment variable name", w.SecretEnv)
		}
		for j, e := range w.Events {
			if !knownEventPattern(e) {
				bad(fmt.Sprintf("webhooks[%d].events[%d]", i, j), "%q is not an event type, request.*, grant.* or *", e)
			}
		}
		if w.MaxAttempts < 1 || w.MaxAttempts > 20 {
			bad(at("max_attempts"), "%d is outside 1..20", w.MaxAttempts)
		}
		if w.Timeout < 100*time.Millisecond || w.Timeout > time.Minute {
			bad(at("timeout"), "%s is outside 100ms..1m", w.Timeout)
		}
		if w.Backoff < time.Millisecond || w.Backoff > w.MaxBackoff {
			bad(at("backoff"), "%s: want at least 1ms and at most max_backoff (%s)", w.Backoff, w.MaxBackoff)
		}
		if w.MaxBackoff > time.Hour {
			bad(at("max_backoff"), "%s is over 1h", w.MaxBackoff)
		}
	}
	return errors.Join(errs...)
}

func knownEventPattern(p string) bool {
	if p == "*" || p == "request.*" || p == "grant.*" {
		return true
	}
	return slices.Contains(EventTypeNames(), p)
}
