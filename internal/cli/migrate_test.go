package cli_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Run(m)) }

func TestMigrate(t *testing.T) {
	dsn := pgtest.DSN(t)
	t.Setenv("AIRLOCK_TEST_GRANTS_DSN", dsn)
	t.Setenv("AIRLOCK_TEST_GRANTS_DSN_EMPTY", "")
	withStore := func(grants string) map[string]string {
		return map[string]string{"airlock.yaml": goodConfig + grants, "policies/p.rego": goodPolicy}
	}
	cases := []struct {
		name     string
		grants   string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{"file store", "", 0, "nothing to migrate", ""},
		{"postgres, first run", "grants: {store: postgres, postgres: {dsn_env: AIRLOCK_TEST_GRANTS_DSN}}\n", 0, "migrated from version 0 to", ""},
		{"postgres, again", "grants: {store: postgres, postgres: {dsn_env: AIRLOCK_TEST_GRANTS_DSN}}\n", 0, "up to date", ""},
		{"postgres, DSN unset", "grants: {store: postgres, postgres: {dsn_env: AIRLOCK_TEST_GRANTS_DSN_EMPTY}}\n", 1, "", "AIRLOCK_TEST_GRANTS_DSN_EMPTY is unset or empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, withStore(tc.grants))
			var out, errb bytes.Buffer
			code := run([]string{"migrate", "--config", dir + "/airlock.yaml"}, &out, &errb)
			if code != tc.wantCode || !strings.Contains(out.String(), tc.wantOut) || !strings.Contains(errb.String(), tc.wantErr) {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d, %q, %q", code, out.String(), errb.String(), tc.wantCode, tc.wantOut, tc.wantErr)
			}
			if strings.Contains(out.String()+errb.String(), dsn) {
				t.Fatal("the DSN was printed")
			}
		})
	}
}

// validate checks the shared store's DSN is in its variable and parses,
// without connecting, and never prints it.
func TestValidatePostgresStore(t *testing.T) {
	const secret = "pw-never-printed"
	files := map[string]string{"airlock.yaml": goodConfig + "grants: {store: postgres, postgres: {dsn_env: AIRLOCK_TEST_VALIDATE_DSN}}\n", "policies/p.rego": goodPolicy}
	cases := []struct {
		name, dsn string
		args      []string
		wantCode  int
		wantErr   string
	}{
		{"set", "postgres://airlock:" + secret + "@db.invalid:5432/airlock", nil, 0, ""},
		{"unset", "", nil, 1, "AIRLOCK_TEST_VALIDATE_DSN is unset or empty"},
		{"does not parse", "postgres://airlock:" + secret + "@db.invalid:notaport/airlock", nil, 1, "does not parse"},
		{"unset, credentials skipped", "", []string{"--skip-credentials"}, 0, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AIRLOCK_TEST_VALIDATE_DSN", tc.dsn)
			dir := writeFiles(t, files)
			var out, errb bytes.Buffer
			code := run(append([]string{"validate", "--config", dir + "/airlock.yaml"}, tc.args...), &out, &errb)
			if code != tc.wantCode || !strings.Contains(errb.String(), tc.wantErr) {
				t.Fatalf("exit %d, stderr %q; want exit %d and %q", code, errb.String(), tc.wantCode, tc.wantErr)
			}
			if strings.Contains(out.String()+errb.String(), secret) {
				t.Fatal("validate printed the DSN's password")
			}
		})
	}
}
