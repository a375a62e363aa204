package mask

// The masking of one event's lines and data: what sse.go's stream masker
// calls once it has cut an event out of the stream.

import (
	"bytes"
)

// indexEOL is the index of the first '\r' or '\n' in b, or -1.
func indexEOL(b []byte) int {
	nl := bytes.IndexByte(b, '\n')
	lim := nl
	if nl < 0 {
		lim = len(b)
	}
	if cr := bytes.IndexByte(b[:lim], '\r'); cr >= 0 {
		return cr
	}
	return nl
}

// nextLine splits ev at i into a line and the index of the next one.
func nextLine(ev []byte, i int) (line []byte, next int) {
	k := indexEOL(ev[i:])
	if k < 0 {
		return ev[i:], len(ev)
	}
	next = i + k + 1
	if ev[i+k] == '\r' && next < len(ev) && ev[next] == '\n' {
		next++
	}
	return ev[i : i+k], next
}

// field splits an SSE line into its field name and value.
func field(line []byte) (name, value []byte) {
	c := bytes.IndexByte(line, ':')
	if c < 0 {
		return line, nil
	}
	value = line[c+1:]
	if len(value) > 0 && value[0] == ' ' {
		value = value[1:]
	}
	return line[:c], value
}

// valueField reports whether a field's value (not the whole line) is
// masked: "id", "event" and "retry" are identifiers, masked as text
// without the card detector (a numeric event id is not a card number,
// and masking it would break Last-Event-ID resumption).
func valueField(name []byte) bool {
	switch string(name) {
	case "id", "event", "retry":
		return true
	}
	return false
}

// maskLine masks one line other than data: an id, event or retry value,
// or a comment or unknown field whole. It returns line itself when
// nothing is masked.
func (m *SSEMasker) maskLine(line []byte) ([]byte, Counts) {
	name, value := field(line)
	if !valueField(name) {
		return m.p.MaskText(line)
	}
	if m.idp == nil {
		m.idp = m.p.withoutCards()
	}
	v, c := m.idp.MaskText(value)
	if len(c) == 0 {
		return line, nil
	}
	head := line[:len(line)-len(value)]
	return append(append(make([]byte, 0, len(head)+len(v)), head...), v...), c
}

// withoutCards is p with the card detector off.
func (p *Profile) withoutCards() *Profile {
	if !p.on(dCard) {
		return p
	}
	q := *p
	q.det &^= dCard
	q.trig = buildTriggers(&q)
	return &q
}

// maskData masks an event's data, lines joined by "\n" as clients join
// them: as JSON when it is JSON; else, when it has several lines, as JSON
// when the lines run together (a line break cut a JSON string: the masked
// document then goes out as one data line) are; else as text, where a
// token a line break cuts in two is found in the lines run together and
// masked whole (maskCrossing).
func (m *SSEMasker) maskData(d []byte, lines int) (out []byte, counts Counts, json, own bool) {
	for _, c := range d {
		if c == ' ' || c == '\t' || c == '\n' {
			continue
		}
		if c == '{' || c == '[' || c == '"' || c == '-' || c == 't' || c == 'f' || c == 'n' || isDigit(c) {
			if out, counts, err := m.p.MaskJSON(d); err == nil {
				// Something masked: out is MaskJSON's new output.
				return out, counts, true, len(counts) > 0
			}
			if lines > 1 {
				m.cat = runTogether(m.cat[:0], d)
				if out, counts, err := m.p.MaskJSON(m.cat); err == nil {
					if len(counts) == 0 {
						// d as it came: its line breaks may fall inside
						// a string, so it is not known to be JSON.
						return d, nil, false, false
					}
					return out, counts, true, true
				}
			}
		}
		break
	}
	out, counts = m.p.MaskText(d)
	if lines > 1 {
		out, counts = m.maskCrossing(out, counts)
	}
	return out, counts, false, false
}

// runTogether appends d without its line breaks to dst.
func runTogether(dst, d []byte) []byte {
	for {
		k := bytes.IndexByte(d, '\n')
		if k < 0 {
			return append(dst, d...)
		}
		dst = append(dst, d[:k]...)
		d = d[k+1:]
	}
}

// maskCrossing masks in d (data lines joined by "\n", already masked as
// text) the secrets that only show with the lines run together: those
// that a line break cuts (data: AKIAIOSF / data: ODNN7EXAMPLE). The mask
// takes the line break's place.
func (m *SSEMasker) maskCrossing(d []byte, counts Counts) ([]byte, Counts) {
	m.nls = m.nls[:0]
	for i, c := range d {
		if c == '\n' {
			m.nls = append(m.nls, i)
		}
	}
	if len(m.nls) == 0 {
		return d, counts
	}
	m.cat = runTogether(m.cat[:0], d)
	ms := m.p.scanText(m.cat, m.ms[:0], false)
	m.ms = ms[:0]
	// A break after line j sits at m.nls[j]-j in cat: before cat[m.nls[j]-j].
	toD := func(k int) int {
		n := 0
		for _, p := range m.nls {
			if p-n > k {
				break
			}
			n++
		}
		return k + n
	}
	var cross []match
	for _, mt := range ms {
		for j, p := range m.nls {
			if b := p - j; mt.s < b && b < mt.e {
				cross = append(cross, match{toD(mt.s), toD(mt.e-1) + 1, mt.typ})
				break
			}
		}
	}
	if len(cross) == 0 {
		return d, counts
	}
	for _, mt := range cross {
		counts.Add(mt.typ, 1)
	}
	return applyMatches(make([]byte, 0, len(d)), d, cross), counts
}
