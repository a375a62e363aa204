package grants

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// argsHash is the hash a request or grant keeps of these arguments.
func argsHash(t *testing.T, args json.RawMessage) string {
	t.Helper()
	h, err := policy.ArgumentsHash(args)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// recorder is an Auditor and a Notifier that keeps every event.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Record(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) types() []EventType {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]EventType, len(r.events))
	for i, e := range r.events {
		out[i] = e.Type
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}

type fixture struct {
	t   *testing.T
	s   *Service
	clk *clock
	rec *recorder
	ctx context.Context
}

func testConfig() Config {
	c := Defaults()
	c.Dir = "unused"
	return c
}

func newFixture(t *testing.T, store Store, cfg Config) *fixture {
	t.Helper()
	clk := newClock()
	rec := &recorder{}
	s, err := New(store, cfg, Options{Auditor: rec, Now: clk.Now, manualExpiry: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &fixture{t: t, s: s, clk: clk, rec: rec, ctx: context.Background()}
}

var (
	alice  = Principal{Issuer: "https://idp.example", Subject: "alice", User: "alice@example.com", ClientID: "agent-1", Groups: []string{"eng"}}
	bob    = Actor{Subject: "bob", User: "bob@example.com", ClientID: "airlock-cli", Groups: []string{"sre"}}
	carol  = Actor{Subject: "carol", ClientID: "airlock-cli", Groups: []string{"sre", "security"}}
	dave   = Actor{Subject: "dave", ClientID: "airlock-cli", Groups: []string{"oncall"}}
	mallet = Actor{Subject: "mallet", ClientID: "airlock-cli", Groups: []string{"eng"}}
)

func approval(mod func(*policy.Approval)) policy.Approval {
	a := policy.Approval{ApproverGroups: []string{"sre"}, Threshold: 1, SingleUse: true, BreakGlassGroups: []string{"oncall"}}
	if mod != nil {
		mod(&a)
	}
	return a
}

func openParams(tool, args string, a policy.Approval) OpenParams {
	p := OpenParams{Principal: alice, Target: "github", Kind: KindTool, Tool: tool, Approval: a, Reason: "cleanup"}
	if args != "" {
		p.Arguments = json.RawMessage(args)
	}
	return p
}

func (f *fixture) open(p OpenParams) *Request {
	f.t.Helper()
	r, _, err := f.s.Open(f.ctx, p)
	if err != nil {
		f.t.Fatalf("Open: %v", err)
	}
	return r
}

func (f *fixture) decide(id string, a Actor, v Verdict, reason string) *Request {
	f.t.Helper()
	r, err := f.s.Decide(f.ctx, id, a, v, reason)
	if err != nil {
		f.t.Fatalf("Decide(%s, %s, %s): %v", id, a.Subject, v, err)
	}
	return r
}
