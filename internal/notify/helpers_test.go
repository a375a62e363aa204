package notify

import (
	"encoding/json"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/policy"
)

var at = time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)

func sampleRequest() *grants.Request {
	return &grants.Request{
		ID: "req_abc", Version: 1, State: grants.RequestPending,
		Principal: grants.Principal{Subject: "00u1", User: "alice@example.com", ClientID: "agent-1", Groups: []string{"eng"}},
		Target:    "github", Kind: grants.KindTool, Tool: "delete_repository",
		Arguments: json.RawMessage(`{"repo":"acme/test","token":"ghp_abcdefghijklmnopqrstuvwxyz0123456789"}`),
		Reason:    "cleanup, password=hunter2",
		Terms:     grants.Terms{ApproverGroups: []string{"sre"}, Threshold: 1, SingleUse: true},
		CreatedAt: at, ExpiresAt: at.Add(10 * time.Minute), CallKey: "k",
	}
}

func sampleEvent(typ grants.EventType) grants.Event {
	return grants.Event{ID: "evt_1", Seq: 1, Type: typ, At: at, Request: sampleRequest()}
}

func approvalURL(id string) string { return "https://airlock.example/requests/" + id }

func approvalTerms() policy.Approval {
	return policy.Approval{ApproverGroups: []string{"sre"}, Threshold: 1, SingleUse: true}
}
