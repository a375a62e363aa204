package audit

import (
	"bytes"
	"encoding/json"
	"math"
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

// TestAppendEventJSONMatchesMarshal: the embedded store's hand-written
// encoding of an Event is byte for byte json.Marshal's, masks (sorted
// keys, omitted when empty), floats and the truncated flag included.
func TestAppendEventJSONMatchesMarshal(t *testing.T) {
	times := []time.Time{
		time.Date(2026, 12, 8, 0, 10, 2, 123456789, time.UTC),
		time.Date(2026, 12, 8, 0, 10, 2, 0, time.FixedZone("x", -3600)),
		{},
	}
	latencies := []float64{0, 41.25, 1e-7, 1e21, 123456789.125, -0.5, 1e-6, 5e-324, math.MaxFloat64}
	masks := []map[string]int{nil, {}, {"aws_access_key": 2, "field:password": 1, "<b>": 3}, {"x": 0}}
	for i, s := range jsonStringSeeds {
		e := &Event{
			EventID: s, Time: times[i%len(times)], SessionID: s, Principal: s, ClientID: s + "c", Issuer: s,
			Target: s, Direction: Direction(s), Method: s, Tool: s, JSONRPCID: s, DecisionID: s, GrantID: s,
			Status: 200 - 300*(i%2), Outcome: s, LatencyMS: latencies[i%len(latencies)], Masked: masks[i%len(masks)],
			Payload: `{"jsonrpc":"2.0","id":7,"result":{"text":"` + s + `"}}`, Truncated: i%2 == 0, Bytes: int64(i) << 40,
		}
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, ok := appendEventJSON(nil, e)
		if !ok || !bytes.Equal(got, want) {
			t.Errorf("seed %d:\n got %s\nwant %s", i, got, want)
		}
	}
	for _, e := range []*Event{
		{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)},
		{LatencyMS: math.NaN()},
		{LatencyMS: math.Inf(1)},
	} {
		if _, ok := appendEventJSON(nil, e); ok {
			t.Errorf("%+v: want a fallback to json.Marshal (which refuses it)", e)
		}
	}
}

func FuzzAppendJSONFloat(f *testing.F) {
	for _, x := range []float64{0, 1, -1, 41.25, 1e-7, 1e-6, 1e20, 1e21, 1e-300, 123.456e-9} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		want, err := json.Marshal(x)
		got, ok := appendJSONFloat(nil, x)
		if ok != (err == nil) || (ok && !bytes.Equal(got, want)) {
			t.Errorf("%v: got %s (%v), want %s (%v)", x, got, ok, want, err)
		}
	})
}
