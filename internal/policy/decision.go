package policy

import "time"

// Outcomes a decision can have.
const (
	OutcomeAllow            = "allow"
	OutcomeDeny             = "deny"
	OutcomeApprovalRequired = "approval_required"
)

// ReasonNoDecision is the reason of the deny returned when the policy query
// is undefined for an input.
const ReasonNoDecision = "policy produced no decision"

// Decision is what the policy says about one message.
type Decision struct {
	Outcome string // OutcomeAllow, OutcomeDeny or OutcomeApprovalRequired
	Reason  string // human-readable; always set
	// Grant is the id of the grant that allowed the call, if any; only
	// with OutcomeAllow.
	Grant string
	// Approval says who may approve; set exactly when the outcome is
	// OutcomeApprovalRequired.
	Approval       *Approval
	MaskingProfile string
	Record         bool // record the exchange; default true
	PolicyVersion  string
}

// Approval is how a call held for approval may be approved.
type Approval struct {
	ApproverGroups []string
	Threshold      int // approvals needed; default 1
	// GrantDuration is how long the grant issued on approval lasts; zero
	// means a single-use grant.
	GrantDuration time.Duration
	SingleUse     bool // true when GrantDuration is zero or the policy says so
	// PinArguments limits a time-bound grant to the held call's exact
	// arguments; false lets it cover the tool with any arguments.
	PinArguments     bool
	ReasonRequired   bool // the requester must give a reason
	BreakGlassGroups []string
}
