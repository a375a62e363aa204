package approvals

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/airlock-mcp/airlock/internal/audit"
	"github.com/airlock-mcp/airlock/internal/config"
)

// AuditPrefix is where the auditors' console is served.
const AuditPrefix = config.AuditPrefix

// Limits of the console's sessions list.
const (
	consoleDefaultLimit = 100
	consoleMaxLimit     = 1000
)

// outcomeChoices are the outcomes the console's filters offer: every
// outcome ext_authz records.
var outcomeChoices = []string{"allow", "deny", "approval_required", "unauthenticated", "forbidden", "invalid", "error"}

// consoleFuncs are the template functions the console's pages use. seg
// escapes one path segment: a session id is whatever the MCP server
// chose, and a "?", "#" or "/" in it must not change the link
// (html/template normalizes URLs but leaves those alone).
var consoleFuncs = template.FuncMap{
	"outcomes": func() []string { return outcomeChoices },
	"seg":      url.PathEscape,
}

// console is the auditors' read-only view of the audit store: sessions
// with filters, one session's timeline, and their CSV and JSON exports.
// It signs in through the inbox (same provider, same session cookie);
// only members of inbox.auditor_groups may read it. What it shows is what
// the store holds: payloads and reasons were masked before they were
// recorded, and html/template escapes everything on the way out.
type console struct {
	in     *inbox
	store  audit.Store
	groups []string
}

// isAuditor reports whether the signed-in person may read the console.
// An approver is not an auditor unless in one of the auditor groups.
func (c *console) isAuditor(s *session) bool {
	return c != nil && s != nil && intersects(s.Groups, c.groups)
}

func (h *Handler) routeConsole() {
	c, p := h.console, AuditPrefix
	in := c.in
	h.mux.HandleFunc("GET "+p+"{$}", in.secured(c.auditor(c.sessionsPage)))
	h.mux.HandleFunc("GET "+p+"sessions.csv", in.secured(c.auditor(c.sessionsExport("csv"))))
	h.mux.HandleFunc("GET "+p+"sessions.json", in.secured(c.auditor(c.sessionsExport("json"))))
	h.mux.HandleFunc("GET "+p+"sessions/{id}", in.secured(c.auditor(c.sessionPage)))
	h.mux.HandleFunc("GET "+p+"sessions/{id}/timeline.csv", in.secured(c.auditor(c.timelineExport("csv"))))
	h.mux.HandleFunc("GET "+p+"sessions/{id}/timeline.json", in.secured(c.auditor(c.timelineExport("json"))))
	h.mux.HandleFunc("GET "+p+"requests/{id}", in.secured(c.auditor(c.requestSession)))
	h.mux.HandleFunc("GET "+p+"grants/{id}", in.secured(c.auditor(c.grantSession)))
	h.mux.HandleFunc(p, in.secured(c.auditor(func(w http.ResponseWriter, r *http.Request, _ *session) {
		in.renderError(w, r, http.StatusNotFound, "There is no console page at "+r.URL.Path+".")
	})))
}

// auditor requires a session of an auditor: without a session the
// browser goes to sign in and comes back; a signed-in non-auditor is
// refused (403), never shown an empty console.
func (c *console) auditor(fn pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := c.in.session(r)
		if s == nil {
			http.Redirect(w, r, InboxPrefix+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if !c.isAuditor(s) {
			c.in.renderError(w, r, http.StatusForbidden, "The audit console is for auditors: you are signed in, but not as a member of an auditor group (inbox.auditor_groups).")
			return
		}
		fn(w, r, s)
	}
}

// sessionQuery is the sessions list's filter as the form shows it.
type sessionQuery struct {
	Principal, Client, Target, Tool, Outcome, Since, Until string
	Limit                                                  int
	// CSV and JSON are the export links of the list as filtered: built
	// here from url.Values, so the template must not escape them again.
	CSV, JSON template.URL
}

// parseSessionQuery reads the list's filter; times are a span back from
// now ("24h", "7d") or a UTC date or time (2026-12-07, 2026-12-07T20:00).
func parseSessionQuery(q url.Values, now time.Time) (sessionQuery, audit.SessionFilter, error) {
	sq := sessionQuery{
		Principal: strings.TrimSpace(q.Get("principal")), Client: strings.TrimSpace(q.Get("client")),
		Target: strings.TrimSpace(q.Get("target")), Tool: strings.TrimSpace(q.Get("tool")),
		Outcome: strings.TrimSpace(q.Get("outcome")), Since: strings.TrimSpace(q.Get("since")),
		Until: strings.TrimSpace(q.Get("until")), Limit: consoleDefaultLimit,
	}
	f := audit.SessionFilter{Principal: sq.Principal, ClientID: sq.Client, Target: sq.Target, Tool: sq.Tool, Outcome: sq.Outcome}
	var errs []error
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > consoleMaxLimit {
			errs = append(errs, fmt.Errorf("limit %.20q: want a number from 1 to %d", s, consoleMaxLimit))
		} else {
			sq.Limit = n
		}
	}
	f.Limit = sq.Limit
	var err error
	if f.Since, err = parseWhen(sq.Since, now); err != nil {
		errs = append(errs, fmt.Errorf("since: %w", err))
	}
	if f.Until, err = parseWhen(sq.Until, now); err != nil {
		errs = append(errs, fmt.Errorf("until: %w", err))
	}
	enc := url.Values{}
	for k, v := range map[string]string{"principal": sq.Principal, "client": sq.Client, "target": sq.Target, "tool": sq.Tool,
		"outcome": sq.Outcome, "since": sq.Since, "until": sq.Until} {
		if v != "" {
			enc.Set(k, v)
		}
	}
	if sq.Limit != consoleDefaultLimit {
		enc.Set("limit", strconv.Itoa(sq.Limit))
	}
	sq.CSV, sq.JSON = exportURL(AuditPrefix+"sessions.csv", enc), exportURL(AuditPrefix+"sessions.json", enc)
	return sq, f, errors.Join(errs...)
}

