package approvals

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
)

// RequestList is the answer of GET /airlock/v1/requests.
type RequestList struct {
	Requests   []*grants.Request `json:"requests"`
	NextCursor string            `json:"next_cursor,omitempty"`
}

// GrantList is the answer of GET /airlock/v1/grants.
type GrantList struct {
	Grants     []*grants.Grant `json:"grants"`
	NextCursor string          `json:"next_cursor,omitempty"`
}

// VerdictBody is the body of approve, deny, cancel and revoke.
type VerdictBody struct {
	Reason string `json:"reason,omitempty"`
	// BreakGlass (approve only) approves alone as a member of a
	// break-glass group; it needs a reason and is flagged everywhere.
	BreakGlass bool `json:"break_glass,omitempty"`
	// Scope (approve only) narrows what approving grants: a kind no wider
	// than the request's and a duration no longer. Widening is refused
	// (400 scope_wider). Absent: the request's scope as shown.
	Scope *ScopeBody `json:"scope,omitempty"`
}

// ScopeBody is the scope an approver approves: kind call_once, tool_args
// or tool_any (empty: the request's kind) and a Go duration ("5m"; empty:
// the request's duration).
type ScopeBody struct {
	Kind     string `json:"kind,omitempty"`
	Duration string `json:"duration,omitempty"`
}

// Scope parses the body's scope; nil body means none.
func (b *ScopeBody) Scope() (*grants.Scope, error) {
	if b == nil {
		return nil, nil
	}
	var s grants.Scope
	if b.Kind != "" {
		k, err := grants.ParseScopeKind(b.Kind)
		if err != nil {
			return nil, err
		}
		s.Kind = k
	}
	if b.Duration != "" {
		d, err := time.ParseDuration(b.Duration)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("scope duration %q: want a positive Go duration such as \"5m\": %w", b.Duration, grants.ErrInvalid)
		}
		s.Duration = grants.Duration(d)
	}
	return &s, nil
}

// maxVerdictBody bounds the body of approve, deny, cancel and revoke.
const maxVerdictBody = 16 << 10

func requestStates(q []string) ([]grants.RequestState, *apiError) {
	var out []grants.RequestState
	for _, s := range q {
		st := grants.RequestState(s)
		switch st {
		case grants.RequestPending, grants.RequestApproved, grants.RequestDenied, grants.RequestExpired, grants.RequestCancelled:
			out = append(out, st)
		default:
			return nil, newError(http.StatusBadRequest, "invalid", fmt.Sprintf("state %.40q: want pending, approved, denied, expired or cancelled", s))
		}
	}
	return out, nil
}

func requestKey(r *grants.Request) (time.Time, string) { return r.CreatedAt, r.ID }

// listRequests: GET /requests?state=&target=&mine=true&limit=&cursor=.
func (h *Handler) listRequests(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	q := r.URL.Query()
	states, ae := requestStates(splitList(q, "state"))
	if ae != nil {
		h.writeError(w, r, ae)
		return
	}
	page, ae := parsePage(q)
	if ae != nil {
		h.writeError(w, r, ae)
		return
	}
	v := viewerFrom(p)
	mine := q.Get("mine") == "true"
	all, err := h.grants.List(r.Context(), grants.RequestFilter{States: states, Target: q.Get("target")})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	items, next := paginate(all, page, requestKey, func(x *grants.Request) bool {
		if mine {
			return owns(v, x)
		}
		return canSeeRequest(v, x)
	})
	for i, x := range items {
		items[i] = h.maskRequest(x)
	}
	writeJSON(w, http.StatusOK, RequestList{Requests: items, NextCursor: next})
}

