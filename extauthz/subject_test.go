package extauthz

import (
	"context"
	"testing"
)

// TestSubjectInMetadataAndDecision: what ext_authz hands ext_proc as the
// call's "tool" and what it records in the decisions table name what the
// call acts on, whatever its kind — for resources/read the resource URI —
// by internal/mcp's one classifier.
func TestSubjectInMetadataAndDecision(t *testing.T) {
	for _, tc := range []struct{ body, subject string }{
		{call(1, "read"), "read"},
		{`{"jsonrpc":"2.0","id":2,"method":"resources/read","params":{"uri":"file:///srv/q3.md"}}`, "file:///srv/q3.md"},
		{`{"jsonrpc":"2.0","id":3,"method":"prompts/get","params":{"name":"summarize"}}`, "summarize"},
	} {
		c := newCore(t)
		r := c.a.Check(context.Background(), post("alice", tc.body))
		if r.Outcome != OutcomeAllow {
			t.Fatalf("%s: outcome %s: %s", tc.body, r.Outcome, r.Body)
		}
		if got := r.Metadata.Tool; got != tc.subject {
			t.Errorf("%s: metadata tool %v, want %q", tc.body, got, tc.subject)
		}
		ds := c.audit.take()
		if len(ds) != 1 || ds[0].Tool != tc.subject {
			t.Errorf("%s: decisions %+v, want one with tool %q", tc.body, ds, tc.subject)
		}
	}
}