var spanRE = regexp.MustCompile(`^([0-9]{1,5})([smhd])$`)

// parseWhen reads a time of the list's filter; "" is no bound.
func parseWhen(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if m := spanRE.FindStringSubmatch(s); m != nil {
		n, _ := strconv.Atoi(m[1])
		unit := map[string]time.Duration{"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour}[m[2]]
		return now.Add(-time.Duration(n) * unit), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%.40q: want a span back from now (30m, 24h, 7d) or a UTC time (2026-12-07, 2026-12-07T20:00, RFC 3339)", s)
}

// sessionRow is one line of the sessions list.
type sessionRow struct {
	ID, Principal, Client, Target, Start, Duration      string
	Events, Requests, Decisions, Denied, Held, Approved int64
	Errors, Masked                                      int64
}

func (c *console) sessionsPage(w http.ResponseWriter, r *http.Request, s *session) {
	d := c.in.base(s, "Sessions", "audit")
	sq, f, err := parseSessionQuery(r.URL.Query(), c.in.h.now())
	d.Query = &sq
	status := http.StatusOK
	if err != nil {
		d.Error, status = err.Error(), http.StatusBadRequest
		c.in.render(w, r, "sessions", status, d)
		return
	}
	sums, err := c.store.Sessions(r.Context(), f)
	if err != nil {
		c.in.h.log.Error("audit console: listing sessions failed", "error", err)
		d.Error = "The audit store could not list sessions (logged on the server)."
		c.in.render(w, r, "sessions", http.StatusServiceUnavailable, d)
		return
	}
	for _, x := range sums {
		d.Sessions = append(d.Sessions, sessionRow{
			ID: x.SessionID, Principal: x.Principal, Client: x.ClientID, Target: x.Target, Start: stamp(x.Start),
			Duration: duration(x.End.Sub(x.Start)), Events: x.Events, Requests: x.Requests, Decisions: x.Decisions,
			Denied: x.Denied, Held: x.Held, Approved: x.Approved, Errors: x.Errors, Masked: x.Masked,
		})
	}
	c.in.render(w, r, "sessions", status, d)
}

func (c *console) sessionsExport(format string) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		_, f, err := parseSessionQuery(r.URL.Query(), c.in.h.now())
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sums, err := c.store.Sessions(r.Context(), f)
		if err != nil {
			c.in.h.log.Error("audit console: listing sessions failed", "error", err)
			http.Error(w, "the audit store could not list sessions (logged on the server)", http.StatusServiceUnavailable)
			return
		}
		if sums == nil {
			sums = []audit.SessionSummary{}
		}
		c.in.h.log.Info("audit console export", "what", "sessions", "format", format, "subject", s.Subject, "sessions", len(sums))
		if format == "json" {
			writeExport(w, "airlock-sessions.json", "application/json", jsonBytes(sums))
			return
		}
		rows := [][]string{{"session_id", "principal", "client_id", "target", "start", "end", "duration_seconds",
			"events", "requests", "decisions", "denied", "held", "approved", "errors", "masked"}}
		for _, x := range sums {
			rows = append(rows, []string{cell(x.SessionID), cell(x.Principal), cell(x.ClientID), cell(x.Target),
				csvTime(x.Start), csvTime(x.End), seconds(x.End.Sub(x.Start).Seconds()),
				num(x.Events), num(x.Requests), num(x.Decisions), num(x.Denied), num(x.Held), num(x.Approved), num(x.Errors), num(x.Masked)})
		}
		writeExport(w, "airlock-sessions.csv", "text/csv; charset=utf-8", csvBytes(rows))
	}
}

// replayOf reads one session's story, narrowed by the page's tool and
// outcome; it answers the error page (or text, for exports) itself.
func (c *console) replayOf(w http.ResponseWriter, r *http.Request, page bool) (*audit.Replay, audit.ReplayFilter, bool) {
	id := r.PathValue("id")
	q := r.URL.Query()
	f := audit.ReplayFilter{Tool: strings.TrimSpace(q.Get("tool")), Outcome: strings.TrimSpace(q.Get("outcome"))}
	fail := func(status int, msg string) {
		if page {
			c.in.renderError(w, r, status, msg)
		} else {
			http.Error(w, msg, status)
		}
	}
	t, err := c.store.Replay(r.Context(), id)
	switch {
	case errors.Is(err, audit.ErrNoSession):
		fail(http.StatusNotFound, "Nothing is recorded about session "+id+" (or retention has deleted it).")
		return nil, f, false
	case err != nil:
		c.in.h.log.Error("audit console: replay failed", "session", id, "error", err)
		fail(http.StatusServiceUnavailable, "The audit store could not replay the session (logged on the server).")
		return nil, f, false
	}
	return audit.Story(t, f), f, true
}

