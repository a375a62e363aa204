// Package slackapp lets approvers decide requests from Slack: it serves
// the Request URL of a Slack app's interactivity, receiving the clicks on
// the Approve and Deny buttons package notify puts on Slack messages.
//
// Every request is verified with the app's signing secret (Slack's
// X-Slack-Signature over the timestamp and body, within five minutes,
// each signature accepted once), the Slack user is mapped to the identity
// configured for them (notifications.slack_app.approvers), and the
// verdict goes to the grant service's Decide after the inbox's own
// self-approval test (approvals.Asked): no self-approval, approver groups
// and the threshold are the same rules as in the inbox and the API.
// The outcome is posted back to the click's response_url: the message is
// replaced once the request is decided, and refusals are shown to the
// clicking user only (ephemeral). The reason comes from a field in the
// message or, with reason_dialog, from a Slack modal opened on the click
// (dialog.go). Approvers listed by e-mail are recognised through Slack's
// users.info, since a click carries only the member id.
package slackapp

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/notify"
)

// Path is where the handler is mounted: the Slack app's interactivity
// Request URL is the gateway's public URL followed by Path.
const Path = "/slack/actions"

// Window is how far a request's timestamp may be from now (Slack's
// recommendation): older requests are refused as possible replays.
const Window = 5 * time.Minute

// maxBody bounds an interactivity request; Slack's carry one message.
const maxBody = 256 << 10

// Grants is what the handler needs of the grant service.
type Grants interface {
	Get(ctx context.Context, id string) (*grants.Request, error)
	Decide(ctx context.Context, id string, a grants.Actor, v grants.Verdict, reason string) (*grants.Request, error)
}

// Options configure New.
type Options struct {
	Config config.SlackApp
	Grants Grants
	// Getenv reads the signing secret; default os.Getenv.
	Getenv func(string) string
	// Client posts to response URLs; default a client with a 5 s timeout
	// that does not follow redirects.
	Client *http.Client
	Logger *slog.Logger
	Now    func() time.Time
}

// Handler serves Slack's interactivity requests. Safe for concurrent use.
type Handler struct {
	secret    []byte
	prefix    string
	approvers map[string]config.SlackApprover // by Slack member id
	byEmail   map[string]config.SlackApprover // by lower-case e-mail
	botToken  string                          // for users.info and views.open
	dialog    bool                            // ask the reason in a modal
	apiURL    string
	grants    Grants
	client    *http.Client
	log       *slog.Logger
	now       func() time.Time

	mu     sync.Mutex
	seen   map[string]time.Time // signatures accepted within Window, for refusing replays
	emails map[string]cachedEmail
}

// cachedEmail is a member's profile e-mail, looked up at.
type cachedEmail struct {
	email string
	at    time.Time
}

// emailTTL bounds how long a looked-up e-mail is trusted: a changed
// profile address takes effect after it.
const emailTTL = 10 * time.Minute

// CheckEnvironment reports, as a *config.FieldError, a configured Slack
// app whose signing secret variable is empty (New refuses to start
// then), so that airlock validate finds it; nil c is no Slack app.
// getenv defaults to os.Getenv.
func CheckEnvironment(c *config.SlackApp, getenv func(string) string) error {
	if getenv == nil {
		getenv = os.Getenv
	}
	if c == nil {
		return nil
	}
	var errs []error
	if getenv(c.SigningSecretEnv) == "" {
		errs = append(errs, &config.FieldError{Path: "notifications.slack_app.signing_secret_env",
			Message: fmt.Sprintf("the variable %s is empty: Slack requests cannot be verified", c.SigningSecretEnv)})
	}
	needToken := c.ReasonDialog || slices.ContainsFunc(c.Approvers, func(a config.SlackApprover) bool { return a.Email != "" })
	if c.BotTokenEnv != "" && getenv(c.BotTokenEnv) == "" && needToken {
		errs = append(errs, &config.FieldError{Path: "notifications.slack_app.bot_token_env",
			Message: fmt.Sprintf("the variable %s is empty: approvers by e-mail and the reason dialog need it", c.BotTokenEnv)})
	}
	return errors.Join(errs...)
}

