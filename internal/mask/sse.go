package mask

import (
	"bytes"
	"errors"
	"strconv"
)

// SSEMasker masks a text/event-stream body as it streams, chunk by chunk,
// chunks being cut anywhere. It keeps the current event's bytes (at most
// maxEvent+1 of them) until the blank line that ends it, then masks:
//
//   - the event's data, its data lines joined by "\n" as clients join
//     them: as JSON when it parses (MaskJSON; a document spread over
//     several data lines included); else, when the lines run together
//     (a line break cut a JSON string) parse, as that JSON, written back
//     as one data line; else as text (MaskText), where a token a data
//     line break cuts in two (data: AKIAIOSF / data: ODNN7EXAMPLE) is
//     found in the lines run together and masked whole, the mask taking
//     the line break's place;
//   - the values of "id", "event" and "retry" as text, without the card
//     detector (clients echo the id as Last-Event-ID, so a secret there
//     would travel on; a numeric id is an id, and masking it would break
//     resumption);
//   - comments and unknown fields as text, whole.
//
// An event with nothing to mask is written out byte for byte, line endings
// included. An event with something masked is written again: its lines in
// their order, all its data lines (re-split from the masked data) where the
// first one was, each line ending in "\n". The output for a stream is the
// same however it was cut into chunks.
//
// An event of more than maxEvent bytes is not passed on: its bytes are
// dropped as they come, and where it ends the masker writes what the
// OnOversize hook returns (ext_proc: a JSON-RPC error event for the
// request, after which it calls Stop), or without a hook
// ": [airlock: event over <maxEvent> bytes dropped]" and a blank line.
// The drop is counted as mask type "sse_event_dropped". Dropping (rather
// than masking a prefix) is the choice because a cut JSON-RPC message
// cannot be masked as JSON, and passing its bytes on unmasked would leak.
//
// An SSEMasker is for one stream and one goroutine.
type SSEMasker struct {
	p   *Profile
	max int

	buf     []byte // the current event, from its first byte
	own     []byte // buf's own storage while buf is the chunk's (aliased)
	aliased bool   // during a Write: buf is part of the chunk, not the masker's
	scanned int    // buf[:scanned] has been run through the line state
	ls      lineState
	bomDone bool
	skipLF  uint8 // after an event ended by '\r': what to do with a '\n' next

	dropping bool
	dropped  int // bytes of the event being dropped, so far

	out     []byte
	data    []byte
	cat     []byte  // data lines run together (maskData)
	nls     []int   // where data's line breaks are (maskCrossing)
	ms      []match // scratch matches (maskCrossing)
	counts  Counts
	closed  bool
	stopped bool     // Stop was called: nothing more goes out
	idp     *Profile // p without the card detector, for id/event/retry values

	onEvent  func(Event)
	oversize func(size int) []byte
}

// Event is one event as the masker dispatched it, for recording. Its
// slices are valid only during the OnEvent call.
type Event struct {
	Type    []byte // the last "event" field ("" means "message")
	ID      []byte // the last "id" field, if any
	HasData bool   // the event has "data" fields (clients dispatch only these)
	Data    []byte // the data, joined as the spec says, masked
	Counts  Counts // what was masked in this event
	Dropped int    // for an event over the limit: its size in bytes; Data is then empty
	// JSON: Data is valid JSON (it was masked as JSON), so a reader of it
	// can skip validating it again (mcp.ReadValidRecorded).
	JSON bool
	// Own: Data and Counts are new and the OnEvent function's to keep
	// (MaskJSON's output): the masker neither keeps nor reuses them.
	Own bool
}

type lineState uint8

const (
	lsLineStart lineState = iota // at the start of a line
	lsInLine                     // inside a line
	lsAfterCR                    // after a '\r' that ended a line: a '\n' here belongs to it
)

const (
	lfNone uint8 = iota
	lfEmit       // the last event went out as it came: pass the '\n' on
	lfDrop       // the last event was rewritten: its "\n" ending is written already
)

// DroppedType is the Counts type of an SSE event dropped for its size.
const DroppedType = "sse_event_dropped"

// ErrClosed is returned by Write and Flush after Flush.
var ErrClosed = errors.New("mask: SSE masker used after Flush")

var bom = []byte("\xef\xbb\xbf")

// minEvent is the smallest event limit NewSSEMasker takes.
const minEvent = 16

// NewSSEMasker returns a masker for one event stream; maxEvent (at least
// 16) bounds the bytes of one event — counted from its first byte through
// the first byte of the blank line that ends it — and so the masker's
// memory.
func NewSSEMasker(p *Profile, maxEvent int) *SSEMasker {
	return &SSEMasker{p: p, max: max(maxEvent, minEvent)}
}

// OnEvent sets a function called with every event (after masking, in
// stream order), e.g. to record the JSON-RPC messages in it.
func (m *SSEMasker) OnEvent(fn func(Event)) { m.onEvent = fn }

// OnOversize sets a function whose result replaces an event that was
// over maxEvent bytes (size is the event's size); it must be one or more
// whole SSE events, e.g. a JSON-RPC error for the pending request.
func (m *SSEMasker) OnOversize(fn func(size int) []byte) { m.oversize = fn }

