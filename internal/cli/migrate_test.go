package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/grants/pgstore"
	"github.com/airlock-mcp/airlock/internal/grants/pgtest"
	"github.com/airlock-mcp/airlock/internal/policy"
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

// One airlock moves from its file store to PostgreSQL: migrate imports the
// records, versions and all, once, and a replica on PostgreSQL reads them.
func TestMigrateImportsAFileStore(t *testing.T) {
	ctx := context.Background()
	t.Setenv("AIRLOCK_TEST_IMPORT_DSN", pgtest.DSN(t))
	storeDir := t.TempDir()
	fs, err := grants.OpenFileStore(storeDir, grants.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gcfg := grants.Defaults()
	svc, err := grants.New(fs, gcfg, grants.Options{})
	if err != nil {
		t.Fatal(err)
	}
	alice := grants.Principal{Issuer: "https://idp.example", Subject: "alice", ClientID: "agent"}
	p := grants.OpenParams{Principal: alice, Target: "github", Kind: grants.KindTool, Tool: "delete_repo",
		Arguments: json.RawMessage(`{"repo":"acme/x"}`), Approval: policy.Approval{ApproverGroups: []string{"sre"}, Threshold: 1, SingleUse: true}}
	approved, _, err := svc.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Decide(ctx, approved.ID, grants.Actor{Subject: "bob", Groups: []string{"sre"}}, grants.VerdictApprove, "ok"); err != nil {
		t.Fatal(err)
	}
	p.Tool = "drop_table"
	waiting, _, err := svc.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}

	dir := writeFiles(t, map[string]string{"airlock.yaml": goodConfig + "grants: {store: postgres, postgres: {dsn_env: AIRLOCK_TEST_IMPORT_DSN}}\n", "policies/p.rego": goodPolicy})
	migrate := func() (int, string, string) {
		var out, errb bytes.Buffer
		code := run([]string{"migrate", "--config", dir + "/airlock.yaml", "--import-file-store", storeDir}, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, errs := migrate(); code != 0 || !strings.Contains(out, "imported 2 requests and 1 grants") {
		t.Fatalf("migrate --import-file-store: exit %d, %q, %q", code, out, errs)
	}
	if code, _, errs := migrate(); code != 1 || !strings.Contains(errs, "import only into an empty store") {
		t.Fatalf("a second import: exit %d, %q; want it refused", code, errs)
	}
	ps, err := pgstore.Open(ctx, os.Getenv("AIRLOCK_TEST_IMPORT_DSN"), pgstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	replica, err := grants.New(ps, gcfg, grants.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer replica.Close()
	if r, err := replica.Get(ctx, approved.ID); err != nil || r.State != grants.RequestApproved {
		t.Fatalf("the approved request on PostgreSQL: %v, %v", r, err)
	}
	// The imported pending request takes its next decision, and its grant
	// its use, at the next versions.
	if _, err := replica.Decide(ctx, waiting.ID, grants.Actor{Subject: "bob", Groups: []string{"sre"}}, grants.VerdictDeny, "no"); err != nil {
		t.Fatal(err)
	}
	r, _ := replica.Get(ctx, approved.ID)
	if _, err := replica.ConsumeFor(ctx, r.GrantID, alice); err != nil {
		t.Fatal(err)
	}
}
