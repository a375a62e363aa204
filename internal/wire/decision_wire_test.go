package wire

import (
	"bytes"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// checkAppendStruct holds AppendStruct to Struct: the same refusal, and
// else bytes that proto.Unmarshal reads back to Struct's message and that
// are what a deterministic proto.Marshal of it writes.
func checkAppendStruct(t *testing.T, d Decision) {
	t.Helper()
	want, werr := d.Struct()
	prefix := []byte("prefix")
	got, gerr := d.AppendStruct(slices.Clone(prefix))
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("errors differ: Struct %v, AppendStruct %v", werr, gerr)
	}
	if !bytes.HasPrefix(got, prefix) {
		t.Fatalf("AppendStruct changed what it appends to: %q", got)
	}
	got = got[len(prefix):]
	if werr != nil {
		if len(got) != 0 {
			t.Fatalf("AppendStruct refused but appended %d bytes", len(got))
		}
		return
	}
	var read structpb.Struct
	if err := proto.Unmarshal(got, &read); err != nil {
		t.Fatalf("proto.Unmarshal of AppendStruct: %v", err)
	}
	if !proto.Equal(&read, want) {
		t.Fatalf("AppendStruct reads back as\n%v\nwant\n%v", &read, want)
	}
	det, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, det) {
		t.Fatalf("AppendStruct bytes differ from a deterministic proto.Marshal:\n got %x\nwant %x", got, det)
	}
}

func TestAppendStruct(t *testing.T) {
	long := string(bytes.Repeat([]byte("x"), 300)) // lengths over one varint byte
	for _, tc := range []struct {
		name string
		d    Decision
	}{
		{"every field", full(t)},
		{"zero", Decision{}},
		{"single call, nothing optional", Decision{DecisionID: "d1", Target: "gh", Principal: "alice", Record: true, MaskingProfile: "default"}},
		{"record off", Decision{DecisionID: "d2", Record: false}},
		{"some optional fields", Decision{DecisionID: "d3", Grant: "gr_1", Tool: "search", Record: true}},
		{"batch of one", Decision{DecisionID: "d4", Batch: true, Methods: []string{"ping"}, Tools: []string{""}, IDs: []string{"1"}}},
		{"batch, empty lists", Decision{DecisionID: "d5", Batch: true}},
		{"lists without batch", Decision{DecisionID: "d6", Methods: []string{"\xff"}, IDs: []string{"1"}}},
		{"long values", Decision{DecisionID: long, Tool: long, Batch: true, Methods: []string{long, long}, Tools: slices.Repeat([]string{long}, 60)}},
		{"invalid UTF-8", Decision{DecisionID: "d7", Principal: "caf\xc3"}},
		{"invalid UTF-8, optional", Decision{DecisionID: "d8", SessionID: "\xff"}},
		{"invalid UTF-8 in a batch list", Decision{DecisionID: "d9", Batch: true, IDs: []string{"1", "\xfe"}}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkAppendStruct(t, tc.d) })
	}
}

// TestStructFieldsSorted: AppendStruct writes the map in key order, each
// key of Fields once.
func TestStructFieldsSorted(t *testing.T) {
	var keys []string
	for _, f := range structFields {
		keys = append(keys, f.key)
	}
	if !slices.IsSorted(keys) {
		t.Fatalf("structFields not sorted by key: %v", keys)
	}
	d := full(t)
	if got, want := len(slices.Compact(keys)), len(d.Fields()); got != want || len(keys) != want {
		t.Fatalf("structFields has %d keys (%d distinct), Fields %d", len(keys), got, want)
	}
	for _, k := range keys {
		if _, ok := d.Fields()[k]; !ok {
			t.Fatalf("structFields key %q is not one of Fields", k)
		}
	}
}

// FuzzAppendStruct: AppendStruct is Struct, on the wire.
func FuzzAppendStruct(f *testing.F) {
	f.Add("d1", "alice", "tools/call", "search", "2025-06-18", "s-1", "", true, false)
	f.Add("d2", "\xff", "", "caf\xc3", "", "", "gr_1", false, true)
	f.Add("", "", "", "", "", "", "", false, true)
	f.Fuzz(func(t *testing.T, id, principal, method, tool, protocol, session, grant string, record, batch bool) {
		d := Decision{DecisionID: id, Target: "github", Principal: principal, ClientID: tool, Issuer: "https://issuer", MaskingProfile: "default",
			Record: record, PolicyVersion: "v1", Protocol: protocol, SessionID: session, Grant: grant, Method: method, Tool: tool}
		if batch {
			d.Batch, d.Methods, d.Tools, d.IDs = true, []string{method, "ping"}, []string{tool, ""}, []string{id, grant}
		}
		checkAppendStruct(t, d)
	})
}
