package config

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

// TestAuditorGroups: inbox.auditor_groups turns the console on with the
// inbox; Parse (what `airlock validate` runs first) accepts it there and
// refuses it without an inbox or with a blank group, naming the field.
func TestAuditorGroups(t *testing.T) {
	const inbox = `inbox:
  issuer: https://example.okta.com
  client_id: 0oa-inbox
  redirect_url: https://gw.example.com/airlock/inbox/callback
`
	cases := []struct {
		name, yaml string
		console    bool
		field      string // the FieldError's path, "" when valid
	}{
		{"inbox without auditors", minimal + inbox, false, ""},
		{"auditors", minimal + inbox + "  auditor_groups: [airlock-auditors]\n", true, ""},
		{"auditors without an inbox", minimal + "inbox:\n  auditor_groups: [airlock-auditors]\n", false, "inbox.auditor_groups"},
		{"blank group", minimal + inbox + "  auditor_groups: [airlock-auditors, \" \"]\n", false, "inbox.auditor_groups[1]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writePolicyDir(t)
			cfg, err := Parse(strings.NewReader(tc.yaml), filepath.Join(dir, "airlock.yaml"))
			if tc.field == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := cfg.Inbox.ConsoleEnabled(); got != tc.console {
					t.Errorf("ConsoleEnabled() = %v, want %v", got, tc.console)
				}
				return
			}
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Path != tc.field {
				t.Fatalf("error %v, want a FieldError at %s", err, tc.field)
			}
		})
	}
}
