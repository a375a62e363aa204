package extauthz

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// Decisions are counted by target, outcome and method, with label values
// from the configuration and the MCP methods airlock knows only: a
// client's own method name or path never becomes a label value.
func TestDecisionsByTargetOutcomeMethod(t *testing.T) {
	tests := []struct {
		name                    string
		req                     *Request
		target, outcome, method string
	}{
		{"allowed tool call", post("alice", call(1, "echo")), "demo", "allow", "tools/call"},
		{"denied tool call", post("alice", call(2, "nuke")), "demo", "deny", "tools/call"},
		{"ping", post("alice", ping), "demo", "allow", "ping"},
		{"batch", post("alice", batch(call(3, "echo"), ping)), "demo", "allow", "batch"},
		{"unknown method", post("alice", `{"jsonrpc":"2.0","id":4,"method":"x-evil/`+strings.Repeat("a", 40)+`"}`), "demo", "", "other"},
		{"no token: refused before the body", post("", call(5, "echo")), "demo", "unauthenticated", "none"},
		{"no target", func() *Request {
			r := post("alice", call(6, "echo"))
			r.Path, r.ContextExtensions = "/elsewhere/"+strings.Repeat("b", 20), nil
			return r
		}(), "none", "", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCore(t)
			reg := prometheus.NewRegistry()
			m := NewMetrics(reg)
			c.a.metrics = m
			res := c.a.Check(context.Background(), tt.req)
			outcome := tt.outcome
			if outcome == "" { // whatever airlock answered: the point is the other labels
				outcome = string(res.Outcome)
			} else if string(res.Outcome) != outcome {
				t.Fatalf("outcome %s, want %s", res.Outcome, outcome)
			}
			if got := testutil.ToFloat64(m.decisions.WithLabelValues(tt.target, outcome, tt.method)); got != 1 {
				t.Errorf("airlock_authz_decisions_total{target=%s,outcome=%s,method=%s} = %v, want 1", tt.target, outcome, tt.method, got)
			}
			if n := testutil.CollectAndCount(m.decisions); n != 1 {
				t.Errorf("%d decision series, want 1", n)
			}
			if problems, err := testutil.GatherAndLint(reg); err != nil || len(problems) > 0 {
				t.Errorf("promlint: %v %v", problems, err)
			}
		})
	}
}

// The method label's values are the methods internal/mcp interns (its
// internMethod): a method airlock learns to parse is a label value too.
func TestMethodLabelsFollowMCP(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "internal", "mcp", "message.go"))
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "func internMethod(")
	if !ok {
		t.Fatal("internal/mcp has no internMethod")
	}
	body, _, _ = strings.Cut(body, "\n}\n")
	want := map[string]bool{}
	for _, m := range regexp.MustCompile(`return "([^"]+)"`).FindAllStringSubmatch(body, -1) {
		want[m[1]] = true
	}
	if len(want) == 0 {
		t.Fatal("no methods found in internMethod")
	}
	for m := range want {
		if !mcpMethods[m] {
			t.Errorf("%s is parsed by internal/mcp but not a method label value (mcpMethods)", m)
		}
	}
	for m := range mcpMethods {
		if !want[m] {
			t.Errorf("%s is a method label value but internal/mcp does not know it", m)
		}
	}
}