func (c *console) sessionPage(w http.ResponseWriter, r *http.Request, s *session) {
	rp, f, ok := c.replayOf(w, r, true)
	if !ok {
		return
	}
	c.in.h.log.Info("audit console read", "session", rp.SessionID, "subject", s.Subject)
	d := c.in.base(s, "Session "+rp.SessionID, "audit")
	tl := viewTimeline(rp)
	tl.Tool, tl.Outcome = f.Tool, f.Outcome
	enc := url.Values{}
	if f.Tool != "" {
		enc.Set("tool", f.Tool)
	}
	if f.Outcome != "" {
		enc.Set("outcome", f.Outcome)
	}
	base := AuditPrefix + "sessions/" + url.PathEscape(rp.SessionID) + "/timeline"
	tl.CSV, tl.JSON = exportURL(base+".csv", enc), exportURL(base+".json", enc)
	d.Timeline = tl
	c.in.render(w, r, "session", http.StatusOK, d)
}

func (c *console) timelineExport(format string) pageFunc {
	return func(w http.ResponseWriter, r *http.Request, s *session) {
		rp, _, ok := c.replayOf(w, r, false)
		if !ok {
			return
		}
		c.in.h.log.Info("audit console export", "what", "timeline", "format", format, "session", rp.SessionID, "subject", s.Subject)
		name := "airlock-session-" + fileSafe(rp.SessionID)
		if format == "json" {
			writeExport(w, name+".json", "application/json", jsonBytes(rp))
			return
		}
		rows := [][]string{{"time", "offset_seconds", "kind", "what", "outcome", "method", "tool", "who",
			"decision_id", "request_id", "grant_id", "duration_seconds", "reason", "masked", "payload"}}
		for _, st := range rp.Steps {
			v := viewStep(st)
			rows = append(rows, []string{csvTime(st.Time), seconds(st.Offset), st.Kind, cell(v.What), cell(v.Outcome), cell(v.Method),
				cell(v.Tool), cell(v.Who), cell(v.DecisionID), cell(v.RequestID), cell(v.GrantID), v.durationSeconds,
				cell(v.Reason), cell(v.Masked), cell(v.Payload)})
		}
		writeExport(w, name+".csv", "text/csv; charset=utf-8", csvBytes(rows))
	}
}

// requestSession sends the auditor from an access request (the inbox's
// request page links here) to the session it was opened in.
func (c *console) requestSession(w http.ResponseWriter, r *http.Request, _ *session) {
	req, err := c.in.h.grants.Get(r.Context(), r.PathValue("id"))
	if err != nil {
		ae := classify(err)
		c.in.renderError(w, r, ae.status, ae.msg)
		return
	}
	if req.Session == "" {
		c.in.renderError(w, r, http.StatusNotFound, "Request "+req.ID+" was opened outside an MCP session (through the API or the CLI): there is no session to show.")
		return
	}
	http.Redirect(w, r, AuditPrefix+"sessions/"+url.PathEscape(req.Session), http.StatusSeeOther)
}

// grantSession sends the auditor from a grant to the session whose call
// its request was opened for.
func (c *console) grantSession(w http.ResponseWriter, r *http.Request, s *session) {
	g, err := c.in.h.grants.GetGrant(r.Context(), r.PathValue("id"))
	if err != nil {
		ae := classify(err)
		c.in.renderError(w, r, ae.status, ae.msg)
		return
	}
	r.SetPathValue("id", g.RequestID)
	c.requestSession(w, r, s)
}

// exportURL is path with q, for an export link.
func exportURL(path string, q url.Values) template.URL {
	if len(q) == 0 {
		return template.URL(path)
	}
	return template.URL(path + "?" + q.Encode())
}

func writeExport(w http.ResponseWriter, name, contentType string, body []byte) {
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(body)
}

func jsonBytes(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // plain data: never fails
	return buf.Bytes()
}

func csvBytes(rows [][]string) []byte {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	_ = cw.WriteAll(rows) // a bytes.Buffer never fails
	return buf.Bytes()
}

// cell keeps a recorded text from being read as a formula by a
// spreadsheet opening the export (CSV injection): a text that starts
// like one gets a leading apostrophe.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', 6, 64) }

func num(n int64) string { return strconv.FormatInt(n, 10) }

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// fileSafe keeps a session id usable in a download's file name.
func fileSafe(s string) string {
	s = unsafeName.ReplaceAllString(s, "_")
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// duration shows a duration at a precision a person reads.
func duration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	default:
		return d.Round(time.Millisecond).String()
	}
}
