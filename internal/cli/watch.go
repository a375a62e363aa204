package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/grants"
)

var cmdWatch = &command{
	summary: "follow requests and grants as they change (until interrupted)",
	usage:   "",
	args:    0,
	run:     watch,
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	Name, ID, Data string
}

// maxEventBytes bounds one event the CLI accepts.
const maxEventBytes = 4 << 20

// readEvents parses a text/event-stream and calls fn for each event
// (comments and retry fields are skipped; multi-line data is joined with
// newlines, as the SSE spec says). It stops at the end of the stream, at
// an error, or when fn returns false.
func readEvents(r io.Reader, fn func(sseEvent) bool) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxEventBytes)
	var ev sseEvent
	var data []string
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if len(data) > 0 || ev.Name != "" {
				ev.Data = strings.Join(data, "\n")
				if ev.Name == "" {
					ev.Name = "message"
				}
				if !fn(ev) {
					return nil
				}
			}
			ev, data = sseEvent{}, nil
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.Name = value
		case "id":
			ev.ID = value
		case "data":
			data = append(data, value)
		}
	}
	return sc.Err()
}

// watch prints each event: a line for people, or one JSON object per line
// ({"event", "id", "data"}) with --output json.
func watch(ctx context.Context, c *cmdContext) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.api.base+approvals.APIPrefix+"events", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.api.token)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.api.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("cannot reach the airlock API at %s: %w", c.api.base, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return apiError(resp, raw)
	}
	var ended string
	err = readEvents(resp.Body, func(e sseEvent) bool {
		if c.output == "json" {
			line, _ := json.Marshal(map[string]any{"event": e.Name, "id": e.ID, "data": json.RawMessage(orNull(e.Data))})
			fmt.Fprintf(c.env.Stdout, "%s\n", line)
		} else {
			fmt.Fprintln(c.env.Stdout, describe(e, c.env.Now()))
		}
		if e.Name == approvals.EventEnd {
			ended = e.Data
			return false
		}
		return true
	})
	if ctx.Err() != nil {
		return nil // interrupted: a normal end
	}
	if err != nil {
		return fmt.Errorf("the event stream broke: %w", err)
	}
	if ended == "" {
		return errors.New("the server closed the event stream")
	}
	return nil
}

func orNull(s string) string {
	if json.Valid([]byte(s)) {
		return s
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// describe is one line about an event for people.
func describe(e sseEvent, now time.Time) string {
	ts := now.UTC().Format("15:04:05")
	switch e.Name {
	case approvals.EventReload:
		var d approvals.ReloadData
		_ = json.Unmarshal([]byte(e.Data), &d)
		if d.Reason == "subscribed" {
			return ts + " watching (list with `airlock requests` for what is already pending)"
		}
		return ts + " events were missed (" + clean(d.Reason, 40) + "): list again with `airlock requests`"
	case approvals.EventEnd:
		var d map[string]string
		_ = json.Unmarshal([]byte(e.Data), &d)
		return ts + " stream ended: " + clean(d["reason"], 200)
	}
	var ev grants.Event
	if err := json.Unmarshal([]byte(e.Data), &ev); err != nil {
		return ts + " " + clean(e.Name, 40) + " (unreadable data)"
	}
	ts = ev.At.UTC().Format("15:04:05")
	actor := ""
	if ev.Actor != "" {
		actor = " by " + clean(ev.Actor, 60)
	}
	switch {
	case ev.Request != nil:
		r := ev.Request
		line := fmt.Sprintf("%s %s %s: %s on %s, asked by %s%s", ts, clean(string(ev.Type), 40), r.ID, clean(r.Name(), 60), clean(r.Target, 30), clean(r.Principal.Subject, 60), actor)
		if ev.Reason != "" {
			line += ": " + clean(ev.Reason, 120)
		}
		return line
	case ev.Grant != nil:
		g := ev.Grant
		return fmt.Sprintf("%s %s %s: %s on %s for %s%s", ts, clean(string(ev.Type), 40), g.ID, clean(g.Name(), 60), clean(g.Target, 30), clean(g.Subject, 60), actor)
	}
	return ts + " " + clean(string(ev.Type), 40)
}
