package clickhouse

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/airlock-mcp/airlock/internal/audit"
)

// aliased returns a copy of r whose strings all point into one buffer,
// as the shipper's decoded rows point into the segment it read, and that
// buffer (to overwrite once the row was added).
func aliased(r audit.Record) (audit.Record, []byte) {
	var buf []byte
	var offs [][2]int
	keep := func(s string) {
		offs = append(offs, [2]int{len(buf), len(s)})
		buf = append(buf, s...)
	}
	// Two passes: collect the strings, then point the copy's strings
	// into the finished buffer.
	visit(r, func(s *string) { keep(*s) })
	i := 0
	c := clone(r)
	visit(c, func(s *string) {
		o := offs[i]
		i++
		if o[1] > 0 {
			*s = unsafe.String(&buf[o[0]], o[1])
		}
	})
	return c, buf
}

func clone(r audit.Record) audit.Record {
	switch v := r.(type) {
	case *audit.Event:
		c := *v
		c.Masked = make(map[string]int, len(v.Masked))
		for k, n := range v.Masked {
			c.Masked[k] = n
		}
		return &c
	case *audit.Decision:
		c := *v
		return &c
	case *audit.RequestEvent:
		c := *v
		return &c
	case *audit.GrantEvent:
		c := *v
		c.Tools = append([]string(nil), v.Tools...)
		return &c
	}
	panic(fmt.Sprintf("%T", r))
}

// visit calls f on every string field of r (mask types are map keys:
// rebuilt with f applied).
func visit(r audit.Record, f func(*string)) {
	switch v := r.(type) {
	case *audit.Event:
		for _, s := range []*string{&v.EventID, &v.SessionID, &v.Principal, &v.ClientID, &v.Issuer, &v.Target, (*string)(&v.Direction),
			&v.Method, &v.Tool, &v.JSONRPCID, &v.DecisionID, &v.GrantID, &v.Outcome, &v.Payload} {
			f(s)
		}
		keys := make([]string, 0, len(v.Masked))
		for k := range v.Masked {
			keys = append(keys, k)
		}
		slicesSort(keys)
		m := make(map[string]int, len(keys))
		for _, k := range keys {
			n := v.Masked[k]
			f(&k)
			m[k] = n
		}
		if v.Masked != nil {
			v.Masked = m
		}
	case *audit.Decision:
		for _, s := range []*string{&v.DecisionID, &v.SessionID, &v.Principal, &v.ClientID, &v.Issuer, &v.Target, &v.Method, &v.Tool,
			&v.JSONRPCID, &v.Outcome, &v.Reason, &v.PolicyVersion, &v.GrantID, &v.RequestID, &v.TraceID} {
			f(s)
		}
	case *audit.RequestEvent:
		for _, s := range []*string{&v.EventID, &v.RequestID, &v.FromState, &v.ToState, &v.Actor, &v.Principal, &v.ClientID, &v.Target,
			&v.Method, &v.Tool, &v.Reason, &v.DecisionID, &v.GrantID} {
			f(s)
		}
	case *audit.GrantEvent:
		for _, s := range []*string{&v.EventID, &v.GrantID, &v.Transition, &v.Actor, &v.Principal, &v.ClientID, &v.Target, &v.RequestID, &v.Reason} {
			f(s)
		}
		for i := range v.Tools {
			f(&v.Tools[i])
		}
	}
}

