package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGrantsValidate(t *testing.T) {
	tests := []struct {
		name   string
		mod    func(*Grants)
		fields []string // fields with errors, in order
	}{
		{"defaults", func(*Grants) {}, nil},
		{"no hold", func(c *Grants) { c.HoldWindow = 0 }, nil},
		{"no dir", func(c *Grants) { c.Dir = "" }, []string{"dir"}},
		{"ttl too short", func(c *Grants) { c.PendingTTL = time.Second }, []string{"pending_ttl"}},
		{"ttl not past the hold", func(c *Grants) { c.PendingTTL = 20 * time.Second }, []string{"pending_ttl"}},
		{"hold negative", func(c *Grants) { c.HoldWindow = -time.Second }, []string{"hold_window"}},
		{"hold too long", func(c *Grants) { c.HoldWindow = 6 * time.Minute }, []string{"hold_window"}},
		{"single use ttl", func(c *Grants) { c.SingleUseTTL = 25 * time.Hour }, []string{"single_use_ttl"}},
		{"max pending", func(c *Grants) { c.MaxPendingPerPrincipal = 0 }, []string{"max_pending_per_principal"}},
		{"approval url relative", func(c *Grants) { c.ApprovalURL = "/requests" }, []string{"approval_url"}},
		{"approval url with query", func(c *Grants) { c.ApprovalURL = "https://a.example/r?x=1" }, []string{"approval_url"}},
		{"retention", func(c *Grants) { c.Retention = time.Second }, []string{"retention"}},
		{"several", func(c *Grants) { c.Dir = ""; c.Retention = 0 }, []string{"dir", "retention"}},
		{"unknown store", func(c *Grants) { c.Store = "etcd" }, []string{"store"}},
		{"empty store", func(c *Grants) { c.Store = "" }, []string{"store"}},
		{"postgres", func(c *Grants) { c.Store = GrantStorePostgres; c.Postgres.DSNEnv = "AIRLOCK_PG_DSN" }, nil},
		{"postgres needs no dir", func(c *Grants) { c.Store = GrantStorePostgres; c.Postgres.DSNEnv = "PG"; c.Dir = "" }, nil},
		{"postgres without dsn_env", func(c *Grants) { c.Store = GrantStorePostgres }, []string{"postgres.dsn_env"}},
		{"postgres dsn in the file", func(c *Grants) {
			c.Store = GrantStorePostgres
			c.Postgres.DSNEnv = "postgres://airlock:pw@db/airlock"
		}, []string{"postgres.dsn_env"}},
		{"postgres dsn key=value in the file", func(c *Grants) {
			c.Store = GrantStorePostgres
			c.Postgres.DSNEnv = "host=db password=pw"
		}, []string{"postgres.dsn_env"}},
		{"postgres dsn_env bad name", func(c *Grants) { c.Store = GrantStorePostgres; c.Postgres.DSNEnv = "1PG" }, []string{"postgres.dsn_env"}},
		{"max conns", func(c *Grants) { c.Postgres.MaxConns = 0 }, []string{"postgres.max_conns"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := GrantsDefaults()
			tt.mod(&c)
			err := c.Validate()
			var fields []string
			if err != nil {
				for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
					var fe *FieldError
					if !errors.As(e, &fe) {
						t.Fatalf("%v is not a *FieldError", e)
					}
					fields = append(fields, strings.TrimPrefix(fe.Path, "grants."))
				}
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s (%v)", diff, err)
			}
		})
	}
}

func TestGrantsRequestURL(t *testing.T) {
	for _, base := range []string{"https://airlock.example/inbox/requests", "https://airlock.example/inbox/requests/"} {
		c := GrantsDefaults()
		c.ApprovalURL = base
		if got := c.RequestURL("req_abc"); got != "https://airlock.example/inbox/requests/req_abc" {
			t.Errorf("%s: %s", base, got)
		}
	}
}

