package config

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestNotificationsValidate(t *testing.T) {
	ok := Webhook{Name: "ops", URL: "https://hooks.example/x", SecretEnv: "OPS_SECRET"}
	tests := []struct {
		name   string
		mod    func(*Notifications)
		fields []string
	}{
		{"none", func(c *Notifications) { c.Webhooks = nil }, nil},
		{"generic", func(*Notifications) {}, nil},
		{"slack from env, unsigned", func(c *Notifications) {
			c.Webhooks[0] = Webhook{Name: "slack", URLEnv: "SLACK_URL", Format: FormatSlack}
		}, nil},
		{"bad name", func(c *Notifications) { c.Webhooks[0].Name = "Ops Hook" }, []string{"webhooks[0].name"}},
		{"duplicate name", func(c *Notifications) { c.Webhooks = append(c.Webhooks, ok) }, []string{"webhooks[1].name"}},
		{"no url", func(c *Notifications) { c.Webhooks[0].URL = "" }, []string{"webhooks[0].url"}},
		{"url and url_env", func(c *Notifications) { c.Webhooks[0].URLEnv = "X" }, []string{"webhooks[0].url"}},
		{"relative url", func(c *Notifications) { c.Webhooks[0].URL = "/hook" }, []string{"webhooks[0].url"}},
		{"bad url_env", func(c *Notifications) { c.Webhooks[0].URL, c.Webhooks[0].URLEnv = "", "1X" }, []string{"webhooks[0].url_env"}},
		{"generic unsigned", func(c *Notifications) { c.Webhooks[0].SecretEnv = "" }, []string{"webhooks[0].secret_env"}},
		{"bad secret_env", func(c *Notifications) { c.Webhooks[0].SecretEnv = "A-B" }, []string{"webhooks[0].secret_env"}},
		{"unknown format", func(c *Notifications) { c.Webhooks[0].Format = "teams" }, []string{"webhooks[0].format"}},
		{"unknown event", func(c *Notifications) { c.Webhooks[0].Events = []string{"grant.*", "request.approve"} }, []string{"webhooks[0].events[1]"}},
		{"attempts", func(c *Notifications) { c.Webhooks[0].MaxAttempts = 50 }, []string{"webhooks[0].max_attempts"}},
		{"timeout", func(c *Notifications) { c.Webhooks[0].Timeout = time.Hour }, []string{"webhooks[0].timeout"}},
		{"backoff over max", func(c *Notifications) { c.Webhooks[0].Backoff = 2 * time.Minute }, []string{"webhooks[0].backoff"}},
		{"queue", func(c *Notifications) { c.QueueSize = -1 }, []string{"queue_size"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Notifications{Webhooks: []Webhook{ok}}
			tt.mod(&c)
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

func TestNotificationsApplyDefaults(t *testing.T) {
	c := Notifications{Webhooks: []Webhook{{Name: "a"}}}
	c.ApplyDefaults()
	want := Webhook{Name: "a", Format: FormatGeneric, Events: DefaultWebhookEvents, MaxAttempts: 6, Timeout: 5 * time.Second,
		Backoff: time.Second, MaxBackoff: time.Minute}
	if diff := cmp.Diff(want, c.Webhooks[0]); diff != "" || c.QueueSize != 1000 {
		t.Errorf("(-want +got):\n%s queue %d", diff, c.QueueSize)
	}
}