// New returns the handler for cfg. It fails when the signing secret's
// variable is empty: unsigned clicks must never decide.
func New(opts Options) (*Handler, error) {
	getenv := opts.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	secret := getenv(opts.Config.SigningSecretEnv)
	if secret == "" {
		return nil, fmt.Errorf("notifications.slack_app.signing_secret_env: the variable %s is empty", opts.Config.SigningSecretEnv)
	}
	if opts.Grants == nil {
		return nil, errors.New("slackapp: no grant service")
	}
	h := &Handler{
		secret: []byte(secret), prefix: opts.Config.ResponseURLPrefix, grants: opts.Grants,
		client: opts.Client, log: opts.Logger, now: opts.Now,
		approvers: map[string]config.SlackApprover{}, byEmail: map[string]config.SlackApprover{},
		seen: map[string]time.Time{}, emails: map[string]cachedEmail{}, apiURL: opts.Config.APIURL,
	}
	if h.apiURL == "" {
		h.apiURL = config.DefaultSlackAPIURL
	}
	if h.prefix == "" {
		h.prefix = config.DefaultSlackResponseURLPrefix
	}
	for _, a := range opts.Config.Approvers {
		if a.Email != "" {
			h.byEmail[strings.ToLower(a.Email)] = a
		} else {
			h.approvers[a.SlackUserID] = a
		}
	}
	if h.dialog = opts.Config.ReasonDialog; len(h.byEmail) > 0 || h.dialog {
		if h.botToken = getenv(opts.Config.BotTokenEnv); h.botToken == "" {
			return nil, fmt.Errorf("notifications.slack_app.bot_token_env: the variable %s is empty (approvers by e-mail and the reason dialog need it)", opts.Config.BotTokenEnv)
		}
	}
	if h.client == nil {
		h.client = &http.Client{Timeout: 5 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	return h, nil
}

// ServeHTTP verifies and handles one interactivity request. Once the
// request is authentic and readable the answer is 200 whether or not
// the decision was made (Slack shows a bare error to the user
// otherwise); outcomes go to response_url, or into the dialog.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "request body too large or unreadable", http.StatusRequestEntityTooLarge)
		return
	}
	if why := h.verify(r.Header, body); why != "" {
		// The reason only: never the signature, the secret or the body.
		h.log.Warn("refused a Slack request", "reason", why, "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "the body is not form-encoded", http.StatusBadRequest)
		return
	}
	var p payload
	if err := json.Unmarshal([]byte(form.Get("payload")), &p); err != nil {
		http.Error(w, "the payload is not the JSON Slack sends", http.StatusBadRequest)
		return
	}
	switch {
	case p.Type == "block_actions":
		h.act(r.Context(), &p)
	case p.Type == "view_submission" && p.View.CallbackID == dialogCallback:
		if why := h.submit(r.Context(), &p); why != "" {
			// Shown under the reason field; the dialog stays open.
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{"response_action": "errors",
				"errors": map[string]string{notify.SlackReasonBlock: why}})
			return
		}
	}
	// Other interactions (shortcuts, other apps' dialogs) are not
	// airlock's: acknowledged and ignored. An empty 200 closes a dialog.
	w.WriteHeader(http.StatusOK)
}

// verify returns why the request is not authentic, or "" when it is:
// signed with the secret over "v0:timestamp:body", stamped within Window
// of now, and not seen before.
func (h *Handler) verify(hd http.Header, body []byte) string {
	ts := hd.Get("X-Slack-Request-Timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return "no or malformed X-Slack-Request-Timestamp"
	}
	now := h.now()
	if d := now.Sub(time.Unix(sec, 0)); d > Window || d < -Window {
		return "timestamp outside the 5 minute window"
	}
	sig, ok := strings.CutPrefix(hd.Get("X-Slack-Signature"), "v0=")
	got, err := hex.DecodeString(sig)
	if !ok || err != nil {
		return "no or malformed X-Slack-Signature"
	}
	mac := hmac.New(sha256.New, h.secret)
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return "signature mismatch"
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for s, at := range h.seen {
		if now.Sub(at) > 2*Window {
			delete(h.seen, s)
		}
	}
	key := hex.EncodeToString(got)
	if _, dup := h.seen[key]; dup {
		return "replayed request (signature already accepted)"
	}
	h.seen[key] = now
	return ""
}

// payload is the part of Slack's block_actions payload airlock reads.
type payload struct {
	Type string `json:"type"`
	User struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		TeamID   string `json:"team_id"`
	} `json:"user"`
	Actions []struct {
		ActionID string `json:"action_id"`
		BlockID  string `json:"block_id"`
		Value    string `json:"value"`
	} `json:"actions"`
	ResponseURL string `json:"response_url"`
	TriggerID   string `json:"trigger_id"`
	View        struct {
		CallbackID      string     `json:"callback_id"`
		PrivateMetadata string     `json:"private_metadata"`
		State           inputState `json:"state"`
	} `json:"view"` // view_submission
	State inputState `json:"state"` // block_actions: the message's inputs
}

