// Package policy is the vocabulary of airlock's decision policy: the input
// a policy sees about one MCP message (principal, target, message, HTTP
// request, the caller's grants), the decision it returns, the name facts
// computed for it, which grants cover a call, the error type for a broken
// policy, and the Evaluator interface callers decide through.
//
// It does not import OPA. The engine that loads, compiles and evaluates
// Rego lives in internal/policy/rego; only code that builds an engine
// (start-up wiring, the CLI, tests) imports that, so the grant store, the
// approval API and the ext_authz core compile without OPA.
//
// The schema of the input and of the decision is documented for policy
// authors in policies/README.md.
package policy

import "context"

// Evaluator decides one message. internal/policy/rego's Engine and Store
// implement it; tests use fakes. An error, or any result the evaluator
// cannot vouch for, means the caller must deny (fail closed). The returned
// decision carries the PolicyVersion that produced it.
type Evaluator interface {
	Evaluate(ctx context.Context, in *Input) (Decision, error)
}