// Stop ends the output where it is: what the masker has written so far
// (in the current Write, up to the call) goes out, and every later byte of
// the stream is read and discarded. It is for the OnOversize and OnEvent
// hooks, e.g. after answering the request with an error.
func (m *SSEMasker) Stop() { m.stopped = true }

// Stopped reports whether Stop was called.
func (m *SSEMasker) Stopped() bool { return m.stopped }

// Counts returns what was masked in the stream so far (not a copy).
func (m *SSEMasker) Counts() Counts { return m.counts }

// Write takes the next chunk of the stream and returns the masked bytes
// that can go on now; the slice is valid until the next Write or Flush.
func (m *SSEMasker) Write(chunk []byte) ([]byte, error) {
	out, err := m.AppendWrite(m.out[:0], chunk)
	if err != nil {
		return nil, err
	}
	m.out = out
	return out, nil
}

// AppendWrite is Write appending the masked bytes to dst, whose storage
// stays the caller's: what goes on is written once, where the caller
// wants it.
func (m *SSEMasker) AppendWrite(dst, chunk []byte) ([]byte, error) {
	if m.closed {
		return dst, ErrClosed
	}
	keep := m.out
	m.out = dst
	for len(chunk) > 0 && !m.stopped {
		if m.dropping {
			chunk = chunk[m.dropScan(chunk):]
			continue
		}
		take := min(len(chunk), m.max+1-len(m.buf))
		if len(m.buf) == 0 {
			// No event begun: its events are read where they are in
			// the chunk, and only what is left of it after the last
			// complete one is copied (drain).
			m.own, m.buf, m.aliased = m.buf, chunk[:take:take], true
		} else {
			m.buf = append(m.buf, chunk[:take]...)
		}
		chunk = chunk[take:]
		m.drain()
	}
	dst, m.out = m.out, keep
	return dst, nil
}

// Flush ends the stream: an event cut off by the end of the stream (which
// clients discard) is masked and written as it stands.
func (m *SSEMasker) Flush() ([]byte, error) {
	out, err := m.AppendFlush(m.out[:0])
	if err != nil {
		return nil, err
	}
	m.out = out
	return out, nil
}

// AppendFlush is Flush appending the masked bytes to dst (see AppendWrite).
func (m *SSEMasker) AppendFlush(dst []byte) ([]byte, error) {
	if m.closed {
		return dst, ErrClosed
	}
	m.closed = true
	keep := m.out
	m.out = dst
	switch {
	case m.stopped:
	case m.dropping:
		m.emitDropped()
	case len(m.buf) > 0 && !m.bomDone:
		m.out = append(m.out, m.buf...) // a cut byte-order mark
	case len(m.buf) > 0:
		m.emit(m.buf, false)
	}
	m.buf = m.buf[:0]
	dst, m.out = m.out, keep
	return dst, nil
}

// drain writes out every complete event in buf and keeps the rest; an
// incomplete event that is already over the limit starts dropping.
func (m *SSEMasker) drain() {
	pos := 0
	for pos < len(m.buf) && !m.stopped {
		if !m.bomDone {
			rest := m.buf[pos:]
			if len(rest) < len(bom) && bytes.HasPrefix(bom, rest) {
				break
			}
			m.bomDone = true
			if bytes.HasPrefix(rest, bom) {
				m.out = append(m.out, bom...)
				pos += len(bom)
				m.scanned = pos
				continue
			}
		}
		if m.skipLF != lfNone {
			if m.buf[pos] == '\n' {
				if m.skipLF == lfEmit {
					m.out = append(m.out, '\n')
				}
				pos++
				m.scanned = pos
			}
			m.skipLF = lfNone
			continue
		}
		end, cr, ok := m.scanEvent(pos)
		if !ok {
			break
		}
		verbatim := false
		if end-pos > m.max {
			m.dropped = end - pos
			m.emitDropped()
		} else {
			verbatim = m.emit(m.buf[pos:end], true)
		}
		switch {
		case !cr:
			m.skipLF = lfNone
		case verbatim:
			m.skipLF = lfEmit
		default:
			m.skipLF = lfDrop
		}
		pos = end
		m.scanned = end
		m.ls = lsLineStart
	}
	rest := m.buf[pos:]
	if m.aliased {
		// buf is the chunk, the caller's: what is left of it (an event
		// begun) is copied into the masker's own storage.
		m.buf, m.own, m.aliased = m.own[:0], nil, false
	}
	if m.stopped {
		m.buf, m.scanned = m.buf[:0], 0
		return
	}
	if len(m.buf) == 0 {
		m.buf = append(m.buf, rest...)
	} else {
		m.buf = m.buf[:copy(m.buf, rest)]
	}
	m.scanned -= pos
	if len(m.buf) > m.max && m.bomDone && m.skipLF == lfNone {
		m.dropping = true
		m.dropped = len(m.buf)
		m.buf = m.buf[:0]
		m.scanned = 0
	}
}

