package extproc

import (
	"strings"
	"testing"
	"unsafe"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/mask"
)

// TestRecordSharesOnlyMaskedOutput: a masked JSON response's record shares
// MaskJSON's new output (no copy), but never the bytes Envoy sent (an
// unmasked body is copied: the request message is the caller's) nor, for
// a payload cut to MaxRecordBytes, the whole body.
func TestRecordSharesOnlyMaskedOutput(t *testing.T) {
	set, err := mask.NewSet(nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := `{"jsonrpc":"2.0","id":7,"result":{"text":"key=AKIAIOSFODNN7EXAMPLE"}}`
	clean := `{"jsonrpc":"2.0","id":7,"result":{"text":"nothing here"}}`
	long := `{"jsonrpc":"2.0","id":7,"result":{"text":"AKIAIOSFODNN7EXAMPLE ` + strings.Repeat("x", 200) + `"}}`
	for _, c := range []struct {
		name, body string
		max        int
		shared     bool
	}{{"masked", secret, 0, true}, {"clean", clean, 0, false}, {"cut", long, 64, false}} {
		t.Run(c.name, func(t *testing.T) {
			rec := &recorder{}
			p := New(Options{Profiles: set, Recorder: rec, ModeOverride: true, MaxRecordBytes: c.max})
			st := p.NewStream()
			in := []byte(c.body)
			var out []byte
			for _, m := range []*extprocv3.ProcessingRequest{
				{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: headers(":status", "200", "content-type", "application/json")}},
				{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{Body: in, EndOfStream: true}}},
			} {
				rs, err := st.Handle(m)
				if err != nil || len(rs) != 1 {
					t.Fatalf("%d responses, %v", len(rs), err)
				}
				if b := rs[0].GetResponseBody().GetResponse().GetBodyMutation().GetBody(); b != nil {
					out = b
				}
			}
			st.Close()
			evs := rec.msgs
			if len(evs) != 1 {
				t.Fatalf("%d records", len(evs))
			}
			pl := evs[0].Payload
			if at := unsafe.StringData(pl); at == unsafe.SliceData(in) {
				t.Fatal("the record shares the body Envoy sent")
			}
			if shared := len(out) > 0 && unsafe.StringData(pl) == unsafe.SliceData(out); shared != c.shared {
				t.Fatalf("record shares the masked body: %v, want %v", shared, c.shared)
			}
			if c.shared && pl != string(out) {
				t.Fatalf("payload %q, body %q", pl, out)
			}
		})
	}
}

var _ audit.Sink = (*recorder)(nil)

// TestRequestTable: what a request asked, by id, the last entry for an
// id winning, as a map would hold it.
func TestRequestTable(t *testing.T) {
	var tab requestTable
	want := map[string]requestInfo{}
	check := func() {
		t.Helper()
		for _, id := range []string{"1", "2", "3", `"a"`, ""} {
			q, ok := tab.get(id)
			w, wok := want[id]
			if q != w || ok != wok {
				t.Fatalf("get(%s) = %v %v, want %v %v", id, q, ok, w, wok)
			}
		}
	}
	check()
	for _, e := range []struct{ id, method string }{{"1", "a"}, {"1", "b"}, {"2", "c"}, {"1", "d"}, {"3", "e"}, {"", "f"}} {
		tab.set(e.id, requestInfo{method: e.method})
		want[e.id] = requestInfo{method: e.method}
		check()
	}
}
