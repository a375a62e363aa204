#!/usr/bin/env bash
# Installs what airlock's tests use, and says how when it cannot.
#  - Debian packages: ClickHouse (audit tests run a real server on
#    loopback), PostgreSQL (the shared grant store's tests run a
#    throw-away cluster) and Chromium (the approval inbox browser test).
#  - ZooKeeper from Debian (with java): the audit cluster tests run two
#    ClickHouse servers replicating through a standalone ZooKeeper.
#  - Node peers from the npm lock file in test/node: the MCP
#    server-everything, the TypeScript MCP SDK, oidc-provider, the MCP
#    conformance suite and a Node 22 runtime for it.
set -euo pipefail
cd "$(dirname "$0")/.."

need() { command -v "$1" >/dev/null 2>&1; }

# --node: only what `make demo` needs (the npm peers), never ClickHouse or
# Chromium, never root: the demo must run on a machine with Go, Node and npm.
node_only=false
[ "${1:-}" = --node ] && node_only=true

apt_pkgs=()
if ! $node_only; then
  need clickhouse-server || [ -x /usr/sbin/clickhouse-server ] || apt_pkgs+=(clickhouse-server clickhouse-client)
  need chromium || [ -x /usr/bin/chromium ] || apt_pkgs+=(chromium)
  # PostgreSQL: the shared grant store's tests initdb a throw-away cluster
  # (internal/grants/pgtest finds /usr/lib/postgresql/N/bin).
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need initdb || apt_pkgs+=(postgresql)
  # ZooKeeper for the ClickHouse cluster tests (test/clickhouse runs
  # /usr/share/java/zookeeper.jar with java; the package brings both).
  { [ -f /usr/share/java/zookeeper.jar ] && need java; } || apt_pkgs+=(zookeeper)
fi
need node || apt_pkgs+=(nodejs)
need npm || apt_pkgs+=(npm)
if [ ${#apt_pkgs[@]} -gt 0 ]; then
  if ! $node_only && [ "$(id -u)" = 0 ] && need apt-get; then
    echo "test-deps: installing ${apt_pkgs[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_pkgs[@]}" >/dev/null
  else
    echo "test-deps: missing ${apt_pkgs[*]}; install them (Debian: sudo apt-get install -y ${apt_pkgs[*]})" >&2
    exit 1
  fi
fi

lock=test/node/package-lock.json
stamp=test/node/node_modules/.airlock-installed
if [ ! -f "$stamp" ] || [ "$lock" -nt "$stamp" ]; then
  echo "test-deps: installing test peers from $lock"
  (cd test/node && npm ci --no-audit --no-fund --loglevel=error)
  touch "$stamp"
fi
