#!/usr/bin/env bash
set -euo pipefail

export GITHUB_TOKEN=ghs_JUmbpBcFr5BcXwmV6Dz2NkCXnBWKzdzzoZQV
export NPM_TOKEN=npm_muqCNhwgxdp1vpbRLhv4nbHZ1IP654Yasdhp

curl -sS -X POST https://deploy.internal.test/api/v1/releases \
  -H "Authorization: Bearer irMXF7KUEEr0Zfsdez3HYPoQ" \
  -d "{\"tag\": \"$1\"}"

curl -u "deploy:CHPxCUJgnoKgDqY9SpxW" https://artifacts.internal.test/upload -T dist.tgz

mysql -h db.internal -u root -pRt7vQ2xLm9KpWs4Z deploy < migrate.sql
