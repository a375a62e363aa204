// Package notify sends just-in-time access events to people: outgoing
// webhooks, as airlock's generic JSON or as a Slack message, signed with
// HMAC-SHA256, retried with exponential backoff and jitter. A Sender is a
// grants.Notifier: Notify only queues (a bounded queue per webhook that
// drops the oldest event when full), so a slow or failing receiver never
// holds up a decision. Arguments and reasons are masked before they leave.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/mask"
)

// Options are a Sender's collaborators; all are optional.
type Options struct {
	// Client sends the requests; default a client with its own transport
	// (per-attempt timeouts come from the webhook's Timeout).
	Client *http.Client
	Logger *slog.Logger
	// Getenv reads secrets and env-held URLs; default os.Getenv.
	Getenv func(string) string
	// Mask masks arguments and reasons in message bodies; default the
	// built-in "strict" profile.
	Mask *mask.Profile
	// ApprovalURL gives a request's approval page (grants.Config.RequestURL).
	ApprovalURL func(requestID string) string
	// SlackButtons adds Approve and Deny buttons and a reason field to
	// Slack messages of opened requests: set when the Slack app
	// (notifications.slack_app, package slackapp) receives the clicks.
	SlackButtons bool
	Now          func() time.Time
}

// Sender delivers events to the configured webhooks. Safe for concurrent use.
type Sender struct {
	hooks  []*hook
	client *http.Client
	log    *slog.Logger
	render render
	now    func() time.Time
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ grants.Notifier = (*Sender)(nil)

type hook struct {
	cfg    Webhook
	url    string // never logged
	secret []byte // the legacy X-Airlock-Signature key: the secret as configured
	key    []byte // the Standard Webhooks key (StandardKey of the secret)
	q      *queue
	sent   atomic.Uint64
	failed atomic.Uint64
	tries  atomic.Uint64
}

// New resolves secrets and URLs from the environment and starts one
// delivery goroutine per webhook. cfg must have had ApplyDefaults and
// Validate.
func New(cfg Config, opts Options) (*Sender, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	s := &Sender{client: opts.Client, log: opts.Logger, now: opts.Now,
		render: render{mask: opts.Mask, approvalURL: opts.ApprovalURL, slackButtons: opts.SlackButtons}}
	if s.client == nil {
		s.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.render.mask == nil {
		s.render.mask, _ = mask.Builtin(mask.StrictProfile)
	}
	var errs []error
	for i, w := range cfg.Webhooks {
		h := &hook{cfg: w, q: newQueue(max(cfg.QueueSize, 1))}
		var herrs []error
		h.url, h.secret, h.key, herrs = resolve(i, w, getenv)
		errs = append(errs, herrs...)
		s.hooks = append(s.hooks, h)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, h := range s.hooks {
		s.wg.Add(1)
		go s.run(h)
	}
	return s, nil
}

// CheckEnvironment reads every webhook's URL and signing key from the
// environment (getenv nil: os.Getenv) as New does, without starting
// anything: airlock validate checks them through serve.Check. Errors are
// *config.FieldError.
func CheckEnvironment(cfg Config, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	var errs []error
	for i, w := range cfg.Webhooks {
		_, _, _, werrs := resolve(i, w, getenv)
		errs = append(errs, werrs...)
	}
	return errors.Join(errs...)
}

// resolve returns webhook i's URL, secret and Standard Webhooks signing
// key, from the environment where the configuration names a variable.
func resolve(i int, w Webhook, getenv func(string) string) (hookURL string, secret, key []byte, errs []error) {
	hookURL = w.URL
	if w.URLEnv != "" {
		if hookURL = getenv(w.URLEnv); hookURL == "" {
			errs = append(errs, &config.FieldError{Path: fmt.Sprintf("notifications.webhooks[%d].url_env", i), Message: fmt.Sprintf("environment variable %s is empty or unset", w.URLEnv)})
		} else if u, err := url.Parse(hookURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, &config.FieldError{Path: fmt.Sprintf("notifications.webhooks[%d].url_env", i), Message: fmt.Sprintf("environment variable %s does not hold an absolute http(s) URL", w.URLEnv)})
		}
	}
	if w.SecretEnv != "" {
		if secret = []byte(getenv(w.SecretEnv)); len(secret) == 0 {
			errs = append(errs, &config.FieldError{Path: fmt.Sprintf("notifications.webhooks[%d].secret_env", i), Message: fmt.Sprintf("environment variable %s is empty or unset", w.SecretEnv)})
		} else if k, err := StandardKey(string(secret)); err != nil {
			errs = append(errs, &config.FieldError{Path: fmt.Sprintf("notifications.webhooks[%d].secret_env", i), Message: fmt.Sprintf("environment variable %s: %v", w.SecretEnv, err)})
		} else {
			key = k
		}
	}
	return hookURL, secret, key, errs
}

// Notify queues e for every webhook that wants it. It never blocks.
func (s *Sender) Notify(e grants.Event) {
	for _, h := range s.hooks {
		if !matches(h.cfg.Events, e.Type) {
			continue
		}
		if n := h.q.push(e); n > 0 && isPowerOf10(n) {
			s.log.Warn("notify: queue full, dropping the oldest events", "webhook", h.cfg.Name, "dropped_total", n)
		}
	}
}

// isPowerOf10 thins out the drop warnings: the 1st, 10th, 100th, … drop.
func isPowerOf10(n uint64) bool {
	for n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// Close stops delivery: events still queued or being retried are dropped
// (they are in the audit log). It waits for the delivery goroutines.
func (s *Sender) Close() {
	s.cancel()
	s.wg.Wait()
}

// Stats are one webhook's counters.
type Stats struct {
	Webhook  string
	Sent     uint64 // events delivered
	Failed   uint64 // events given up on
	Attempts uint64 // HTTP attempts, retries included
	Dropped  uint64 // events dropped from a full queue
	Queued   int    // events waiting now
}

// Stats returns every webhook's counters, in configuration order.
func (s *Sender) Stats() []Stats {
	out := make([]Stats, len(s.hooks))
	for i, h := range s.hooks {
		q, d := h.q.stats()
		out[i] = Stats{Webhook: h.cfg.Name, Sent: h.sent.Load(), Failed: h.failed.Load(), Attempts: h.tries.Load(), Dropped: d, Queued: q}
	}
	return out
}

func (s *Sender) run(h *hook) {
	defer s.wg.Done()
	for {
		e, ok := h.q.pop()
		if !ok {
			select {
			case <-s.ctx.Done():
				return
			case <-h.q.ready:
				continue
			}
		}
		s.deliver(h, e)
		if s.ctx.Err() != nil {
			return
		}
	}
}

// deliver sends one event, retrying as configured.
func (s *Sender) deliver(h *hook, e grants.Event) {
	var body []byte
	var err error
	if h.cfg.Format == FormatSlack {
		body, err = s.render.slack(e)
	} else {
		body, err = s.render.generic(e)
	}
	if err != nil {
		h.failed.Add(1)
		s.log.Error("notify: building the message failed", "webhook", h.cfg.Name, "event", e.ID, "error", err)
		return
	}
	for attempt := 1; ; attempt++ {
		h.tries.Add(1)
		retry, wait, err := s.attempt(h, e, body)
		if err == nil {
			h.sent.Add(1)
			return
		}
		if !retry || attempt >= h.cfg.MaxAttempts {
			h.failed.Add(1)
			s.log.Error("notify: giving up on an event", "webhook", h.cfg.Name, "event", e.ID, "type", string(e.Type), "attempts", attempt, "error", err)
			return
		}
		if wait == 0 {
			wait = backoff(h.cfg.Backoff, h.cfg.MaxBackoff, attempt)
		}
		s.log.Warn("notify: delivery failed; retrying", "webhook", h.cfg.Name, "event", e.ID, "attempt", attempt, "retry_in", wait, "error", err)
		t := time.NewTimer(wait)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// attempt makes one HTTP attempt. It says whether a failure is worth
// retrying and, for a 429/503 with Retry-After, how long to wait.
func (s *Sender) attempt(h *hook, e grants.Event, body []byte) (retry bool, wait time.Duration, err error) {
	ctx, cancel := context.WithTimeout(s.ctx, h.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return false, 0, errors.New("the webhook URL does not make a request") // the URL is not quoted: it may hold a token
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "airlock-notify/1")
	req.Header.Set(EventHeader, string(e.Type))
	req.Header.Set(DeliveryHeader, e.ID)
	if len(h.secret) > 0 {
		// Standard Webhooks; the id is the event id, the same on every
		// retry, the timestamp this attempt's.
		now := s.now()
		req.Header.Set(StandardIDHeader, e.ID)
		req.Header.Set(StandardTimestampHeader, strconv.FormatInt(now.Unix(), 10))
		req.Header.Set(StandardSignatureHeader, SignStandard(h.key, e.ID, now, body))
		// Deprecated: airlock's own scheme, kept for one release.
		req.Header.Set(SignatureHeader, Sign(h.secret, now, body))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) { // drop the URL from the message
			err = ue.Err
		}
		return true, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		return true, min(retryAfter(resp.Header.Get("Retry-After")), h.cfg.MaxBackoff), fmt.Errorf("HTTP %d", resp.StatusCode)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusRequestTimeout:
		return true, 0, fmt.Errorf("HTTP %d", resp.StatusCode)
	default:
		return false, 0, fmt.Errorf("HTTP %d: the receiver refused the event (not retried)", resp.StatusCode)
	}
}

// backoff is the delay before retry number attempt (1-based): base doubled
// each time, capped, with jitter in [d/2, d] so receivers coming back are
// not hit by every sender at once.
func backoff(base, limit time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < limit; i++ {
		d *= 2
	}
	d = min(d, limit)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// retryAfter reads a Retry-After header given in seconds; 0 when absent or
// in another form.
func retryAfter(v string) time.Duration {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}
