package grants

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Config)
		fields []string // fields with errors, in order
	}{
		{"defaults", func(*Config) {}, nil},
		{"no hold", func(c *Config) { c.HoldWindow = 0 }, nil},
		{"no dir", func(c *Config) { c.Dir = "" }, []string{"dir"}},
		{"ttl too short", func(c *Config) { c.PendingTTL = time.Second }, []string{"pending_ttl"}},
		{"ttl not past the hold", func(c *Config) { c.PendingTTL = 20 * time.Second }, []string{"pending_ttl"}},
		{"hold negative", func(c *Config) { c.HoldWindow = -time.Second }, []string{"hold_window"}},
		{"hold too long", func(c *Config) { c.HoldWindow = 6 * time.Minute }, []string{"hold_window"}},
		{"single use ttl", func(c *Config) { c.SingleUseTTL = 25 * time.Hour }, []string{"single_use_ttl"}},
		{"max pending", func(c *Config) { c.MaxPendingPerPrincipal = 0 }, []string{"max_pending_per_principal"}},
		{"approval url relative", func(c *Config) { c.ApprovalURL = "/requests" }, []string{"approval_url"}},
		{"approval url with query", func(c *Config) { c.ApprovalURL = "https://a.example/r?x=1" }, []string{"approval_url"}},
		{"retention", func(c *Config) { c.Retention = time.Second }, []string{"retention"}},
		{"several", func(c *Config) { c.Dir = ""; c.Retention = 0 }, []string{"dir", "retention"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Defaults()
			tt.mod(&c)
			err := c.Validate()
			var fields []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var ce *ConfigError
					if !errors.As(e, &ce) {
						t.Fatalf("%v is not a *ConfigError", e)
					}
					fields = append(fields, ce.Field)
				}
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s (%v)", diff, err)
			}
		})
	}
}

func TestApprovalURL(t *testing.T) {
	for _, base := range []string{"https://airlock.example/inbox/requests", "https://airlock.example/inbox/requests/"} {
		c := Defaults()
		c.ApprovalURL = base
		if got := c.RequestURL("req_abc"); got != "https://airlock.example/inbox/requests/req_abc" {
			t.Errorf("%s: %s", base, got)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	c := Defaults()
	c.HoldWindow = time.Hour
	if _, err := New(NewMemStore(), c, Options{}); err == nil {
		t.Fatal("New accepted an invalid configuration")
	}
	if _, err := New(nil, Defaults(), Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("New without a store: %v", err)
	}
}
