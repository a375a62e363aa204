package grants

import "errors"

// Errors the Service returns, wrapped with what and where; test them with
// errors.Is. The HTTP API maps them to status codes (in brackets).
var (
	ErrNotFound       = errors.New("not found")                                     // [404]
	ErrInvalid        = errors.New("invalid")                                       // [400] a malformed parameter
	ErrNotPending     = errors.New("request is no longer pending")                  // [409]
	ErrSelfApproval   = errors.New("the requester cannot decide their own request") // [403]
	ErrNotApprover    = errors.New("not an approver of this request")               // [403]
	ErrNotAllowed     = errors.New("not allowed")                                   // [403] cancel or revoke by someone else
	ErrAlreadyDecided = errors.New("already decided this request")                  // [409]
	ErrReasonRequired = errors.New("a reason is required")                          // [400]
	ErrTooManyPending = errors.New("too many pending requests for this principal")  // [429]
	ErrGrantUsed      = errors.New("grant already used")                            // [409]
	ErrGrantEnded     = errors.New("grant is not active")                           // [409] expired, revoked or not yet valid
	ErrConflict       = errors.New("record changed concurrently")                   // [409] from a Store
	ErrClosed         = errors.New("grant service is closed")                       // [503]
	ErrCorrupt        = errors.New("grant store is corrupt")                        // refuse to start
	ErrStoreBroken    = errors.New("grant store failed and refuses further writes") // [503]
)
