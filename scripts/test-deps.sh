#!/usr/bin/env bash
# Installs what airlock's tests use, and says how when it cannot.
# Node peers (MCP server-everything, the TypeScript SDK client, oidc-provider,
# the MCP conformance suite and a Node 22 runtime for it) come from the npm
# lock file in test/node.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

if ! need node || ! need npm; then
  echo "test-deps: node and npm are required (Debian: apt-get install -y nodejs npm)" >&2
  exit 1
fi

lock=test/node/package-lock.json
stamp=test/node/node_modules/.airlock-installed
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  echo "test-deps: installing test peers from $lock"
  (cd test/node && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
