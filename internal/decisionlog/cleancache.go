package decisionlog

import (
	"strings"
	"sync"

	"github.com/airlock-mcp/airlock/internal/mask"
)

// cleanCache remembers the header values, request paths, resource URIs
// and reasons the masker left unchanged: the same few (content types,
// protocol versions, user agents, a target's path, a policy's reasons)
// come with every call. Only values nothing was masked in are kept, so
// it holds no secret the masker knows, and each as a copy of its own. Values are kept per profile (a
// set each, for at most cleanProfiles profiles, keyed by the value
// alone, which hashes about twice as fast as a profile and value) in two
// generations of at most cleanGeneration values: when the current one is
// full it becomes the old one and the old one is emptied (keeping its
// memory) to be the current one, a value found in the old generation
// moves to the current one; so values seen on every call stay while
// values seen once pass through, and no map is allocated again. At most
// cleanCacheSize values in all.
type cleanCache struct {
	mu   sync.Mutex // held by the callers of set and cleanSet.maskText
	sets [cleanProfiles]cleanSet
	next int // the set the next profile not in sets takes
}

// cleanSet is one profile's clean values.
type cleanSet struct {
	profile  *mask.Profile
	cur, old map[string]struct{}
}

const (
	cleanCacheSize  = 4096 // values, every profile and generation together
	cleanProfiles   = 4
	cleanGeneration = cleanCacheSize / cleanProfiles / 2
	cleanMaxLen     = 256 // longer values are masked every time
)

// set is p's set of clean values; a profile not among the sets takes
// the place of the one that came longest ago, emptied. The caller holds
// c.mu.
func (c *cleanCache) set(p *mask.Profile) *cleanSet {
	for i := range c.sets {
		if c.sets[i].profile == p {
			return &c.sets[i]
		}
	}
	s := &c.sets[c.next]
	c.next = (c.next + 1) % cleanProfiles
	clear(s.cur)
	clear(s.old)
	s.profile = p
	return s
}

// maskText is maskText(p, s) for s's profile p, answered from the set
// for a value the masker left unchanged before. The caller holds the
// cache's mu.
func (c *cleanSet) maskText(p *mask.Profile, s string) string {
	if s == "" || len(s) > cleanMaxLen || p != c.profile {
		return maskText(p, s)
	}
	if _, ok := c.cur[s]; ok {
		return s
	}
	if _, ok := c.old[s]; ok {
		c.add(s)
		return s
	}
	out := maskText(p, s)
	if out == s {
		// A copy: the value may share its memory with the rest of its
		// request (extauthz reads a Check's strings into one block), which
		// the cache would otherwise keep alive, bearer token included.
		c.add(strings.Clone(s))
	}
	return out
}

// add puts s in the current generation, turning the generations over
// when it is full.
func (c *cleanSet) add(s string) {
	if c.cur == nil {
		c.cur, c.old = make(map[string]struct{}, cleanGeneration), make(map[string]struct{}, cleanGeneration)
	}
	if len(c.cur) >= cleanGeneration {
		clear(c.old)
		c.cur, c.old = c.old, c.cur
	}
	c.cur[s] = struct{}{}
}
