package audit

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestTraceIDRoundTrip: a decision's TraceID survives the spool (v4), and
// a v3 decision, written before the field, decodes with TraceID "".
func TestTraceIDRoundTrip(t *testing.T) {
	d := &Decision{DecisionID: "d1", Target: "docs", Outcome: "allow", Status: 200, LatencyUS: 12,
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736"}
	enc := appendRecord(nil, d)
	for _, tc := range []struct {
		name    string
		payload []byte
		want    string
	}{
		{"v4", enc, d.TraceID},
		// v3: the same fields without the trailing TraceID.
		{"v3", append([]byte{versionFlag | 3}, enc[1:len(enc)-1-len(d.TraceID)]...), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := decodeRecord(tc.payload, false, nil)
			if err != nil {
				t.Fatal(err)
			}
			want := *d
			want.TraceID = tc.want
			if diff := cmp.Diff(&want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}
