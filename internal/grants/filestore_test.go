package grants

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func openStore(t *testing.T, dir string, compact int64) *FileStore {
	t.Helper()
	s, err := OpenFileStore(dir, FileStoreOptions{CompactBytes: compact})
	if err != nil {
		t.Fatalf("OpenFileStore: %v", err)
	}
	return s
}

func sampleRequest(id string, version uint64) Request {
	return Request{
		ID: id, Version: version, State: RequestPending, Principal: alice, Target: "github", Kind: KindTool,
		Tool: "delete_repository", Arguments: json.RawMessage(`{"repo":"acme/test"}`),
		Terms:     Terms{ApproverGroups: []string{"sre"}, Threshold: 1, SingleUse: true},
		CreatedAt: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC), ExpiresAt: time.Date(2026, 3, 1, 9, 10, 0, 0, time.UTC),
		CallKey: "k-" + id,
	}
}

func sortedSnapshot(s Snapshot) Snapshot {
	slices.SortFunc(s.Requests, func(a, b Request) int { return strings.Compare(a.ID, b.ID) })
	slices.SortFunc(s.Grants, func(a, b Grant) int { return strings.Compare(a.ID, b.ID) })
	return s
}

func load(t *testing.T, s Store) Snapshot {
	t.Helper()
	snap, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return sortedSnapshot(snap)
}

func TestStoreContract(t *testing.T) {
	stores := map[string]func(t *testing.T) Store{
		"mem":  func(t *testing.T) Store { return NewMemStore() },
		"file": func(t *testing.T) Store { return openStore(t, t.TempDir(), 0) },
	}
	for name, mk := range stores {
		t.Run(name, func(t *testing.T) {
			s := mk(t)
			defer s.Close()
			ctx := context.Background()
			steps := []struct {
				name    string
				m       Mutation
				wantErr error
			}{
				{"insert", Mutation{Requests: []Request{sampleRequest("req_a", 1), sampleRequest("req_b", 1)}}, nil},
				{"insert existing", Mutation{Requests: []Request{sampleRequest("req_a", 1)}}, ErrConflict},
				{"update", Mutation{Requests: []Request{sampleRequest("req_a", 2)}, Grants: []Grant{{ID: "gr_a", Version: 1, RequestID: "req_a", State: GrantActive}}}, nil},
				{"lost update", Mutation{Requests: []Request{sampleRequest("req_a", 2)}}, ErrConflict},
				{"all or nothing", Mutation{Requests: []Request{sampleRequest("req_c", 1), sampleRequest("req_b", 5)}}, ErrConflict},
				{"no id", Mutation{Grants: []Grant{{Version: 1}}}, ErrInvalid},
				{"drop", Mutation{DropRequests: []string{"req_b"}}, nil},
			}
			for _, st := range steps {
				err := s.Apply(ctx, st.m)
				if !errors.Is(err, st.wantErr) || (st.wantErr == nil && err != nil) {
					t.Fatalf("%s: err = %v, want %v", st.name, err, st.wantErr)
				}
			}
			got := load(t, s)
			want := Snapshot{Requests: []Request{sampleRequest("req_a", 2)}, Grants: []Grant{{ID: "gr_a", Version: 1, RequestID: "req_a", State: GrantActive}}}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// writeRecords applies n mutations (tiny ones when tiny) and returns the
// log's bytes and the offset where each frame ends.
func writeRecords(t *testing.T, dir string, n int, tiny bool) ([]byte, []int) {
	t.Helper()
	s := openStore(t, dir, 1<<30)
	var ends []int
	for i := range n {
		m := Mutation{Requests: []Request{sampleRequest("req_"+itoa(i), 1)}}
		if tiny {
			m = Mutation{DropGrants: []string{"g"}}
		}
		if err := s.Apply(context.Background(), m); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, int(s.walSize))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, walFile))
	if err != nil {
		t.Fatal(err)
	}
	return data, ends
}

// TestTornTail cuts the log at every byte: recovery keeps exactly the
// frames that are whole (counted by sequence number), cuts the rest off,
// and accepts new writes after them.
func TestTornTail(t *testing.T) {
	data, ends := writeRecords(t, t.TempDir(), 3, true)
	for cut := len(walMagic); cut <= len(data); cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, walFile), data[:cut], 0o600); err != nil {
			t.Fatal(err)
		}
		whole := uint64(0)
		for _, e := range ends {
			if e <= cut {
				whole++
			}
		}
		s := openStore(t, dir, 1<<30)
		if s.seq != whole {
			t.Fatalf("cut at %d: recovered %d records, want %d", cut, s.seq, whole)
		}
		if cut%5 != 0 && cut != len(data) {
			s.Close() // fsync is slow on some disks: write after every fifth cut only
			continue
		}
		if err := s.Apply(context.Background(), Mutation{Requests: []Request{sampleRequest("req_new", 1)}}); err != nil {
			t.Fatalf("cut at %d: write after recovery: %v", cut, err)
		}
		s.Close()
		s = openStore(t, dir, 1<<30)
		if s.seq != whole+1 || len(load(t, s).Requests) != 1 {
			t.Fatalf("cut at %d: after a write and reopen: %d records, want %d", cut, s.seq, whole+1)
		}
		s.Close()
	}
}

