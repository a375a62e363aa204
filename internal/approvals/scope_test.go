package approvals_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/grants"
)

// requestScope is the "scope" object of a request in the API's JSON.
type requestScope struct {
	Scope struct {
		Kind     string `json:"kind"`
		Duration string `json:"duration"`
		Text     string `json:"text"`
	} `json:"scope"`
	GrantID string `json:"grant_id"`
}

// Issue 15: the API states what approving grants, and an approver may
// narrow it (kind and duration) but never widen it.
func TestApproveScope(t *testing.T) {
	s := startStack(t, approvalstest.Options{})
	// A request the policy lets grant the tool with any arguments for 15m.
	openWide := func(t *testing.T, args string) *grants.Request {
		t.Helper()
		p := s.OpenParams(approvalstest.Alice, "delete_repository", args, "cleanup for OPS-1")
		p.Approval.SingleUse, p.Approval.GrantDuration = false, 15*time.Minute
		r, _, err := s.Grants.Open(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	t.Run("shown", func(t *testing.T) {
		req := openWide(t, `{"repo":"acme/shown"}`)
		var got requestScope
		call(t, s, bob, http.MethodGet, "/airlock/v1/requests/"+req.ID, "").decode(t, &got)
		if got.Scope.Kind != "tool_any" || got.Scope.Duration != "15m0s" || got.Scope.Text != "this tool with any arguments for 15m" {
			t.Fatalf("scope %+v", got.Scope)
		}
		once := open(t, s, "delete_repository", `{"repo":"acme/once"}`)
		call(t, s, bob, http.MethodGet, "/airlock/v1/requests/"+once.ID, "").decode(t, &got)
		if got.Scope.Kind != "call_once" || got.Scope.Text != "this exact call, once" {
			t.Fatalf("scope %+v", got.Scope)
		}
	})

	t.Run("narrowed", func(t *testing.T) {
		req := openWide(t, `{"repo":"acme/prod-db-backups"}`)
		r := call(t, s, bob, http.MethodPost, "/airlock/v1/requests/"+req.ID+"/approve", `{"scope":{"kind":"tool_args","duration":"5m"}}`)
		if r.status != http.StatusOK {
			t.Fatalf("approve = %d %s", r.status, r.body)
		}
		var got requestScope
		r.decode(t, &got)
		if got.Scope.Kind != "tool_args" || got.Scope.Text != "this tool with these arguments for 5m" {
			t.Fatalf("approved scope %+v", got.Scope)
		}
		g, err := s.Grants.GetGrant(context.Background(), got.GrantID)
		if err != nil {
			t.Fatal(err)
		}
		if g.ArgumentsHash == "" || g.Expiry.Sub(g.CreatedAt) != 5*time.Minute {
			t.Fatalf("grant %+v: want arguments pinned for 5m", g)
		}
	})

	for _, tc := range []struct{ name, body, code string }{
		{"wider kind", `{"scope":{"kind":"tool_any"}}`, "scope_wider"},
		{"longer", `{"scope":{"kind":"call_once","duration":"1h"}}`, ""},
		{"unknown kind", `{"scope":{"kind":"everything"}}`, "invalid"},
		{"bad duration", `{"scope":{"duration":"soon"}}`, "invalid"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := open(t, s, "delete_repository", `{"repo":"acme/`+tc.name+`"}`) // call_once
			r := call(t, s, bob, http.MethodPost, "/airlock/v1/requests/"+req.ID+"/approve", tc.body)
			if tc.code == "" {
				// call_once has no duration to widen: approving it once is
				// the narrowest grant, so the duration is moot.
				if r.status != http.StatusOK {
					t.Fatalf("approve = %d %s", r.status, r.body)
				}
				return
			}
			if r.status != http.StatusBadRequest || r.code() != tc.code {
				t.Fatalf("approve = %d %s, want 400 %s", r.status, r.body, tc.code)
			}
			var cur json.RawMessage
			call(t, s, bob, http.MethodGet, "/airlock/v1/requests/"+req.ID, "").decode(t, &cur)
			var st struct{ State string }
			_ = json.Unmarshal(cur, &st)
			if st.State != "pending" {
				t.Fatalf("a refused approval changed the request: %s", cur)
			}
		})
	}
}
