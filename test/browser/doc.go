// Package browser tests airlock's web inbox the way an approver uses it:
// headless Chromium (Debian's chromium, driven over the DevTools protocol
// with chromedp) signs in at the npm oidc-provider (authorization code +
// PKCE), watches a held call's request appear live, approves it, and the
// held call goes through. Chromium must be installed (apt-get install -y
// chromium); the test fails, never skips, without it.
package browser