func TestDamage(t *testing.T) {
	master := t.TempDir()
	data, ends := writeRecords(t, master, 4, false)
	tests := []struct {
		name    string
		damage  func([]byte) []byte
		wantErr error
		want    int // records recovered when no error
	}{
		{"zeros after the last frame", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, nil, 4},
		{"zeros in place of the last frame", func(b []byte) []byte {
			copy(b[ends[2]:], make([]byte, len(b)-ends[2]))
			return b
		}, nil, 3},
		{"last frame's payload flipped", func(b []byte) []byte { b[len(b)-2] ^= 0xff; return b }, nil, 3},
		{"middle frame's payload flipped", func(b []byte) []byte { b[ends[0]+frameHeader+5] ^= 0xff; return b }, ErrCorrupt, 0},
		{"middle frame's length flipped", func(b []byte) []byte { b[ends[0]] ^= 0x01; return b }, ErrCorrupt, 0},
		{"garbage after the last frame", func(b []byte) []byte { return append(b, "garbage, not zeros"...) }, ErrCorrupt, 0},
		{"unknown header", func(b []byte) []byte { b[0] = 'X'; return b }, ErrCorrupt, 0},
		{"shorter than the header", func(b []byte) []byte { return b[:5] }, ErrCorrupt, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, walFile), tt.damage(bytes.Clone(data)), 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := OpenFileStore(dir, FileStoreOptions{})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), walFile) {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if got := len(load(t, s).Requests); got != tt.want {
				t.Fatalf("%d records, want %d", got, tt.want)
			}
		})
	}
}

