package approvals_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/grants"
)

type sseEvent struct {
	name, id, data string
}

// stream opens GET /airlock/v1/events as who and returns its events.
func stream(t *testing.T, s *approvalstest.Stack, who approvalstest.Person) <-chan sseEvent {
	t.Helper()
	tok, err := s.Token(who)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+"/airlock/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("events = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	out := make(chan sseEvent, 64)
	go func() {
		defer close(out)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if ev.name != "" {
					out <- ev
				}
				ev = sseEvent{}
			case strings.HasPrefix(line, "event: "):
				ev.name = line[len("event: "):]
			case strings.HasPrefix(line, "id: "):
				ev.id = line[len("id: "):]
			case strings.HasPrefix(line, "data: "):
				ev.data = line[len("data: "):]
			}
		}
	}()
	return out
}

func next(t *testing.T, ch <-chan sseEvent) sseEvent {
	t.Helper()
	select {
	case e, ok := <-ch:
		if !ok {
			t.Fatal("the event stream ended")
		}
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s")
	}
	return sseEvent{}
}

func TestEventStream(t *testing.T) {
	s := startStack(t, approvalstest.Options{Heartbeat: 50 * time.Millisecond})
	bobs := stream(t, s, approvalstest.Bob)
	mallorys := stream(t, s, approvalstest.Mallory)
	for _, ch := range []<-chan sseEvent{bobs, mallorys} {
		if e := next(t, ch); e.name != "reload" || e.data != `{"reason":"subscribed"}` {
			t.Fatalf("first event %+v, want reload/subscribed", e)
		}
	}
	req := open(t, s, "delete_repository", `{"repo":"acme/x","key":"AKIAIOSFODNN7EXAMPLE"}`)
	if _, err := s.Grants.Decide(context.Background(), req.ID, approvalstest.Bob.Actor(), grants.VerdictApprove, "ok"); err != nil {
		t.Fatal(err)
	}
	// Mallory's own request: the first event she may see.
	own, err := s.Open(context.Background(), approvalstest.Mallory, "delete_branch", `{"b":1}`, "")
	if err != nil {
		t.Fatal(err)
	}

	var types []string
	for len(types) < 5 {
		e := next(t, bobs)
		types = append(types, e.name)
		var ev grants.Event
		if err := json.Unmarshal([]byte(e.data), &ev); err != nil {
			t.Fatalf("event data %s: %v", e.data, err)
		}
		if string(ev.Type) != e.name || e.id == "" {
			t.Errorf("event %q carries type %q, id %q", e.name, ev.Type, e.id)
		}
		if strings.Contains(e.data, "AKIAIOSFODNN7EXAMPLE") {
			t.Errorf("event %s leaked the key unmasked", e.name)
		}
		if e.name == "request.opened" && ev.Request.ID == req.ID && !strings.Contains(string(ev.Request.Arguments), "[MASKED:aws_access_key]") {
			t.Errorf("opened event arguments %s, want masked", ev.Request.Arguments)
		}
	}
	want := []string{"request.opened", "request.decision", "request.approved", "grant.issued", "request.opened"}
	if diff := cmp.Diff(want, types); diff != "" {
		t.Errorf("bob's events (-want +got):\n%s", diff)
	}
	e := next(t, mallorys)
	var ev grants.Event
	if err := json.Unmarshal([]byte(e.data), &ev); err != nil || e.name != "request.opened" || ev.Request.ID != own.ID {
		t.Errorf("mallory's first event %s %s, want the opening of her own %s", e.name, e.data, own.ID)
	}

	// The service closing ends every stream with an end event.
	if err := s.Grants.Close(); err != nil {
		t.Fatal(err)
	}
	for {
		e := next(t, bobs)
		if e.name == "end" {
			if !strings.Contains(e.data, "shutting down") {
				t.Errorf("end event %s", e.data)
			}
			break
		}
	}
}
