// Package peers starts the real protocol peers airlock's end-to-end tests
// and demo talk to: the reference MCP server ("server-everything") and the
// TypeScript SDK client from npm, an MCP server built with the TypeScript
// SDK's Express app (which decodes bodies by their charset and
// Content-Encoding, and records what it received and ran: the attack
// suite's upstream), an MCP server (optionally compressing its answers) and
// client built with the official Go SDK, and the certified npm
// oidc-provider issuing Okta-shaped access tokens through the
// client_credentials grant.
//
// Every peer listens on loopback only and is started by a Start function
// that waits until the peer answers, with a bounded timeout. Each returns a
// handle with URL and Close; Close stops the peer (for Node peers, the whole
// process group). The context given to a Start function bounds startup
// only: the peer runs until Close.
//
// The Node peers come from the npm lock file in test/node (`make test-deps`
// installs them); see [NodeDir] for how that directory is found.
//
// This is ordinary code (no testing import) so that a small main, such as
// the demo, can use it too.
package peers
