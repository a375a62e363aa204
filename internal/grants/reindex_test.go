package grants

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestReindexMatchesModel applies random batches of grant versions (one
// grant, many, repeats of one id in a batch, revocations) to the active
// index and compares it after each batch with the index built from
// scratch from the latest version of every grant: sorted by id, active
// grants only, no empty lists.
func TestReindexMatchesModel(t *testing.T) {
	for _, tc := range []struct {
		name           string
		ids, batch     int
		holders, turns int
	}{
		{"one at a time", 40, 1, 3, 300},
		{"small batches", 40, 5, 3, 200},
		{"load-sized batches, one holder", 2000, 1500, 1, 6},
		{"batches with repeats", 10, 30, 2, 100},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.ids)))
			s := &Service{active: map[string][]*Grant{}}
			latest := map[string]*Grant{}
			for turn := range tc.turns {
				var batch []*Grant
				for range tc.batch {
					i := rng.IntN(tc.ids)
					g := &Grant{ID: fmt.Sprintf("gr_%05d", i), Subject: fmt.Sprintf("u%d", i%tc.holders), Target: "github",
						State: GrantActive, Version: uint64(turn)}
					if rng.IntN(3) == 0 {
						g.State = GrantRevoked
					}
					batch = append(batch, g)
					latest[g.ID] = g
				}
				s.reindex(batch)
				want := map[string][]*Grant{}
				for _, g := range latest {
					if g.State == GrantActive {
						k := activeKey(g.Subject, g.Target)
						want[k] = append(want[k], g)
					}
				}
				for _, l := range want {
					slices.SortFunc(l, func(a, b *Grant) int { return strings.Compare(a.ID, b.ID) })
				}
				if len(s.active) != len(want) {
					t.Fatalf("turn %d: %d keys, want %d", turn, len(s.active), len(want))
				}
				for k, w := range want {
					if !slices.Equal(s.active[k], w) {
						t.Fatalf("turn %d: key %q: %d grants, want %d (or not the latest versions, or not sorted)", turn, k, len(s.active[k]), len(w))
					}
				}
			}
		})
	}
}

// TestReindexKeepsOldSlices: a reader holding a list from before a change
// sees it unchanged (copy on write).
func TestReindexKeepsOldSlices(t *testing.T) {
	s := &Service{active: map[string][]*Grant{}}
	a := &Grant{ID: "gr_a", Subject: "alice", Target: "t", State: GrantActive}
	b := &Grant{ID: "gr_b", Subject: "alice", Target: "t", State: GrantActive}
	s.reindex([]*Grant{a, b})
	held := s.active[activeKey("alice", "t")]
	s.reindex([]*Grant{{ID: "gr_a", Subject: "alice", Target: "t", State: GrantRevoked}, {ID: "gr_c", Subject: "alice", Target: "t", State: GrantActive}})
	if len(held) != 2 || held[0] != a || held[1] != b {
		t.Fatalf("a held list changed: %v", held)
	}
	if got := s.active[activeKey("alice", "t")]; len(got) != 2 || got[0] != b || got[1].ID != "gr_c" {
		t.Fatalf("new list %v", got)
	}
}
