package identity

import (
	"sync"
	"time"
)

// tokenCache is a bounded LRU of verified tokens, keyed by the SHA-256 of
// the raw token, sharded so concurrent requests rarely share a lock. An
// entry is served only while now < exp: never past the token's own expiry,
// skew or not.
type tokenCache struct {
	shards []cacheShard
}

type cacheEntry struct {
	key        [32]byte
	p          *Principal
	iss        *issuer
	exp        time.Time
	prev, next *cacheEntry
}

type cacheShard struct {
	mu    sync.Mutex
	max   int
	items map[[32]byte]*cacheEntry
	// head.next is the most recently used entry, head.prev the least.
	head cacheEntry
	_    [64]byte // keep neighbouring shards' locks off one cache line
}

const maxCacheShards = 16

// newTokenCache holds up to size entries in total.
func newTokenCache(size int) *tokenCache {
	n := min(size, maxCacheShards)
	c := &tokenCache{shards: make([]cacheShard, n)}
	for i := range c.shards {
		s := &c.shards[i]
		s.max = size / n
		if i < size%n {
			s.max++
		}
		s.items = make(map[[32]byte]*cacheEntry, s.max)
		s.head.next, s.head.prev = &s.head, &s.head
	}
	return c
}

func (c *tokenCache) shard(key *[32]byte) *cacheShard {
	return &c.shards[int(key[0])%len(c.shards)]
}

// get returns the live entry for key, dropping it if it expired by now.
func (c *tokenCache) get(key *[32]byte, now time.Time) *cacheEntry {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.items[*key]
	if e == nil {
		return nil
	}
	if !now.Before(e.exp) {
		s.remove(e)
		return nil
	}
	s.unlink(e)
	s.pushFront(e)
	return e
}

// put stores an entry, evicting the least recently used one when full.
func (c *tokenCache) put(key *[32]byte, p *Principal, iss *issuer, exp time.Time) {
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.items[*key]; old != nil {
		s.remove(old)
	}
	if len(s.items) >= s.max {
		s.remove(s.head.prev)
	}
	e := &cacheEntry{key: *key, p: p, iss: iss, exp: exp}
	s.items[*key] = e
	s.pushFront(e)
}

// len counts entries, expired ones not yet dropped included.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += len(s.items)
		s.mu.Unlock()
	}
	return n
}

func (s *cacheShard) remove(e *cacheEntry) {
	s.unlink(e)
	delete(s.items, e.key)
}

func (s *cacheShard) unlink(e *cacheEntry) {
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (s *cacheShard) pushFront(e *cacheEntry) {
	e.prev = &s.head
	e.next = s.head.next
	s.head.next.prev = e
	s.head.next = e
}
