package audit

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// storyRecords is one session told by every kind of row: an initialize
// decided before the session had an id (joined through its message's
// decision id), an allowed call, a policy denial, a call held and
// approved (request, votes, grant issued and used), a call held until the
// window passed (-32042), a call held and denied by the approver, a
// failed hold, an unauthenticated call, a batch; and rows of another
// session that must stay out.
func storyRecords(sid string, at time.Time) []Record {
	ms := func(n int) time.Time { return at.Add(time.Duration(n) * time.Millisecond) }
	who := func(d Decision) *Decision {
		d.SessionID, d.Principal, d.ClientID, d.Issuer, d.Target = sid, "alice", "agent", "https://issuer.example", "github"
		if d.PolicyVersion == "" {
			d.PolicyVersion = "v1"
		}
		return &d
	}
	ev := func(n int, dir Direction, method, tool, id, dec string) *Event {
		return &Event{EventID: "ev-" + sid + "-" + time.Duration(n).String(), Time: ms(n), SessionID: sid, Principal: "alice", ClientID: "agent",
			Issuer: "https://issuer.example", Target: "github", Direction: dir, Method: method, Tool: tool, JSONRPCID: id,
			DecisionID: dec, Status: 200, Outcome: "allow", Payload: `{}`}
	}
	approved := ev(61, DirRequest, "tools/call", "delete_repo", "5", "d-held-ok")
	approved.GrantID = "g-1"
	masked := ev(21, DirResponse, "tools/call", "read", "2", "d-read")
	masked.Masked = map[string]int{"aws_access_key": 2}
	return []Record{
		&Decision{DecisionID: "d-init", Time: ms(0), Principal: "alice", ClientID: "agent", Issuer: "https://issuer.example",
			Target: "github", Method: "initialize", JSONRPCID: "0", Outcome: "allow", Status: 200, PolicyVersion: "v1"},
		ev(1, DirRequest, "initialize", "", "0", "d-init"),
		ev(2, DirResponse, "initialize", "", "0", "d-init"),
		who(Decision{DecisionID: "d-read", Time: ms(10), Method: "tools/call", Tool: "read", JSONRPCID: "2", Outcome: "allow", Status: 200}),
		ev(11, DirRequest, "tools/call", "read", "2", "d-read"),
		masked,
		who(Decision{DecisionID: "d-deny", Time: ms(30), Method: "tools/call", Tool: "get_env", JSONRPCID: "3", Outcome: "deny",
			Reason: "tool get_env is denied", Status: 403}),
		&RequestEvent{EventID: "rq-1", Time: ms(40), RequestID: "req-ok", ToState: "pending", Actor: "alice", Principal: "alice",
			Target: "github", Method: "tools/call", Tool: "delete_repo", Reason: "cleanup", DecisionID: "d-held-ok"},
		&RequestEvent{EventID: "rq-2", Time: ms(55), RequestID: "req-ok", FromState: "pending", ToState: "approved", Actor: "bob",
			Principal: "alice", Target: "github", Method: "tools/call", Tool: "delete_repo", Reason: "fine", DecisionID: "d-held-ok", GrantID: "g-1"},
		// The vote and the approval it causes at the same time; by event
		// id the vote sorts last.
		&RequestEvent{EventID: "rq-2v", Time: ms(55), RequestID: "req-ok", FromState: "pending", ToState: "pending", Actor: "bob",
			Principal: "alice", Target: "github", Method: "tools/call", Tool: "delete_repo", Reason: "fine", DecisionID: "d-held-ok"},
		&GrantEvent{EventID: "gr-1", Time: ms(56), GrantID: "g-1", Transition: "issued", Actor: "bob", Principal: "alice", Target: "github",
			Tools: []string{"delete_repo"}, RequestID: "req-ok", ExpiresAt: at.Add(time.Hour), UsesLeft: 1},
		&GrantEvent{EventID: "gr-2", Time: ms(57), GrantID: "g-1", Transition: "consumed", Principal: "alice", Target: "github",
			Tools: []string{"delete_repo"}, RequestID: "req-ok", ExpiresAt: at.Add(time.Hour), UsesLeft: 0},
		who(Decision{DecisionID: "d-held-ok", Time: ms(60), Method: "tools/call", Tool: "delete_repo", JSONRPCID: "5", Outcome: "allow",
			Reason: "approved in request req-ok", Status: 200, RequestID: "req-ok", GrantID: "g-1", LatencyUS: 20000}),
		approved,
		&RequestEvent{EventID: "rq-3", Time: ms(70), RequestID: "req-wait", ToState: "pending", Actor: "alice", Principal: "alice",
			Target: "github", Method: "tools/call", Tool: "delete_repo", DecisionID: "d-held-wait"},
		who(Decision{DecisionID: "d-held-wait", Time: ms(100), Method: "tools/call", Tool: "delete_repo", JSONRPCID: "6",
			Outcome: "approval_required", Reason: "approval required", Status: 200, RequestID: "req-wait", LatencyUS: 30000}),
		&RequestEvent{EventID: "rq-4", Time: ms(110), RequestID: "req-no", ToState: "pending", Actor: "alice", Principal: "alice",
			Target: "github", Method: "tools/call", Tool: "drop_table", DecisionID: "d-held-no"},
		&RequestEvent{EventID: "rq-5", Time: ms(115), RequestID: "req-no", FromState: "pending", ToState: "denied", Actor: "bob",
			Principal: "alice", Target: "github", Method: "tools/call", Tool: "drop_table", Reason: "not today", DecisionID: "d-held-no"},
		who(Decision{DecisionID: "d-held-no", Time: ms(116), Method: "tools/call", Tool: "drop_table", JSONRPCID: "7", Outcome: "deny",
			Reason: "request req-no was denied", Status: 403, RequestID: "req-no", LatencyUS: 6000}),
		who(Decision{DecisionID: "d-hold-failed", Time: ms(120), Method: "tools/call", Tool: "drop_table", JSONRPCID: "8", Outcome: "error",
			Reason: "the gateway could not hold the call", Status: 403}),
		&Decision{DecisionID: "d-unauth", Time: ms(130), SessionID: sid, Target: "github", JSONRPCID: "9", Outcome: "unauthenticated",
			Reason: "no bearer token", Status: 401, PolicyVersion: "v1"},
		who(Decision{DecisionID: "d-batch", Time: ms(140), Method: "tools/call", Tool: "read", JSONRPCID: "10", Outcome: "deny", Status: 403, Reason: "batch refused"}),
		who(Decision{DecisionID: "d-batch.1", Time: ms(140), Method: "tools/call", Tool: "nuke", JSONRPCID: "11", Outcome: "deny", Status: 403, Reason: "batch refused"}),
		// Another session's rows, and an initialize no message of this session names.
		&Decision{DecisionID: "d-other", Time: ms(5), SessionID: "other", Principal: "mallory", Outcome: "deny"},
		&Decision{DecisionID: "d-init-other", Time: ms(6), Principal: "mallory", Method: "initialize", Outcome: "allow"},
		&RequestEvent{EventID: "rq-other", Time: ms(7), RequestID: "req-other", ToState: "pending"},
		&GrantEvent{EventID: "gr-other", Time: ms(8), GrantID: "g-other", Transition: "issued"},
	}
}

