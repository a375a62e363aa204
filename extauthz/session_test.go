package extauthz

import (
	"bytes"
	"container/list"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func TestSessionBoundToPrincipal(t *testing.T) {
	c := newCore(t)
	check := func(token, method, body string) *Result {
		req := post(token, body, "mcp-session-id", "sess-A")
		req.Method = method
		if method != "POST" {
			req.Body = nil
		}
		return c.a.Check(context.Background(), req)
	}
	steps := []struct {
		name, token, method, body string
		status                    int // 0 = allowed
	}{
		{"alice opens", "alice", "POST", initialized, 0},
		{"alice calls", "alice", "POST", call(1, "read"), 0},
		{"bob rides alice's session", "bob", "POST", call(2, "read"), 404},
		{"bob's GET stream on it", "bob", "GET", "", 404},
		{"bob cannot end it", "bob", "DELETE", "", 404},
		{"same subject, other issuer", "alice-other-issuer", "POST", call(3, "read"), 404},
		{"alice still owns it", "alice", "GET", "", 0},
		{"alice ends it", "alice", "DELETE", "", 0},
		{"the id is free again", "bob", "POST", call(4, "read"), 0},
		{"now bob's", "alice", "POST", call(5, "read"), 404},
	}
	for _, s := range steps {
		r := check(s.token, s.method, s.body)
		if s.status == 0 {
			if r.Outcome != OutcomeAllow {
				t.Fatalf("%s: outcome %s %s", s.name, r.Outcome, r.Body)
			}
			continue
		}
		if r.Status != s.status || r.Outcome == OutcomeAllow {
			t.Fatalf("%s: status %d outcome %s, want %d", s.name, r.Status, r.Outcome, s.status)
		}
		if !strings.Contains(r.Reason, "bound to another principal") {
			t.Errorf("%s: reason %q", s.name, r.Reason)
		}
		e := oneError(t, r.Body)
		if s.method == "POST" && string(e.ID) == "null" {
			t.Errorf("%s: the 404 lost the request id: %s", s.name, r.Body)
		}
		if strings.Contains(string(r.Body), "alice") || strings.Contains(string(r.Body), "bound") {
			t.Errorf("%s: the body tells who owns the session: %s", s.name, r.Body)
		}
	}
}

func TestSessionDeniedDeleteKeepsBinding(t *testing.T) {
	c := newCore(t)
	c.a.sessions.bind("demo", "s", sessionOwner{testIssuer, "alice"}, c.now)
	del := post("bob", "", "mcp-session-id", "s")
	del.Method, del.Body = "DELETE", nil
	if r := c.a.Check(context.Background(), del); r.Status != 404 {
		t.Fatalf("bob's DELETE: %d", r.Status)
	}
	if !c.a.sessions.bind("demo", "s", sessionOwner{testIssuer, "alice"}, c.now) {
		t.Fatal("a refused DELETE removed the binding")
	}
}

func TestSessionTableBoundedAndExpiring(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	alice, bob := sessionOwner{"i", "alice"}, sessionOwner{"i", "bob"}
	s := newSessions(3, 3, time.Hour)
	for i := range 5 {
		if !s.bind("t", fmt.Sprint(i), alice, t0.Add(time.Duration(i)*time.Minute)) {
			t.Fatal("a fresh id refused")
		}
	}
	if s.len() != 3 {
		t.Fatalf("%d entries, bound 3", s.len())
	}
	// 0 and 1 were least recently used: evicted, so free.
	if !s.bind("t", "0", bob, t0.Add(10*time.Minute)) {
		t.Error("an evicted binding still held")
	}
	if s.bind("t", "4", bob, t0.Add(10*time.Minute)) {
		t.Error("a live binding taken over")
	}
	// The same id on another target is another session.
	if !s.bind("u", "4", bob, t0.Add(10*time.Minute)) {
		t.Error("a session id on another target is refused")
	}
	// Idle past the TTL: free again.
	if !s.bind("t", "4", bob, t0.Add(4*time.Minute+time.Hour+time.Second)) {
		t.Error("an expired binding still held")
	}
	if s.len() > 3 {
		t.Errorf("%d entries after expiry, bound 3", s.len())
	}
	s.consistent(t)
}

func TestSessionTableOnePrincipalCannotFlushOthers(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	alice, mallory := sessionOwner{"i", "alice"}, sessionOwner{"i", "mallory"}
	s := newSessions(100, 5, time.Hour)
	s.bind("t", "alice-session", alice, t0)
	for i := range 1000 {
		if !s.bind("t", fmt.Sprint("junk-", i), mallory, t0.Add(time.Second)) {
			t.Fatal("a fresh id refused")
		}
	}
	if s.bind("t", "alice-session", mallory, t0.Add(2*time.Second)) {
		t.Fatal("mallory flushed alice's binding with her own")
	}
	if n := s.len(); n != 6 {
		t.Errorf("%d entries, want alice's 1 and mallory's last 5", n)
	}
	s.unbind("t", "alice-session")
	if s.len() != 5 || len(s.byOwner) != 1 {
		t.Errorf("after unbind: %d entries, %d owners", s.len(), len(s.byOwner))
	}
	s.consistent(t)
}

// consistent checks the table's three indexes agree.
func (s *sessions) consistent(t *testing.T) {
	t.Helper()
	n := 0
	for o, l := range s.byOwner {
		for el := l.Front(); el != nil; el = el.Next() {
			e := el.Value.(*list.Element).Value.(*sessionEntry)
			if e.owner != o || s.byID[e.key] != el.Value.(*list.Element) {
				t.Fatalf("owner index out of step at %+v", e.key)
			}
			n++
		}
	}
	if n != len(s.byID) || s.lru.Len() != len(s.byID) {
		t.Fatalf("indexes: %d by owner, %d by id, %d in lru", n, len(s.byID), s.lru.Len())
	}
}

// TestSessionTableKeepsCopies: the table keeps its own copy of a session
// id, never the request's memory (a Check's strings share one block with
// the bearer token in it, which a kept alias would pin for the session's
// life).
func TestSessionTableKeepsCopies(t *testing.T) {
	block := []byte("authorization: Bearer abc.def.ghi; mcp-session-id: 7f3c2a")
	i := bytes.Index(block, []byte("7f3c2a"))
	id := unsafe.String(&block[i], len("7f3c2a"))
	s := newSessions(10, 10, time.Hour)
	if !s.bind("t", id, sessionOwner{"i", "alice"}, time.Now()) {
		t.Fatal("a fresh id refused")
	}
	lo, hi := uintptr(unsafe.Pointer(&block[0])), uintptr(unsafe.Pointer(&block[len(block)-1]))
	for k := range s.byID {
		if a := uintptr(unsafe.Pointer(unsafe.StringData(k.id))); a >= lo && a <= hi {
			t.Errorf("the session table keeps %q in the request's memory", k.id)
		}
	}
	if !s.known("t", "7f3c2a", time.Now()) {
		t.Error("the copied id does not find its session")
	}
}
