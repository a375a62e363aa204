package approvals

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
)

// SSE event names besides the grants event types (request.opened, …).
const (
	// EventReload tells the client to load its lists again: sent first on
	// every stream (after subscribing, so nothing between the load and the
	// stream is missed) and again whenever the stream fell behind and was
	// resubscribed (events were lost).
	EventReload = "reload"
	// EventEnd is the last event: the session or token expired, or the
	// server is shutting down. Data: {"reason": "…"}.
	EventEnd = "end"
)

// ReloadData is the data of a reload event.
type ReloadData struct {
	Reason string `json:"reason"` // "subscribed" or "fell_behind"
}

// apiEvents: GET /events, until the client leaves or its token expires.
func (h *Handler) apiEvents(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	h.stream(w, r, viewerFrom(p), p.Expiry, false)
}

// ChangeData is the data of the inbox stream's "change" events: what
// changed, not the records (the page fetches its fragment again).
type ChangeData struct {
	Type      grants.EventType `json:"type"`
	RequestID string           `json:"request_id,omitempty"`
	GrantID   string           `json:"grant_id,omitempty"`
}

// sseWriter writes Server-Sent Events and flushes each one.
type sseWriter struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *sseWriter) event(name, id string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return err
	}
	buf := make([]byte, 0, len(b)+len(name)+len(id)+32)
	if id != "" {
		buf = append(append(append(buf, "id: "...), id...), '\n')
	}
	buf = append(append(append(buf, "event: "...), name...), '\n')
	buf = append(append(append(buf, "data: "...), b...), "\n\n"...)
	if _, err := s.w.Write(buf); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *sseWriter) comment(text string) error {
	if _, err := s.w.Write([]byte(": " + text + "\n\n")); err != nil {
		return err
	}
	return s.rc.Flush()
}

// stream sends the events v may see, masked, until the client goes away,
// until (when set), or the Service closes. A subscription the Service
// dropped for falling behind is renewed and the client told to reload.
// With changes, every event is a "change" event carrying ChangeData
// (the inbox's stream); otherwise it is named for its type and carries
// the masked grants.Event (the API's).
func (h *Handler) stream(w http.ResponseWriter, r *http.Request, v viewer, until time.Time, changes bool) {
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if !until.IsZero() {
		var stop context.CancelFunc
		ctx, stop = context.WithDeadline(ctx, until)
		defer stop()
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives any server write timeout
	hd := w.Header()
	hd.Set("Content-Type", "text/event-stream")
	hd.Set("Cache-Control", "no-store")
	hd.Set("X-Accel-Buffering", "no")
	hd.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	out := &sseWriter{w: w, rc: rc}
	if _, err := w.Write([]byte("retry: 3000\n\n")); err != nil {
		return
	}
	sub := h.grants.Subscribe(ctx)
	if out.event(EventReload, "", ReloadData{Reason: "subscribed"}) != nil {
		return
	}
	tick := time.NewTicker(h.heartbeat)
	defer tick.Stop()
	send := func(e grants.Event) error {
		me, visible := h.eventFor(ctx, v, e)
		if !visible {
			return nil
		}
		id := strconv.FormatUint(me.Seq, 10)
		if changes {
			c := ChangeData{Type: me.Type}
			if me.Request != nil {
				c.RequestID = me.Request.ID
			}
			if me.Grant != nil {
				c.GrantID = me.Grant.ID
			}
			return out.event("change", id, c)
		}
		return out.event(string(me.Type), id, me)
	}
	for {
		select {
		case e, ok := <-sub:
			if ok {
				if send(e) != nil {
					return
				}
				continue
			}
			if ctx.Err() != nil {
				h.endStream(out, r.Context(), until)
				return
			}
			sub = h.grants.Subscribe(ctx)
			first, got, alive := peek(sub)
			if !alive {
				_ = out.event(EventEnd, "", map[string]string{"reason": "the server is shutting down"})
				return
			}
			if out.event(EventReload, "", ReloadData{Reason: "fell_behind"}) != nil {
				return
			}
			if got && send(first) != nil {
				return
			}
		case <-tick.C:
			if out.comment("ping") != nil {
				return
			}
		case <-ctx.Done():
			h.endStream(out, r.Context(), until)
			return
		}
	}
}

// endStream says why the stream ends, when the client is still there.
func (h *Handler) endStream(out *sseWriter, client context.Context, until time.Time) {
	if client.Err() != nil {
		return
	}
	reason := "the server is shutting down"
	if !until.IsZero() && !h.now().Before(until) {
		reason = "the credentials expired: sign in again"
	}
	_ = out.event(EventEnd, "", map[string]string{"reason": reason})
}

// peek looks at a fresh subscription without waiting: alive is false when
// it is already closed (the Service is closed); got is true, with e, when
// an event was already there.
func peek(ch <-chan grants.Event) (e grants.Event, got, alive bool) {
	select {
	case e, ok := <-ch:
		return e, ok, ok
	default:
		return grants.Event{}, false, true
	}
}
