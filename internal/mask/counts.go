package mask

import (
	"sort"
	"strconv"
	"strings"
)

// Counts says how many values of each mask type were replaced: the type is
// the text inside the mask ("aws_access_key", "field:password", a custom
// pattern's type), never any of the masked text. A nil Counts is empty and
// ready to use; Add and Merge allocate on first use.
type Counts map[string]int

// Add records n masks of type typ.
func (c *Counts) Add(typ string, n int) {
	if n == 0 {
		return
	}
	if *c == nil {
		*c = make(Counts)
	}
	(*c)[typ] += n
}

// Merge adds every count of o to c.
func (c *Counts) Merge(o Counts) {
	for typ, n := range o {
		c.Add(typ, n)
	}
}

// Total is the number of masks of all types.
func (c Counts) Total() int {
	t := 0
	for _, n := range c {
		t += n
	}
	return t
}

// Types lists the mask types in c, sorted.
func (c Counts) Types() []string {
	ts := make([]string, 0, len(c))
	for typ := range c {
		ts = append(ts, typ)
	}
	sort.Strings(ts)
	return ts
}

// String renders c as "type=n" pairs sorted by type, e.g.
// "aws_access_key=1 field:password=2"; "" when empty.
func (c Counts) String() string {
	var b strings.Builder
	for i, typ := range c.Types() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(typ)
		b.WriteByte('=')
		b.WriteString(strconv.Itoa(c[typ]))
	}
	return b.String()
}

// tally collects mask types during one masking call as a list, so that an
// attempt that is abandoned (a string that looked like JSON but was not)
// can be undone by truncating it; counts() turns it into Counts at the end.
type tally []string

func (t tally) counts() Counts {
	if len(t) == 0 {
		return nil
	}
	c := make(Counts, 4)
	for _, typ := range t {
		c[typ]++
	}
	return c
}