func slicesSort(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// deepCols copies a builder's columns, strings included, so that they can
// be compared after the builder moved on.
func deepCols(cols []any) []any {
	out := make([]any, len(cols))
	for i, c := range cols {
		switch v := c.(type) {
		case []string:
			cp := make([]string, len(v))
			for j, s := range v {
				cp[j] = strings.Clone(s)
			}
			out[i] = cp
		case [][]string:
			cp := make([][]string, len(v))
			for j, row := range v {
				cp[j] = make([]string, len(row))
				for k, s := range row {
					cp[j][k] = strings.Clone(s)
				}
			}
			out[i] = cp
		default:
			rv := reflect.ValueOf(c)
			cp := reflect.MakeSlice(rv.Type(), rv.Len(), rv.Len())
			reflect.Copy(cp, rv)
			out[i] = cp.Interface()
		}
	}
	return out
}

// A builder copies what it keeps of a row (the row's strings may point
// into a buffer the shipper reads the next segment into), and a builder
// reused batch after batch builds exactly the columns a new one does.
func TestBuildersCopyAndReuse(t *testing.T) {
	recs := sampleRecords()
	for _, e := range sessionEvents("s-reuse", 40, t0) {
		e.EventID = audit.NewID()
		recs = append(recs, e)
	}
	// Each batch: a different slice of the rows, so that a stale row or
	// byte of an earlier batch would show.
	batches := [][]audit.Record{recs, recs[2:5], recs[5:], recs[:1], nil, recs}
	reused := [audit.NumKinds]colBuilder{}
	for k := audit.KindEvent; int(k) < audit.NumKinds; k++ {
		reused[k] = newColBuilder(k)
	}
	for bi, batch := range batches {
		fresh := [audit.NumKinds]colBuilder{}
		for k := audit.KindEvent; int(k) < audit.NumKinds; k++ {
			fresh[k] = newColBuilder(k)
		}
		for _, r := range batch {
			a, buf := aliased(r)
			reused[audit.KindOf(r)].add(a)
			for i := range buf {
				buf[i] = '#' // the shipper reads the next segment into it
			}
			fresh[audit.KindOf(r)].add(clone(r))
		}
		for k := audit.KindEvent; int(k) < audit.NumKinds; k++ {
			got, want := deepCols(reused[k].columns()), deepCols(fresh[k].columns())
			if reused[k].len() != fresh[k].len() || !reflect.DeepEqual(got, want) {
				t.Errorf("batch %d, %s columns:\n got %v\nwant %v", bi, tableOf[k], got, want)
			}
			reused[k].reset()
		}
	}
}

// A builder that once held a batch of large payloads lets that memory go
// once batches are smaller for a while; under a load, steady or bursty,
// it keeps it.
func TestBuilderLetsGoOfABigBatch(t *testing.T) {
	c := &eventCols{}
	big := strings.Repeat("x", 64<<10)
	fill := func(n int, payload string) {
		for i := range n {
			c.add(&audit.Event{EventID: fmt.Sprint(i), Payload: payload})
		}
	}
	fill(200, big) // 12.5 MiB of payloads: more than keepArena
	c.reset()
	if cap(c.a.buf) > keepArena {
		t.Errorf("after a batch of %d MiB the arena keeps a block of %d bytes, over keepArena", 200*len(big)>>20, cap(c.a.buf))
	}
	for range 2 * smallBatches { // lets go of the big block, too large for these
		fill(10000, "small payload")
		c.reset()
	}
	kept, keptArena := cap(c.id), cap(c.a.buf)
	if kept < 10000 || keptArena == 0 || keptArena > 1<<20 {
		t.Fatalf("steady batches of 10,000 rows: kept %d rows and %d arena bytes, want them kept (the arena about their size)", kept, keptArena)
	}
	// A bursty load: a few small batches between full ones keep it all.
	for range 3 {
		for range smallBatches - 1 {
			fill(10, "small payload")
			c.reset()
		}
		fill(10000, "small payload")
		c.reset()
		if cap(c.id) != kept || cap(c.a.buf) != keptArena {
			t.Fatalf("bursty batches regrew the columns (%d -> %d rows) or the arena (%d -> %d bytes)", kept, cap(c.id), keptArena, cap(c.a.buf))
		}
	}
	// A lighter load for a while lets it go.
	for i := range smallBatches {
		if cap(c.id) == 0 {
			t.Fatalf("let go after %d small batches, want %d", i, smallBatches)
		}
		fill(10, "small payload")
		c.reset()
	}
	if cap(c.id) != 0 || cap(c.payload) != 0 || cap(c.a.buf) != 0 {
		t.Errorf("after %d batches of 10 rows: %d rows and %d arena bytes kept, want none", smallBatches, cap(c.id), cap(c.a.buf))
	}
	fill(keepRows+1, "")
	c.reset()
	if cap(c.id) != 0 {
		t.Errorf("a batch of more than keepRows rows: %d rows kept", cap(c.id))
	}
}

// A batch larger than a block goes in several blocks of one INSERT: every
// row lands, and ClickHouse still makes one part of them (it squashes an
// INSERT's blocks), not one per block to merge.
func TestInsertInBlocks(t *testing.T) {
	srv := sharedServer(t)
	db := testDB(t)
	ch, err := dialClickHouse(testConfig(t, srv.Addr(), db).ClickHouse, nopLog())
	if err != nil {
		t.Fatal(err)
	}
	defer ch.close()
	batch := ch.newBatch()
	recs := benchDecisions(3*blockRows + 5)
	for round := range 2 { // the second with the builders' reused columns
		for _, r := range recs {
			r.DecisionID = audit.NewID()
			batch.Add(r)
		}
		if err := batch.Send(ctxT(t, time.Minute)); err != nil {
			t.Fatal(err)
		}
		batch.Reset()
		conn := connect(t, srv.Addr())
		if n := count(t, conn, "SELECT count() FROM "+db+".decisions"); n != uint64((round+1)*len(recs)) {
			t.Fatalf("round %d: %d rows in ClickHouse, want %d", round, n, (round+1)*len(recs))
		}
		if n := count(t, conn, "SELECT uniqExact(decision_id) FROM "+db+".decisions"); n != uint64((round+1)*len(recs)) {
			t.Fatalf("round %d: %d distinct decision ids, want %d", round, n, (round+1)*len(recs))
		}
		if round == 0 {
			if n := count(t, conn, "SELECT count() FROM system.parts WHERE database = '"+db+"' AND table = 'decisions' AND active"); n != 1 {
				t.Errorf("one INSERT of %d rows in blocks of %d made %d parts, want 1", len(recs), blockRows, n)
			}
		}
	}
}
