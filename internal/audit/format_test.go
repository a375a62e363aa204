package audit

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestWriteSessions: the table has HELD and APPROVED since sessions count
// decisions (calls held for approval, and those approved in time).
func TestWriteSessions(t *testing.T) {
	var b bytes.Buffer
	err := WriteSessions(&b, []SessionSummary{
		{SessionID: "sess-42", Principal: "alice", ClientID: "agent-a", Target: "github", Start: t0, End: t0.Add(1500 * time.Millisecond),
			Events: 6, Requests: 3, Denied: 1, Held: 2, Approved: 1, Errors: 1, Masked: 3},
		{SessionID: "s2", Start: t0, End: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"SESSION  PRINCIPAL  CLIENT   TARGET  START (UTC)          DURATION  EVENTS  REQUESTS  DENIED  HELD  APPROVED  ERRORS  MASKED",
		"sess-42  alice      agent-a  github  2026-03-14 15:09:26  1.5s      6       3         1       2     1         1       3",
		"s2       -          -        -       2026-03-14 15:09:26  0s        0       0         0       0     0         0       0",
		""}, "\n")
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
}

// TestWriteReplayMessages: messages print as before the trail had
// decisions (direction, call, id, outcome, latency, masks), with payloads
// under them on request.
func TestWriteReplayMessages(t *testing.T) {
	tr := &Trail{SessionID: "sess-42", Events: []Event{
		{Time: t0, SessionID: "sess-42", Principal: "alice", ClientID: "agent-a", Target: "github", Direction: DirRequest,
			Method: "tools/call", Tool: "search", JSONRPCID: "1", Outcome: "allow", Status: 200, Payload: `{"id":1}`},
		{Time: t0.Add(41 * time.Millisecond), Direction: DirResponse, Method: "tools/call", JSONRPCID: "1", Outcome: "allow",
			Status: 200, LatencyMS: 41, Masked: map[string]int{"field:password": 2, "aws_access_key": 1}, Truncated: true, Bytes: 90000,
			Payload: `{"id":1,"result":"[MASKED]"}`},
		{Time: t0.Add(time.Second), Direction: DirNotification, Method: "notifications/progress"},
	}}
	tests := []struct {
		name string
		opts ReplayOptions
		want string
	}{
		{"summary", ReplayOptions{}, strings.Join([]string{
			"session sess-42  principal alice  client agent-a  target github  started 2026-03-14T15:09:26.535897932Z",
			"+0.000s  request       tools/call search       id=1  allow 200",
			"+0.041s  response      tools/call              id=1  allow 200  41.0ms  masked aws_access_key=1 field:password=2  (payload cut, 90000 bytes)",
			"+1.000s  notification  notifications/progress        -",
			""}, "\n")},
		{"payloads", ReplayOptions{Payloads: true}, strings.Join([]string{
			"session sess-42  principal alice  client agent-a  target github  started 2026-03-14T15:09:26.535897932Z",
			"+0.000s  request  tools/call search  id=1  allow 200",
			`    {"id":1}`,
			"+0.041s  response  tools/call  id=1  allow 200  41.0ms  masked aws_access_key=1 field:password=2  (payload cut, 90000 bytes)",
			`    {"id":1,"result":"[MASKED]"}`,
			"+1.000s  notification  notifications/progress    -",
			""}, "\n")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := WriteReplay(&b, Story(tr, ReplayFilter{}), tt.opts); err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(tt.want, b.String()); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}
