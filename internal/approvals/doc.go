// Package approvals is the human side of just-in-time access: the JSON
// API over HTTP that lists, opens, approves, denies and cancels access
// requests and lists and revokes grants, with a Server-Sent Events stream
// of changes; and the web inbox, where approvers sign in with the OIDC
// provider (authorization code + PKCE), see pending requests appear live,
// and approve or deny them; and the auditors' console under
// /airlock/audit/, signed in the same way, where members of
// inbox.auditor_groups read the audit store's sessions and timelines
// (audit.Store: Sessions, Replay) and export them as CSV or JSON.
//
// Both sit on top of internal/grants, which owns the rules: this package
// authenticates the caller (an OIDC bearer token for the API, a sealed
// session cookie for the inbox), decides what the caller may see, masks
// arguments and reasons with the target's masking profile before anything
// leaves (again: the grant service masked them as they entered), and
// maps the Service's errors to HTTP statuses. The CLI (internal/cli) talks
// to the API only. docs/api.md describes the endpoints, the events and the
// inbox's sign-in setup.
//
// Who sees what: a request is visible to its requester and to members of
// its approver or break-glass groups; a grant to its holder and to the
// approver or break-glass groups of the request it came from. Auditors
// (inbox.auditor_groups) read every session in the console and, read
// only, every request page of the inbox. Everything else answers 404, as
// if it did not exist.
package approvals