func TestCompaction(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 2048)
	ctx := context.Background()
	for i := range 40 {
		id := "req_" + itoa(i%10)
		if err := s.Apply(ctx, Mutation{Requests: []Request{sampleRequest(id, uint64(i/10+1))}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Apply(ctx, Mutation{DropRequests: []string{"req_0"}}); err != nil {
		t.Fatal(err)
	}
	want := load(t, s)
	if _, err := os.Stat(filepath.Join(dir, snapshotFile)); err != nil {
		t.Fatalf("no snapshot after compaction: %v", err)
	}
	if s.walSize > max(2048, s.snapSize) {
		t.Errorf("log is %d bytes, past the compaction threshold (%d) and the snapshot (%d)", s.walSize, 2048, s.snapSize)
	}
	s.Close()
	s = openStore(t, dir, 2048)
	defer s.Close()
	if diff := cmp.Diff(want, load(t, s)); diff != "" {
		t.Errorf("after reopen (-want +got):\n%s", diff)
	}
	if len(want.Requests) != 9 {
		t.Errorf("%d requests, want 9", len(want.Requests))
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}
}

// TestCrashBetweenSnapshotAndLogReset: the snapshot is in place but the
// log still holds the records it folded in; they are skipped by sequence.
func TestCrashBetweenSnapshotAndLogReset(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 1<<30)
	ctx := context.Background()
	for i := range 3 {
		if err := s.Apply(ctx, Mutation{Requests: []Request{sampleRequest("req_"+itoa(i), 1)}}); err != nil {
			t.Fatal(err)
		}
	}
	oldLog, _ := os.ReadFile(filepath.Join(dir, walFile))
	s.mu.Lock()
	if err := s.compact(); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, walFile), oldLog, 0o600); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir, 1<<30)
	if got := len(load(t, s).Requests); got != 3 {
		t.Fatalf("%d records, want 3", got)
	}
	if err := s.Apply(ctx, Mutation{Requests: []Request{sampleRequest("req_0", 2)}}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openStore(t, dir, 1<<30)
	defer s.Close()
	snap := load(t, s)
	if len(snap.Requests) != 3 || snap.Requests[0].Version != 2 {
		t.Fatalf("after a write and reopen: %+v", snap.Requests)
	}
}

func TestSequenceGap(t *testing.T) {
	dir := t.TempDir()
	payload, _ := json.Marshal(walRecord{Seq: 1, Mutation: Mutation{Requests: []Request{sampleRequest("req_a", 1)}}})
	data := appendFrame([]byte(walMagic), payload)
	payload, _ = json.Marshal(walRecord{Seq: 3, Mutation: Mutation{Requests: []Request{sampleRequest("req_b", 1)}}})
	data = appendFrame(data, payload)
	if err := os.WriteFile(filepath.Join(dir, walFile), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestDamagedSnapshot(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 1<<30)
	_ = s.Apply(context.Background(), Mutation{Requests: []Request{sampleRequest("req_a", 1)}})
	s.mu.Lock()
	_ = s.compact()
	s.mu.Unlock()
	s.Close()
	path := filepath.Join(dir, snapshotFile)
	data, _ := os.ReadFile(path)
	data[len(data)-3] ^= 0xff
	_ = os.WriteFile(path, data, 0o600)
	if _, err := OpenFileStore(dir, FileStoreOptions{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("err = %v, want ErrCorrupt", err)
	}
}

func TestStoreLock(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, 0)
	if _, err := OpenFileStore(dir, FileStoreOptions{}); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second open: err = %v, want in use", err)
	}
	s.Close()
	s = openStore(t, dir, 0)
	s.Close()
	if err := s.Apply(context.Background(), Mutation{Requests: []Request{sampleRequest("req_a", 1)}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Apply after Close: %v", err)
	}
}

func TestFilePermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "grants")
	s := openStore(t, dir, 0)
	defer s.Close()
	for _, name := range []string{"", walFile} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %o: others may read call arguments", fi.Name(), perm)
		}
	}
}

