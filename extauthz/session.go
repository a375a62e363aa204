package extauthz

import (
	"container/list"
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
// used evicted first) and entries expire after sessionIdle without use.
// With several airlock replicas each replica holds its own table: a
// session first seen by one replica is unbound on the others until used
// there (the HA work moves the table to PostgreSQL).
const (
	maxSessions = 100_000
	sessionIdle = 24 * time.Hour
)

type sessionKey struct{ target, id string }

type sessionOwner struct{ issuer, subject string }

type sessionEntry struct {
	key   sessionKey
	owner sessionOwner
	last  time.Time
}

type sessions struct {
	mu   sync.Mutex
	max  int
	idle time.Duration
	byID map[sessionKey]*list.Element // of *sessionEntry
	lru  list.List                    // front = most recently used
}

func newSessions(max int, idle time.Duration) *sessions {
	s := &sessions{max: max, idle: idle, byID: map[sessionKey]*list.Element{}}
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
			return true
		}
		// expired: the id is free again
		s.lru.Remove(el)
		delete(s.byID, k)
	}
	s.sweep(now)
	for len(s.byID) >= s.max {
		s.evict(s.lru.Back())
	}
	s.byID[k] = s.lru.PushFront(&sessionEntry{key: k, owner: owner, last: now})
	return true
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
	s.lru.Remove(el)
	delete(s.byID, el.Value.(*sessionEntry).key)
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
