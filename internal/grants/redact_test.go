package grants

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/mask"
	"github.com/airlock-mcp/airlock/internal/policy"
)

// Fake, correctly shaped secrets (AWS's documented example key, a GitHub
// token of the right shape); the testdata store holds the same ones.
const (
	fakeAWSKey = "AKIAIOSFODNN7EXAMPLE"
	fakeGHP    = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
)

var fakeSecrets = []string{fakeAWSKey, fakeGHP}

// assertNoSecret fails when any fake secret is in b; it says where
// without printing the secret.
func assertNoSecret(t *testing.T, where string, b []byte) {
	t.Helper()
	for i, s := range fakeSecrets {
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds fake secret #%d in clear", where, i)
		}
	}
}

func assertDirHasNoSecret(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		assertNoSecret(t, path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMaskedOnEntry: arguments and every reason (the agent's, an
// approver's, a canceller's, a revoker's) are masked as they enter the
// service, so records, events, the log and the store's files never hold
// them in clear; the grant still matches exactly the arguments approved,
// by hash.
func TestMaskedOnEntry(t *testing.T) {
	dir := t.TempDir()
	fs, err := OpenFileStore(dir, FileStoreOptions{CompactBytes: 1 << 10}) // compacts too: the snapshot is checked as well
	if err != nil {
		t.Fatal(err)
	}
	var logBuf bytes.Buffer
	clk := newClock()
	rec := &recorder{}
	strict, _ := mask.Builtin(mask.StrictProfile)
	s, err := New(fs, testConfig(), Options{Auditor: rec, Now: clk.Now, manualExpiry: true,
		Logger: slog.New(slog.NewJSONHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Mask:   func(target string) *mask.Profile { return map[string]*mask.Profile{"github": strict}[target] }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	args := `{"aws_key": "` + fakeAWSKey + `", "n": 1.0}`
	var out []any // everything the service handed back

	// Opened with a secret in the arguments and the reason, approved with one in the reason.
	p := openParams("deploy", args, approval(nil))
	p.Reason = "use " + fakeAWSKey + " for the deploy"
	r, _, err := s.Open(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Reason, "[MASKED:") || !strings.Contains(string(r.Arguments), "[MASKED:") {
		t.Errorf("opened request keeps reason %q, arguments %s: want both masked", r.Reason, r.Arguments)
	}
	if r.ArgumentsHash != argsHash(t, json.RawMessage(`{"n":1,"aws_key":"`+fakeAWSKey+`"}`)) {
		t.Error("the request's arguments hash is not that of the exact arguments")
	}
	r, err = s.Decide(ctx, r.ID, bob, VerdictApprove, "fine, token "+fakeGHP)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, r)
	if r.Decisions[0].Reason != "fine, token [MASKED:github_token]" {
		t.Errorf("approver's reason kept as %q, want it masked", r.Decisions[0].Reason)
	}

	// The grant covers the exact arguments (as JSON values), not others
	// that mask the same.
	in, err := s.ActiveForPrincipal(ctx, alice, "github", clk.Now())
	if err != nil || len(in) != 1 {
		t.Fatalf("active grants %v, %v", in, err)
	}
	if got := policy.CoveringGrants(in, json.RawMessage(`{"n":1,"aws_key":"`+fakeAWSKey+`"}`)); len(got) != 1 {
		t.Error("the grant does not cover the call it was approved for")
	}
	other := strings.Replace(fakeAWSKey, "EXAMPLE", "EXAMPLF", 1)
	if got := policy.CoveringGrants(in, json.RawMessage(`{"n":1,"aws_key":"`+other+`"}`)); len(got) != 0 {
		t.Error("the grant covers a call with another key that masks the same")
	}
	assertNoSecret(t, "the grant as policy input", []byte(string(in[0].Arguments)))

	// Denied, cancelled, revoked: each with a secret in its reason.
	p2 := openParams("deploy", `{"k":2}`, approval(nil))
	p2.Reason = fakeGHP
	r2, _, err := s.Open(ctx, p2)
	if err != nil {
		t.Fatal(err)
	}
	if r2, err = s.Decide(ctx, r2.ID, bob, VerdictDeny, "no: "+fakeAWSKey); err != nil {
		t.Fatal(err)
	}
	out = append(out, r2)
	p3 := openParams("deploy", `{"k":3}`, approval(nil))
	r3, _, err := s.Open(ctx, p3)
	if err != nil {
		t.Fatal(err)
	}
	if r3, err = s.Cancel(ctx, r3.ID, Actor{Issuer: alice.Issuer, Subject: alice.Subject}, "oops "+fakeGHP); err != nil {
		t.Fatal(err)
	}
	out = append(out, r3)
	g, err := s.Revoke(ctx, r.GrantID, bob, "leaked "+fakeAWSKey)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, g)
	// A refused decision (the requester deciding) is audited with its error.
	p4 := openParams("deploy", `{"k":4}`, approval(nil))
	r4, _, err := s.Open(ctx, p4)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Decide(ctx, r4.ID, Actor{Issuer: alice.Issuer, Subject: alice.Subject, Groups: []string{"sre"}}, VerdictApprove, fakeGHP); err == nil {
		t.Fatal("the requester approved their own request")
	}
	lists, _ := s.List(ctx, RequestFilter{})
	grantsList, _ := s.ListGrants(ctx, GrantFilter{})
	out = append(out, lists, grantsList)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i, v := range out {
		b, _ := json.Marshal(v)
		assertNoSecret(t, fmt.Sprintf("record %d the service returned", i), b)
	}
	for _, e := range rec.events {
		b, _ := json.Marshal(e)
		assertNoSecret(t, "event "+string(e.Type), b)
	}
	if len(rec.events) < 8 {
		t.Fatalf("only %d events recorded", len(rec.events))
	}
	assertNoSecret(t, "the service's log", logBuf.Bytes())
	assertDirHasNoSecret(t, dir)
}

// TestLegacyStoreMigrates: a store written before masking (testdata: raw
// arguments and reasons in its snapshot and log, written by the previous
// version) loads; its records get the hash and masked copies, the store is
// rewritten so no file keeps the raw ones, and the approved grant still
// covers exactly its call.
func TestLegacyStoreMigrates(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{snapshotFile, walFile} {
		b, err := os.ReadFile(filepath.Join("testdata", "legacy-store", name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(b, []byte(fakeAWSKey)) {
			t.Fatalf("testdata %s no longer holds the raw arguments it is meant to migrate", name)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Date(2026, 3, 1, 9, 0, 1, 0, time.UTC) // the store's records were written at 9:00
	open := func() *Service {
		t.Helper()
		fs, err := OpenFileStore(dir, FileStoreOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s, err := New(fs, Defaults(), Options{Now: func() time.Time { return at }, manualExpiry: true})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := open()
	ctx := context.Background()
	reqs, _ := s.List(ctx, RequestFilter{})
	gs, _ := s.ListGrants(ctx, GrantFilter{})
	if len(reqs) != 2 || len(gs) != 1 {
		t.Fatalf("loaded %d requests and %d grants, want 2 and 1", len(reqs), len(gs))
	}
	for _, r := range reqs {
		b, _ := json.Marshal(r)
		assertNoSecret(t, "migrated request", b)
		if r.ArgumentsHash == "" {
			t.Errorf("request %s has no arguments hash after migration", r.ID)
		}
	}
	in, err := s.ActiveForPrincipal(ctx, Principal{Issuer: "https://idp.example", Subject: "alice", ClientID: "agent"}, "github", at)
	if err != nil || len(in) != 1 {
		t.Fatalf("active grants after migration: %v, %v", in, err)
	}
	if len(policy.CoveringGrants(in, json.RawMessage(`{"n":1,"aws_key":"`+fakeAWSKey+`"}`))) != 1 {
		t.Error("the migrated grant does not cover the call it was approved for")
	}
	if len(policy.CoveringGrants(in, json.RawMessage(`{"n":2,"aws_key":"`+fakeAWSKey+`"}`))) != 0 {
		t.Error("the migrated grant covers another call")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	assertDirHasNoSecret(t, dir)

	// Loading again changes nothing: masked records are left as they are.
	before := readAll(t, dir)
	s = open()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if after := readAll(t, dir); after != before {
		t.Error("a store already masked was rewritten on load")
	}
}

func readAll(t *testing.T, dir string) string {
	t.Helper()
	var all strings.Builder
	for _, name := range []string{snapshotFile, walFile} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(&all, f)
		f.Close()
	}
	return all.String()
}

// TestMaskReasonCutsAfterMasking: a secret at the 500-rune cut is masked
// whole, not cut into a head the masker no longer recognises.
func TestMaskReasonCutsAfterMasking(t *testing.T) {
	raw := strings.Repeat("x ", (MaxReasonRunes-10)/2) + fakeAWSKey + " tail"
	got := maskReason(mask.Default(), raw)
	if strings.Contains(got, "AKIA") {
		t.Errorf("the cut left part of the key: …%s", got[len(got)-30:])
	}
	if n := len([]rune(got)); n > MaxReasonRunes+1 {
		t.Errorf("reason of %d runes, over the bound", n)
	}
}

// plainStore hides MemStore's rewrite: a Store that can only Apply.
type plainStore struct{ Store }

// TestLegacyRecordsMigrateInAnyStore: records kept raw are masked on load
// whether the store can rewrite itself (MemStore, FileStore) or only
// Apply (then each changed record is written as its next version).
func TestLegacyRecordsMigrateInAnyStore(t *testing.T) {
	raw := Request{ID: "req_legacy", Version: 1, State: RequestPending, Principal: alice, Target: "github", Kind: KindTool,
		Tool: "deploy", Arguments: json.RawMessage(`{"k":"` + fakeAWSKey + `"}`), Reason: "key " + fakeAWSKey,
		Terms:     Terms{ApproverGroups: []string{"sre"}, Threshold: 2},
		Decisions: []Decision{{Actor: "carol", Verdict: VerdictApprove, Reason: "ok " + fakeGHP}},
		CreatedAt: newClock().Now(), ExpiresAt: newClock().Now().Add(time.Hour), CallKey: "k"}
	for name, wrap := range map[string]func(*MemStore) Store{
		"rewrite": func(m *MemStore) Store { return m },
		"apply":   func(m *MemStore) Store { return plainStore{m} },
	} {
		t.Run(name, func(t *testing.T) {
			mem := NewMemStore()
			if err := mem.Apply(context.Background(), Mutation{Requests: []Request{raw}}); err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, wrap(mem), testConfig())
			got, err := f.s.Get(f.ctx, raw.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.ArgumentsHash != argsHash(t, raw.Arguments) {
				t.Error("the migrated request's hash is not that of its raw arguments")
			}
			snap, _ := mem.Load(f.ctx)
			b, _ := json.Marshal(snap)
			assertNoSecret(t, "the store after migration", b)
			if len(snap.Requests) != 1 || snap.Requests[0].Version != got.Version {
				t.Fatalf("store and service disagree on the version: %+v vs %d", snap.Requests, got.Version)
			}
			// The service can still write the record: its version is the stored one.
			if _, err := f.s.Cancel(f.ctx, raw.ID, Actor{Issuer: alice.Issuer, Subject: alice.Subject}, ""); err != nil {
				t.Fatalf("cancelling the migrated request: %v", err)
			}
		})
	}
}

// TestMigrationMasksOnlyThePersonsReason: in an end reason only the
// person's words are masked; airlock's own (who, when) stay as written,
// even under a profile that masks e-mail addresses.
func TestMigrationMasksOnlyThePersonsReason(t *testing.T) {
	strict, _ := mask.Builtin(mask.StrictProfile)
	r := Request{EndedBy: "bob@example.com", EndReason: "denied by bob@example.com: no, " + fakeAWSKey}
	if !redactRequest(strict, &r) || r.EndReason != "denied by bob@example.com: no, [MASKED:aws_access_key]" {
		t.Errorf("end reason migrated to %q", r.EndReason)
	}
	g := Grant{EndedBy: "bob@example.com", EndReason: "revoked by bob@example.com"}
	if redactGrant(strict, &g) || g.EndReason != "revoked by bob@example.com" {
		t.Errorf("airlock's own end reason changed to %q", g.EndReason)
	}
}
