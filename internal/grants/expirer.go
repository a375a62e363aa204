package grants

import (
	"container/heap"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// What a deadline is for.
type timerKind uint8

const (
	timerRequest      timerKind = iota // a pending request expires
	timerGrant                         // an active grant expires
	timerPruneRequest                  // an ended request leaves the store
	timerPruneGrant                    // an ended grant leaves the store
)

type deadline struct {
	at   time.Time
	id   string
	kind timerKind
}

type deadlineHeap []deadline

func (h deadlineHeap) Len() int           { return len(h) }
func (h deadlineHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h deadlineHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *deadlineHeap) Push(x any)        { *h = append(*h, x.(deadline)) }
func (h *deadlineHeap) Pop() any {
	old := *h
	d := old[len(old)-1]
	*h = old[:len(old)-1]
	return d
}

// timerQueue holds every deadline in a min-heap; one timer waits for the
// earliest. An entry that no longer applies (the request was decided, the
// grant revoked) is simply skipped when it comes due.
type timerQueue struct {
	mu   sync.Mutex
	h    deadlineHeap
	wake chan struct{} // a new earliest deadline
}

func (q *timerQueue) init() { q.wake = make(chan struct{}, 1) }

func (q *timerQueue) add(at time.Time, id string, kind timerKind) {
	q.mu.Lock()
	heap.Push(&q.h, deadline{at: at, id: id, kind: kind})
	first := q.h[0].id == id && q.h[0].at.Equal(at)
	q.mu.Unlock()
	if first {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// next is the earliest deadline, if any.
func (q *timerQueue) next() (time.Time, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.h) == 0 {
		return time.Time{}, false
	}
	return q.h[0].at, true
}

// due pops every deadline at or before now, once per record and kind.
func (q *timerQueue) due(now time.Time) []deadline {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []deadline
	seen := make(map[deadline]bool)
	for len(q.h) > 0 && !q.h[0].at.After(now) {
		d := heap.Pop(&q.h).(deadline)
		key := deadline{id: d.id, kind: d.kind}
		if !seen[key] {
			seen[key] = true
			out = append(out, d)
		}
	}
	return out
}

// retryDelay is how long a sweep whose write failed waits to try again.
const retryDelay = time.Second

// expireLoop waits for the earliest deadline and sweeps; it never polls
// entries one by one.
func (s *Service) expireLoop() {
	defer close(s.loopDone)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		if at, ok := s.timers.next(); ok {
			t.Reset(max(at.Sub(s.now()), 0))
		} else {
			t.Stop()
		}
		select {
		case <-s.closed:
			return
		case <-s.timers.wake:
		case <-t.C:
			s.sweep()
		}
	}
}

// sweep expires and prunes whatever is due now, in one write.
func (s *Service) sweep() {
	now := s.now()
	due := s.timers.due(now)
	if len(due) == 0 {
		return
	}
	err := s.update(context.Background(), func(tx *txn) error {
		tx.now = now
		for _, d := range due {
			switch d.kind {
			case timerRequest:
				if r := s.request(d.id); r != nil && r.State == RequestPending && !now.Before(r.ExpiresAt) {
					s.expireRequest(tx, r)
				}
			case timerGrant:
				if g, uses := s.grant(d.id); g != nil && g.State == GrantActive && !now.Before(g.Expiry) {
					s.expireGrant(tx, g, uses)
				}
			case timerPruneRequest:
				s.pruneRequest(tx, d.id, now)
			case timerPruneGrant:
				s.pruneGrant(tx, d.id, now)
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, ErrClosed) {
		s.log.Error("grants: expiring records failed; retrying", "error", err, "retry_in", retryDelay)
		for _, d := range due {
			s.timers.add(now.Add(retryDelay), d.id, d.kind)
		}
	}
}

// expireRequest stages the expiry of a pending request.
func (s *Service) expireRequest(tx *txn, r *Request) {
	n := r.Clone()
	n.State = RequestExpired
	n.EndedAt = tx.now
	n.EndReason = "no decision before " + r.ExpiresAt.UTC().Format(time.RFC3339)
	if a := r.Approvals(); a > 0 {
		n.EndReason += " (approvals: " + itoa(a) + " of " + itoa(r.Terms.Threshold) + ")"
	}
	tx.putRequest(n)
	tx.emit(Event{Type: EventRequestExpired, Request: n, Reason: n.EndReason})
}

// expireGrant stages the expiry of an active grant.
func (s *Service) expireGrant(tx *txn, g *Grant, uses *atomic.Int64) {
	n := g.Clone()
	if uses != nil {
		n.Uses = int(uses.Load())
	}
	n.State = GrantExpired
	n.EndedAt = tx.now
	n.EndReason = "expired at " + g.Expiry.UTC().Format(time.RFC3339)
	tx.putGrant(n)
	tx.emit(Event{Type: EventGrantExpired, Grant: n, Reason: n.EndReason})
}

// pruneRequest drops an ended request past retention, unless its grant is
// still kept (the grant's prune takes the request with it).
func (s *Service) pruneRequest(tx *txn, id string, now time.Time) {
	r := s.request(id)
	if r == nil || r.State == RequestPending || now.Before(r.EndedAt.Add(s.cfg.Retention)) {
		return
	}
	if r.GrantID != "" {
		if g, _ := s.grant(r.GrantID); g != nil {
			return
		}
	}
	tx.dropReqs = append(tx.dropReqs, id)
}

// pruneGrant drops an ended grant past retention, and its request.
func (s *Service) pruneGrant(tx *txn, id string, now time.Time) {
	g, _ := s.grant(id)
	if g == nil || g.State == GrantActive || now.Before(g.EndedAt.Add(s.cfg.Retention)) {
		return
	}
	tx.dropGrants = append(tx.dropGrants, id)
	if r := s.request(g.RequestID); r != nil && r.State != RequestPending && !now.Before(r.EndedAt.Add(s.cfg.Retention)) {
		tx.dropReqs = append(tx.dropReqs, r.ID)
	}
}
