package notify

import (
	"sync"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// queue is a bounded FIFO of events that never blocks the producer: when
// full, the oldest event is dropped and counted.
type queue struct {
	mu      sync.Mutex
	buf     []grants.Event // ring
	head, n int
	dropped uint64
	ready   chan struct{} // has a value while the queue may be non-empty
}

func newQueue(size int) *queue {
	return &queue{buf: make([]grants.Event, size), ready: make(chan struct{}, 1)}
}

// push adds e, dropping the oldest event when full; it returns the number
// dropped so far when this push dropped one, else 0.
func (q *queue) push(e grants.Event) uint64 {
	q.mu.Lock()
	var dropped uint64
	if q.n == len(q.buf) {
		q.buf[q.head] = grants.Event{}
		q.head = (q.head + 1) % len(q.buf)
		q.n--
		q.dropped++
		dropped = q.dropped
	}
	q.buf[(q.head+q.n)%len(q.buf)] = e
	q.n++
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
	return dropped
}

// pop takes the oldest event, if any.
func (q *queue) pop() (grants.Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.n == 0 {
		return grants.Event{}, false
	}
	e := q.buf[q.head]
	q.buf[q.head] = grants.Event{}
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	return e, true
}

func (q *queue) stats() (queued int, dropped uint64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n, q.dropped
}
