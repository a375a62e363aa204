package grants

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unsafe"
)

// The Service keeps the store's own record where it equals its own (one
// copy in memory), and a copy of its own where load changed the record:
// the store's record stays as stored.
func TestServiceBorrowsStoredRecords(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenFileStore(dir, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	g := func(id, issuer string) Grant {
		return Grant{ID: id, Version: 1, RequestID: "req_" + id, State: GrantActive, Subject: "alice", Issuer: issuer,
			Target: "github", Kind: KindTool, Tool: "create_issue", NotBefore: now.Add(-time.Minute), Expiry: now.Add(time.Hour),
			CreatedAt: now.Add(-time.Minute), ApprovedBy: []string{"bob"}}
	}
	req := Request{ID: "req_gr_legacy", Version: 1, State: RequestApproved, Principal: Principal{Issuer: "https://idp.example", Subject: "alice"},
		Target: "github", Kind: KindTool, Tool: "create_issue", CallKey: "k", GrantID: "gr_legacy", EndedAt: now}
	// gr_legacy was written before grants kept an issuer: load takes its request's.
	if err := st.Apply(context.Background(), Mutation{Requests: []Request{req}, Grants: []Grant{g("gr_new", "https://idp.example"), g("gr_legacy", "")}}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = OpenFileStore(dir, FileStoreOptions{}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, st, testConfig())
	got, _ := f.s.grant("gr_new")
	if got == nil || got != st.lentGrant("gr_new", 1) {
		t.Errorf("gr_new: the Service keeps %p, the store %p: want the store's record, once", got, st.lentGrant("gr_new", 1))
	}
	if r := f.s.request("req_gr_legacy"); r == nil || r != st.lentRequest("req_gr_legacy", 1) {
		t.Errorf("req_gr_legacy: not the store's record")
	}
	legacy, _ := f.s.grant("gr_legacy")
	stored := st.lentGrant("gr_legacy", 1)
	if legacy == nil || stored == nil || legacy == stored {
		t.Fatalf("gr_legacy: Service %p %q, store %p %q: want two records (load changed the Service's)", legacy, legacy.Issuer, stored, stored.Issuer)
	}
	if legacy.Issuer != "https://idp.example" || stored.Issuer != "" {
		t.Errorf("gr_legacy issuer: Service %q (want the request's), store %q (want none, as stored)", legacy.Issuer, stored.Issuer)
	}

	// A write: the Service keeps what the store stored.
	rv, err := f.s.Revoke(f.ctx, "gr_new", Actor{Issuer: "https://idp.example", Subject: "alice"}, "done")
	if err != nil {
		t.Fatal(err)
	}
	got, _ = f.s.grant("gr_new")
	if got == nil || got.Version != 2 || got != st.lentGrant("gr_new", 2) {
		t.Errorf("gr_new after revoke: the Service keeps %+v, not the store's record", got)
	}
	// What callers get is a copy: changing it changes neither.
	rv.Target = "changed"
	if got.Target != "github" {
		t.Errorf("a caller's copy changed the shared record")
	}
}

// A recovered store holds one copy of a string that repeats across its
// records, and every record reads as it was written.
func TestRecoverInternsRepeatedStrings(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenFileStore(dir, FileStoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	var m Mutation
	for _, id := range []string{"gr_1", "gr_2", "gr_3"} {
		m.Grants = append(m.Grants, Grant{ID: id, Version: 1, RequestID: "req_" + id, State: GrantActive, Subject: "alice",
			Issuer: "https://idp.example", Target: "github", Kind: KindTool, Tool: "create_issue", NotBefore: now, Expiry: now.Add(time.Hour),
			CreatedAt: now, ApprovedBy: []string{"bob"}})
	}
	if err := st.Apply(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if st, err = OpenFileStore(dir, FileStoreOptions{}); err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a, b := st.lentGrant("gr_1", 1), st.lentGrant("gr_3", 1)
	for name, pair := range map[string][2]string{"subject": {a.Subject, b.Subject}, "issuer": {a.Issuer, b.Issuer}, "tool": {a.Tool, b.Tool}, "approver": {a.ApprovedBy[0], b.ApprovedBy[0]}} {
		if unsafe.StringData(pair[0]) != unsafe.StringData(pair[1]) {
			t.Errorf("%s: two copies of %q", name, pair[0])
		}
	}
	snap, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(snap.Grants, func(x, y Grant) int { return strings.Compare(x.ID, y.ID) })
	if !reflect.DeepEqual(snap.Grants, m.Grants) {
		t.Errorf("recovered grants differ from the written ones:\n got %+v\nwant %+v", snap.Grants, m.Grants)
	}
}
