package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// SlackApp is notifications.slack_app: a Slack app whose Approve and Deny
// buttons, shown on Slack webhook messages, decide requests. Slack POSTs
// each click to airlock's /slack/actions; package slackapp verifies it
// with the app's signing secret, maps the Slack user to an approver
// identity from Approvers, and decides through the grant service, under
// the same rules as the inbox. Nil (absent) turns it off.
type SlackApp struct {
	// SigningSecretEnv names the environment variable holding the app's
	// signing secret (Slack app settings, Basic Information). Required.
	SigningSecretEnv string `yaml:"signing_secret_env"`
	// ResponseURLPrefix is what every response_url Slack hands airlock
	// must start with: airlock POSTs the updated message there, and must
	// not be steered to any other host. Default https://hooks.slack.com/.
	ResponseURLPrefix string `yaml:"response_url_prefix"`
	// BotTokenEnv names the environment variable holding the app's bot
	// token (xoxb-…, scopes users:read and users:read.email): needed only
	// to map approvers by e-mail, which Slack does not send with a click
	// (airlock asks users.info).
	BotTokenEnv string `yaml:"bot_token_env"`
	// ReasonDialog opens a dialog (a Slack modal, views.open) asking for
	// the reason when Approve or Deny is clicked with the message's reason
	// field empty. Needs BotTokenEnv.
	ReasonDialog bool `yaml:"reason_dialog"`
	// APIURL is Slack's Web API base. Default https://slack.com/api/.
	APIURL string `yaml:"api_url"`
	// Approvers maps Slack users to the identity the grant service judges:
	// a Slack user who is not listed cannot decide.
	Approvers []SlackApprover `yaml:"approvers"`
}

// SlackApprover is one Slack user and the identity they decide as.
type SlackApprover struct {
	// SlackUserID is the Slack member id (U…/W…), which Slack sends with
	// every click; display names can be changed by their owner, ids not.
	SlackUserID string `yaml:"slack_user_id"`
	// Email is the address on the person's Slack profile, instead of
	// SlackUserID (one of the two); it needs BotTokenEnv. An address is
	// only as good as the workspace's control of it: prefer ids.
	Email string `yaml:"email"`
	// Subject, User and Issuer name the person as the identity provider
	// does (the same values their inbox sign-in carries), so that the
	// no-self-approval rule recognises them as a requester. Subject is
	// required; Issuer left empty matches the subject under any issuer,
	// the stricter choice for refusing self-approval.
	Subject string `yaml:"subject"`
	User    string `yaml:"user"`
	Issuer  string `yaml:"issuer"`
	// Groups are the person's groups, matched against a request's approver
	// and break-glass groups.
	Groups []string `yaml:"groups"`
}

// DefaultSlackResponseURLPrefix is where Slack's response URLs live.
const DefaultSlackResponseURLPrefix = "https://hooks.slack.com/"

// DefaultSlackAPIURL is Slack's Web API base.
const DefaultSlackAPIURL = "https://slack.com/api/"

var slackUserRE = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

func (c *SlackApp) applyDefaults() {
	if c.ResponseURLPrefix == "" {
		c.ResponseURLPrefix = DefaultSlackResponseURLPrefix
	}
	if c.APIURL == "" {
		c.APIURL = DefaultSlackAPIURL
	}
}

// validate returns the problems of c, each a *FieldError under path.
func (c *SlackApp) validate(path string) []error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fieldErr(path+"."+field, format, args...))
	}
	if !envRE.MatchString(c.SigningSecretEnv) {
		bad("signing_secret_env", "%q is not an environment variable name (required: Slack requests are verified with the app's signing secret)", c.SigningSecretEnv)
	}
	if u, err := url.Parse(c.ResponseURLPrefix); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.HasSuffix(c.ResponseURLPrefix, "/") {
		bad("response_url_prefix", "%q: want an absolute http(s) URL ending in /", c.ResponseURLPrefix)
	}
	if c.BotTokenEnv != "" && !envRE.MatchString(c.BotTokenEnv) {
		bad("bot_token_env", "%q is not an environment variable name", c.BotTokenEnv)
	}
	if c.ReasonDialog && c.BotTokenEnv == "" {
		bad("reason_dialog", "needs bot_token_env: Slack opens dialogs only for an app's bot token")
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !strings.HasSuffix(c.APIURL, "/") {
		bad("api_url", "%q: want an absolute http(s) URL ending in /", c.APIURL)
	}
	if len(c.Approvers) == 0 {
		bad("approvers", "list at least one Slack user: no one else can decide from Slack")
	}
	ids, emails := map[string]bool{}, map[string]bool{}
	for i, a := range c.Approvers {
		at := func(f string) string { return fmt.Sprintf("approvers[%d].%s", i, f) }
		switch {
		case (a.SlackUserID == "") == (a.Email == ""):
			bad(at("slack_user_id"), "set exactly one of slack_user_id and email")
		case a.Email != "":
			if !strings.Contains(a.Email, "@") {
				bad(at("email"), "%q is not an e-mail address", a.Email)
			} else if c.BotTokenEnv == "" {
				bad(at("email"), "mapping by e-mail needs bot_token_env: Slack sends no e-mail with a click")
			} else if emails[strings.ToLower(a.Email)] {
				bad(at("email"), "%q is listed twice", a.Email)
			}
			emails[strings.ToLower(a.Email)] = true
		case !slackUserRE.MatchString(a.SlackUserID):
			bad(at("slack_user_id"), "%q: want a Slack member id such as U024BE7LH", a.SlackUserID)
		case ids[a.SlackUserID]:
			bad(at("slack_user_id"), "%q is listed twice", a.SlackUserID)
		}
		if a.SlackUserID != "" {
			ids[a.SlackUserID] = true
		}
		if strings.TrimSpace(a.Subject) == "" {
			bad(at("subject"), "required: the identity the Slack user decides as")
		}
		if len(a.Groups) == 0 {
			bad(at("groups"), "list the approver's groups: with none they can approve nothing")
		}
		for j, g := range a.Groups {
			if strings.TrimSpace(g) == "" {
				bad(fmt.Sprintf("approvers[%d].groups[%d]", i, j), "is empty")
			}
		}
	}
	return errs
}
