package approvals

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/airlock-mcp/airlock/internal/grants"
)

// ErrorBody is every error the API answers: {"error": {"code", "message"}}.
type ErrorBody struct {
	Error ErrorInfo `json:"error"`
}

// ErrorInfo is a stable code for programs and a message for people. The
// message says what and where; it never carries a token.
type ErrorInfo struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// apiError is an error with its HTTP status and code.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

func newError(status int, code, msg string) *apiError {
	return &apiError{status: status, code: code, msg: msg}
}

// sentinels maps the grants Service's errors to a status and a code
// (docs/grants.md, "Integration contract").
var sentinels = []struct {
	err    error
	status int
	code   string
}{
	{grants.ErrNotFound, http.StatusNotFound, "not_found"},
	{grants.ErrReasonRequired, http.StatusBadRequest, "reason_required"},
	{grants.ErrInvalid, http.StatusBadRequest, "invalid"},
	{grants.ErrWiden, http.StatusBadRequest, "scope_wider"},
	{grants.ErrSelfApproval, http.StatusForbidden, "self_approval"},
	{grants.ErrNotApprover, http.StatusForbidden, "not_approver"},
	{grants.ErrNotAllowed, http.StatusForbidden, "not_allowed"},
	{grants.ErrNotPending, http.StatusConflict, "not_pending"},
	{grants.ErrAlreadyDecided, http.StatusConflict, "already_decided"},
	{grants.ErrGrantUsed, http.StatusConflict, "grant_used"},
	{grants.ErrGrantEnded, http.StatusConflict, "grant_ended"},
	{grants.ErrConflict, http.StatusConflict, "conflict"},
	{grants.ErrTooManyPending, http.StatusTooManyRequests, "too_many_pending"},
	{grants.ErrClosed, http.StatusServiceUnavailable, "unavailable"},
	{grants.ErrStoreBroken, http.StatusServiceUnavailable, "unavailable"},
}

// classify turns any error into a status, a code and a message.
func classify(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	for _, s := range sentinels {
		if errors.Is(err, s.err) {
			return newError(s.status, s.code, err.Error())
		}
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return newError(http.StatusServiceUnavailable, "unavailable", "the request was cancelled or timed out: "+err.Error())
	}
	return newError(http.StatusInternalServerError, "internal", "internal error (logged on the server)")
}

// writeError answers err as JSON; internal errors are logged, not shown.
func (h *Handler) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := classify(err)
	if ae.status == http.StatusInternalServerError {
		h.log.Error("approvals API failed", "method", r.Method, "path", r.URL.Path, "error", err)
	}
	writeJSON(w, ae.status, ErrorBody{Error: ErrorInfo{Code: ae.code, Message: ae.msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"encoding the response failed"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
