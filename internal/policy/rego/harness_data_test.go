package rego

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// TestHarnessPolicyData: the rules the end-to-end tests and the demo run
// with (test/harness/policy_data.yaml, over the shipped decision.rego)
// decide the tools those tests call as they expect.
func TestHarnessPolicyData(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(shippedPolicies, "airlock", "decision.rego"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(shippedPolicies, "..", "test", "harness", "policy_data.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, dir, "decision.rego", string(src))
	write(t, dir, "data.yaml", string(data))
	e := mustLoad(t, dir)
	want := map[string]string{
		"delete_repository":              policy.OutcomeApprovalRequired,
		"drop_table":                     policy.OutcomeApprovalRequired,
		"repoDelete":                     policy.OutcomeApprovalRequired,
		"DELETE_repository":              policy.OutcomeApprovalRequired,
		"get-env":                        policy.OutcomeDeny,
		"GET-ENV":                        policy.OutcomeDeny,
		"ｇｅｔ-env":                        policy.OutcomeDeny,
		"echo":                           policy.OutcomeAllow,
		"search_issues":                  policy.OutcomeAllow,
		"get_secret_config":              policy.OutcomeAllow,
		"count_slowly":                   policy.OutcomeAllow,
		"trigger-long-running-operation": policy.OutcomeAllow,
		"get-structured-content":         policy.OutcomeAllow,
	}
	for tool, outcome := range want {
		for _, target := range []string{"github", "jsonapi", "everything"} {
			d, err := e.Evaluate(context.Background(), &policy.Input{
				Principal: &identity.Principal{Subject: "u"},
				Target:    policy.TargetInput{Name: target},
				MCP:       policy.MessageInput{Method: "tools/call", Kind: "request", Tool: tool},
			})
			if err != nil {
				t.Fatal(err)
			}
			if d.Outcome != outcome {
				t.Errorf("%s on %s: %s (%s), want %s", tool, target, d.Outcome, d.Reason, outcome)
			}
		}
	}
}
