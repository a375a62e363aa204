package grants

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Change is one stored Mutation as a shared store's feed hands it to every
// replica: its sequence in the store, the replica that wrote it, and the
// events it caused (already numbered with their ids, so every replica
// publishes the same event).
type Change struct {
	Seq      uint64   `json:"seq"`
	Writer   string   `json:"writer,omitempty"`
	Mutation Mutation `json:"mutation"`
	Events   []Event  `json:"events,omitempty"`
}

// SharedStore is a Store that several Services (replicas) write at once,
// such as PostgreSQL. Besides the Store contract it keeps a feed: every
// Apply appends one Change, numbered in commit order without gaps, so a
// replica reading the changes after the last one it saw misses nothing.
type SharedStore interface {
	Store
	// LoadAt is Load together with the sequence of the last change the
	// records include (0: none), read consistently.
	LoadAt(ctx context.Context) (Snapshot, uint64, error)
	// Publish is Apply for c.Mutation that also appends c (its writer and
	// events; Seq is assigned) to the feed, and wakes every replica's
	// Watch. It returns the sequence given to c.
	Publish(ctx context.Context, c Change) (uint64, error)
	// Changes returns at most limit changes after seq, in order. When
	// changes after seq have been pruned it fails with ErrFeedGap: the
	// reader must load everything again.
	Changes(ctx context.Context, after uint64, limit int) ([]Change, error)
	// Watch receives (without blocking the store) whenever new changes
	// may be in the feed. It is a hint: a lost wake costs a poll interval.
	Watch() <-chan struct{}
}

// ErrFeedGap: the changes a replica asked for were pruned from the feed.
var ErrFeedGap = errors.New("changes after this sequence were pruned from the feed")

// feedBatch is how many changes one read of the feed takes.
const feedBatch = 256

// maxConflictRetries bounds how often one write is decided again after
// losing a conditional write to another replica. Each loss means another
// replica's write landed, so this is only reached under a storm.
const maxConflictRetries = 16

// followTimeout bounds one read of the feed by the follower.
const followTimeout = 10 * time.Second

// DefaultFeedPoll is how often a replica reads the feed without a wake.
const DefaultFeedPoll = 2 * time.Second

// catchUp applies every change in the feed after the last one seen.
// Callers hold wmu.
func (s *Service) catchUp(ctx context.Context) error {
	for {
		cs, err := s.shared.Changes(ctx, s.feedSeq, feedBatch)
		if errors.Is(err, ErrFeedGap) {
			return s.resync(ctx)
		}
		if err != nil {
			return fmt.Errorf("grant store: reading the changes after %d: %w", s.feedSeq, err)
		}
		for i := range cs {
			s.applyChange(&cs[i])
			s.feedSeq = cs[i].Seq
		}
		if len(cs) < feedBatch {
			return nil
		}
	}
}

// applyChange installs the records of c this replica does not have yet
// and passes its events on. A change another replica wrote goes to the
// subscribers only: its writer has audited and notified it (events leave
// once). A change this replica wrote whose Publish it did not see succeed
// (the commit's answer was lost) is a late success: it is audited and
// notified here, once. Callers hold wmu.
func (s *Service) applyChange(c *Change) {
	tx := &txn{}
	s.mu.RLock()
	for i := range c.Mutation.Requests {
		r := &c.Mutation.Requests[i]
		if cur := s.requests[r.ID]; cur == nil || cur.Version < r.Version {
			tx.reqs = append(tx.reqs, r.Clone())
		}
	}
	for i := range c.Mutation.Grants {
		g := &c.Mutation.Grants[i]
		if cur := s.grants[g.ID].g; cur == nil || cur.Version < g.Version {
			tx.grants = append(tx.grants, g.Clone())
		}
	}
	for _, id := range c.Mutation.DropRequests {
		if s.requests[id] != nil {
			tx.dropReqs = append(tx.dropReqs, id)
		}
	}
	for _, id := range c.Mutation.DropGrants {
		if s.grants[id].g != nil {
			tx.dropGrants = append(tx.dropGrants, id)
		}
	}
	s.mu.RUnlock()
	if len(tx.reqs)+len(tx.grants)+len(tx.dropReqs)+len(tx.dropGrants) == 0 {
		return // already here: this replica's own write, or in the snapshot it loaded
	}
	s.install(tx)
	if c.Writer == s.instance {
		s.send(c.Events)
		return
	}
	for _, e := range c.Events {
		e.Seq = s.seq.Add(1)
		s.hub.publish(e)
	}
}

// resync loads every record again after the feed lost the changes this
// replica needed: newer versions are installed, records gone from the
// store are dropped. Their events are not replayed (subscribers reload
// on their own after a gap: see Subscribe). Callers hold wmu.
func (s *Service) resync(ctx context.Context) error {
	snap, seq, err := s.shared.LoadAt(ctx)
	if err != nil {
		return fmt.Errorf("grant store: reloading after a gap in the changes: %w", err)
	}
	s.log.Warn("grants: the change feed was pruned past this replica's position; reloaded every record", "from", s.feedSeq, "to", seq)
	c := &Change{Seq: seq, Mutation: Mutation{Requests: snap.Requests, Grants: snap.Grants}}
	keepR := make(map[string]bool, len(snap.Requests))
	for _, r := range snap.Requests {
		keepR[r.ID] = true
	}
	keepG := make(map[string]bool, len(snap.Grants))
	for _, g := range snap.Grants {
		keepG[g.ID] = true
	}
	s.mu.RLock()
	for id := range s.requests {
		if !keepR[id] {
			c.Mutation.DropRequests = append(c.Mutation.DropRequests, id)
		}
	}
	for id := range s.grants {
		if !keepG[id] {
			c.Mutation.DropGrants = append(c.Mutation.DropGrants, id)
		}
	}
	s.mu.RUnlock()
	s.applyChange(c)
	s.feedSeq = seq
	return nil
}

// feedLoop follows the shared store's feed: on every wake, and every
// poll interval in case a wake was lost.
func (s *Service) feedLoop(poll time.Duration) {
	defer close(s.feedDone)
	t := time.NewTicker(poll)
	defer t.Stop()
	wake := s.shared.Watch()
	for {
		select {
		case <-s.closed:
			return
		case <-wake:
		case <-t.C:
		}
		s.follow()
	}
}

// follow catches up with the feed once, under the write lock.
func (s *Service) follow() {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	select {
	case <-s.closed:
		return
	default:
	}
	// Bounded: writes and Subscribe wait on the write lock meanwhile.
	ctx, cancel := context.WithTimeout(context.Background(), followTimeout)
	defer cancel()
	if err := s.catchUp(ctx); err != nil {
		s.log.Error("grants: following the shared store's changes failed; retrying", "error", err)
	}
}

// Sync reads the shared store's feed now and applies what other replicas
// wrote; with a store of one process it does nothing. Writes catch up by
// themselves; Sync is for a reader that must see another replica's last
// write (a test, or the API after a redirect).
func (s *Service) Sync(ctx context.Context) error {
	if s.shared == nil {
		return nil
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.catchUp(ctx)
}