// TestEmbeddedSessionTrail: replay of the embedded store returns the
// session's messages, its decisions (the initialize one joined through its
// message), and the requests and grants they name — nothing of another
// session — before and after a restart; sessions counts the decisions.
func TestEmbeddedSessionTrail(t *testing.T) {
	cfg := embeddedConfig(t)
	cfg.Embedded.RetentionDays = 0
	e, err := OpenEmbedded(cfg, Options{retentionEvery: -1})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Truncate(time.Second)
	recs := storyRecords("sess-story", at)
	for _, r := range recs {
		if err := e.Record(r); err != nil {
			t.Fatal(err)
		}
	}
	ctx := ctxT(t, time.Minute)
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(name string, st Store) {
		t.Helper()
		tr, err := st.Replay(ctx, "sess-story")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ids := func() (out []string) {
			for _, e := range tr.Events {
				out = append(out, e.EventID)
			}
			for _, d := range tr.Decisions {
				out = append(out, d.DecisionID)
			}
			for _, r := range tr.Requests {
				out = append(out, r.EventID)
			}
			for _, g := range tr.Grants {
				out = append(out, g.EventID)
			}
			return out
		}()
		var want []string
		for _, k := range []Kind{KindEvent, KindDecision, KindRequest, KindGrant} {
			for _, r := range recs {
				if KindOf(r) != k {
					continue
				}
				switch v := r.(type) {
				case *Event:
					want = append(want, v.EventID)
				case *Decision:
					if v.DecisionID != "d-other" && v.DecisionID != "d-init-other" {
						want = append(want, v.DecisionID)
					}
				case *RequestEvent:
					if v.RequestID != "req-other" {
						want = append(want, v.EventID)
					}
				case *GrantEvent:
					if v.GrantID != "g-other" {
						want = append(want, v.EventID)
					}
				}
			}
		}
		if d := cmp.Diff(want, ids); d != "" {
			t.Errorf("%s: replay rows (-want +got):\n%s", name, d)
		}
		sums, err := st.Sessions(ctx, SessionFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var got *SessionSummary
		for i := range sums {
			if sums[i].SessionID == "sess-story" {
				got = &sums[i]
			}
		}
		wantSum := SessionSummary{SessionID: "sess-story", Principal: "alice", ClientID: "agent", Target: "github",
			Start: at.Add(time.Millisecond), End: at.Add(140 * time.Millisecond), Events: 5, Requests: 3,
			Decisions: 9, Denied: 6, Held: 3, Approved: 1, Errors: 1, Masked: 2}
		if got == nil {
			t.Fatalf("%s: no summary for the session in %+v", name, sums)
		}
		if d := cmp.Diff(wantSum, *got); d != "" {
			t.Errorf("%s: summary (-want +got):\n%s", name, d)
		}
		if _, err := st.Replay(ctx, "no-such-session"); !errors.Is(err, ErrNoSession) {
			t.Errorf("%s: replay of an unknown session: %v, want ErrNoSession", name, err)
		}
	}
	check("live", e)
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := OpenEmbeddedReader(cfg.Embedded.Dir)
	if err != nil {
		t.Fatal(err)
	}
	check("reopened", r)
}

// trailOf is what a store returns for storyRecords' session.
func trailOf(sid string, at time.Time) *Trail {
	tr := &Trail{SessionID: sid}
	for _, r := range storyRecords(sid, at) {
		switch v := r.(type) {
		case *Event:
			tr.Events = append(tr.Events, *v)
		case *Decision:
			if v.SessionID == sid || v.DecisionID == "d-init" {
				tr.Decisions = append(tr.Decisions, *v)
			}
		case *RequestEvent:
			if v.RequestID != "req-other" {
				tr.Requests = append(tr.Requests, *v)
			}
		case *GrantEvent:
			if v.GrantID != "g-other" {
				tr.Grants = append(tr.Grants, *v)
			}
		}
	}
	tr.Sort()
	return tr
}

// TestReplayTellsTheStory: replay shows each decision in its place among
// the messages — the denial with its reason and policy version, the hold
// with its request, approver, reason and waits, the grant issued and
// used, the timed-out hold as pending, the unauthenticated caller — and
// the filters keep whole calls.
func TestReplayTellsTheStory(t *testing.T) {
	tr := trailOf("sess-story", t0)
	var b bytes.Buffer
	if err := WriteReplay(&b, Story(tr, ReplayFilter{}), ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"session sess-story  principal alice  client agent  target github  started 2026-03-14T15:09:26.535897932Z",
		"+0.000s  decision  initialize              id=0      allow 200  policy v1  decision d-init",
		"+0.001s  request   initialize              id=0      allow 200",
		"+0.002s  response  initialize              id=0      allow 200",
		"+0.010s  decision  tools/call read         id=2      allow 200  policy v1  decision d-read",
		"+0.011s  request   tools/call read         id=2      allow 200",
		"+0.021s  response  tools/call read         id=2      allow 200              masked aws_access_key=2",
		`+0.030s  decision  tools/call get_env      id=3      deny 403               reason "tool get_env is denied"  policy v1  decision d-deny`,
		`+0.040s  approval  tools/call delete_repo  req-ok    opened                 by alice  reason "cleanup"`,
		`+0.055s  approval  tools/call delete_repo  req-ok    pending                by bob  reason "fine"`,
		`+0.055s  approval  tools/call delete_repo  req-ok    approved               by bob  reason "fine"  grant g-1`,
		"+0.056s  grant     delete_repo             g-1       issued                 by bob  uses left 1  expires 2026-03-14T16:09:26Z  request req-ok",
		"+0.057s  grant     delete_repo             g-1       consumed               uses left 0  expires 2026-03-14T16:09:26Z  request req-ok",
		`+0.060s  decision  tools/call delete_repo  id=5      allow 200              held 20ms on request req-ok: approved by bob after 15ms ("fine")  grant g-1  reason "approved in request req-ok"  policy v1  decision d-held-ok`,
		"+0.061s  request   tools/call delete_repo  id=5      allow 200              grant g-1",
		"+0.070s  approval  tools/call delete_repo  req-wait  opened                 by alice",
		`+0.100s  decision  tools/call delete_repo  id=6      approval_required 200  held 30ms on request req-wait: pending  reason "approval required"  policy v1  decision d-held-wait`,
		"+0.110s  approval  tools/call drop_table   req-no    opened                 by alice",
		`+0.115s  approval  tools/call drop_table   req-no    denied                 by bob  reason "not today"`,
		`+0.116s  decision  tools/call drop_table   id=7      deny 403               held 6ms on request req-no: denied by bob after 5ms ("not today")  reason "request req-no was denied"  policy v1  decision d-held-no`,
		`+0.120s  decision  tools/call drop_table   id=8      error 403              reason "the gateway could not hold the call"  policy v1  decision d-hold-failed`,
		`+0.130s  decision  -                       id=9      unauthenticated 401    caller -  reason "no bearer token"  policy v1  decision d-unauth`,
		`+0.140s  decision  tools/call read         id=10     deny 403               reason "batch refused"  policy v1  decision d-batch`,
		`+0.140s  decision  tools/call nuke         id=11     deny 403               reason "batch refused"  policy v1  decision d-batch.1`,
		""}, "\n")
	if d := cmp.Diff(want, b.String()); d != "" {
		t.Errorf("replay (-want +got):\n%s", d)
	}

	kinds := func(r *Replay) (out []string) {
		for _, s := range r.Steps {
			switch s.Kind {
			case StepMessage:
				out = append(out, "message "+s.Message.EventID)
			case StepDecision:
				out = append(out, "decision "+s.Decision.DecisionID)
			case StepApproval:
				out = append(out, "approval "+s.Request.EventID)
			case StepGrant:
				out = append(out, "grant "+s.Grant.EventID)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    ReplayFilter
		want []string
	}{
		{"outcome deny", ReplayFilter{Outcome: "deny"}, []string{"decision d-deny", "approval rq-4", "approval rq-5",
			"decision d-held-no", "decision d-batch", "decision d-batch.1"}},
		{"outcome unauthenticated", ReplayFilter{Outcome: "unauthenticated"}, []string{"decision d-unauth"}},
		{"tool read: its decisions and messages", ReplayFilter{Tool: "read"}, []string{"decision d-read",
			"message " + tr.Events[2].EventID, "message " + tr.Events[3].EventID, "decision d-batch"}},
		{"tool and outcome: the approved call, its request and grant", ReplayFilter{Tool: "delete_repo", Outcome: "allow"}, []string{
			"approval rq-1", "approval rq-2v", "approval rq-2", "grant gr-1", "grant gr-2", "decision d-held-ok", "message " + tr.Events[4].EventID}},
		{"since", ReplayFilter{Since: t0.Add(130 * time.Millisecond)}, []string{"decision d-unauth", "decision d-batch", "decision d-batch.1"}},
		{"nothing matches", ReplayFilter{Tool: "absent"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if d := cmp.Diff(tc.want, kinds(Story(tr, tc.f))); d != "" {
				t.Errorf("steps (-want +got):\n%s", d)
			}
		})
	}

	// JSON: every step says its kind and carries its row; a hold says
	// what became of it.
	b.Reset()
	if err := json.NewEncoder(&b).Encode(Story(tr, ReplayFilter{Outcome: "approval_required"})); err != nil {
		t.Fatal(err)
	}
	var got struct {
		SessionID string `json:"session_id"`
		Principal string `json:"principal"`
		Steps     []struct {
			Kind     string `json:"kind"`
			Decision struct {
				RequestID string `json:"request_id"`
				Outcome   string `json:"outcome"`
			} `json:"decision"`
			Hold *Hold `json:"hold"`
		} `json:"steps"`
	}
	if err := json.Unmarshal(b.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	last := got.Steps[len(got.Steps)-1]
	if got.SessionID != "sess-story" || got.Principal != "alice" || last.Kind != StepDecision || last.Decision.Outcome != "approval_required" ||
		last.Hold == nil || *last.Hold != (Hold{RequestID: "req-wait", State: "pending", HeldFor: 0.03}) {
		t.Errorf("json: %s", b.String())
	}
}
