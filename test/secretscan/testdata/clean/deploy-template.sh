#!/usr/bin/env bash
set -euo pipefail
: "${GITHUB_TOKEN:?set GITHUB_TOKEN}"
export PGPASSWORD="${DB_PASSWORD}"
curl -fsS -H "Authorization: Bearer $TOKEN" https://api.github.com/user
curl -fsS -H "Authorization: token ${GITHUB_TOKEN}" https://api.github.com/repos/acme/app
read -r -s -p "Password: " password
echo "token length: ${#GITHUB_TOKEN}"
