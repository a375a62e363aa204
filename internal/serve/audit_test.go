package serve

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// captureSink keeps the rows recorded, in order.
type captureSink struct {
	mu   sync.Mutex
	rows []audit.Record
}

func (c *captureSink) Record(r audit.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, r)
	return nil
}

// TestGrantAuditorSeqOrders: with a clock that never moves (every row
// shares its time_ns, as a vote and the approval it completes always do),
// each request's and grant's rows still have strictly increasing seq in
// the order they happened, so the row with the largest seq is the one that
// ended it — what the documented queries rely on.
func TestGrantAuditorSeqOrders(t *testing.T) {
	now := time.Date(2026, 1, 31, 12, 0, 0, 0, time.UTC)
	var clockMu sync.Mutex
	clock := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return now }
	sink := &captureSink{}
	cfg := grants.Defaults()
	svc, err := grants.New(grants.NewMemStore(), cfg, grants.Options{
		Auditor: grantAuditor{sink: sink, log: slog.New(slog.DiscardHandler)}, Now: clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	ctx := context.Background()
	approver := grants.Actor{Subject: "carol", Groups: []string{"approvers"}}
	approver2 := grants.Actor{Subject: "dan", Groups: []string{"approvers"}}
	open := func(sub, tool string, threshold int, d time.Duration) *grants.Request {
		t.Helper()
		r, _, err := svc.Open(ctx, grants.OpenParams{
			Principal: grants.Principal{Subject: sub}, Target: "github", Kind: grants.KindTool, Tool: tool,
			Approval: policy.Approval{ApproverGroups: []string{"approvers"}, Threshold: threshold, GrantDuration: d},
		})
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	// Approved by two votes, one refused vote (self-approval) in between;
	// the time-bound grant is used twice, then revoked.
	a := open("alice", "delete_repo", 2, time.Hour)
	if _, err := svc.Decide(ctx, a.ID, grants.Actor{Subject: "alice", Groups: []string{"approvers"}}, grants.VerdictApprove, "me"); err == nil {
		t.Fatal("self-approval accepted")
	}
	if _, err := svc.Decide(ctx, a.ID, approver, grants.VerdictApprove, "ok"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Decide(ctx, a.ID, approver, grants.VerdictApprove, "again"); err == nil {
		t.Fatal("a second vote by the same approver accepted")
	}
	ra, err := svc.Decide(ctx, a.ID, approver2, grants.VerdictApprove, "ok too")
	if err != nil || ra.State != grants.RequestApproved {
		t.Fatalf("second approval: %+v %v", ra, err)
	}
	for range 2 {
		if _, err := svc.ConsumeFor(ctx, ra.GrantID, grants.Principal{Subject: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.Revoke(ctx, ra.GrantID, approver, "enough"); err != nil {
		t.Fatal(err)
	}
	// Denied at once; single-use grant consumed; one left to expire; one cancelled.
	b := open("bob", "drop_table", 1, time.Hour)
	if _, err := svc.Decide(ctx, b.ID, approver, grants.VerdictDeny, "no"); err != nil {
		t.Fatal(err)
	}
	c := open("erin", "delete_branch", 1, 0)
	rc, err := svc.Decide(ctx, c.ID, approver, grants.VerdictApprove, "once")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.ConsumeFor(ctx, rc.GrantID, grants.Principal{Subject: "erin"}); err != nil {
		t.Fatal(err)
	}
	d := open("frank", "delete_org", 1, time.Hour)
	e := open("gina", "delete_team", 1, time.Hour)
	if _, err := svc.Cancel(ctx, e.ID, grants.Actor{Subject: "gina"}, "not needed"); err != nil {
		t.Fatal(err)
	}
	clockMu.Lock()
	now = now.Add(cfg.PendingTTL + time.Second)
	clockMu.Unlock()
	if _, err := svc.Decide(ctx, d.ID, approver, grants.VerdictApprove, "late"); err == nil {
		t.Fatal("a vote after the deadline accepted")
	}

	type step struct {
		seq   uint64
		state string
	}
	reqs := map[string][]step{}
	grantRows := map[string][]step{}
	for _, r := range sink.rows {
		switch v := r.(type) {
		case *audit.RequestEvent:
			reqs[v.RequestID] = append(reqs[v.RequestID], step{v.Seq, v.ToState})
		case *audit.GrantEvent:
			grantRows[v.GrantID] = append(grantRows[v.GrantID], step{v.Seq, v.Transition})
		}
	}
	// The last state of each request, by largest seq (what
	// argMax(to_state, seq) answers), and the rows in recorded order.
	wantLast := map[string]string{a.ID: "approved", b.ID: "denied", c.ID: "approved", d.ID: "expired", e.ID: "cancelled"}
	for id, last := range wantLast {
		steps := reqs[id]
		if len(steps) < 2 {
			t.Fatalf("request %s: rows %+v", id, steps)
		}
		for i := 1; i < len(steps); i++ {
			if steps[i].seq <= steps[i-1].seq {
				t.Errorf("request %s: seq does not grow at row %d: %+v", id, i, steps)
			}
		}
		if got := steps[len(steps)-1].state; got != last {
			t.Errorf("request %s: row with the largest seq is %s, want %s (%+v)", id, got, last, steps)
		}
	}
	// a: opened, refused, vote, refused, vote, approved.
	if n := len(reqs[a.ID]); n != 6 {
		t.Errorf("request a: %d rows, want 6: %+v", n, reqs[a.ID])
	}
	wantGrant := map[string]string{ra.GrantID: "revoked", rc.GrantID: "consumed"}
	for id, last := range wantGrant {
		steps := grantRows[id]
		for i := 1; i < len(steps); i++ {
			if steps[i].seq <= steps[i-1].seq {
				t.Errorf("grant %s: seq does not grow at row %d: %+v", id, i, steps)
			}
		}
		if len(steps) == 0 || steps[len(steps)-1].state != last {
			t.Errorf("grant %s: rows %+v, want the last to be %s", id, steps, last)
		}
	}
	if n := len(grantRows[ra.GrantID]); n != 4 { // issued, used, used, revoked
		t.Errorf("grant of a: %d rows, want 4: %+v", n, grantRows[ra.GrantID])
	}
}
