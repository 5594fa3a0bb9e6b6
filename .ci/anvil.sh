#!/usr/bin/env bash
# Makes sure the anvil node (npm package @foundry-rs/anvil, pinned in package-lock.json) is
# installed in node_modules/. The chain integration tests start and stop anvil themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

anvil_ok() { node_modules/.bin/anvil --version >/dev/null 2>&1; }

if ! anvil_ok; then
  if ! command -v npm >/dev/null 2>&1; then
    command -v apt-get >/dev/null 2>&1 && { apt-get update -qq >/dev/null 2>&1 || true; \
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null 2>&1 || true; }
  fi
  if [ -f package-lock.json ]; then
    npm ci --no-audit --no-fund --loglevel=error
  else
    npm install --no-audit --no-fund --loglevel=error @foundry-rs/anvil
  fi
fi

if ! anvil_ok; then
  echo "anvil.sh: node_modules/.bin/anvil does not run after npm install" >&2
  exit 1
fi
node_modules/.bin/anvil --version | head -1
