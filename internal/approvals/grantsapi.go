package approvals

import (
	"fmt"
	"net/http"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/identity"
)

func grantKey(g *grants.Grant) (time.Time, string) { return g.CreatedAt, g.ID }

// listGrants: GET /grants?state=&target=&mine=true&limit=&cursor=.
func (h *Handler) listGrants(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	q := r.URL.Query()
	states, ae := grantStates(splitList(q, "state"))
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
	all, err := h.grants.ListGrants(r.Context(), grants.GrantFilter{States: states, Target: q.Get("target")})
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	items, next := paginate(all, page, grantKey, func(g *grants.Grant) bool {
		if mine {
			return g.HeldBy(v.Issuer, v.Subject)
		}
		return h.canSeeGrant(r.Context(), v, g)
	})
	for i, g := range items {
		items[i] = h.maskGrant(g)
	}
	writeJSON(w, http.StatusOK, GrantList{Grants: items, NextCursor: next})
}

func (h *Handler) visibleGrant(r *http.Request, v viewer, id string) (*grants.Grant, error) {
	g, err := h.grants.GetGrant(r.Context(), id)
	if err != nil {
		return nil, err
	}
	if !h.canSeeGrant(r.Context(), v, g) {
		return nil, fmt.Errorf("grant %q: %w", id, grants.ErrNotFound)
	}
	return g, nil
}

func (h *Handler) getGrant(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	g, err := h.visibleGrant(r, viewerFrom(p), r.PathValue("id"))
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, h.maskGrant(g))
}

// revoke ends grant id for v (the holder, or an approver of its request).
func (h *Handler) revoke(r *http.Request, v viewer, id, reason string) (*grants.Grant, error) {
	if _, err := h.visibleGrant(r, v, id); err != nil {
		return nil, err
	}
	g, err := h.grants.Revoke(r.Context(), id, v.actor(), reason)
	if err != nil {
		return nil, err
	}
	return h.maskGrant(g), nil
}

func (h *Handler) revokeGrant(w http.ResponseWriter, r *http.Request, p *identity.Principal) {
	var body VerdictBody
	if ae := readJSON(r, maxVerdictBody, &body); ae != nil {
		h.writeError(w, r, ae)
		return
	}
	if body.BreakGlass {
		h.writeError(w, r, newError(http.StatusBadRequest, "invalid", "break_glass goes with approve, not revoke"))
		return
	}
	g, err := h.revoke(r, viewerFrom(p), r.PathValue("id"), body.Reason)
	if err != nil {
		h.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, g)
}
