package envoydriver

import (
	"context"
	"sync"
	"time"
)

// applier installs ACKed updates on the driver after the apply lag, in the
// order they were ACKed, then reports them (ADSOptions.OnResponse). It
// stands for Envoy's workers, which run an update the main thread posted
// (ThreadLocal::Slot::runOnAllThreads) after the main thread ACKed it.
type applier struct {
	clock      applyClock
	onResponse func(ADSResponse)
	done       chan struct{}
	wake       chan struct{}

	mu    sync.Mutex
	queue []applyItem
}

type applyItem struct {
	at     time.Time
	driver *Driver
	c      *compiled // nil: nothing to install (NACK, first start, NoListener)
	report ADSResponse
}

func (p *applier) init(clock applyClock, onResponse func(ADSResponse)) {
	if clock == nil {
		clock = realClock{}
	}
	p.clock = clock
	p.onResponse = onResponse
	p.done = make(chan struct{})
	p.wake = make(chan struct{}, 1)
}

// push queues an update to install at time at.
func (p *applier) push(at time.Time, d *Driver, c *compiled, report ADSResponse) {
	p.mu.Lock()
	p.queue = append(p.queue, applyItem{at: at, driver: d, c: c, report: report})
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

func (p *applier) next() (applyItem, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.queue) == 0 {
		return applyItem{}, false
	}
	it := p.queue[0]
	p.queue[0] = applyItem{}
	p.queue = p.queue[1:]
	return it, true
}

// run installs queued updates until ctx ends; what is still queued then
// is dropped (the client is closing).
func (p *applier) run(ctx context.Context) {
	defer close(p.done)
	for {
		it, ok := p.next()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-p.wake:
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-p.clock.at(it.at):
		}
		if it.c != nil && it.driver != nil {
			it.driver.install(it.c)
		}
		if p.onResponse != nil {
			p.onResponse(it.report)
		}
	}
}

// applyClock is the applier's time source (a fake one in tests).
type applyClock interface {
	now() time.Time
	// at returns a channel that is ready once the time is t or later.
	at(t time.Time) <-chan struct{}
}

type realClock struct{}

func (realClock) now() time.Time { return time.Now() }

func (realClock) at(t time.Time) <-chan struct{} {
	ch := make(chan struct{})
	d := time.Until(t)
	if d <= 0 {
		close(ch)
		return ch
	}
	time.AfterFunc(d, func() { close(ch) })
	return ch
}

// ADSTypeStats counts what the client did with one resource type, like
// Envoy's per-subscription stats (update_success, update_rejected).
type ADSTypeStats struct {
	// ACKs and NACKs count responses accepted and rejected.
	ACKs, NACKs int
	// Updated and Removed count resources in accepted responses: updated
	// (carried) and removed (delta removed_resources, or absent from a
	// SotW full state).
	Updated, Removed int
}

// Stats returns the client's counters by type URL (a copy).
func (a *ADS) Stats() map[string]ADSTypeStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make(map[string]ADSTypeStats, len(a.stats))
	for k, v := range a.stats {
		out[k] = *v
	}
	return out
}

func (a *ADS) count(r ADSResponse) {
	a.mu.Lock()
	defer a.mu.Unlock()
	st, ok := a.stats[r.TypeURL]
	if !ok {
		st = &ADSTypeStats{}
		a.stats[r.TypeURL] = st
	}
	if r.Err != nil {
		st.NACKs++
		return
	}
	st.ACKs++
	st.Updated += len(r.Updated)
	st.Removed += len(r.Removed)
}
