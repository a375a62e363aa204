package audit

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// sessionEvents makes n events of one session with increasing times.
func sessionEvents(session string, n int, start time.Time) []*Event {
	dirs := []Direction{DirRequest, DirResponse, DirNotification, DirSSEEvent, DirError}
	var out []*Event
	for i := range n {
		e := &Event{
			Time:      start.Add(time.Duration(i) * time.Millisecond),
			SessionID: session,
			Principal: "alice@example.com",
			ClientID:  "agent-1",
			Issuer:    "https://issuer.example",
			Target:    "github",
			Direction: dirs[i%len(dirs)],
			Method:    "tools/call",
			Tool:      "search_issues",
			JSONRPCID: fmt.Sprint(i / 2),
			Status:    200,
			Outcome:   "allow",
			Payload:   fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"search_issues","arguments":{"q":"bug %d"}}}`, i/2, i),
		}
		if i%3 == 0 {
			e.Masked = map[string]int{"aws_access_key": 1, "field:password": i%5 + 1}
		}
		out = append(out, e)
	}
	return out
}

func nopLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
