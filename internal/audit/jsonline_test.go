package audit

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"
)

var jsonStringSeeds = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>",
	"ctl \x00\x01\x1f\x7f \b\f\n\r\t", "utf8 é 日本 😀", "bad \xff\xfe utf8 \xc3",
	"sep \u2028 \u2029 end", "\xe2\x80", "tool/name_with-dash.1",
}

// TestAppendDecisionJSONMatchesMarshal: the embedded store's hand-written
// encoding of a Decision is byte for byte json.Marshal's.
func TestAppendDecisionJSONMatchesMarshal(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 12, 8, 0, 10, 2, 123456789, time.UTC),
		time.Date(2026, 12, 8, 0, 10, 2, 0, time.FixedZone("x", 3600+1800)),
		{},
	}
	for i, s := range jsonStringSeeds {
		d := &Decision{
			DecisionID: s, Time: times[i%len(times)], SessionID: s + "1", Principal: s,
			ClientID: "c", Issuer: s, Target: "github", Method: "tools/call", Tool: s,
			JSONRPCID: s, Outcome: "allow", Reason: s, PolicyVersion: "v" + s, GrantID: s,
			RequestID: s, Status: 200 - 300*(i%2), LatencyUS: int64(i) * 12345, TraceID: s,
		}
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendDecisionJSON(nil, d)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("seed %d:\n got %s\nwant %s", i, got, want)
		}
	}
	if _, ok := appendDecisionJSON(nil, &Decision{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}); ok {
		t.Error("year 10000: want a fallback to json.Marshal")
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range jsonStringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("%q:\n got %s\nwant %s", s, got, want)
		}
	})
}