// TestRestart runs the service on a FileStore through every kind of
// record, closes it, and checks a new service sees the same world and
// carries on.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newClock()
	cfg := testConfig()
	open := func() *Service {
		st, err := OpenFileStore(dir, FileStoreOptions{CompactBytes: 4096})
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(st, cfg, Options{Now: clk.Now, manualExpiry: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()
	s := open()
	mustOpen := func(tool string, mod func(*OpenParams)) *Request {
		p := openParams(tool, `{"n":1}`, approval(nil))
		if mod != nil {
			mod(&p)
		}
		r, _, err := s.Open(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	pending := mustOpen("pending", nil)
	shortLived := mustOpen("short", nil)
	denied := mustOpen("denied", nil)
	if _, err := s.Decide(ctx, denied.ID, bob, VerdictDeny, "no"); err != nil {
		t.Fatal(err)
	}
	half := mustOpen("half", func(p *OpenParams) { p.Approval.Threshold = 2 })
	if _, err := s.Decide(ctx, half.ID, bob, VerdictApprove, ""); err != nil {
		t.Fatal(err)
	}
	single, _ := s.Decide(ctx, mustOpen("single", nil).ID, bob, VerdictApprove, "")
	used, _ := s.Decide(ctx, mustOpen("used", nil).ID, bob, VerdictApprove, "")
	if _, err := s.Consume(ctx, used.GrantID, "alice"); err != nil {
		t.Fatal(err)
	}
	lasting, _ := s.Decide(ctx, mustOpen("lasting", func(p *OpenParams) {
		p.Approval.SingleUse, p.Approval.GrantDuration = false, 2*time.Hour
	}).ID, bob, VerdictApprove, "")
	for range 3 {
		if _, err := s.Consume(ctx, lasting.GrantID, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	revoked, _ := s.Decide(ctx, mustOpen("revoked", nil).ID, bob, VerdictApprove, "")
	if _, err := s.Revoke(ctx, revoked.GrantID, carol, "oops"); err != nil {
		t.Fatal(err)
	}
	// Many more writes, so the store compacts at least once.
	for i := range 30 {
		r := mustOpen("bulk"+itoa(i), nil)
		if _, err := s.Cancel(ctx, r.ID, Actor{Subject: "alice"}, ""); err != nil {
			t.Fatal(err)
		}
	}
	wantReqs, _ := s.List(ctx, RequestFilter{})
	wantGrants, _ := s.ListGrants(ctx, GrantFilter{})
	wantActive, _ := s.Active(ctx, "alice", "github", clk.Now())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, snapshotFile)); err != nil {
		t.Fatalf("the test meant to cover compaction: %v", err)
	}

	s = open()
	defer s.Close()
	gotReqs, _ := s.List(ctx, RequestFilter{})
	gotGrants, _ := s.ListGrants(ctx, GrantFilter{})
	gotActive, _ := s.Active(ctx, "alice", "github", clk.Now())
	if diff := cmp.Diff(wantReqs, gotReqs); diff != "" {
		t.Errorf("requests after restart (-want +got):\n%s", diff)
	}
	// A time-bound grant's use count is written with its next change only.
	for _, g := range wantGrants {
		if g.ID == lasting.GrantID {
			g.Uses = 0
		}
	}
	if diff := cmp.Diff(wantGrants, gotGrants); diff != "" {
		t.Errorf("grants after restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantActive, gotActive); diff != "" {
		t.Errorf("active grants after restart (-want +got):\n%s", diff)
	}

	// It carries on: the half-approved request completes, the pending one
	// is still pending and joinable, the single-use grant is consumed once.
	if r, err := s.Decide(ctx, half.ID, carol, VerdictApprove, ""); err != nil || r.State != RequestApproved {
		t.Fatalf("second approval after restart: %v %v", r, err)
	}
	if _, joined, err := s.Open(ctx, openParams("pending", `{"n":1}`, approval(nil))); err != nil || !joined {
		t.Fatalf("join after restart: joined=%v err=%v", joined, err)
	}
	if _, err := s.Consume(ctx, single.GrantID, "alice"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Consume(ctx, single.GrantID, "alice"); !errors.Is(err, ErrGrantUsed) {
		t.Fatalf("second consume after restart: %v", err)
	}
	if _, err := s.Consume(ctx, used.GrantID, "alice"); !errors.Is(err, ErrGrantUsed) {
		t.Fatalf("a grant consumed before the restart: %v", err)
	}
	// Deadlines that passed while it was down are kept.
	clk.Add(11 * time.Minute)
	s.sweep()
	for _, id := range []string{pending.ID, shortLived.ID} {
		if r, _ := s.Get(ctx, id); r.State != RequestExpired {
			t.Errorf("request %s is %s after its deadline, want expired", id, r.State)
		}
	}
}
