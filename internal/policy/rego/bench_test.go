package rego

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// BenchmarkEvaluate is the hot path: the shipped default policy deciding a
// realistic tools/call (token claims, headers, arguments, three grants),
// answered from the decision cache (the common case: agents repeat calls)
// and evaluated by OPA (a cache miss).
func BenchmarkEvaluate(b *testing.B) {
	for _, cached := range []bool{true, false} {
		name := "cached"
		if !cached {
			name = "uncached"
		}
		b.Run(name, func(b *testing.B) { benchmarkEvaluate(b, cached) })
	}
}

func benchmarkEvaluate(b *testing.B, cached bool) {
	e, err := Load(shippedPolicies, "")
	if err != nil {
		b.Fatal(err)
	}
	if !cached {
		e.cache = nil
	}
	now := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name    string
		tool    string
		outcome string
		grant   string
	}{
		{"allowed_tool", "get_issue", policy.OutcomeAllow, ""},
		{"granted_high_risk_tool", "delete_issue", policy.OutcomeAllow, "g-1"},
		{"held_high_risk_tool", "drop_table", policy.OutcomeApprovalRequired, ""},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			in := sampleInput(now)
			in.MCP.Tool = c.tool
			ctx := context.Background()
			d, err := e.Evaluate(ctx, in)
			if err != nil {
				b.Fatal(err)
			}
			if d.Outcome != c.outcome || d.Grant != c.grant {
				b.Fatalf("decision %+v, want %s with grant %q", d, c.outcome, c.grant)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Evaluate(ctx, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkInputValue compares building the input AST directly (what
// Evaluate does) with the JSON round trip rego.EvalInput would do.
func BenchmarkInputValue(b *testing.B) {
	now := time.Date(2026, 1, 7, 12, 0, 0, 0, time.UTC)
	in := sampleInput(now)
	b.Run("direct", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := InputValue(in, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json_round_trip", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			bs, err := json.Marshal(jsonInput(in, now))
			if err != nil {
				b.Fatal(err)
			}
			var x any
			if err := util.UnmarshalJSON(bs, &x); err != nil {
				b.Fatal(err)
			}
			if _, err := ast.InterfaceToValue(x); err != nil {
				b.Fatal(err)
			}
		}
	})
}
