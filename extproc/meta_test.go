package extproc

import (
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// TestStreamMetaMerge: metadata on later messages is merged over the
// earlier one's, which is read in place and never written to.
func TestStreamMetaMerge(t *testing.T) {
	for _, tc := range []struct {
		name       string
		msgs       []map[string]any
		target     string
		decisionID string
	}{
		{"one message", []map[string]any{{"target": "github", "decision_id": "d-1"}}, "github", "d-1"},
		{"none", nil, "", ""},
		{"second overrides", []map[string]any{{"target": "github", "decision_id": "d-1"}, {"target": "jira"}}, "jira", "d-1"},
		{"three", []map[string]any{{"target": "a"}, {"decision_id": "d-2"}, {"target": "c"}}, "c", "d-2"},
		{"empty first", []map[string]any{{}, {"target": "b"}}, "b", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newStreamMeta()
			var mds []*corev3.Metadata
			for _, f := range tc.msgs {
				md := authzMeta(f)
				mds = append(mds, md)
				m.merge(md)
			}
			m.merge(nil)
			if m.d.Target != tc.target || m.d.DecisionID != tc.decisionID {
				t.Errorf("target %q decision %q, want %q %q", m.d.Target, m.d.DecisionID, tc.target, tc.decisionID)
			}
			for i, md := range mds {
				if got, want := len(md.GetFilterMetadata()[wire.AuthzNamespace].GetFields()), len(tc.msgs[i]); got != want {
					t.Errorf("message %d's metadata changed: %d fields, had %d", i, got, want)
				}
			}
		})
	}
}
