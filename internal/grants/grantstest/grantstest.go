// Package grantstest is test support for the grant store: it writes a
// store holding many live grants, as a long-running airlock would have,
// for tests of what happens at start (xDS loading every grant's route).
package grantstest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// WriteLive writes n active grants ("gr_00000" …), each for tool
// create_issue on target and issued by issuer to alice, live for the next
// hour, into a file store at dir, and closes it so airlock can open it.
func WriteLive(t testing.TB, dir string, n int, target, issuer string) {
	t.Helper()
	if err := Live(dir, n, target, issuer); err != nil {
		t.Fatal(err)
	}
}

// Live is WriteLive for callers without a testing.TB (the load driver).
func Live(dir string, n int, target, issuer string) error {
	st, err := grants.OpenFileStore(dir, grants.FileStoreOptions{})
	if err != nil {
		return fmt.Errorf("write %d live grants into %s: %w", n, dir, err)
	}
	now := time.Now()
	var m grants.Mutation
	for i := range n {
		m.Grants = append(m.Grants, grants.Grant{ID: ID(i), Version: 1, RequestID: fmt.Sprintf("req_%05d", i), State: grants.GrantActive,
			Subject: "alice", Issuer: issuer, Target: target, Kind: grants.KindTool, Tool: "create_issue",
			NotBefore: now.Add(-time.Minute), Expiry: now.Add(time.Hour), CreatedAt: now.Add(-time.Minute), ApprovedBy: []string{"bob"}})
	}
	if err := st.Apply(context.Background(), m); err != nil {
		st.Close()
		return fmt.Errorf("write %d live grants into %s: %w", n, dir, err)
	}
	return st.Close()
}

// ID is the id WriteLive gives grant i.
func ID(i int) string { return fmt.Sprintf("gr_%05d", i) }
