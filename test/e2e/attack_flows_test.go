package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// uniq makes a subject unique to this run of a test (-count=n reuses the
// attack stack, and with it earlier runs' grants and requests).
func uniq(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()%1_000_000_000)
}

// pendingOn waits for subject's pending request on target in stack s.
func pendingOn(t *testing.T, ctx context.Context, s *harness.Stack, subject, target string) *grants.Request {
	t.Helper()
	for {
		rs, err := s.Gateway.Grants.List(ctx, grants.RequestFilter{States: []grants.RequestState{grants.RequestPending}, Subject: subject, Target: target})
		if err != nil {
			t.Fatal(err)
		}
		if len(rs) > 0 {
			return rs[0]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no pending request for %s on %s", subject, target)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Finding 2: [ping, <approved call>] replayed. A single-use grant covers
// the call once: across every replay (batch-capable protocol versions, and
// no version header) the call runs at most once, and when it runs the grant
// is consumed; every batch that is refused answers each message with its
// own id, reaches no upstream, and its call is in the decision log.
func TestAttackBatchReplayOfSingleUseGrant(t *testing.T) {
	s := adversarial(t)
	u := upstreams{s}
	ctx := ctxT(t, 60*time.Second)
	sub := uniq("00u-atk-batch")
	tok, err := s.Token(sub, "jsonapi")
	if err != nil {
		t.Fatal(err)
	}
	args := `{"repo":"acme/batch"}`
	held := send(t, s.BaseURL, rawRequest{Target: "/mcp/jsonapi", Header: mcpHeaders(tok), Body: call("b-0", "delete_repository", args)})
	if held.errorFor(`"b-0"`) == nil {
		t.Fatalf("the call to approve was not held: %s", held)
	}
	req := pendingOn(t, ctx, s, sub, "jsonapi")
	approved, err := s.Gateway.Grants.Decide(ctx, req.ID, approver, grants.VerdictApprove, "once")
	if err != nil {
		t.Fatal(err)
	}

	runs := 0
	for i, version := range []string{"2025-03-26", "2024-11-05", ""} {
		pingID, callID := fmt.Sprintf(`"b-%d-ping"`, i), fmt.Sprintf(`"b-%d-call"`, i)
		body := fmt.Sprintf(`[{"jsonrpc":"2.0","id":%s,"method":"ping"},{"jsonrpc":"2.0","id":%s,"method":"tools/call","params":{"name":"delete_repository","arguments":%s}}]`, pingID, callID, args)
		hdr := mcpHeaders(tok, [2]string{"Mcp-Protocol-Version", version})
		if version == "" {
			hdr = slices.DeleteFunc(hdr, func(h [2]string) bool { return h[0] == "Mcp-Protocol-Version" })
		}
		u.reset()
		start := time.Now()
		r := send(t, s.BaseURL, rawRequest{Target: "/mcp/jsonapi", Header: hdr, Body: []byte(body)})
		time.Sleep(50 * time.Millisecond)
		decisions := decisionsBetween(t, s, start, time.Now())
		ran := u.ran(t)
		t.Logf("replay %d (version %q): %s; ran %q; audit %q", i, version, r, ran, outcomes(decisions))
		if r.resultFor(callID) != nil {
			runs++
			if !slices.Equal(ran, []string{"go(jsonapi):delete_repository"}) {
				t.Errorf("replay %d: the call was answered but the upstream ran %q", i, ran)
			}
		} else {
			for _, id := range []string{pingID, callID} {
				if r.errorFor(id) == nil {
					t.Errorf("replay %d: refused batch gives message %s no JSON-RPC error of its own: %s", i, id, r)
				}
			}
			if len(ran) > 0 || len(u.received(t)) > 0 {
				t.Errorf("replay %d: a refused batch reached the upstream: ran %q, received %q", i, ran, u.received(t))
			}
			if slices.ContainsFunc(decisions, func(d audit.Decision) bool { return d.Outcome == "allow" }) {
				t.Errorf("replay %d: a refused batch has an allow decision: %q", i, outcomes(decisions))
			}
		}
		if !slices.ContainsFunc(decisions, func(d audit.Decision) bool {
			return d.Method == "tools/call" && d.Tool == "delete_repository"
		}) {
			t.Errorf("replay %d: the batch's tools/call is not in the decision log: %q", i, outcomes(decisions))
		}
	}
	if runs > 1 {
		t.Errorf("a single-use grant ran the call %d times", runs)
	}
	g, err := s.Gateway.Grants.GetGrant(ctx, approved.GrantID)
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case runs == 1 && g.State != grants.GrantConsumed:
		t.Errorf("the call ran once but the single-use grant is %s", g.State)
	case runs == 0 && g.State != grants.GrantActive:
		t.Errorf("no batch ran the call but the grant is %s (used without a call)", g.State)
	case runs == 0:
		// The grant is real and unused: the plain call it covers goes through, once.
		u.reset()
		r := send(t, s.BaseURL, rawRequest{Target: "/mcp/jsonapi", Header: mcpHeaders(tok), Body: call("b-after", "delete_repository", args)})
		if r.resultFor(`"b-after"`) == nil || !slices.Equal(u.ran(t), []string{"go(jsonapi):delete_repository"}) {
			t.Errorf("the unused grant does not cover the plain call: %s, ran %q", r, u.ran(t))
		}
	}
}

// Finding 4: the agent asks for gzip. The upstream must be asked for
// identity (or its compressed answer refused, or decompressed and masked):
// the agent never reads an unmasked secret, whatever the server does.
func TestAttackCompressedResponses(t *testing.T) {
	s := adversarial(t)
	u := upstreams{s}
	for i, tc := range []struct {
		name, target, accept string
	}{
		{"control: plain server, agent accepts gzip", "jsonapi", "gzip"},
		{"server gzips when accepted (JSON)", "gzipjson", "gzip"},
		{"server gzips when accepted, list", "gzipjson", "br;q=1, gzip;q=0.9, identity;q=0.1"},
		{"server always gzips (SSE), agent accepts gzip", "gzipsse", "gzip"},
		{"server always gzips (SSE), agent accepts nothing", "gzipsse", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sub := uniq(fmt.Sprintf("00u-atk-gz-%d", i))
			tok, err := s.Token(sub, tc.target)
			if err != nil {
				t.Fatal(err)
			}
			hdr := mcpHeaders(tok)
			if tc.accept != "" {
				hdr = append(hdr, [2]string{"Accept-Encoding", tc.accept})
			}
			u.reset()
			start := time.Now()
			r := send(t, s.BaseURL, rawRequest{Target: "/mcp/" + tc.target, Header: hdr, Body: call("z-1", "get_secret_config", "")})
			decisions := decisionsBetween(t, s, start, time.Now())
			t.Logf("answer %d (Content-Encoding %q, %d bytes, %d messages)", r.Status, r.Header.Get("Content-Encoding"), len(r.Body), len(r.Msgs))
			if hasSecret(r.Body) {
				t.Errorf("an UNMASKED secret reached the agent (answer %d, Content-Encoding %q)", r.Status, r.Header.Get("Content-Encoding"))
			}
			switch {
			case r.resultFor(`"z-1"`) != nil:
				if !strings.Contains(string(r.Body), "[MASKED:aws_access_key]") {
					t.Errorf("a result reached the agent without its masks (%d bytes, Content-Encoding %q)", len(r.Body), r.Header.Get("Content-Encoding"))
				}
			case r.errorFor(`"z-1"`) != nil:
				// Refused, by the request's id.
			default:
				t.Errorf("the agent got neither a masked result nor a JSON-RPC error for its id: %d, Content-Encoding %q, %d bytes",
					r.Status, r.Header.Get("Content-Encoding"), len(r.Body))
			}
			for name, g := range u.goServers() {
				for _, req := range g.Requests() {
					if ae := strings.Join(req.Header.Values("Accept-Encoding"), ", "); ae != "" && !strings.EqualFold(ae, "identity") {
						t.Errorf("upstream %s was asked for Accept-Encoding %q; want identity", name, ae)
					}
				}
			}
			if !slices.ContainsFunc(decisions, func(d audit.Decision) bool { return d.Outcome == "allow" }) {
				t.Errorf("the call's decision is not in the audit: %q", outcomes(decisions))
			}
			isAnswer := func(e audit.Event) bool {
				return (e.Direction == audit.DirResponse || e.Direction == audit.DirError) && e.JSONRPCID == `"z-1"`
			}
			evs := eventsUntil(t, s, sub, func(evs []audit.Event) bool { return slices.ContainsFunc(evs, isAnswer) })
			for _, e := range evs {
				if hasSecret([]byte(e.Payload)) {
					t.Errorf("the audit holds an unmasked secret in a %s event", e.Direction)
				}
			}
			if !slices.ContainsFunc(evs, isAnswer) {
				var got []string
				for _, e := range evs {
					got = append(got, fmt.Sprintf("%s %s id=%s %s", e.Direction, e.Method, e.JSONRPCID, e.Outcome))
				}
				t.Errorf("the answer (or its refusal) is not in the audit: %q", got)
			}
		})
	}
}

// Finding 5: an approver's AGENT token (minted for an MCP target, or with
// the issuer-level audience every Okta token carries) cannot approve
// another user's request; a token minted for the approvals API can.
func TestAttackAgentTokenCannotApprove(t *testing.T) {
	s := adversarial(t)
	ctx := ctxT(t, 30*time.Second)
	victim := uniq("00u-atk-victim")
	vtok, err := s.Token(victim, "tsstateless")
	if err != nil {
		t.Fatal(err)
	}
	if r := send(t, s.BaseURL, rawRequest{Target: "/mcp/tsstateless", Header: mcpHeaders(vtok), Body: call("v-1", "delete_all", "")}); r.errorFor(`"v-1"`) == nil {
		t.Fatalf("the victim's call was not held: %s", r)
	}
	req := pendingOn(t, ctx, s, victim, "tsstateless")
	apiAud := s.BaseURL + "/airlock"
	approverToken := func(aud ...string) func(*oidcissuer.Token) {
		return func(tk *oidcissuer.Token) {
			tk.Audience = aud
			tk.Groups = []string{"engineering", "airlock-approvers"}
			// Another agent client than the victim's, so the only reason
			// to refuse is what the token was minted for.
			tk.ClientID = "0oa-mallory-agent"
		}
	}
	for _, tc := range []struct {
		name string
		aud  []string
	}{
		{"issuer-level audience (an Okta agent token)", []string{issuerAudience}},
		{"a target's audience", []string{s.TargetURL("tsstateless")}},
		{"the API's and a target's audience", []string{apiAud, s.TargetURL("tsstateless")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := s.Token("00u-atk-mallory", "tsstateless", approverToken(tc.aud...))
			if err != nil {
				t.Fatal(err)
			}
			for _, call := range []struct{ method, path, body string }{
				{"POST", "/airlock/v1/requests/" + req.ID + "/approve", `{"reason":"lgtm"}`},
				{"GET", "/airlock/v1/requests", ""},
			} {
				hdr := [][2]string{{"Authorization", "Bearer " + tok}, {"Accept", "application/json"}}
				var body []byte
				if call.body != "" {
					hdr = append(hdr, [2]string{"Content-Type", "application/json"})
					body = []byte(call.body)
				}
				r := send(t, s.BaseURL, rawRequest{Method: call.method, Target: call.path, Header: hdr, Body: body})
				if r.Status != http.StatusUnauthorized && r.Status != http.StatusForbidden {
					t.Errorf("%s %s with an agent token: %s, want 401 or 403", call.method, call.path, r)
				}
			}
			got, err := s.Gateway.Grants.Get(ctx, req.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.State != grants.RequestPending {
				t.Fatalf("the victim's request is %s after an agent token tried to approve it", got.State)
			}
		})
	}
	for _, e := range requestEvents(t, s) {
		if e.RequestID == req.ID && strings.Contains(e.Actor, "mallory") && e.ToState != e.FromState {
			t.Errorf("the audit shows mallory moving the request: %+v", e)
		}
	}
	// Control: a token minted for the API approves.
	tok, err := s.Token("00u-carol", "tsstateless", approverToken(apiAud), func(tk *oidcissuer.Token) {
		tk.Scopes, tk.ClientID = []string{"openid"}, "0oa-inbox"
	})
	if err != nil {
		t.Fatal(err)
	}
	r := send(t, s.BaseURL, rawRequest{Target: "/airlock/v1/requests/" + req.ID + "/approve",
		Header: [][2]string{{"Authorization", "Bearer " + tok}, {"Content-Type", "application/json"}, {"Accept", "application/json"}},
		Body:   []byte(`{"reason":"checked the ticket"}`)})
	var out struct {
		State string `json:"state"`
	}
	if r.Status != 200 || json.Unmarshal(r.Body, &out) != nil || out.State != string(grants.RequestApproved) {
		t.Errorf("control: an approver's API token could not approve: %s", r)
	}
}

// Finding 9: a body above gRPC's default 4 MiB receive limit but within
// limits.max_request_bytes is decided like any other (never a bare 403) —
// or the configuration refuses such a limit.
func TestAttackBodyAboveGRPCDefaultLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	s, err := harness.Start(ctx, harness.Options{ADS: true, MaxRequestBytes: 8 << 20})
	if err != nil {
		if strings.Contains(err.Error(), "max_request_bytes") {
			t.Logf("the configuration refuses the limit: %v", err)
			return
		}
		t.Fatal(err)
	}
	defer s.Close()
	tok, err := s.Token("00u-atk-big", "jsonapi")
	if err != nil {
		t.Fatal(err)
	}
	s.JSONServer.Reset()
	r := send(t, s.BaseURL, rawRequest{Target: "/mcp/jsonapi", Header: mcpHeaders(tok),
		Body: call("big-1", "echo", `{"text":"`+strings.Repeat("a", 5<<20)+`"}`)})
	switch {
	case r.resultFor(`"big-1"`) != nil:
		if len(s.JSONServer.ToolCalls()) != 1 {
			t.Errorf("answered, but the upstream ran %d calls", len(s.JSONServer.ToolCalls()))
		}
	case r.errorFor(`"big-1"`) != nil:
		t.Errorf("a body within max_request_bytes was refused: %s", r)
	default:
		t.Errorf("a 5 MiB body within an 8 MiB limit got %s: neither decided nor a JSON-RPC error with its id", r)
	}
}

// Finding 9: identity is the (issuer, subject) pair. A second trusted
// issuer minting the same subject string is another principal: it neither
// uses the first one's grant nor its session.
func TestAttackSameSubjectFromAnotherIssuer(t *testing.T) {
	s := adversarial(t)
	u := upstreams{s}
	ctx := ctxT(t, 60*time.Second)
	sub := uniq("00u-atk-shared")
	okta, err := s.Token(sub, "tsstateless")
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Token2(sub, "tsstateless")
	if err != nil {
		t.Fatal(err)
	}
	if r := send(t, s.BaseURL, rawRequest{Target: "/mcp/tsstateless", Header: mcpHeaders(okta), Body: call("i-0", "delete_all", "")}); r.errorFor(`"i-0"`) == nil {
		t.Fatalf("the call to approve was not held: %s", r)
	}
	req := pendingOn(t, ctx, s, sub, "tsstateless")
	if _, err := s.Gateway.Grants.Decide(ctx, req.ID, approver, grants.VerdictApprove, "fine"); err != nil {
		t.Fatal(err)
	}
	// Control: the grantee's call runs (once its grant route is live in
	// the data path: see TestAttackGrantRouteLiveAtApproval).
	u.reset()
	for deadline := time.Now().Add(10 * time.Second); ; {
		r := send(t, s.BaseURL, rawRequest{Target: "/mcp/tsstateless", Header: mcpHeaders(okta), Body: call("i-1", "delete_all", "")})
		if r.resultFor(`"i-1"`) != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("control: the grantee's call: %s, ran %q", r, u.ran(t))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ran := u.ran(t); !slices.Equal(ran, []string{"ts:delete_all"}) {
		t.Fatalf("control: the grantee's call ran %q", ran)
	}

	u.reset()
	start := time.Now()
	r := send(t, s.BaseURL, rawRequest{Target: "/mcp/tsstateless", Header: mcpHeaders(other), Body: call("i-2", "delete_all", "")})
	decisions := decisionsBetween(t, s, start, time.Now())
	if r.errorFor(`"i-2"`) == nil {
		t.Errorf("the same subject from another issuer was not refused: %s", r)
	}
	if ran := u.ran(t); len(ran) > 0 {
		t.Errorf("the upstream RAN %q for the other issuer's token", ran)
	}
	if len(decisions) == 0 {
		t.Error("the attempt is not in the audit")
	}
	for _, d := range decisions {
		if d.Outcome == "allow" || d.Issuer != s.Issuer2.URL() {
			t.Errorf("audit decision %q (issuer %q), want a refusal of the second issuer's token", outcomes([]audit.Decision{d}), d.Issuer)
		}
	}

	// Nor does it take over the first one's session.
	tsOkta, err := s.Token(sub, "tsserver")
	if err != nil {
		t.Fatal(err)
	}
	tsOther, err := s.Token2(sub, "tsserver")
	if err != nil {
		t.Fatal(err)
	}
	sid := openSession(t, s, "tsserver", tsOkta)
	u.reset()
	r = send(t, s.BaseURL, rawRequest{Target: "/mcp/tsserver", Header: mcpHeaders(tsOther, [2]string{"Mcp-Session-Id", sid}), Body: call("i-3", "echo", `{"text":"x"}`)})
	if r.errorFor(`"i-3"`) == nil || len(u.received(t)) > 0 {
		t.Errorf("the same subject from another issuer used the session: %s, upstream received %q", r, u.received(t))
	}
}

// A call an approver has just approved goes through at once: ext_authz
// lets a granted call go only when its grant route is live in every
// connected Envoy (here the stand-in fed over ADS), so the agent never
// gets "no live grant route" for a grant it holds.
func TestAttackGrantRouteLiveAtApproval(t *testing.T) {
	s := adversarial(t)
	u := upstreams{s}
	ctx := ctxT(t, 30*time.Second)
	sub := uniq("00u-atk-route")
	tok, err := s.Token(sub, "tsstateless")
	if err != nil {
		t.Fatal(err)
	}
	if r := send(t, s.BaseURL, rawRequest{Target: "/mcp/tsstateless", Header: mcpHeaders(tok), Body: call("g-0", "repoDelete", "")}); r.errorFor(`"g-0"`) == nil {
		t.Fatalf("the call to approve was not held: %s", r)
	}
	req := pendingOn(t, ctx, s, sub, "tsstateless")
	if _, err := s.Gateway.Grants.Decide(ctx, req.ID, approver, grants.VerdictApprove, "fine"); err != nil {
		t.Fatal(err)
	}
	u.reset()
	start := time.Now()
	r := send(t, s.BaseURL, rawRequest{Target: "/mcp/tsstateless", Header: mcpHeaders(tok), Body: call("g-1", "repoDelete", "")})
	if r.resultFor(`"g-1"`) == nil || !slices.Equal(u.ran(t), []string{"ts:repoDelete"}) {
		t.Errorf("the call right after approval (%v): %s, ran %q", time.Since(start).Round(time.Millisecond), r, u.ran(t))
	}
}
