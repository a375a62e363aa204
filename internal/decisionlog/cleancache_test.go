package decisionlog

import (
	"bytes"
	"fmt"
	"testing"
	"unsafe"

	"github.com/airlock-mcp/airlock/internal/mask"
)

// TestCleanCacheGenerations: the cache holds at most cleanCacheSize
// values however many pass through and however many profiles ask, a
// value seen on every call stays in it, a value the masker changed is
// never in it, and a profile's values answer for that profile only.
func TestCleanCacheGenerations(t *testing.T) {
	var c cleanCache
	c.mu.Lock()
	defer c.mu.Unlock()
	secret := "aws " + awsKey
	var profiles []*mask.Profile
	for i := range cleanProfiles + 2 {
		p, err := mask.Compile(mask.ProfileConfig{Name: fmt.Sprint("p", i), Extends: "default"})
		if err != nil {
			t.Fatal(err)
		}
		profiles = append(profiles, p)
	}
	// A profile that masks what the others leave alone: its answers
	// must not come from their sets.
	pat, err := mask.Compile(mask.ProfileConfig{Name: "pat", Extends: "default",
		Patterns: []mask.PatternConfig{{Type: "plain", Regexp: "application/json"}}})
	if err != nil {
		t.Fatal(err)
	}
	profiles = append(profiles, pat)
	held := func() (n int) {
		for i := range c.sets {
			n += len(c.sets[i].cur) + len(c.sets[i].old)
		}
		return n
	}
	for i := range 3 * cleanCacheSize {
		p := profiles[(i/7)%len(profiles)]
		set := c.set(p)
		want := "application/json"
		if p == pat {
			want = maskText(pat, want)
		}
		if got := set.maskText(p, "application/json"); got != want {
			t.Fatalf("profile %s: %q, want %q", p.Name(), got, want)
		}
		if got := set.maskText(p, secret); got == secret {
			t.Fatal("secret not masked")
		}
		set.maskText(p, fmt.Sprintf("req-%d", i))
		if n := held(); n > cleanCacheSize {
			t.Fatalf("cache holds %d values", n)
		}
		_, inCur := set.cur["application/json"]
		_, inOld := set.old["application/json"]
		if p != pat && !inCur && !inOld {
			t.Fatalf("round %d: the value seen on every call left the cache", i)
		}
		if p == pat && (inCur || inOld) {
			t.Fatal("a value the profile masks is cached")
		}
		for j := range c.sets {
			if _, ok := c.sets[j].cur[secret]; ok {
				t.Fatal("a masked value is cached")
			}
			if _, ok := c.sets[j].old[secret]; ok {
				t.Fatal("a masked value is cached")
			}
		}
		// Another profile's set answers nothing for p.
		other := &c.sets[(i+1)%cleanProfiles]
		if other.profile != p && other.maskText(pat, "application/json") != maskText(pat, "application/json") {
			t.Fatal("a set answered for another profile")
		}
	}
}

// TestCleanCacheKeepsCopies: a value the cache keeps is a copy, never the
// caller's memory (extauthz reads a Check's strings into one block, so a
// kept alias would keep the block alive, bearer token included).
func TestCleanCacheKeepsCopies(t *testing.T) {
	var c cleanCache
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := mask.Compile(mask.ProfileConfig{Name: "p", Extends: "default"})
	if err != nil {
		t.Fatal(err)
	}
	block := []byte("authorization: Bearer abc.def.ghi; content-type: application/json")
	i := bytes.Index(block, []byte("application/json"))
	v := unsafe.String(&block[i], len("application/json"))
	set := c.set(p)
	if got := set.maskText(p, v); got != v {
		t.Fatalf("maskText(%q) = %q", v, got)
	}
	lo, hi := uintptr(unsafe.Pointer(&block[0])), uintptr(unsafe.Pointer(&block[len(block)-1]))
	for k := range set.cur {
		if a := uintptr(unsafe.Pointer(unsafe.StringData(k))); a >= lo && a <= hi {
			t.Errorf("the cache keeps %q in the caller's memory", k)
		}
	}
	if len(set.cur) != 1 {
		t.Errorf("cache holds %d values, want the one", len(set.cur))
	}
}
