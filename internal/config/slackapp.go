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
	// Approvers maps Slack users to the identity the grant service judges:
	// a Slack user who is not listed cannot decide.
	Approvers []SlackApprover `yaml:"approvers"`
}

// SlackApprover is one Slack user and the identity they decide as.
type SlackApprover struct {
	// SlackUserID is the Slack member id (U…/W…), which Slack sends with
	// every click; display names can be changed by their owner, ids not.
	SlackUserID string `yaml:"slack_user_id"`
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

var slackUserRE = regexp.MustCompile(`^[UW][A-Z0-9]{2,20}$`)

func (c *SlackApp) applyDefaults() {
	if c.ResponseURLPrefix == "" {
		c.ResponseURLPrefix = DefaultSlackResponseURLPrefix
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
	if len(c.Approvers) == 0 {
		bad("approvers", "list at least one Slack user: no one else can decide from Slack")
	}
	ids := map[string]bool{}
	for i, a := range c.Approvers {
		at := func(f string) string { return fmt.Sprintf("approvers[%d].%s", i, f) }
		switch {
		case !slackUserRE.MatchString(a.SlackUserID):
			bad(at("slack_user_id"), "%q: want a Slack member id such as U024BE7LH", a.SlackUserID)
		case ids[a.SlackUserID]:
			bad(at("slack_user_id"), "%q is listed twice", a.SlackUserID)
		}
		ids[a.SlackUserID] = true
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
