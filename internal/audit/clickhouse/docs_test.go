package clickhouse

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/audit"
	chtest "github.com/airlock-mcp/airlock/test/clickhouse"
)

// docQueries reads the SQL examples of docs/analytics.md.
func docQueries(t *testing.T) []chtest.DocQuery {
	t.Helper()
	qs, err := chtest.DocQueries("../../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// docsFixture is a small audit history: two sessions, decisions, three
// access requests (approved, denied, undecided) and a grant, shaped as
// airlock records them. TestAnalyticsFromARealRun (test/analytics) runs
// the same queries on rows a real end-to-end run recorded; this one pins
// exact answers, duplicates included.
func docsFixture(base time.Time) []audit.Record {
	at := func(s int) time.Time { return base.Add(time.Duration(s) * time.Second) }
	ev := func(id string, s int, session, who, client, target string, dir audit.Direction, tool, rpc, outcome string, masked map[string]int) *audit.Event {
		return &audit.Event{EventID: id, Time: at(s), SessionID: session, Principal: who, ClientID: client, Target: target,
			Direction: dir, Method: "tools/call", Tool: tool, JSONRPCID: rpc, Status: 200, Outcome: outcome,
			Masked: masked, Payload: `{"jsonrpc":"2.0","id":` + rpc + `}`}
	}
	recs := []audit.Record{
		ev("e1", 1, "sess-42", "alice", "agent-a", "github", audit.DirRequest, "search_issues", "1", "allow", nil),
		ev("e2", 2, "sess-42", "alice", "agent-a", "github", audit.DirResponse, "search_issues", "1", "allow", map[string]int{"aws_access_key": 1}),
		ev("e3", 3, "sess-42", "alice", "agent-a", "github", audit.DirRequest, "search_issues", "2", "allow", nil),
		ev("e4", 4, "sess-42", "alice", "agent-a", "github", audit.DirResponse, "search_issues", "2", "allow", map[string]int{"aws_access_key": 1, "bearer_token": 1}),
		ev("e5", 5, "sess-42", "alice", "agent-a", "github", audit.DirRequest, "delete_repo", "3", "deny", nil),
		ev("e6", 5, "sess-42", "alice", "agent-a", "github", audit.DirError, "delete_repo", "3", "deny", nil),
		ev("e7", 6, "sess-43", "bob", "agent-b", "jira", audit.DirRequest, "create_ticket", "1", "allow", nil),
		ev("e8", 7, "sess-43", "bob", "agent-b", "jira", audit.DirResponse, "create_ticket", "1", "allow", map[string]int{"field:password": 2}),
		&audit.Decision{DecisionID: "d1", Time: at(1), Principal: "alice", ClientID: "agent-a", Target: "github", Tool: "search_issues", Outcome: "allow"},
		&audit.Decision{DecisionID: "d2", Time: at(3), Principal: "alice", ClientID: "agent-a", Target: "github", Tool: "search_issues", Outcome: "allow"},
		&audit.Decision{DecisionID: "d3", Time: at(5), Principal: "alice", ClientID: "agent-a", Target: "github", Tool: "delete_repo", Outcome: "deny", Reason: "needs approval"},
		&audit.Decision{DecisionID: "d4", Time: at(6), Principal: "bob", ClientID: "agent-b", Target: "jira", Tool: "create_ticket", Outcome: "allow"},
		&audit.Decision{DecisionID: "d5", Time: at(8), Principal: "bob", ClientID: "agent-b", Target: "jira", Tool: "delete_project", Outcome: "deny", Reason: "not allowed"},
		// seq as airlock records it (internal/serve/audit.go): the stored
		// version of the request << 2 | the row's rank in its step. The
		// vote and the approval (or denial) it completes share their time.
		&audit.RequestEvent{EventID: "r1a", Time: at(10), RequestID: "req-1", Seq: 4, ToState: "pending", Actor: "alice", Principal: "alice", Tool: "delete_repo"},
		&audit.RequestEvent{EventID: "r1v", Time: at(70), RequestID: "req-1", Seq: 9, FromState: "pending", ToState: "pending", Actor: "carol", Principal: "alice", Tool: "delete_repo"},
		&audit.RequestEvent{EventID: "r1b", Time: at(70), RequestID: "req-1", Seq: 10, FromState: "pending", ToState: "approved", Actor: "carol", Principal: "alice", Tool: "delete_repo"},
		&audit.RequestEvent{EventID: "r2a", Time: at(20), RequestID: "req-2", Seq: 4, ToState: "pending", Actor: "bob", Principal: "bob", Tool: "delete_project"},
		&audit.RequestEvent{EventID: "r2v", Time: at(50), RequestID: "req-2", Seq: 9, FromState: "pending", ToState: "pending", Actor: "carol", Principal: "bob", Tool: "delete_project"},
		&audit.RequestEvent{EventID: "r2b", Time: at(50), RequestID: "req-2", Seq: 10, FromState: "pending", ToState: "denied", Actor: "carol", Principal: "bob", Tool: "delete_project"},
		&audit.RequestEvent{EventID: "r3a", Time: at(30), RequestID: "req-3", Seq: 4, ToState: "pending", Actor: "alice", Principal: "alice", Tool: "drop_table"},
		&audit.GrantEvent{EventID: "g1", Time: at(70), GrantID: "grant-1", Seq: 1 << 32, Transition: "issued", Actor: "carol", Principal: "alice", Target: "github", Tools: []string{"delete_repo"}, UsesLeft: 1},
		&audit.GrantEvent{EventID: "g3", Time: at(80), GrantID: "grant-1", Seq: 2<<32 | 1, Transition: "consumed", Actor: "alice", Principal: "alice", Target: "github"},
	}
	return recs
}

// TestDocsQueries runs every SQL example of docs/analytics.md against
// ClickHouse holding the fixture twice over (as after a resend) and
// checks each answer: on one server, and through a cluster's Distributed
// tables (the same names, FINAL folding on each shard).
func TestDocsQueries(t *testing.T) {
	t.Run("one server", func(t *testing.T) {
		s := sharedServer(t)
		testDocsQueries(t, testConfig(t, s.Addr(), "airlock"), s.Addr(), func(driver.Conn) {}) // the database the docs name
	})
	t.Run("cluster", func(t *testing.T) {
		c := sharedCluster(t)
		testDocsQueries(t, clusterConfig(t, c, "airlock"), c.Addrs()[1], func(conn driver.Conn) {
			// Rows went in through the first node; the second's replica
			// copies them in the background.
			for _, table := range []string{tableEvents, tableDecisions, tableRequests, tableGrants} {
				if err := conn.Exec(ctxT(t, time.Minute), "SYSTEM SYNC REPLICA airlock."+table+"_local"); err != nil {
					t.Fatal(err)
				}
			}
		})
	})
}

func testDocsQueries(t *testing.T, cfg audit.Config, queryAddr string, settle func(driver.Conn)) {
	ch, err := dialClickHouse(cfg.ClickHouse, nopLog())
	if err != nil {
		t.Fatal(err)
	}
	defer ch.close()
	base := time.Now().UTC().Add(-2 * time.Hour).Truncate(time.Second)
	for range 2 { // every row twice: the queries must not double count
		b := ch.newBatch()
		for _, r := range docsFixture(base) {
			b.Add(r)
		}
		if err := b.Send(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	ts := func(s int) string { return base.Add(time.Duration(s) * time.Second).Format("2006-01-02 15:04:05") }
	want := map[string][][]string{
		"Top tools per user": {
			{"alice", "search_issues", "2"},
			{"alice", "delete_repo", "1"},
			{"bob", "create_ticket", "1"},
		},
		"Denied calls": {
			{ts(8), "bob", "agent-b", "jira", "delete_project", "not allowed"},
			{ts(5), "alice", "agent-a", "github", "delete_repo", "needs approval"},
		},
		"Approvals and their latency": {
			{"req-1", "alice", "delete_repo", "approved", "carol", "60"},
			{"req-2", "bob", "delete_project", "denied", "carol", "30"},
		},
		"Approval latency summary": {
			{"2", "1", "45", "60"},
		},
		"Masked secrets per server": {
			{"github", "aws_access_key", "2"},
			{"github", "bearer_token", "1"},
			{"jira", "field:password", "2"},
		},
		"A session's timeline": {
			{ts(1), "request", "tools/call", "search_issues", "1", "200", "allow", "0", "0", `{"jsonrpc":"2.0","id":1}`},
			{ts(2), "response", "tools/call", "search_issues", "1", "200", "allow", "0", "1", `{"jsonrpc":"2.0","id":1}`},
			{ts(3), "request", "tools/call", "search_issues", "2", "200", "allow", "0", "0", `{"jsonrpc":"2.0","id":2}`},
			{ts(4), "response", "tools/call", "search_issues", "2", "200", "allow", "0", "2", `{"jsonrpc":"2.0","id":2}`},
			{ts(5), "request", "tools/call", "delete_repo", "3", "200", "deny", "0", "0", `{"jsonrpc":"2.0","id":3}`},
			{ts(5), "error", "tools/call", "delete_repo", "3", "200", "deny", "0", "0", `{"jsonrpc":"2.0","id":3}`},
		},
		"Grants and how they ended": {
			{"grant-1", "alice", "github", "1", "consumed"},
		},
	}
	conn := connect(t, queryAddr)
	settle(conn)
	seen := map[string]bool{}
	for _, q := range docQueries(t) {
		t.Run(q.Title, func(t *testing.T) {
			exp, ok := want[q.Title]
			if !ok {
				t.Fatalf("docs/analytics.md has a query %q this test has no expected answer for", q.Title)
			}
			seen[q.Title] = true
			rows, err := conn.Query(ctxT(t, time.Minute), q.SQL)
			if err != nil {
				t.Fatalf("query fails on ClickHouse: %v\n%s", err, q.SQL)
			}
			defer rows.Close()
			var got [][]string
			types := rows.ColumnTypes()
			for rows.Next() {
				vals := make([]any, len(types))
				for i, ct := range types {
					vals[i] = reflect.New(ct.ScanType()).Interface()
				}
				if err := rows.Scan(vals...); err != nil {
					t.Fatal(err)
				}
				row := make([]string, len(vals))
				for i, v := range vals {
					row[i] = cell(reflect.ValueOf(v).Elem().Interface())
				}
				got = append(got, row)
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(exp, got); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
	for title := range want {
		if !seen[title] {
			t.Errorf("expected answer for %q but docs/analytics.md has no such query", title)
		}
	}
}

// cell renders a scanned value as text (times in UTC, seconds).
func cell(v any) string {
	switch v := v.(type) {
	case time.Time:
		return v.UTC().Format("2006-01-02 15:04:05")
	case float64:
		return fmt.Sprint(v)
	default:
		return fmt.Sprint(v)
	}
}