// inputState is the values of a message's or a dialog's input blocks.
type inputState struct {
	Values map[string]map[string]struct {
		Value string `json:"value"`
	} `json:"values"`
}

func (s inputState) reason() string {
	return strings.TrimSpace(s.Values[notify.SlackReasonBlock][notify.SlackReasonAction].Value)
}

// act handles a click on Approve or Deny; other actions (the reason
// field, the link button) need nothing.
func (h *Handler) act(ctx context.Context, p *payload) {
	var verdict grants.Verdict
	var id string
	for _, a := range p.Actions {
		if a.BlockID != notify.SlackDecideBlock {
			continue
		}
		switch a.ActionID {
		case notify.SlackApprove:
			verdict, id = grants.VerdictApprove, a.Value
		case notify.SlackDeny:
			verdict, id = grants.VerdictDeny, a.Value
		}
	}
	if verdict == "" {
		return
	}
	reason := p.reason()
	if h.dialog && reason == "" {
		log := h.log.With("slack_user", p.User.ID, "request", id, "verdict", string(verdict))
		if err := h.openDialog(ctx, p.TriggerID, dialogState{ID: id, Verdict: verdict, ResponseURL: p.ResponseURL}); err != nil {
			// Nothing decided: a click is not a decision without its reason.
			log.Warn("Slack views.open failed", "err", err)
			h.respond(ctx, log, p.ResponseURL, ephemeral(":warning: The reason dialog could not be opened: type the reason in the Reason field and click again."))
		}
		return
	}
	if why := h.decide(ctx, p.User.ID, id, verdict, reason, p.ResponseURL); why != "" {
		h.respond(ctx, h.log, p.ResponseURL, ephemeral(":no_entry: "+escape(why)))
	}
}

// decide records Slack member user's verdict on request id and posts
// the outcome to responseURL; it returns why it refused ("" when it
// did not), for the caller to show to that member only.
func (h *Handler) decide(ctx context.Context, user, id string, verdict grants.Verdict, reason, responseURL string) string {
	log := h.log.With("slack_user", user, "request", id, "verdict", string(verdict))
	ap, ok := h.approver(ctx, log, user)
	if !ok {
		log.Warn("refused a Slack decision: the Slack user is not a configured approver")
		return fmt.Sprintf("You are not an airlock approver: your Slack user %s is not in notifications.slack_app.approvers.", user)
	}
	actor := grants.Actor{Issuer: ap.Issuer, Subject: ap.Subject, User: ap.User, Groups: ap.Groups}
	log = log.With("actor", ap.Subject)
	req, err := h.grants.Get(ctx, id)
	if err == nil {
		if approvals.Asked(actor, req) {
			err = fmt.Errorf("%s asked for request %s: %w", ap.Subject, id, grants.ErrSelfApproval)
		} else {
			req, err = h.grants.Decide(ctx, id, actor, verdict, reason)
		}
	}
	switch {
	case errors.Is(err, grants.ErrNotPending):
		// Decided elsewhere (the inbox, the CLI) or expired: show its end
		// instead of buttons that can no longer act.
		if cur, gerr := h.grants.Get(ctx, id); gerr == nil && cur.State != grants.RequestPending {
			log.Info("Slack decision on a request no longer pending", "state", string(cur.State))
			h.respond(ctx, log, responseURL, replace(ended(cur)))
		}
		fallthrough
	case err != nil:
		log.Warn("refused a Slack decision", "err", err)
		return refusal(err)
	}
	log.Info("Slack decision recorded", "state", string(req.State))
	if req.State == grants.RequestPending {
		// More approvals are needed: the buttons stay for the others.
		h.respond(ctx, log, responseURL, ephemeral(fmt.Sprintf(":ballot_box_with_check: Your approval is recorded: %d of %d.",
			req.Approvals(), req.Terms.Threshold)))
		return ""
	}
	h.respond(ctx, log, responseURL, replace(ended(req)))
	return ""
}

// approver is the configured approver Slack member id is: by id, or by
// the e-mail of their Slack profile (users.info, cached for emailTTL).
func (h *Handler) approver(ctx context.Context, log *slog.Logger, id string) (config.SlackApprover, bool) {
	if a, ok := h.approvers[id]; ok {
		return a, true
	}
	if len(h.byEmail) == 0 || !slackUser(id) {
		return config.SlackApprover{}, false
	}
	email, err := h.email(ctx, id)
	if err != nil {
		log.Warn("Slack users.info failed: cannot map the user by e-mail", "err", err)
		return config.SlackApprover{}, false
	}
	a, ok := h.byEmail[strings.ToLower(email)]
	return a, ok
}

