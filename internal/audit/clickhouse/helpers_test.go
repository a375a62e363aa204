package clickhouse

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	chtest "github.com/airlock-mcp/airlock/test/clickhouse"

	"github.com/airlock-mcp/airlock/internal/audit"
)

var (
	sharedOnce sync.Once
	shared     *chtest.Server
	sharedErr  error
	dbSeq      atomic.Int64
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.Close()
	}
	if cluster != nil {
		cluster.Close()
	}
	os.Exit(code)
}

// sharedServer is one ClickHouse for the package's tests; each test uses
// its own database.
func sharedServer(t testing.TB) *chtest.Server {
	t.Helper()
	sharedOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared, sharedErr = chtest.Start(ctx, chtest.Options{})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return shared
}

var nonIdent = regexp.MustCompile(`[^A-Za-z0-9_]`)

// testDB returns a fresh database name for t.
func testDB(t testing.TB) string {
	name := nonIdent.ReplaceAllString(t.Name(), "_")
	if len(name) > 40 {
		name = name[:40]
	}
	return fmt.Sprintf("t%d_%s", dbSeq.Add(1), strings.ToLower(name))
}

// testConfig is a valid configuration for addr (ClickHouse) with fast
// flushing and temporary directories.
func testConfig(t testing.TB, addr, db string) audit.Config {
	c := audit.Defaults()
	c.ClickHouse.Addr = addr
	c.ClickHouse.Database = db
	c.ClickHouse.FlushInterval = 50 * time.Millisecond
	c.ClickHouse.QueryTimeout = 20 * time.Second
	c.ClickHouse.DialTimeout = 2 * time.Second
	c.Spool.Dir = t.TempDir()
	c.Spool.FsyncInterval = 10 * time.Millisecond
	c.Embedded.Dir = t.TempDir()
	return c
}

// connect opens a query connection to addr for assertions.
func connect(t testing.TB, addr string) driver.Conn {
	t.Helper()
	conn, err := chgo.Open(&chgo.Options{Addr: []string{addr}, DialTimeout: 2 * time.Second, ReadTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func count(t testing.TB, conn driver.Conn, q string) uint64 {
	t.Helper()
	var n uint64
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func startPipeline(t testing.TB, cfg audit.Config, opts audit.Options) *audit.Pipeline {
	t.Helper()
	p, err := OpenPipeline(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Bounded: with ClickHouse down, Close would ship until ctx ends.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		p.Close(ctx)
	})
	return p
}

// sessionEvents makes n events of one session with increasing times.
func sessionEvents(session string, n int, start time.Time) []*audit.Event {
	dirs := []audit.Direction{audit.DirRequest, audit.DirResponse, audit.DirNotification, audit.DirSSEEvent, audit.DirError}
	var out []*audit.Event
	for i := range n {
		e := &audit.Event{
			Time:      start.Add(time.Duration(i) * time.Millisecond),
			SessionID: session,
			Principal: "alice@example.com",
			ClientID:  "agent-1",
			Issuer:    "https://issuer.example",
			Target:    "github",
			Direction: dirs[i%len(dirs)],
			Method:    "tools/call",
			Tool:      "search_issues",
			JSONRPCID: fmt.Sprint(i / 2),
			Status:    200,
			Outcome:   "allow",
			Payload:   fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"search_issues","arguments":{"q":"bug %d"}}}`, i/2, i),
		}
		if i%3 == 0 {
			e.Masked = map[string]int{"aws_access_key": 1, "field:password": i%5 + 1}
		}
		out = append(out, e)
	}
	return out
}

func nopLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

var t0 = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.UTC)

// sampleRecords has one row of each kind with every field set, and edge
// cases: empty strings, zero times, unicode, large values.
func sampleRecords() []audit.Record {
	return []audit.Record{
		&audit.Event{
			EventID: "0b6f3c52-4bd5-4a4e-9a6e-0d0c3f1a2b3c", Time: t0, SessionID: "sess-1", Principal: "alice@example.com",
			ClientID: "agent-1", Issuer: "https://issuer.example", Target: "github", Direction: audit.DirRequest,
			Method: "tools/call", Tool: "search_issues", JSONRPCID: `"abc"`, DecisionID: "dec-1", GrantID: "grant-1",
			Status: 200, Outcome: "allow", LatencyMS: 12.5, Masked: map[string]int{"aws_access_key": 2, "field:password": 1},
			Payload: `{"jsonrpc":"2.0","id":"abc","method":"tools/call"}`, Truncated: true, Bytes: 1 << 40,
		},
		&audit.Event{EventID: "e2", Time: t0, Direction: audit.DirSSEEvent, Payload: "données ✓"},
		&audit.Decision{
			DecisionID: "dec-1", Time: t0, SessionID: "sess-1", Principal: "alice@example.com", ClientID: "agent-1",
			Issuer: "https://issuer.example", Target: "github", Method: "tools/call", Tool: "delete_repo", JSONRPCID: "7",
			Outcome: "deny", Reason: "tool delete_repo needs approval", PolicyVersion: "sha256:abc", GrantID: "",
			RequestID: "req-1", Status: 403, LatencyUS: 1234, TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
		},
		&audit.RequestEvent{
			EventID: "r1", Time: t0, RequestID: "req-1", FromState: "pending", ToState: "approved", Actor: "bob@example.com",
			Principal: "alice@example.com", ClientID: "agent-1", Target: "github", Method: "tools/call", Tool: "delete_repo",
			Reason: "cleanup", DecisionID: "dec-1", GrantID: "grant-1", Seq: 10,
		},
		&audit.GrantEvent{
			EventID: "g1", Time: t0, GrantID: "grant-1", Seq: 1 << 32, Transition: "issued", Actor: "bob@example.com", Principal: "alice@example.com",
			ClientID: "agent-1", Target: "github", Tools: []string{"delete_repo", "create_repo"}, RequestID: "req-1",
			ExpiresAt: t0.Add(time.Hour), UsesLeft: -1, Reason: "approved",
		},
		&audit.GrantEvent{EventID: "g2", Time: t0, GrantID: "grant-1", Seq: 2 << 32, Transition: "expired"},
	}
}

// cutUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence,
// as audit cuts a payload to payload_max_bytes.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// normalizeEvent is how a recorded event reads back from either store:
// its time in UTC, no empty mask map.
func normalizeEvent(e audit.Event) audit.Event {
	e.Time = e.Time.UTC()
	if len(e.Masked) == 0 {
		e.Masked = nil
	}
	return e
}
