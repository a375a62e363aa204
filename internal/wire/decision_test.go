package wire

import (
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// full sets every field of Decision to a non-zero value, by reflection, so
// a field added later is covered without editing this test.
func full(t *testing.T) Decision {
	t.Helper()
	var d Decision
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString(v.Type().Field(i).Name + "-value")
		case reflect.Bool:
			f.SetBool(true)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{v.Type().Field(i).Name, ""}))
		default:
			t.Fatalf("Decision.%s: kind %s not covered by the round-trip test", v.Type().Field(i).Name, f.Kind())
		}
	}
	return d
}

// TestDecisionRoundTrip holds the ext_authz → ext_proc contract: what
// ext_authz writes (through structpb, as Envoy carries it) reads back
// field for field.
func TestDecisionRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    Decision
	}{
		{"every field", full(t)},
		{"single call, nothing optional", Decision{DecisionID: "d1", Target: "gh", Principal: "alice", Record: true, MaskingProfile: "default"}},
		{"record off", Decision{DecisionID: "d2", Record: false}},
		{"some optional fields", Decision{DecisionID: "d3", Grant: "gr_1", Tool: "search", Record: true}},
		{"batch of one", Decision{DecisionID: "d4", Batch: true, Methods: []string{"ping"}, Tools: []string{""}, IDs: []string{"1"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := structpb.NewStruct(tc.d.Fields())
			if err != nil {
				t.Fatalf("structpb.NewStruct: %v", err)
			}
			got := ReadDecision(st.GetFields())
			if !reflect.DeepEqual(got, tc.d) {
				t.Fatalf("round trip changed the decision:\n got %+v\nwant %+v", got, tc.d)
			}
			// Struct, what ext_authz sends, is NewStruct(Fields()) exactly.
			if direct, err := tc.d.Struct(); err != nil || !proto.Equal(direct, st) {
				t.Fatalf("Struct differs from structpb.NewStruct(Fields()):\n got %v\nwant %v", direct, st)
			}
		})
	}
}

// TestReadDecisionAbsent: metadata that does not say is recorded.
func TestReadDecisionAbsent(t *testing.T) {
	d := ReadDecision(nil)
	if !d.Record || d.DecisionID != "" || d.Batch {
		t.Fatalf("ReadDecision(nil) = %+v, want the zero decision with Record true", d)
	}
}

// TestKeysDistinct: two fields sharing a key would overwrite each other.
func TestKeysDistinct(t *testing.T) {
	d := full(t)
	f := d.Fields()
	if got, want := len(f), reflect.TypeOf(d).NumField(); got != want {
		t.Fatalf("Fields() has %d keys for %d fields: a key is shared or missing", got, want)
	}
}

// FuzzDecisionStruct: Struct is structpb.NewStruct(Fields()), the same
// Struct or a refusal where NewStruct refuses (invalid UTF-8).
func FuzzDecisionStruct(f *testing.F) {
	f.Add("d1", "alice", "tools/call", "search", "2025-06-18", "s-1", "", true, false)
	f.Add("d2", "\xff", "", "caf\xc3", "", "", "gr_1", false, true)
	f.Fuzz(func(t *testing.T, id, principal, method, tool, protocol, session, grant string, record, batch bool) {
		d := Decision{DecisionID: id, Target: "github", Principal: principal, Issuer: "https://issuer", MaskingProfile: "default",
			Record: record, PolicyVersion: "v1", Protocol: protocol, SessionID: session, Grant: grant, Method: method, Tool: tool}
		if batch {
			d.Batch, d.Methods, d.Tools, d.IDs = true, []string{method, "ping"}, []string{tool, ""}, []string{id, ""}
		}
		want, werr := structpb.NewStruct(d.Fields())
		got, gerr := d.Struct()
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("errors differ: NewStruct %v, Struct %v", werr, gerr)
		}
		if werr == nil && !proto.Equal(got, want) {
			t.Fatalf("Struct differs:\n got %v\nwant %v", got, want)
		}
	})
}
