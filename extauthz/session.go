package extauthz

import (
	"container/list"
	"strings"
	"sync"
	"time"

	"github.com/airlock-mcp/airlock/internal/identity"
)

// Session binding: an Mcp-Session-Id belongs to the principal (issuer,
// subject) that first used it on a target. The MCP server trusts the
// session id alone, so without the binding any caller with a valid token
// who learns another caller's session id could ride on that session.
// Another principal presenting a bound id gets 404, the answer the MCP
// transport gives for an unknown session.
//
// The table is in memory, bounded (maxSessions entries, least recently
// used evicted first; one principal holds at most maxSessionsPerPrincipal,
// its own least recently used evicted first, so that no caller can flush
// the others' bindings) and entries expire after sessionIdle without use.
// With several airlock replicas each replica holds its own table: a
// session first seen by one replica is unbound on the others until used
// there (the HA work moves the table to PostgreSQL).
const (
	maxSessions             = 100_000
	maxSessionsPerPrincipal = 1_000
	sessionIdle             = 24 * time.Hour
)

type sessionKey struct{ target, id string }

type sessionOwner struct{ issuer, subject string }

type sessionEntry struct {
	key     sessionKey
	owner   sessionOwner
	last    time.Time
	ownerEl *list.Element // in byOwner[owner]
}

type sessions struct {
	mu       sync.Mutex
	max      int
	perOwner int
	idle     time.Duration
	byID     map[sessionKey]*list.Element // of *sessionEntry
	lru      list.List                    // front = most recently used
	byOwner  map[sessionOwner]*list.List  // each owner's entries (*list.Element of lru), front = most recent
}

func newSessions(max, perOwner int, idle time.Duration) *sessions {
	s := &sessions{max: max, perOwner: perOwner, idle: idle,
		byID: map[sessionKey]*list.Element{}, byOwner: map[sessionOwner]*list.List{}}
	s.lru.Init()
	return s
}

// bind binds the session to owner when it is unbound (or its binding
// expired) and reports whether owner may use it: true when it is bound to
// owner, false when another principal holds it. The comparison is exact
// on both issuer and subject.
func (s *sessions) bind(target, id string, owner sessionOwner, now time.Time) bool {
	k := sessionKey{target, id}
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[k]; ok {
		e := el.Value.(*sessionEntry)
		if now.Sub(e.last) <= s.idle {
			if e.owner != owner {
				return false
			}
			e.last = now
			s.lru.MoveToFront(el)
			s.byOwner[owner].MoveToFront(e.ownerEl)
			return true
		}
		// expired: the id is free again
		s.evict(el)
	}
	s.sweep(now)
	mine := s.byOwner[owner]
	if mine == nil {
		mine = list.New()
		s.byOwner[owner] = mine
	}
	for mine.Len() >= s.perOwner {
		s.evict(mine.Back().Value.(*list.Element))
	}
	for len(s.byID) >= s.max {
		s.evict(s.lru.Back())
	}
	// The entry keeps its own copy of the id: the request's strings share
	// one allocation (decodeCheckRequest), which the table would
	// otherwise pin, token included, for the session's life.
	k.id = strings.Clone(id)
	e := &sessionEntry{key: k, owner: owner, last: now}
	el := s.lru.PushFront(e)
	e.ownerEl = mine.PushFront(el)
	s.byID[k] = el
	return true
}

// known reports whether the session is bound (to anyone) and not expired,
// without touching its binding.
func (s *sessions) known(target, id string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byID[sessionKey{target, id}]
	return ok && now.Sub(el.Value.(*sessionEntry).last) <= s.idle
}

// unbind removes the binding (the session was ended with DELETE).
func (s *sessions) unbind(target, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.byID[sessionKey{target, id}]; ok {
		s.evict(el)
	}
}

// sweep drops expired entries from the least recently used end; each call
// stops at the first live one, so its cost is what expired.
func (s *sessions) sweep(now time.Time) {
	for el := s.lru.Back(); el != nil; el = s.lru.Back() {
		if now.Sub(el.Value.(*sessionEntry).last) <= s.idle {
			return
		}
		s.evict(el)
	}
}

func (s *sessions) evict(el *list.Element) {
	if el == nil {
		return
	}
	e := el.Value.(*sessionEntry)
	s.lru.Remove(el)
	delete(s.byID, e.key)
	if mine := s.byOwner[e.owner]; mine != nil {
		mine.Remove(e.ownerEl)
		if mine.Len() == 0 {
			delete(s.byOwner, e.owner)
		}
	}
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}

// ownerOf is the principal's identity for session binding: the (issuer,
// subject) pair, compared exactly.
func ownerOf(p *identity.Principal) sessionOwner {
	return sessionOwner{issuer: p.Issuer, subject: p.Subject}
}
