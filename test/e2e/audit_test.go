package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/test/peers"
)

// Every MCP message of a session is recorded, masked, with who and what;
// replay gives the session back in order.
func TestSessionRecordedAndReplayed(t *testing.T) {
	ctx := ctxT(t, 60*time.Second)
	cs, err := peers.ConnectGoClientWith(ctx, stack.TargetURL("github"), token(t, "00u-rita", "github"), peers.GoClientOptions{ProtocolVersion: "2025-11-25"})
	if err != nil {
		t.Fatal(err)
	}
	sid := cs.ID()
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_secret_config", Arguments: map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	cs.Close()
	if err := stack.Gateway.Audit.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	sums, err := stack.Gateway.Audit.Sessions(ctx, audit.SessionFilter{Principal: "00u-rita", Since: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 1 || sums[0].SessionID != sid || sums[0].Target != "github" || sums[0].ClientID != "0oa-agent" {
		t.Fatalf("sessions for 00u-rita: %+v, want the one session %s", sums, sid)
	}
	tr, err := stack.Gateway.Audit.Replay(ctx, sid)
	if err != nil {
		t.Fatal(err)
	}
	evs := tr.Events
	var steps []string
	var call, result *audit.Event
	for i := range evs {
		e := &evs[i]
		steps = append(steps, string(e.Direction)+" "+e.Method)
		if e.Direction == audit.DirRequest && e.Tool == "get_secret_config" {
			call = e
		}
		if e.Direction == audit.DirResponse && e.Tool == "get_secret_config" {
			result = e
		}
		for _, s := range peers.FakeSecrets {
			if strings.Contains(e.Payload, s) {
				t.Errorf("a recorded %s holds a secret (%.6s…)", e.Direction, s)
			}
		}
		if i > 0 && e.Time.Before(evs[i-1].Time) {
			t.Errorf("replay out of order at %d", i)
		}
	}
	if call == nil || result == nil {
		t.Fatalf("the tool call and its result are not both recorded: %v", steps)
	}
	if !strings.HasPrefix(steps[0], "request initialize") {
		t.Errorf("the timeline starts with %q, want the initialize request", steps[0])
	}
	if call.Principal != "00u-rita" || call.DecisionID == "" || call.JSONRPCID == "" || result.JSONRPCID != call.JSONRPCID {
		t.Errorf("call %+v / result %+v lack who, decision or id", call, result)
	}
	if result.Masked["aws_access_key"] == 0 || result.Status != 200 {
		t.Errorf("the result's record does not count its masks: %v (status %d)", result.Masked, result.Status)
	}
}
