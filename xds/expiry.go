package xds

import (
	"container/heap"
	"context"
	"time"
)

// expiryHeap orders grants by expiry. Entries are not removed when a grant
// is revoked or re-issued; a popped entry counts only if the grant still
// has that expiry.
type expiryHeap []expiryEntry

type expiryEntry struct {
	at time.Time
	id string
}

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h expiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *expiryHeap) Push(x any)        { *h = append(*h, x.(expiryEntry)) }
func (h *expiryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	*h = old[:len(old)-1]
	return e
}

func (h *expiryHeap) add(id string, at time.Time) { heap.Push(h, expiryEntry{at: at, id: id}) }

// addExpiry records a grant's expiry. Stale entries (revoked or re-issued
// grants) are dropped once they outnumber the live ones, so the heap stays
// proportional to the live grants.
func (s *Server) addExpiry(id string, at time.Time) {
	s.expiries.add(id, at)
	if len(s.expiries) <= 2*len(s.grants)+64 {
		return
	}
	h := make(expiryHeap, 0, len(s.grants))
	for gid, g := range s.grants {
		h = append(h, expiryEntry{at: g.Expiry, id: gid})
	}
	heap.Init(&h)
	s.expiries = h
}

// wakeExpiry makes the expiry loop look at the heap again.
func (s *Server) wakeExpiry() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// expireLoop withdraws each grant's route when its expiry passes, so a
// grant ends in Envoy even if nobody calls RemoveGrant.
func (s *Server) expireLoop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := s.expireDue()
		wait := time.Hour
		if !next.IsZero() {
			wait = max(next.Sub(s.now()), 0)
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
		}
	}
}

// expireDue removes the routes of grants whose expiry has passed and
// returns the next expiry, or zero when there is none.
func (s *Server) expireDue() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var due []string
	for s.expiries.Len() > 0 {
		e := s.expiries[0]
		g, ok := s.grants[e.id]
		if ok && !g.Expiry.Equal(e.at) {
			ok = false // re-issued with another expiry; that entry is in the heap too
		}
		if !ok {
			heap.Pop(&s.expiries)
			continue
		}
		if e.at.After(now) {
			break
		}
		heap.Pop(&s.expiries)
		due = append(due, e.id)
		s.log.Info("grant expired, route withdrawn", "grant", e.id, "target", g.Target)
	}
	s.removeLocked(due)
	if s.expiries.Len() == 0 {
		return time.Time{}
	}
	return s.expiries[0].at
}
