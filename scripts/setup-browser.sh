#!/usr/bin/env bash
# Headless browser for the end-to-end notebook test: Debian's chromium (apt) + playwright-core (npm).
# Never fatal: without a browser the e2e test is skipped with its reason.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "invlab setup: installing chromium (apt, about 1 minute)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "invlab setup: chromium install failed; the browser test will be skipped"
  else
    echo "invlab setup: chromium missing and not root; the browser test will be skipped"
  fi
fi
if [ -f package.json ] && [ ! -d node_modules/playwright-core ] && command -v npm >/dev/null 2>&1; then
  echo "invlab setup: installing playwright-core (npm)"
  npm install --no-audit --no-fund --silent >/dev/null 2>&1 || echo "invlab setup: npm install failed; the browser test will be skipped"
fi
exit 0
