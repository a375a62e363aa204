package approvals

import "github.com/airlock-mcp/airlock/internal/grants"

// Asked reports whether a may be the person (or the agent client) who
// asked for r, matched as widely as the inbox and the API match before
// they decide (see asked): other surfaces that decide requests (the Slack
// app) refuse self-approval by the same test, not a copy of it.
func Asked(a grants.Actor, r *grants.Request) bool {
	return asked(viewer{Issuer: a.Issuer, Subject: a.Subject, User: a.User, ClientID: a.ClientID, Groups: a.Groups}, r)
}
