package extauthz

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/wire"
)

// What ext_authz writes on an allowed call is what ext_proc reads: the
// dynamic metadata, after the trip through structpb that Envoy's gRPC
// answer takes, reads back through wire.ReadDecision field for field.
func TestAllowMetadataReadsBackThroughWire(t *testing.T) {
	c := newCore(t)
	c.approvals.grants = []policy.GrantInput{{ID: "grt_7", Target: "demo", Tool: "danger", SingleUse: true, Principal: "alice"}}
	base := wire.Decision{
		Target: "demo", Principal: "alice", ClientID: "agent", Issuer: testIssuer,
		MaskingProfile: "default", Record: true, PolicyVersion: "v1", Protocol: "2025-03-26",
	}
	for _, tc := range []struct {
		name string
		req  *Request
		want func(d wire.Decision) wire.Decision
	}{
		{"granted call", post("alice", call(3, "danger"), "mcp-session-id", "sess-1"), func(d wire.Decision) wire.Decision {
			d.SessionID, d.Grant, d.Method, d.Tool = "sess-1", "grt_7", "tools/call", "danger"
			return d
		}},
		{"batch", post("alice", batch(ping, call("b", "read"), initialized)), func(d wire.Decision) wire.Decision {
			d.Method, d.Batch = "ping", true
			d.Methods = []string{"ping", "tools/call", "notifications/initialized"}
			d.Tools = []string{"", "read", ""}
			d.IDs = []string{"1", `"b"`, ""}
			return d
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := c.a.Check(context.Background(), tc.req)
			if r.Outcome != OutcomeAllow {
				t.Fatalf("outcome %s: %s", r.Outcome, r.Body)
			}
			md := toCheckResponse(r).GetDynamicMetadata()
			if md == nil {
				t.Fatal("no dynamic metadata")
			}
			want := tc.want(base)
			want.DecisionID = r.DecisionID
			if diff := cmp.Diff(want, wire.ReadDecision(md.GetFields())); diff != "" {
				t.Errorf("decision read back (-want +got):\n%s", diff)
			}
		})
	}
}

// TestHeaderOptions: the headers allocated together are headerOption's,
// one by one, in order.
func TestHeaderOptions(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hs    []Header
		extra int
	}{
		{"none", nil, 0},
		{"none, room for one", nil, 1},
		{"one", []Header{{"a", "1"}}, 0},
		{"several, room for one", []Header{{"a", "1"}, {"b", ""}, {"x-airlock-principal", "alice"}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := headerOptions(tc.hs, tc.extra)
			if len(got) != len(tc.hs) || cap(got) < len(tc.hs)+tc.extra {
				t.Fatalf("len %d cap %d for %d headers and %d extra", len(got), cap(got), len(tc.hs), tc.extra)
			}
			for i, h := range tc.hs {
				if !proto.Equal(got[i], headerOption(h)) {
					t.Errorf("header %d: %v, want %v", i, got[i], headerOption(h))
				}
			}
		})
	}
}