// visibleRequest is request id if v may see it; otherwise the same
// not-found error as for an unknown id.
func (h *Handler) visibleRequest(r *http.Request, v viewer, id string) (*grants.Request, error) {
	req, err := h.grants.Get(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !canSeeRequest(v, req) {
		return nil, fmt.Errorf("request %q: %w", id, grants.ErrNotFound)
	}
	return req, nil
}

func (h *Handler) getRequest(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	req, err := h.visibleRequest(r, viewerFrom(p), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.maskRequest(req))
}

// readJSON decodes an optional JSON object body of at most limit bytes;
// unknown fields are refused (they are usually typos).
func readJSON(r *http.Request, limit int64, v any) *apiError {
	body, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return newError(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is over %d bytes", limit))
		}
		return newError(http.StatusBadRequest, "invalid", "reading the body: "+err.Error())
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return newError(http.StatusUnsupportedMediaType, "invalid", fmt.Sprintf("content type %.60q: send application/json", ct))
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return newError(http.StatusBadRequest, "invalid", "the body is not the JSON object expected: "+err.Error())
	}
	if dec.More() {
		return newError(http.StatusBadRequest, "invalid", "the body has more than one JSON value")
	}
	return nil
}

// decide records v's verdict on request id, refusing first what the
// viewer may not see and a requester under another identifier.
func (h *Handler) decide(r *http.Request, v viewer, id string, verdict grants.Verdict, reason string) (*grants.Request, error) {
	return h.decideScoped(r, v, id, verdict, reason, nil)
}

// decideScoped is decide with the scope the approver narrowed the request
// to (nil: as the policy set it); see grants.Service.DecideScoped.
func (h *Handler) decideScoped(r *http.Request, v viewer, id string, verdict grants.Verdict, reason string, scope *grants.Scope) (*grants.Request, error) {
	req, err := h.visibleRequest(r, v, id)
	if err != nil {
		return nil, err
	}
	if asked(v, req) {
		return nil, fmt.Errorf("%s asked for request %s: %w", v.Subject, id, grants.ErrSelfApproval)
	}
	out, err := h.grants.DecideScoped(r.Context(), id, v.actor(), verdict, reason, scope)
	if err != nil {
		return nil, err
	}
	return h.maskRequest(out), nil
}

func (h *Handler) decider(verdict grants.Verdict) func(http.ResponseWriter, *http.Request, *identity.Principal) {
	return func(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
		var body VerdictBody
		if ae := readJSON(r, maxVerdictBody, &body); ae != nil {
			h.writeError(w, r, ae)
			return
		}
		v := verdict
		if body.BreakGlass {
			if verdict != grants.VerdictApprove {
				h.writeError(w, r, newError(http.StatusBadRequest, "invalid", "break_glass goes with approve, not "+string(verdict)))
				return
			}
			v = grants.VerdictBreakGlass
		}
		if body.Scope != nil && verdict != grants.VerdictApprove {
			h.writeError(w, r, newError(http.StatusBadRequest, "invalid", "scope goes with approve, not "+string(verdict)))
			return
		}
		scope, err := body.Scope.Scope()
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		out, err := h.decideScoped(r, viewerFrom(p), r.PathValue("id"), v, body.Reason, scope)
		if err != nil {
			h.writeError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (h *Handler) cancelRequest(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	var body VerdictBody
	if ae := readJSON(r, maxVerdictBody, &body); ae != nil {
		h.writeError(w, r, ae)
		return
	}
	if body.BreakGlass {
		h.writeError(w, r, newError(http.StatusBadRequest, "invalid", "break_glass goes with approve, not cancel"))
		return
	}
	v := viewerFrom(p)
	id := r.PathValue("id")
	if _, err := h.visibleRequest(r, v, id); err != nil {
		h.writeError(w, r, err)
		return
	}
	out, err := h.grants.Cancel(r.Context(), id, v.actor(), body.Reason)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.maskRequest(out))
}

// grantStates parses state= of the grant list.
func grantStates(q []string) ([]grants.GrantState, *apiError) {
	var out []grants.GrantState
	for _, s := range q {
		st := grants.GrantState(s)
		if !slices.Contains([]grants.GrantState{grants.GrantActive, grants.GrantConsumed, grants.GrantExpired, grants.GrantRevoked}, st) {
			return nil, newError(http.StatusBadRequest, "invalid", fmt.Sprintf("state %.40q: want active, consumed, expired or revoked", s))
		}
		out = append(out, st)
	}
	return out, nil
}
