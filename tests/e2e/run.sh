#!/usr/bin/env bash
# Runs the browser suite: the stock stream-chat-react components, bundled with esbuild, in
# headless Chromium (Debian's `chromium` package, driven by npm playwright-core) against one
# `ward serve` per database, on SQLite then on PostgreSQL.
#
#   tests/e2e/run.sh                  # both databases
#   WARD_E2E_DBS=sqlite tests/e2e/run.sh
#   WARD_E2E_PENDING=1 tests/e2e/run.sh   # also the scenarios of pending.js, as todo
#   WARD_BIN=/path/to/ward tests/e2e/run.sh
#
# Needs: Node 20+, /usr/bin/chromium (apt-get install chromium; WARD_E2E_CHROMIUM overrides),
# a built ward binary (`cargo build`; default ../../target/debug/ward), and for PostgreSQL a
# server on 127.0.0.1:5432 with trust auth for user postgres (WARD_JS_PG overrides).
# Screenshots of failed scenarios: tests/e2e/output/<db>/ (WARD_E2E_OUTPUT overrides).
set -uo pipefail

cd "$(dirname "$0")"

bin="${WARD_BIN:-../../target/debug/ward}"
if [[ ! -x "$bin" ]]; then
  echo "run.sh: ward binary not found at $bin (run \`cargo build\` or set WARD_BIN)" >&2
  exit 2
fi
export WARD_BIN="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

chromium="${WARD_E2E_CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$chromium" ]]; then
  echo "run.sh: no browser at $chromium (apt-get install chromium, or set WARD_E2E_CHROMIUM)" >&2
  exit 2
fi

# The exact versions of package-lock.json, installed when missing or older than the lock.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund || exit 2
fi

rm -rf output
status=0
summary=()
for db in ${WARD_E2E_DBS:-sqlite postgres}; do
  echo "=== browser suite (stock stream-chat-react in Chromium) on $db ==="
  start=$(date +%s)
  if WARD_E2E_DB="$db" npm test; then
    result=passed
  else
    result=FAILED
    status=1
  fi
  summary+=("$db: $result in $(( $(date +%s) - start ))s")
done

echo "=== summary ==="
printf '%s\n' "${summary[@]}"
exit "$status"
