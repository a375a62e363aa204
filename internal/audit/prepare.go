package audit

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// ErrNilRecord is returned by Record for a nil row.
var ErrNilRecord = errors.New("audit: nil record")

// preparer fills what a row needs before it is stored: an id, a time, a
// capped payload. Both sinks use it so rows mean the same in each.
type preparer struct {
	payloadMax int
	now        func() time.Time
	last       atomic.Int64 // last time stamped, in ns, to keep stamps strictly increasing
}

func newPreparer(payloadMax int, now func() time.Time) *preparer {
	if now == nil {
		now = time.Now
	}
	return &preparer{payloadMax: payloadMax, now: now}
}

// stamp returns the current time, strictly after every earlier stamp, so
// rows recorded one after the other replay in that order.
func (p *preparer) stamp() time.Time {
	ns := p.now().UnixNano()
	for {
		last := p.last.Load()
		if ns <= last {
			ns = last + 1
		}
		if p.last.CompareAndSwap(last, ns) {
			return time.Unix(0, ns).UTC()
		}
	}
}

func (p *preparer) prepare(r Record) error {
	switch v := r.(type) {
	case *Event:
		if v == nil {
			return ErrNilRecord
		}
		if v.EventID == "" {
			v.EventID = NewID()
		}
		if v.Time.IsZero() {
			v.Time = p.stamp()
		}
		v.Time = v.Time.UTC()
		v.Status = min(max(v.Status, 0), 65535)
		if v.Bytes <= 0 {
			v.Bytes = int64(len(v.Payload))
		}
		if p.payloadMax > 0 && len(v.Payload) > p.payloadMax {
			v.Payload = cutUTF8(v.Payload, p.payloadMax)
			v.Truncated = true
		}
	case *Decision:
		if v == nil {
			return ErrNilRecord
		}
		if v.DecisionID == "" {
			v.DecisionID = NewID()
		}
		if v.Time.IsZero() {
			v.Time = p.stamp()
		}
		v.Time = v.Time.UTC()
		v.Status = min(max(v.Status, 0), 65535)
		v.LatencyUS = max(v.LatencyUS, 0)
	case *RequestEvent:
		if v == nil {
			return ErrNilRecord
		}
		if v.EventID == "" {
			v.EventID = NewID()
		}
		if v.Time.IsZero() {
			v.Time = p.stamp()
		}
		v.Time = v.Time.UTC()
	case *GrantEvent:
		if v == nil {
			return ErrNilRecord
		}
		if v.EventID == "" {
			v.EventID = NewID()
		}
		if v.Time.IsZero() {
			v.Time = p.stamp()
		}
		v.Time = v.Time.UTC()
	case nil:
		return ErrNilRecord
	default:
		return fmt.Errorf("audit: unknown record type %T", r)
	}
	return nil
}

// cutUTF8 cuts s to at most n bytes without splitting a UTF-8 sequence.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
