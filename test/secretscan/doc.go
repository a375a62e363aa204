// Package secretscan measures airlock's masking against a scanner nobody
// here wrote: gitleaks (github.com/zricethezav/gitleaks/v8, its detect
// package used as a library). It lives in its own Go module, next to the
// main one and replacing it with ../.., so the airlock binary never
// carries gitleaks and its dependencies; `make test` runs it
// (test-secretscan).
//
// The tests hold two corpora of realistic MCP tool output, in testdata:
//
//   - recall/: source files, .env files, Kubernetes Secrets and
//     ConfigMaps, Terraform state, docker inspect, CI logs, env dumps,
//     cloud CLI output, connection strings, JWTs, PEM keys, credential
//     files — each holding fake but correctly shaped secrets. Every
//     secret gitleaks finds in a document must be gone from airlock's
//     masked output, whichever way the document is delivered: as a
//     tools/call result's text content, as structuredContent, or as an
//     SSE stream; each through the masking engine and through the
//     ext_proc processor (TestRecall).
//   - clean/: source code, lockfiles, hashes, IDs, base64 media,
//     numbers, pagination tokens — none of it a secret. Each must pass
//     the default profile byte for byte, in every delivery
//     (TestFalsePositives).
//
// What today's engine does not yet meet is listed, each with a reason,
// in knownMisses and knownFalsePositives; the tests report those lists
// and fail when an entry is no longer needed, so they only shrink.
// TestRecall also keeps the figures in docs/masking.md current (-update
// rewrites them).
package secretscan
