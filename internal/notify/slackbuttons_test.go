package notify

import (
	"encoding/json"
	"testing"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// TestSlackButtons: with the Slack app configured an opened request
// carries the reason field and Approve/Deny buttons whose value is the
// request id; other events, and messages without the app, carry none.
func TestSlackButtons(t *testing.T) {
	type element struct {
		Type, ActionID, Value string
	}
	decode := func(b []byte) map[string][]element {
		var msg struct {
			Blocks []struct {
				Type    string `json:"type"`
				BlockID string `json:"block_id"`
				Element *struct {
					Type     string `json:"type"`
					ActionID string `json:"action_id"`
				} `json:"element"`
				Elements []struct {
					Type     string `json:"type"`
					ActionID string `json:"action_id"`
					Value    string `json:"value"`
				} `json:"elements"`
			} `json:"blocks"`
		}
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatal(err)
		}
		out := map[string][]element{}
		for _, bl := range msg.Blocks {
			if bl.BlockID == "" {
				continue
			}
			var es []element
			if bl.Element != nil {
				es = append(es, element{Type: bl.Element.Type, ActionID: bl.Element.ActionID})
			}
			for _, e := range bl.Elements {
				es = append(es, element{e.Type, e.ActionID, e.Value})
			}
			out[bl.BlockID] = es
		}
		return out
	}
	r := newRender()
	r.slackButtons = true
	b, err := r.slack(sampleEvent(grants.EventRequestOpened))
	if err != nil {
		t.Fatal(err)
	}
	got := decode(b)
	want := map[string][]element{
		SlackReasonBlock: {{Type: "plain_text_input", ActionID: SlackReasonAction}},
		SlackDecideBlock: {{"button", SlackApprove, "req_abc"}, {"button", SlackDeny, "req_abc"}},
	}
	for id, w := range want {
		if g := got[id]; len(g) != len(w) || g[0] != w[0] || (len(w) > 1 && g[1] != w[1]) {
			t.Errorf("block %s = %+v, want %+v", id, g, w)
		}
	}
	b, _ = r.slack(sampleEvent(grants.EventRequestExpired))
	if got := decode(b); len(got) != 0 {
		t.Errorf("an expired request has buttons: %+v", got)
	}
	r.slackButtons = false
	b, _ = r.slack(sampleEvent(grants.EventRequestOpened))
	if got := decode(b); len(got) != 0 {
		t.Errorf("buttons without the Slack app: %+v", got)
	}
}
