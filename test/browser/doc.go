// Package browser tests airlock's web inbox the way an approver uses it:
// headless Chromium (Debian's chromium, driven over the DevTools protocol
// with chromedp) signs in at the npm oidc-provider (authorization code +
// PKCE), watches a held call's request appear live, approves it, and the
// held call goes through; and the auditors' console the way an auditor
// uses it: a recorded session (allowed, denied, held → approved in the
// inbox) is listed, filtered, opened as a timeline and exported, and an
// approver who is no auditor is refused. With -update-docs the console
// test saves its screenshots to docs/images. Chromium must be installed (apt-get install -y
// chromium); the test fails, never skips, without it.
package browser