// slackUser reports whether id looks like a Slack member id, before it
// goes into a URL.
func slackUser(id string) bool {
	if len(id) < 3 || len(id) > 21 || (id[0] != 'U' && id[0] != 'W') {
		return false
	}
	for _, c := range id {
		if (c < 'A' || c > 'Z') && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// email is member id's profile e-mail from Slack's users.info.
func (h *Handler) email(ctx context.Context, id string) (string, error) {
	now := h.now()
	h.mu.Lock()
	c, ok := h.emails[id]
	h.mu.Unlock()
	if ok && now.Sub(c.at) < emailTTL {
		return c.email, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.apiURL+"users.info?user="+url.QueryEscape(id), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+h.botToken)
	resp, err := h.client.Do(req)
	if err != nil {
		return "", errors.Unwrap(err) // not the URL's text: keep logs plain
	}
	defer resp.Body.Close()
	var out struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		User  struct {
			Profile struct {
				Email string `json:"email"`
			} `json:"profile"`
		} `json:"user"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return "", fmt.Errorf("users.info: status %d, unreadable body", resp.StatusCode)
	}
	if !out.OK {
		return "", fmt.Errorf("users.info: %.60q", out.Error)
	}
	if out.User.Profile.Email == "" {
		return "", errors.New("users.info: no e-mail (the token lacks users:read.email?)")
	}
	h.mu.Lock()
	h.emails[id] = cachedEmail{email: out.User.Profile.Email, at: now}
	h.mu.Unlock()
	return out.User.Profile.Email, nil
}

// reason is the text in the message's reason field when the button was
// clicked.
func (p *payload) reason() string { return p.State.reason() }

// refusal is what the clicking user is told for err: the grant service's
// sentence, without the Go wrapping noise.
func refusal(err error) string {
	switch {
	case errors.Is(err, grants.ErrSelfApproval):
		return "You asked for this request: someone else must decide it."
	case errors.Is(err, grants.ErrNotApprover):
		return "You are not in the approver groups of this request: " + err.Error()
	case errors.Is(err, grants.ErrAlreadyDecided):
		return "You already decided this request; it needs another approver."
	case errors.Is(err, grants.ErrReasonRequired):
		return "A reason is required: write it in the Reason field, then click again."
	case errors.Is(err, grants.ErrNotFound):
		return "airlock does not know this request (it may have been pruned)."
	case errors.Is(err, grants.ErrNotPending):
		return "This request is no longer pending."
	}
	return "airlock could not record the decision; try the inbox or the CLI."
}

// ended is the message's new text once r is decided.
func ended(r *grants.Request) string {
	icon := map[grants.RequestState]string{
		grants.RequestApproved: ":white_check_mark:", grants.RequestDenied: ":no_entry:",
		grants.RequestExpired: ":hourglass:", grants.RequestCancelled: ":wastebasket:",
	}[r.State]
	who := r.Principal.User
	if who == "" {
		who = r.Principal.Subject
	}
	return strings.TrimSpace(fmt.Sprintf("%s %s: *%s*'s call of %s `%s` on *%s* (request %s)",
		icon, escape(r.EndReason), escape(who), r.Kind, escape(strings.ReplaceAll(r.Name(), "`", "'")), escape(r.Target), r.ID))
}

// message is a response_url body.
type message struct {
	ResponseType    string `json:"response_type,omitempty"`
	ReplaceOriginal bool   `json:"replace_original"`
	Text            string `json:"text"`
}

func ephemeral(text string) message {
	return message{ResponseType: "ephemeral", Text: text}
}

func replace(text string) message {
	return message{ReplaceOriginal: true, Text: text}
}

// respond posts m to Slack's response URL, only when it is under the
// configured prefix (the URL comes in the request, and airlock must not
// be made to post elsewhere). Failures are logged; the decision stands.
func (h *Handler) respond(ctx context.Context, log *slog.Logger, to string, m message) {
	if !strings.HasPrefix(to, h.prefix) {
		log.Warn("not answering Slack: response_url is not under notifications.slack_app.response_url_prefix")
		return
	}
	b, _ := json.Marshal(m)
	req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), http.MethodPost, to, bytes.NewReader(b))
	if err != nil {
		log.Warn("not answering Slack: bad response_url")
		return
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := h.client.Do(req)
	if err != nil {
		// The URL carries a token: log the failure's kind, not the error text.
		log.Warn("answering Slack failed", "err", errors.Unwrap(err))
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		log.Warn("answering Slack failed", "status", resp.StatusCode)
	}
}

// escape escapes the three characters Slack's mrkdwn reserves.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
