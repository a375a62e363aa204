package grants

import (
	"context"
	"strings"
	"sync"
	"time"
)

// EventType names one step in the life of a request or a grant.
type EventType string

// Event types. Every transition emits one; so does every decision and
// every use, and every refused decision (for audit).
const (
	EventRequestOpened    EventType = "request.opened"
	EventRequestJoined    EventType = "request.joined"   // an identical call joined a pending request
	EventRequestDecision  EventType = "request.decision" // one approver's verdict was recorded
	EventDecisionRefused  EventType = "request.decision_refused"
	EventRequestApproved  EventType = "request.approved"
	EventRequestDenied    EventType = "request.denied"
	EventRequestExpired   EventType = "request.expired"
	EventRequestCancelled EventType = "request.cancelled"
	EventGrantIssued      EventType = "grant.issued"
	EventGrantUsed        EventType = "grant.used" // a call was allowed by a time-bound grant
	EventGrantConsumed    EventType = "grant.consumed"
	EventGrantExpired     EventType = "grant.expired"
	EventGrantRevoked     EventType = "grant.revoked"
)

// EventTypes lists every event type, in the order above.
func EventTypes() []EventType {
	return []EventType{
		EventRequestOpened, EventRequestJoined, EventRequestDecision, EventDecisionRefused,
		EventRequestApproved, EventRequestDenied, EventRequestExpired, EventRequestCancelled,
		EventGrantIssued, EventGrantUsed, EventGrantConsumed, EventGrantExpired, EventGrantRevoked,
	}
}

// IsGrant reports whether the event is about a grant (grant.*).
func (t EventType) IsGrant() bool { return strings.HasPrefix(string(t), "grant.") }

// Event is one step. Request is set for request.* events (the request
// after the step) and for grant.issued (the request it came from); Grant
// is set for grant.* events and for request.approved. Events are shared
// between the Auditor, the Notifier and subscribers: treat them as
// read-only.
type Event struct {
	ID   string    `json:"id"`  // unique (evt_…), for receivers to drop duplicates
	Seq  uint64    `json:"seq"` // order within this process
	Type EventType `json:"type"`
	At   time.Time `json:"at"`
	// Actor is the subject that caused the step; "" when airlock did
	// (expiry) or for an agent's call (opened, joined, used: see Request).
	Actor    string    `json:"actor,omitempty"`
	Reason   string    `json:"reason,omitempty"`   // the actor's reason, or why a decision was refused
	Decision *Decision `json:"decision,omitempty"` // request.decision
	Request  *Request  `json:"request,omitempty"`
	Grant    *Grant    `json:"grant,omitempty"`
}

// Auditor records every event. Record is called synchronously, in order,
// after the step is stored, and must not block for long (append to a
// spool). It is called from several goroutines.
type Auditor interface {
	Record(Event)
}

// Notifier passes events on to people (webhooks). Notify must never block:
// queue and return. It is called from several goroutines.
type Notifier interface {
	Notify(Event)
}

type nopAuditor struct{}

func (nopAuditor) Record(Event) {}

type nopNotifier struct{}

func (nopNotifier) Notify(Event) {}

// subscriberBuffer is how many events a subscriber may fall behind before
// it is dropped.
const subscriberBuffer = 256

// hub fans events out to subscribers without ever blocking the sender.
type hub struct {
	mu   sync.Mutex
	subs map[chan Event]struct{}
}

func (h *hub) subscribe(ctx context.Context) <-chan Event {
	ch := make(chan Event, subscriberBuffer)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = make(map[chan Event]struct{})
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	go func() {
		<-ctx.Done()
		h.drop(ch)
	}()
	return ch
}

// drop unregisters and closes ch, once.
func (h *hub) drop(ch chan Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[ch]; ok {
		delete(h.subs, ch)
		close(ch)
	}
}

// publish sends e to every subscriber; one that is full is dropped (its
// channel closed) so it can resubscribe and reload.
func (h *hub) publish(e Event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- e:
		default:
			delete(h.subs, ch)
			close(ch)
		}
	}
}

// closeAll ends every subscription.
func (h *hub) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		delete(h.subs, ch)
		close(ch)
	}
}
