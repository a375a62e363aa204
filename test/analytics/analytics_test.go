// Package analytics checks docs/analytics.md against data a real run
// recorded: airlock end to end (test/harness: OIDC issuer, Go SDK MCP
// server and client, the data path, the grants service and the approvals
// API over HTTP) with its audit going to a real ClickHouse
// (test/clickhouse), then every SQL block of the page run on it. The
// same session is run again on the embedded store, which answers the
// questions it can (sessions and replay).
package analytics

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/test/clickhouse"
	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
	"github.com/airlock-mcp/airlock/test/peers"
)

// The people of the scripted run.
const (
	agentUser = "00u-ana"   // the user the agent acts for
	approver  = "00u-carol" // a member of airlock-approvers
	target    = "github"    // time-bound grants (15m) in test/harness's policy data
)

// run is what the scripted session left behind.
type run struct {
	session  string // the MCP session of the allowed, denied, approved and denied-by-approver calls
	approved string // request ids
	denied   string
	expired  string
}

// script drives one stack through the story every question is asked
// about: an allowed call whose result holds fake secrets (masked), a call
// policy denies, a held call an approver approves through the approvals
// API after a wait, one the approver denies, and one nobody decides (it
// times out for the agent, -32014 (no inbox here), and then expires).
func script(t *testing.T, s *harness.Stack) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var out run
	connect := func() *mcp.ClientSession {
		tok, err := s.Token(agentUser, target)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := peers.ConnectGoClientWith(ctx, s.TargetURL(target), tok, peers.GoClientOptions{
			ProtocolVersion: "2025-11-25", Header: http.Header{"X-Airlock-Reason": {"ticket OPS-7: tidy up"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		return cs
	}
	del := func(cs *mcp.ClientSession, repo string) error {
		res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: peers.ToolDeleteRepository, Arguments: map[string]any{"repo": repo}})
		if err == nil && res.IsError {
			return fmt.Errorf("tool error: %v", res.Content)
		}
		return err
	}
	pending := func(repo string) *grants.Request {
		for {
			rs, err := s.Gateway.Grants.List(ctx, grants.RequestFilter{States: []grants.RequestState{grants.RequestPending}, Subject: agentUser, Target: target})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if strings.Contains(string(r.Arguments), repo) {
					return r
				}
			}
			select {
			case <-ctx.Done():
				t.Fatalf("no pending request for %s", repo)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	// Held and never decided, in a session of its own, first: it has the
	// longest to wait.
	other := connect()
	expiredErr := make(chan error, 1)
	go func() { expiredErr <- del(other, "acme/forgotten") }()
	out.expired = pending("acme/forgotten").ID

	cs := connect()
	out.session = cs.ID()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: peers.ToolGetSecretConfig, Arguments: map[string]any{}}); err != nil {
		t.Fatalf("the allowed call: %v", err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_env", Arguments: map[string]any{}}); err == nil {
		t.Fatal("get_env was not denied")
	}
	// Denied first: the approval issues a time-bound grant for the tool,
	// which would let the next call through without a hold.
	for _, step := range []struct {
		repo, verdict string
		id            *string
	}{{"acme/prod", "deny", &out.denied}, {"acme/old", "approve", &out.approved}} {
		done := make(chan error, 1)
		go func() { done <- del(cs, step.repo) }()
		r := pending(step.repo)
		*step.id = r.ID
		time.Sleep(time.Second) // the approver takes a moment: the wait is measurable
		decide(t, ctx, s, r.ID, step.verdict)
		err := <-done
		if step.verdict == "approve" && err != nil {
			t.Fatalf("the approved call failed: %v", err)
		}
		if step.verdict == "deny" && err == nil {
			t.Fatal("the call the approver denied went through")
		}
	}

	// Issue 15: the harness serves no inbox, so no approval URL is handed out;
	// the agent gets airlock's approval-required error (-32014) naming the
	// CLI, as a JSON-RPC error the Go SDK client hands back whole.
	if err := <-expiredErr; !approvalRequiredByCLI(err) {
		t.Fatalf("the undecided call: %v, want -32014 once the hold window passed", err)
	}
	for {
		r, err := s.Gateway.Grants.Get(ctx, out.expired)
		if err != nil {
			t.Fatal(err)
		}
		if r.State == grants.RequestExpired {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("request %s never expired (%s)", out.expired, r.State)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cs.Close()
	other.Close()
	if err := s.Gateway.Audit.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	return out
}

// decide approves or denies request id as the approver would: a POST to
// the approvals API with a token minted for it.
func decide(t *testing.T, ctx context.Context, s *harness.Stack, id, verdict string) {
	t.Helper()
	tok, err := s.Token(approver, target, func(tk *oidcissuer.Token) {
		tk.Audience = []string{s.BaseURL + "/airlock"}
		tk.Groups = []string{"engineering", "airlock-approvers"}
		tk.Scopes, tk.ClientID = []string{"openid"}, "0oa-inbox"
	})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.BaseURL+"/airlock/v1/requests/"+id+"/"+verdict,
		strings.NewReader(`{"reason":"checked ticket OPS-7"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: HTTP %d", verdict, id, resp.StatusCode)
	}
}

func startStack(t *testing.T, opts harness.Options) *harness.Stack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	opts.HoldWindow, opts.PendingTTL = 4*time.Second, 10*time.Second
	s, err := harness.Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestAnalyticsFromARealRun records the scripted run in ClickHouse and
// runs every SQL block of docs/analytics.md on it; then the same script on
// the embedded store, whose sessions and replay must tell the same story.
func TestAnalyticsFromARealRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ch, err := clickhouse.Start(ctx, clickhouse.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ch.Close() })
	s := startStack(t, harness.Options{ClickHouse: ch.Addr()}) // database "airlock", as the docs name it
	r := script(t, s)
	conn, err := chgo.Open(&chgo.Options{Addr: []string{ch.Addr()}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	t.Run("ties", func(t *testing.T) { checkTies(t, ctx, conn, r) })
	queries := docQueries(t)
	checks := docChecks(r)
	for _, q := range queries {
		t.Run(q.Title, func(t *testing.T) {
			check, ok := checks[q.Title]
			if !ok {
				t.Fatalf("docs/analytics.md has a query %q this test has no check for", q.Title)
			}
			rows := query(t, ctx, conn, strings.ReplaceAll(q.SQL, "'sess-42'", "'"+r.session+"'"))
			check(t, rows)
		})
	}
	for title := range checks {
		if !slices.ContainsFunc(queries, func(q clickhouse.DocQuery) bool { return q.Title == title }) {
			t.Errorf("a check for %q but docs/analytics.md has no such query", title)
		}
	}

	// The same questions the embedded store can answer (sessions and
	// replay; it runs no SQL), asked of both backends after the same
	// script: the answers tell the same story.
	chStory := story(t, ctx, s, r)
	e := startStack(t, harness.Options{})
	if e.Config.Audit.ClickHouse.Addr != "" {
		t.Fatal("the second stack is not on the embedded store")
	}
	er := script(t, e)
	embStory := story(t, ctx, e, er)
	if chStory != embStory {
		t.Errorf("the embedded store tells another story than ClickHouse:\nClickHouse:\n%s\nembedded:\n%s", chStory, embStory)
	}
}

// checkTies: the approver's vote and the approval it completes really
// share their time_ns (the reason for seq), and seq orders them.
func checkTies(t *testing.T, ctx context.Context, conn driver.Conn, r run) {
	for id, end := range map[string]string{r.approved: "approved", r.denied: "denied", r.expired: "expired"} {
		rows := query(t, ctx, conn, "SELECT to_state, toString(time_ns), toString(seq) FROM airlock.request_events FINAL WHERE request_id = '"+id+"' ORDER BY seq, time_ns")
		if len(rows) < 2 || rows[0][0] != "pending" || rows[len(rows)-1][0] != end {
			t.Errorf("request %s (%s): rows %v", id, end, rows)
			continue
		}
		for i := 1; i < len(rows); i++ {
			if rows[i][2] == rows[i-1][2] {
				t.Errorf("request %s: two rows share seq %s: %v", id, rows[i][2], rows)
			}
		}
		if end != "expired" {
			n := len(rows)
			if n < 3 || rows[n-2][1] != rows[n-1][1] {
				t.Logf("request %s: the vote and the %s row do not share time_ns here: %v", id, end, rows)
			}
		}
	}
}

// docChecks are the expected answers, one per documented query, in terms
// of what the run did. They check the story, not every row: other
// sessions' rows may be there too, and the events a denial records
// depend on the data path.
func docChecks(r run) map[string]func(*testing.T, [][]string) {
	return map[string]func(*testing.T, [][]string){
		"Top tools per user": func(t *testing.T, rows [][]string) {
			if !hasRow(rows, func(row []string) bool {
				return row[0] == agentUser && row[1] == peers.ToolGetSecretConfig && atoi(t, row[2]) >= 1
			}) {
				t.Errorf("no %s calls for %s: %v", peers.ToolGetSecretConfig, agentUser, rows)
			}
			if !hasRow(rows, func(row []string) bool { return row[0] == agentUser && row[1] == peers.ToolDeleteRepository }) {
				t.Errorf("the approved %s call is not counted: %v", peers.ToolDeleteRepository, rows)
			}
		},
		"Denied calls": func(t *testing.T, rows [][]string) {
			if !hasRow(rows, func(row []string) bool {
				return row[1] == agentUser && row[2] == "0oa-agent" && row[3] == target && row[4] == "get_env" && row[5] != ""
			}) {
				t.Errorf("the get_env denial is missing or has no reason: %v", rows)
			}
		},
		"Approvals and their latency": func(t *testing.T, rows [][]string) {
			got := map[string][]string{}
			for _, row := range rows {
				got[row[0]] = row
			}
			if _, ok := got[r.expired]; ok {
				t.Errorf("the expired request %s is listed as decided", r.expired)
			}
			for id, state := range map[string]string{r.approved: "approved", r.denied: "denied"} {
				row, ok := got[id]
				if !ok {
					t.Errorf("request %s (%s) missing: %v", id, state, rows)
					continue
				}
				if row[1] != agentUser || row[2] != peers.ToolDeleteRepository || row[3] != state || row[4] != approver {
					t.Errorf("request %s: %v, want requester %s, tool %s, state %s, decided by %s", id, row, agentUser, peers.ToolDeleteRepository, state, approver)
				}
				if w := atof(t, row[5]); w < 0.9 || w > 30 {
					t.Errorf("request %s: wait %v s, want the second or so the approver took", id, w)
				}
			}
		},
		"Approval latency summary": func(t *testing.T, rows [][]string) {
			if len(rows) != 1 {
				t.Fatalf("rows %v", rows)
			}
			row := rows[0]
			if row[0] != "2" || row[1] != "1" {
				t.Errorf("decided %s, approved %s; want 2 decided, 1 approved (the third expired)", row[0], row[1])
			}
			if avg, mx := atof(t, row[2]), atof(t, row[3]); avg < 0.9 || mx < avg {
				t.Errorf("avg wait %v s, max %v s: want positive, the second or so the approver took", avg, mx)
			}
		},
		"Masked secrets per server": func(t *testing.T, rows [][]string) {
			if !hasRow(rows, func(row []string) bool { return row[0] == target && row[1] == "aws_access_key" && atoi(t, row[2]) >= 1 }) {
				t.Errorf("the masked AWS key of %s's result is not counted: %v", peers.ToolGetSecretConfig, rows)
			}
		},
		"A session's timeline": func(t *testing.T, rows [][]string) {
			if len(rows) == 0 || rows[0][1] != "request" || rows[0][2] != "initialize" {
				t.Fatalf("the timeline does not start with the initialize request: %v", rows)
			}
			var call, result bool
			for i, row := range rows {
				if i > 0 && row[0] < rows[i-1][0] {
					t.Errorf("timeline out of order at %d", i)
				}
				call = call || row[1] == "request" && row[3] == peers.ToolGetSecretConfig
				result = result || row[1] == "response" && row[3] == peers.ToolGetSecretConfig && atoi(t, row[8]) >= 1
				for _, secret := range peers.FakeSecrets {
					if strings.Contains(row[9], secret) {
						t.Errorf("a %s payload holds a secret (%.6s…)", row[1], secret)
					}
				}
			}
			if !call || !result {
				t.Errorf("the allowed call and its masked result are not both in the timeline")
			}
		},
		"Grants and how they ended": func(t *testing.T, rows [][]string) {
			var mine [][]string
			for _, row := range rows {
				if row[1] == agentUser {
					mine = append(mine, row)
				}
			}
			// One grant, from the approval; the approved call was its use.
			if len(mine) != 1 || mine[0][2] != target || atoi(t, mine[0][3]) < 1 || mine[0][4] != "used" {
				t.Errorf("grants of %s: %v, want one on %s, used at least once, last transition used", agentUser, mine, target)
			}
		},
	}
}

// story is what sessions and replay say about the run, with the ids and
// times left out so two runs compare.
func story(t *testing.T, ctx context.Context, s *harness.Stack, r run) string {
	t.Helper()
	sums, err := s.Gateway.Audit.Sessions(ctx, audit.SessionFilter{Principal: agentUser, Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	found := false
	for _, sum := range sums {
		if sum.SessionID == r.session {
			found = true
			fmt.Fprintf(&b, "session: principal %s client %s target %s, requests %d, denied %d, errors %d, masked %d\n",
				sum.Principal, sum.ClientID, sum.Target, sum.Requests, sum.Denied, sum.Errors, sum.Masked)
		}
	}
	if !found {
		t.Fatalf("sessions does not list %s: %+v", r.session, sums)
	}
	evs, err := s.Gateway.Audit.Replay(ctx, r.session)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs.Events {
		// SSE-carried notifications vary in number between runs; the
		// exchanges do not.
		if e.Direction == audit.DirNotification {
			continue
		}
		fmt.Fprintf(&b, "%s %s %s %s %d masked=%d\n", e.Direction, e.Method, e.Tool, e.Outcome, e.Status, sumMasked(e.Masked))
	}
	return b.String()
}

func sumMasked(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func hasRow(rows [][]string, f func([]string) bool) bool { return slices.ContainsFunc(rows, f) }

func atoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Errorf("not an integer: %q", s)
	}
	return n
}

func atof(t *testing.T, s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Errorf("not a number: %q", s)
	}
	return f
}

// query runs q and returns its rows as text (times in UTC, seconds).
func query(t *testing.T, ctx context.Context, conn driver.Conn, q string) [][]string {
	t.Helper()
	rows, err := conn.Query(ctx, q)
	if err != nil {
		t.Fatalf("query fails on ClickHouse: %v\n%s", err, q)
	}
	defer rows.Close()
	var out [][]string
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
			switch v := reflect.ValueOf(v).Elem().Interface().(type) {
			case time.Time:
				row[i] = v.UTC().Format("2006-01-02 15:04:05")
			default:
				row[i] = fmt.Sprint(v)
			}
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// docQueries reads the SQL examples of docs/analytics.md.
func docQueries(t *testing.T) []clickhouse.DocQuery {
	t.Helper()
	qs, err := clickhouse.DocQueries("../../docs/analytics.md")
	if err != nil {
		t.Fatal(err)
	}
	return qs
}

// approvalRequiredByCLI reports whether err is airlock's approval-required
// error for a gateway without an inbox: it names the request and how to
// approve it, and hands out no link.
func approvalRequiredByCLI(err error) bool {
	return err != nil && strings.Contains(err.Error(), "approval required") && strings.Contains(err.Error(), "airlock approve req_") && !strings.Contains(err.Error(), "http")
}
