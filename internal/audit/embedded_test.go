package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func embeddedConfig(t *testing.T) Config {
	c := Defaults()
	c.Embedded.Dir = t.TempDir()
	c.Spool.FsyncInterval = 5 * time.Millisecond
	return c
}

func openEmbedded(t *testing.T, cfg Config) *Embedded {
	t.Helper()
	e, err := OpenEmbedded(cfg, Options{retentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(ctxT(t, 10*time.Second)) })
	return e
}

// TestEmbeddedReopenAndReader: rows survive a restart; a torn last line
// (crash mid-write) is cut off at reopen; a read-only reader sees the
// same sessions.
func TestEmbeddedReopenAndReader(t *testing.T) {
	cfg := embeddedConfig(t)
	cfg.Embedded.RetentionDays = 0 // sampleRecords are from March
	e, err := OpenEmbedded(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Truncate(time.Second)
	evs := sessionEvents("r1", 10, base)
	for _, ev := range evs {
		if err := e.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range sampleRecords()[2:] {
		if err := e.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(ctxT(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := e.Record(&Event{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	name := filepath.Join(cfg.Embedded.Dir, dayFileName(dayKey{kindEvent, dayOf(base)}))
	f, err := os.OpenFile(name, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"event_id":"torn","session_id":"r1","ti`)
	f.Close()

	r, err := OpenEmbeddedReader(cfg.Embedded.Dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t, time.Minute)
	readerTrail, err := r.Replay(ctx, "r1")
	if err != nil || len(readerTrail.Events) != 10 {
		t.Fatalf("reader replay: %+v, %v", readerTrail, err)
	}

	e2 := openEmbedded(t, cfg)
	more := sessionEvents("r1", 12, base)[10:]
	for _, ev := range more {
		if err := e2.Record(ev); err != nil {
			t.Fatal(err)
		}
	}
	if err := e2.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := e2.Replay(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	var want []Event
	for _, ev := range append(evs, more...) {
		want = append(want, normalizeEvent(*ev))
	}
	if d := cmp.Diff(want, got.Events); d != "" {
		t.Fatalf("replay after reopen (-want +got):\n%s", d)
	}
	for _, prefix := range []string{"decisions", "requests", "grants"} {
		matches, _ := filepath.Glob(filepath.Join(cfg.Embedded.Dir, prefix+"-*.jsonl"))
		if len(matches) != 1 {
			t.Errorf("%s files: %v", prefix, matches)
		}
	}
	if _, err := OpenEmbedded(cfg, Options{}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second writer: %v", err)
	}
}

// TestEmbeddedRetention: day files past the retention are deleted at
// open, and their sessions leave the index.
func TestEmbeddedRetention(t *testing.T) {
	cfg := embeddedConfig(t)
	cfg.Embedded.RetentionDays = 3
	e, err := OpenEmbedded(cfg, Options{retentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, age := range []int{0, 3, 4, 10} {
		at := now.AddDate(0, 0, -age)
		e.Record(&Event{Time: at, SessionID: "age" + at.Format("0102")})
		e.Record(&Decision{Time: at})
	}
	e.Close(ctxT(t, 10*time.Second))
	e2 := openEmbedded(t, cfg)
	sums, _ := e2.Sessions(ctxT(t, time.Minute), SessionFilter{})
	if len(sums) != 2 {
		t.Fatalf("sessions after retention: %+v", sums)
	}
	files, _ := listDayFiles(cfg.Embedded.Dir)
	if len(files) != 4 {
		t.Fatalf("files after retention: %+v", files)
	}
}

// TestEmbeddedFull: while writes fail the queue fills; fail_closed then
// refuses rows; when writes work again everything queued is stored.
func TestEmbeddedFull(t *testing.T) {
	cfg := embeddedConfig(t)
	cfg.Embedded.MaxPendingBytes = 1 << 16
	cfg.Spool.FullPolicy = FailClosed
	now := time.Now().UTC()
	// A directory where today's events file belongs makes every write fail.
	block := filepath.Join(cfg.Embedded.Dir, dayFileName(dayKey{kindEvent, dayOf(now)}))
	if err := os.MkdirAll(block, 0o700); err != nil {
		t.Fatal(err)
	}
	e := openEmbedded(t, cfg)
	accepted, refused := 0, 0
	for range 1000 {
		switch err := e.Record(&Event{SessionID: "f", Time: now, Payload: strings.Repeat("x", 200)}); {
		case err == nil:
			accepted++
		case errors.Is(err, ErrSpoolFull):
			refused++
		default:
			t.Fatal(err)
		}
	}
	if refused == 0 || !e.Stats().Full {
		t.Fatalf("accepted %d refused %d stats %+v", accepted, refused, e.Stats())
	}
	if err := os.Remove(block); err != nil {
		t.Fatal(err)
	}
	if err := e.Drain(ctxT(t, time.Minute)); err != nil {
		t.Fatal(err)
	}
	sums, _ := e.Sessions(ctxT(t, time.Minute), SessionFilter{})
	if len(sums) != 1 || sums[0].Events != int64(accepted) {
		t.Fatalf("stored %+v, accepted %d", sums, accepted)
	}
	if e.Stats().Full {
		t.Fatal("still full after draining")
	}
}

func BenchmarkEmbeddedRecord(b *testing.B) {
	c := Defaults()
	c.Embedded.Dir = b.TempDir()
	e, err := OpenEmbedded(c, Options{retentionEvery: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close(context.Background())
	tmpl := sessionEvents("s1", 1, t0)[0]
	b.ReportAllocs()
	for b.Loop() {
		ev := *tmpl
		ev.EventID, ev.Time = "", time.Time{}
		if err := e.Record(&ev); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Drain(context.Background()); err != nil {
		b.Fatal(err)
	}
}

// TestEmbeddedSessionFilters: the client, tool and outcome filters keep
// the sessions with such a message or decision, also after a restart
// (the index is rebuilt from the day files).
func TestEmbeddedSessionFilters(t *testing.T) {
	cfg := embeddedConfig(t)
	e, err := OpenEmbedded(cfg, Options{retentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Truncate(time.Second)
	a := sessionEvents("fa", 4, base)
	b := sessionEvents("fb", 4, base.Add(time.Second))
	for _, ev := range b {
		ev.ClientID = "agent-2"
	}
	recs := []Record{
		&Decision{Time: base.Add(time.Millisecond), SessionID: "fa", Principal: "alice@example.com", ClientID: "agent-1",
			Target: "github", Method: "tools/call", Tool: "get_env", Outcome: "deny"},
		&Decision{Time: base.Add(time.Second), SessionID: "fb", Principal: "alice@example.com", ClientID: "agent-2",
			Target: "github", Method: "tools/call", Tool: "delete_repository", Outcome: "allow", RequestID: "req-1"},
	}
	for _, ev := range append(a, b...) {
		recs = append(recs, ev)
	}
	for _, r := range recs {
		if err := e.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t, time.Minute)
	check := func(st Store, when string) {
		t.Helper()
		for _, tc := range []struct {
			f    SessionFilter
			want []string
		}{
			{SessionFilter{}, []string{"fb", "fa"}},
			{SessionFilter{ClientID: "agent-2"}, []string{"fb"}},
			{SessionFilter{Tool: "get_env"}, []string{"fa"}},
			{SessionFilter{Tool: "search_issues"}, []string{"fb", "fa"}},
			{SessionFilter{Outcome: "deny"}, []string{"fa"}},
			{SessionFilter{Outcome: "deny", ClientID: "agent-2"}, nil},
			{SessionFilter{Tool: "delete_repository", Outcome: "allow"}, []string{"fb"}},
		} {
			sums, err := st.Sessions(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, s := range sums {
				got = append(got, s.SessionID)
			}
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("%s: Sessions(%+v) (-want +got):\n%s", when, tc.f, d)
			}
		}
	}
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	check(e, "live")
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	check(openEmbedded(t, cfg), "reopened")
}