// The approval URL defaults to the inbox's page only when the inbox is
// served; with the inbox off no URL is handed out (it would answer 404).
func TestApprovalURLFollowsTheInbox(t *testing.T) {
	base := "public_url: https://gw.example\npolicy: {dir: " + t.TempDir() + "}\nissuers: [{name: okta, url: https://okta.example/oauth2/default}]\ntargets: [{name: gh, upstream: http://127.0.0.1:1/mcp}]\n"
	for _, tc := range []struct{ extra, want string }{
		{"grants: {dir: " + t.TempDir() + "}\n", ""},
		{"grants: {dir: " + t.TempDir() + "}\ninbox: {issuer: https://okta.example, client_id: inbox, redirect_url: https://gw.example/airlock/inbox/callback}\n", "https://gw.example/airlock/inbox/requests"},
		{"grants: {dir: " + t.TempDir() + ", approval_url: https://approve.example/r}\n", "https://approve.example/r"},
	} {
		c, err := Parse(strings.NewReader(base+tc.extra), "a.yaml")
		if err != nil {
			t.Fatalf("%q: %v", tc.extra, err)
		}
		if c.Grants.ApprovalURL != tc.want || (tc.want == "" && c.Grants.RequestURL("req_1") != "") {
			t.Errorf("%q: approval_url %q, want %q", tc.extra, c.Grants.ApprovalURL, tc.want)
		}
	}
}

func TestGrantsPostgresDSN(t *testing.T) {
	c := GrantsDefaults()
	c.Store, c.Postgres.DSNEnv = GrantStorePostgres, "AIRLOCK_TEST_PG_DSN"
	t.Setenv("AIRLOCK_TEST_PG_DSN", "")
	if _, err := c.PostgresDSN(); err == nil || !strings.Contains(err.Error(), "AIRLOCK_TEST_PG_DSN") {
		t.Fatalf("an empty DSN variable: %v, want an error naming it", err)
	}
	t.Setenv("AIRLOCK_TEST_PG_DSN", "postgres://a:pw@db/x")
	if dsn, err := c.PostgresDSN(); err != nil || dsn != "postgres://a:pw@db/x" {
		t.Fatalf("PostgresDSN = %q, %v", dsn, err)
	}
}

// Replicas on a shared store share sign-ins: with the inbox on, its
// session key must come from the environment, the same on every replica.
func TestSharedStoreNeedsSharedSessions(t *testing.T) {
	base := "public_url: https://gw.example\npolicy: {dir: " + t.TempDir() + "}\nissuers: [{name: okta, url: https://okta.example/oauth2/default}]\ntargets: [{name: gh, upstream: http://127.0.0.1:1/mcp}]\n"
	inbox := "inbox: {issuer: https://okta.example, client_id: inbox, redirect_url: https://gw.example/airlock/inbox/callback%s}\n"
	for _, tc := range []struct {
		name, extra string
		wantErr     string
	}{
		{"file store, no key", "grants: {dir: " + t.TempDir() + "}\n" + fmt.Sprintf(inbox, ""), ""},
		{"postgres, inbox off", "grants: {store: postgres, postgres: {dsn_env: PG_DSN}}\n", ""},
		{"postgres, shared key", "grants: {store: postgres, postgres: {dsn_env: PG_DSN}}\n" + fmt.Sprintf(inbox, ", session_key_env: INBOX_KEY"), ""},
		{"postgres, no key", "grants: {store: postgres, postgres: {dsn_env: PG_DSN}}\n" + fmt.Sprintf(inbox, ""), "inbox.session_key_env"},
		{"postgres, dsn in the file", "grants: {store: postgres, postgres: {dsn_env: 'postgres://a:pw@db/x'}}\n", "grants.postgres.dsn_env"},
		{"unknown key under postgres", "grants: {store: postgres, postgres: {dsn: 'postgres://a:pw@db/x', dsn_env: PG}}\n", "dsn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(base+tc.extra), "a.yaml")
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatal(err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("Parse = %v, want an error at %s", err, tc.wantErr)
			case err != nil && strings.Contains(err.Error(), "pw@"):
				t.Fatalf("the error repeats the DSN: %v", err)
			}
		})
	}
}
