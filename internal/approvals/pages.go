package approvals

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// inboxListLimit bounds what one inbox page lists.
const inboxListLimit = 200

// pageData is what every inbox template gets.
type pageData struct {
	Title, Nav, Heading, Error, Notice string
	Signed                             bool
	Subject, Who, CSRF                 string
	Pending, History                   []reqView
	Grants                             []grantView
	Request                            *reqView
	// Auditor: the signed-in person may read the audit console (its nav
	// link, and links from requests and grants to their sessions).
	Auditor bool
	// The console's pages: the sessions list and its filter, a timeline.
	Query    *sessionQuery
	Sessions []sessionRow
	Timeline *timelineView
}

func (in *inbox) base(s *session, title, nav string) *pageData {
	d := &pageData{Title: title, Nav: nav}
	if s != nil {
		d.Signed, d.Subject, d.CSRF = true, s.Subject, s.CSRF
		d.Who = s.User
		if d.Who == "" {
			d.Who = s.Subject
		}
		d.Auditor = in.h.console.isAuditor(s)
	}
	return d
}

func (in *inbox) render(w http.ResponseWriter, r *http.Request, page string, status int, d *pageData) {
	var buf bytes.Buffer
	if err := in.pages[page].ExecuteTemplate(&buf, "layout", d); err != nil {
		in.h.log.Error("inbox page failed to render", "page", page, "error", err)
		http.Error(w, "the page failed to render (logged on the server)", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderError shows msg on a page of its own.
func (in *inbox) renderError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	d := in.base(in.session(r), "Error", "")
	d.Heading, d.Error = http.StatusText(status), msg
	in.render(w, r, "message", status, d)
}

type pageFunc func(w http.ResponseWriter, r *http.Request, s *session)

// page requires a session; without one the browser goes to sign in and
// comes back here.
func (in *inbox) page(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := in.session(r)
		if s == nil {
			http.Redirect(w, r, InboxPrefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		fn(w, r, s)
	}
}

// fragment requires a session and answers 401 without one (the script
// then reloads the page, which signs in).
func (in *inbox) fragment(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := in.session(r)
		if s == nil {
			http.Error(w, "not signed in", http.StatusUnauthorized)
			return
		}
		fn(w, r, s)
	}
}

// maxFormBytes bounds an inbox form.
const maxFormBytes = 16 << 10

// post guards every state change: a session, a same-origin request
// (Origin and Sec-Fetch-Site, when the browser sends them) and the
// session's CSRF token in the form or the X-CSRF-Token header.
func (in *inbox) post(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" && o != in.origin {
			in.renderError(w, r, http.StatusForbidden, "Cross-site request refused: this form must be sent from "+in.origin+".")
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
			in.renderError(w, r, http.StatusForbidden, "Cross-site request refused ("+site+").")
			return
		}
		s := in.session(r)
		if s == nil {
			in.renderError(w, r, http.StatusUnauthorized, "Your sign-in has expired: sign in again, then repeat the action.")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
		if err := r.ParseForm(); err != nil {
			in.renderError(w, r, http.StatusBadRequest, "The form could not be read.")
			return
		}
		tok := r.PostForm.Get("csrf")
		if tok == "" {
			tok = r.Header.Get("X-CSRF-Token")
		}
		if subtle.ConstantTimeCompare([]byte(tok), []byte(s.CSRF)) != 1 {
			in.renderError(w, r, http.StatusForbidden, "The form's security token is missing or stale (CSRF check): reload the page and try again.")
			return
		}
		fn(w, r, s)
	}
}

// pending lists the pending requests s may see: theirs to decide, and
// their own.
func (in *inbox) pending(ctx context.Context, s *session) ([]reqView, error) {
	list, err := in.h.grants.List(ctx, grants.RequestFilter{States: []grants.RequestState{grants.RequestPending}})
	if err != nil {
		return nil, err
	}
	v := s.viewer()
	var out []reqView
	for _, r := range list {
		if len(out) < inboxListLimit && canSeeRequest(v, r) {
			rv := viewRequest(v, in.h.maskRequest(r))
			rv.CSRF = s.CSRF
			rv.Card = in.h.card(ctx, r, false, nil)
			rv.Auditor = in.h.console.isAuditor(s)
			out = append(out, rv)
		}
	}
	return out, nil
}

func (in *inbox) pendingPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := in.base(s, "Pending", "pending")
	var err error
	if d.Pending, err = in.pending(r.Context(), s); err != nil {
		d.Error = classify(err).msg
	}
	in.render(w, r, "pending", http.StatusOK, d)
}

func (in *inbox) pendingFragment(w http.ResponseWriter, r *http.Request, s *session) {
	d := in.base(s, "", "")
	var err error
	if d.Pending, err = in.pending(r.Context(), s); err != nil {
		ae := classify(err)
		http.Error(w, ae.msg, ae.status)
		return
	}
	in.renderFragment(w, "pending-list", d)
}