// scanEvent runs the line state from buf[scanned:] until a blank line
// ends the event that starts at pos: end is just after it, cr is set when
// it ended with '\r' (a '\n' may follow that belongs to it).
func (m *SSEMasker) scanEvent(pos int) (end int, cr bool, ok bool) {
	b := m.buf
	i := max(m.scanned, pos)
	for i < len(b) {
		switch m.ls {
		case lsInLine:
			k := indexEOL(b[i:])
			if k < 0 {
				i = len(b)
				continue
			}
			i += k
			if b[i] == '\n' {
				m.ls = lsLineStart
			} else {
				m.ls = lsAfterCR
			}
			i++
		case lsLineStart, lsAfterCR:
			c := b[i]
			i++
			switch {
			case c == '\r' || (c == '\n' && m.ls == lsLineStart):
				m.scanned = i
				return i, c == '\r', true
			case c == '\n':
				m.ls = lsLineStart
			default:
				m.ls = lsInLine
			}
		}
	}
	m.scanned = i
	return 0, false, false
}

// dropScan runs the line state over chunk while an event is dropped and
// returns how much of chunk it consumed: all of it, or up to the blank
// line that ends the event (after which it writes the replacement).
func (m *SSEMasker) dropScan(chunk []byte) int {
	for i := 0; i < len(chunk); {
		if m.ls == lsInLine {
			k := indexEOL(chunk[i:])
			if k < 0 {
				break
			}
			i += k
			if chunk[i] == '\n' {
				m.ls = lsLineStart
			} else {
				m.ls = lsAfterCR
			}
			i++
			continue
		}
		c := chunk[i]
		i++
		switch {
		case c == '\r' || (c == '\n' && m.ls == lsLineStart):
			m.dropped += i
			m.emitDropped()
			m.dropping = false
			m.ls = lsLineStart
			if c == '\r' {
				m.skipLF = lfDrop
			}
			return i
		case c == '\n':
			m.ls = lsLineStart
		default:
			m.ls = lsInLine
		}
	}
	m.dropped += len(chunk)
	return len(chunk)
}

func (m *SSEMasker) emitDropped() {
	if m.oversize != nil {
		m.out = append(m.out, m.oversize(m.dropped)...)
	} else {
		m.out = append(m.out, ": [airlock: event over "...)
		m.out = strconv.AppendInt(m.out, int64(m.max), 10)
		m.out = append(m.out, " bytes dropped]\n\n"...)
	}
	m.counts.Add(DroppedType, 1)
	if m.onEvent != nil {
		m.onEvent(Event{Dropped: m.dropped, Counts: Counts{DroppedType: 1}})
	}
	m.dropped = 0
}

// emit masks one event (complete: ended by a blank line) and writes it;
// verbatim reports that it went out as it came.
func (m *SSEMasker) emit(ev []byte, complete bool) (verbatim bool) {
	var ev0 Event
	ndata := 0
	var data []byte
	var lineCounts Counts // what is masked in lines other than data
	for i := 0; i < len(ev); {
		line, next := nextLine(ev, i)
		i = next
		if len(line) == 0 {
			break
		}
		name, value := field(line)
		if string(name) == "data" {
			switch ndata {
			case 0:
				data = value
			case 1:
				m.data = append(append(append(m.data[:0], data...), '\n'), value...)
				data = m.data
			default:
				m.data = append(append(m.data, '\n'), value...)
				data = m.data
			}
			ndata++
			continue
		}
		masked, c := m.maskLine(line)
		lineCounts.Merge(c)
		switch string(name) {
		case "event":
			_, ev0.Type = field(masked)
		case "id":
			_, ev0.ID = field(masked)
		}
	}
	var masked []byte
	var counts Counts
	if ndata > 0 {
		masked, counts, ev0.JSON, ev0.Own = m.maskData(data, ndata)
	}
	verbatim = len(counts) == 0 && len(lineCounts) == 0
	if verbatim {
		m.out = append(m.out, ev...)
	} else {
		m.rewrite(ev, masked, complete)
		counts.Merge(lineCounts)
	}
	m.counts.Merge(counts)
	if m.onEvent != nil && (ndata > 0 || len(counts) > 0) {
		ev0.HasData = ndata > 0
		ev0.Data = masked
		ev0.Counts = counts
		m.onEvent(ev0)
	}
	return verbatim
}

// rewrite writes an event again with its data replaced by masked and its
// other lines masked (maskLine).
func (m *SSEMasker) rewrite(ev, masked []byte, complete bool) {
	wroteData := false
	for i := 0; i < len(ev); {
		line, next := nextLine(ev, i)
		i = next
		if len(line) == 0 {
			break
		}
		name, _ := field(line)
		if string(name) != "data" {
			l, _ := m.maskLine(line)
			m.out = append(append(m.out, l...), '\n')
			continue
		}
		if wroteData {
			continue
		}
		wroteData = true
		for {
			k := bytes.IndexByte(masked, '\n')
			if k < 0 {
				break
			}
			m.out = append(append(append(m.out, "data: "...), masked[:k]...), '\n')
			masked = masked[k+1:]
		}
		m.out = append(append(append(m.out, "data: "...), masked...), '\n')
	}
	if complete {
		m.out = append(m.out, '\n')
	}
}
