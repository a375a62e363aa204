package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSlackAppValidate(t *testing.T) {
	ok := func() *SlackApp {
		return &SlackApp{SigningSecretEnv: "SLACK_SIGNING_SECRET",
			Approvers: []SlackApprover{{SlackUserID: "U024BE7LH", Subject: "alice", Groups: []string{"sre"}}}}
	}
	tests := []struct {
		name   string
		mod    func(*SlackApp)
		fields []string
	}{
		{"ok", func(*SlackApp) {}, nil},
		{"no secret", func(c *SlackApp) { c.SigningSecretEnv = "" }, []string{"slack_app.signing_secret_env"}},
		{"bad prefix", func(c *SlackApp) { c.ResponseURLPrefix = "hooks.slack.com" }, []string{"slack_app.response_url_prefix"}},
		{"prefix without slash", func(c *SlackApp) { c.ResponseURLPrefix = "https://hooks.slack.com" }, []string{"slack_app.response_url_prefix"}},
		{"no approvers", func(c *SlackApp) { c.Approvers = nil }, []string{"slack_app.approvers"}},
		{"bad user id", func(c *SlackApp) { c.Approvers[0].SlackUserID = "alice" }, []string{"slack_app.approvers[0].slack_user_id"}},
		{"duplicate user id", func(c *SlackApp) {
			c.Approvers = append(c.Approvers, SlackApprover{SlackUserID: "U024BE7LH", Subject: "bob", Groups: []string{"sre"}})
		}, []string{"slack_app.approvers[1].slack_user_id"}},
		{"id and email", func(c *SlackApp) { c.Approvers[0].Email = "bob@example.com" }, []string{"slack_app.approvers[0].slack_user_id"}},
		{"email", func(c *SlackApp) {
			c.BotTokenEnv = "SLACK_BOT_TOKEN"
			c.Approvers[0].SlackUserID, c.Approvers[0].Email = "", "bob@example.com"
		}, nil},
		{"email without bot token", func(c *SlackApp) { c.Approvers[0].SlackUserID, c.Approvers[0].Email = "", "bob@example.com" }, []string{"slack_app.approvers[0].email"}},
		{"bad email", func(c *SlackApp) {
			c.BotTokenEnv = "SLACK_BOT_TOKEN"
			c.Approvers[0].SlackUserID, c.Approvers[0].Email = "", "bob"
		}, []string{"slack_app.approvers[0].email"}},
		{"duplicate email", func(c *SlackApp) {
			c.BotTokenEnv = "SLACK_BOT_TOKEN"
			c.Approvers[0].SlackUserID, c.Approvers[0].Email = "", "bob@example.com"
			c.Approvers = append(c.Approvers, SlackApprover{Email: "Bob@example.com", Subject: "bob", Groups: []string{"sre"}})
		}, []string{"slack_app.approvers[1].email"}},
		{"dialog", func(c *SlackApp) { c.ReasonDialog, c.BotTokenEnv = true, "SLACK_BOT_TOKEN" }, nil},
		{"dialog without bot token", func(c *SlackApp) { c.ReasonDialog = true }, []string{"slack_app.reason_dialog"}},
		{"bad bot_token_env", func(c *SlackApp) { c.BotTokenEnv = "1X" }, []string{"slack_app.bot_token_env"}},
		{"bad api_url", func(c *SlackApp) { c.APIURL = "https://slack.com/api" }, []string{"slack_app.api_url"}},
		{"no subject", func(c *SlackApp) { c.Approvers[0].Subject = " " }, []string{"slack_app.approvers[0].subject"}},
		{"no groups", func(c *SlackApp) { c.Approvers[0].Groups = nil }, []string{"slack_app.approvers[0].groups"}},
		{"empty group", func(c *SlackApp) { c.Approvers[0].Groups = []string{"sre", ""} }, []string{"slack_app.approvers[0].groups[1]"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Notifications{SlackApp: ok()}
			tt.mod(c.SlackApp)
			c.ApplyDefaults()
			err := c.Validate()
			var fields []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fe *FieldError
					if !errors.As(e, &fe) {
						t.Fatalf("%v is not a *FieldError", e)
					}
					fields = append(fields, strings.TrimPrefix(fe.Path, "notifications."))
				}
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("(-want +got):\n%s (%v)", diff, err)
			}
		})
	}
}

func TestSlackAppDefaults(t *testing.T) {
	c := Notifications{SlackApp: &SlackApp{}}
	c.ApplyDefaults()
	if c.SlackApp.ResponseURLPrefix != DefaultSlackResponseURLPrefix || c.SlackApp.APIURL != DefaultSlackAPIURL {
		t.Errorf("response_url_prefix = %q, api_url = %q", c.SlackApp.ResponseURLPrefix, c.SlackApp.APIURL)
	}
	if d := NotificationsDefaults(); d.SlackApp != nil {
		t.Error("the Slack app is on by default")
	}
}