func (in *inbox) renderFragment(w http.ResponseWriter, name string, d *pageData) {
	var buf bytes.Buffer
	if err := in.fragments.ExecuteTemplate(&buf, name, d); err != nil {
		in.h.log.Error("inbox fragment failed to render", "fragment", name, "error", err)
		http.Error(w, "the fragment failed to render", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(buf.Bytes())
}

// requestData loads request id for s, or answers an error page.
func (in *inbox) requestData(r *http.Request, s *session) (*pageData, error) {
	v := s.viewer()
	req, err := in.h.visibleRequest(r, v, r.PathValue("id"))
	if errors.Is(err, grants.ErrNotFound) && in.h.console.isAuditor(s) {
		// An auditor reads every session, so also the request a
		// session's call was held on (the timeline links here), read
		// only: the decision form still needs an approver group.
		req, err = in.h.grants.Get(r.Context(), r.PathValue("id"))
	}
	if err != nil {
		return nil, err
	}
	rv := viewRequest(v, in.h.maskRequest(req))
	rv.CSRF = s.CSRF
	// The rule and the principal's earlier requests cost a read each:
	// the request page has them, the list entries link to it.
	rv.Auditor = in.h.console.isAuditor(s)
	rv.Card = in.h.card(r.Context(), req, true, func(x *grants.Request) bool {
		return canSeeRequest(v, x) || in.h.console.isAuditor(s)
	})
	d := in.base(s, "Request "+req.ID, "")
	d.Request = &rv
	return d, nil
}

// notices are the fixed messages shown after an action (?done=).
var notices = map[string]string{
	"approve":     "You approved this request.",
	"deny":        "You denied this request.",
	"break_glass": "You broke glass: the request is approved, flagged and audited.",
}

func (in *inbox) requestPage(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := in.requestData(r, s)
	if err != nil {
		ae := classify(err)
		in.renderError(w, r, ae.status, ae.msg)
		return
	}
	d.Notice = notices[r.URL.Query().Get("done")]
	in.render(w, r, "request", http.StatusOK, d)
}

func (in *inbox) requestFragment(w http.ResponseWriter, r *http.Request, s *session) {
	d, err := in.requestData(r, s)
	if err != nil {
		ae := classify(err)
		http.Error(w, ae.msg, ae.status)
		return
	}
	in.renderFragment(w, "request-detail", d)
}

func (in *inbox) historyPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := in.base(s, "History", "history")
	v := s.viewer()
	ended := []grants.RequestState{grants.RequestApproved, grants.RequestDenied, grants.RequestExpired, grants.RequestCancelled}
	reqs, err := in.h.grants.List(r.Context(), grants.RequestFilter{States: ended})
	if err == nil {
		for _, x := range reqs {
			if len(d.History) < inboxListLimit && canSeeRequest(v, x) {
				d.History = append(d.History, viewRequest(v, in.h.maskRequest(x)))
			}
		}
		var gs []*grants.Grant
		if gs, err = in.h.grants.ListGrants(r.Context(), grants.GrantFilter{}); err == nil {
			for _, g := range gs {
				if len(d.Grants) < inboxListLimit && in.h.canSeeGrant(r.Context(), v, g) {
					d.Grants = append(d.Grants, viewGrant(in.h.maskGrant(g), true))
				}
			}
		}
	}
	if err != nil {
		d.Error = classify(err).msg
	}
	in.render(w, r, "history", http.StatusOK, d)
}

// decidePost: POST /airlock/inbox/requests/{id}/{approve,deny,break_glass}.
func (in *inbox) decidePost(w http.ResponseWriter, r *http.Request, s *session) {
	verdict := grants.Verdict(r.PathValue("verdict"))
	switch verdict {
	case grants.VerdictApprove, grants.VerdictDeny, grants.VerdictBreakGlass:
	default:
		in.renderError(w, r, http.StatusNotFound, "There is no action "+string(verdict)+" on requests.")
		return
	}
	id := r.PathValue("id")
	// An approver may narrow what approving grants (never widen it: the
	// grant service refuses that); the form offers only narrower scopes.
	var scope *grants.Scope
	if k := r.PostForm.Get("scope"); k != "" && verdict == grants.VerdictApprove {
		kind, err := grants.ParseScopeKind(k)
		if err != nil {
			in.renderError(w, r, http.StatusBadRequest, err.Error())
			return
		}
		scope = &grants.Scope{Kind: kind}
	}
	if _, err := in.h.decideScoped(r, s.viewer(), id, verdict, r.PostForm.Get("reason"), scope); err != nil {
		ae := classify(err)
		d, lerr := in.requestData(r, s)
		if lerr != nil {
			in.renderError(w, r, ae.status, ae.msg)
			return
		}
		d.Error = ae.msg
		in.render(w, r, "request", ae.status, d)
		return
	}
	in.h.log.Info("inbox decision", "request", id, "verdict", verdict, "actor", s.Subject)
	http.Redirect(w, r, InboxPrefix+"requests/"+url.PathEscape(id)+"?done="+string(verdict), http.StatusSeeOther)
}

// revokePost: POST /airlock/inbox/grants/{id}/revoke.
func (in *inbox) revokePost(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PathValue("id")
	if _, err := in.h.revoke(r, s.viewer(), id, r.PostForm.Get("reason")); err != nil {
		ae := classify(err)
		in.renderError(w, r, ae.status, ae.msg)
		return
	}
	in.h.log.Info("inbox revocation", "grant", id, "actor", s.Subject)
	http.Redirect(w, r, InboxPrefix+"history", http.StatusSeeOther)
}

func (in *inbox) logout(w http.ResponseWriter, r *http.Request, _ *session) {
	in.clearCookie(w, in.sessionCookie)
	d := in.base(nil, "Signed out", "")
	d.Heading = "You are signed out of the airlock inbox."
	in.render(w, r, "message", http.StatusOK, d)
}

// events is the inbox's live stream, authenticated by the session cookie
// and ending when the session does.
func (in *inbox) events(w http.ResponseWriter, r *http.Request) {
	s := in.session(r)
	if s == nil {
		http.Error(w, "not signed in", http.StatusUnauthorized)
		return
	}
	in.h.stream(w, r, s.viewer(), time.Unix(s.Expires, 0), true)
}
