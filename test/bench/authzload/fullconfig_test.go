package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
)

// TestServeConfigLoads: the airlock.yaml the driver writes loads with
// airlock's own config package and says what the run claims: the full
// configuration with ClickHouse, without it (embedded store), and the
// light one.
func TestServeConfigLoads(t *testing.T) {
	t.Setenv(credentialEnv, "bench-secret")
	tests := []struct {
		name  string
		c     serveConfig
		check func(t *testing.T, c *config.Config, dir string)
	}{
		{"full with ClickHouse", serveConfig{Full: true, Proc: "127.0.0.1:9102", ClickHouse: "127.0.0.1:9000", Database: "authzload_1"}, func(t *testing.T, c *config.Config, dir string) {
			if c.Audit.ClickHouse.Addr != "127.0.0.1:9000" || c.Audit.ClickHouse.Database != "authzload_1" || c.Audit.Spool.Dir != filepath.Join(dir, "spool") {
				t.Errorf("audit %+v, want ClickHouse with the spool in the work dir", c.Audit)
			}
		}},
		{"full, embedded store", serveConfig{Full: true, Proc: "127.0.0.1:9102"}, func(t *testing.T, c *config.Config, dir string) {
			if c.Audit.ClickHouse.Enabled() || c.Audit.Embedded.Dir != filepath.Join(dir, "audit") {
				t.Errorf("audit %+v, want the embedded store in the work dir", c.Audit)
			}
		}},
		{"light", serveConfig{}, func(t *testing.T, c *config.Config, _ string) {
			if c.DecisionLog.Sink != "" || c.Listen.Proc != "" || c.Targets[0].MaskingProfile == benchMaskingProfile {
				t.Errorf("the light config turned on more than ext_authz: %+v", c)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.c.Dir, tc.c.Authz, tc.c.IssuerURL, tc.c.PolicyDir = dir, "127.0.0.1:9101", "https://issuer.bench/oauth2/default", "../../../policies"
			if tc.c.Full {
				tc.c.GrantsDir = filepath.Join(dir, "grants")
			}
			path, err := tc.c.write()
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Load(path)
			if err != nil {
				t.Fatalf("airlock.yaml does not load: %v", err)
			}
			if c.Listen.Authz != tc.c.Authz || len(c.Targets) != 1 || c.Targets[0].Name != benchTarget {
				t.Errorf("listen %+v targets %+v", c.Listen, c.Targets)
			}
			if tc.c.Full {
				if c.Listen.Proc != tc.c.Proc {
					t.Errorf("listen.proc %q, want %q", c.Listen.Proc, tc.c.Proc)
				}
				if c.DecisionLog.Sink != config.DecisionLogFile || c.DecisionLog.Path != decisionLogPath(dir) {
					t.Errorf("decision log %+v, want the file sink in the work dir", c.DecisionLog)
				}
				if c.Targets[0].MaskingProfile != benchMaskingProfile || len(c.Masking.Profiles) != 1 {
					t.Errorf("masking %+v, target profile %q", c.Masking, c.Targets[0].MaskingProfile)
				}
				if c.Grants.Store != config.GrantStoreFile || c.Grants.Dir != tc.c.GrantsDir {
					t.Errorf("grants %+v, want the file store at %s", c.Grants, tc.c.GrantsDir)
				}
			}
			tc.check(t, c, dir)
		})
	}
}

// TestWriteGrants fills a store through grantstest.WriteLive outside a
// test's TB and reports its failure as an error.
func TestWriteGrants(t *testing.T) {
	dir := t.TempDir()
	if err := writeGrants(dir, 25, "https://issuer.bench/oauth2/default"); err != nil {
		t.Fatal(err)
	}
	st, err := grants.OpenFileStore(dir, grants.FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	snap, err := st.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Grants) != 25 {
		t.Errorf("%d grants in the store, want 25", len(snap.Grants))
	}
	// A store another process holds (the lock) cannot be written.
	err = writeGrants(dir, 1, "https://issuer.bench/oauth2/default")
	if err == nil || !strings.Contains(err.Error(), "write 1 live grants") {
		t.Errorf("writing into a locked store: %v", err)
	}
}
