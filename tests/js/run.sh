#!/usr/bin/env bash
# Runs the stream-chat SDK suite against `ward serve`, on SQLite then on PostgreSQL.
#
#   tests/js/run.sh                # both databases
#   WARD_JS_DBS=sqlite tests/js/run.sh
#   WARD_BIN=/path/to/ward tests/js/run.sh
#
# Needs: Node 20+, a built ward binary (`cargo build`; default ../../target/debug/ward),
# and for PostgreSQL a server on 127.0.0.1:5432 with trust auth for user postgres
# (override with WARD_JS_PG=postgres://user@host:port), and for the several-nodes files
# (cluster.test.js, drain.test.js) Redis on 127.0.0.1:6379 (override with WARD_JS_REDIS or
# WARD_TEST_REDIS_URL). Each test file starts its own server(s) with fresh data dirs and, on
# PostgreSQL, a fresh database ward_js_<random> that is dropped afterwards (with psql, if
# installed); nodes of one test share one database and a Redis channel of their own.
set -uo pipefail

cd "$(dirname "$0")"

bin="${WARD_BIN:-../../target/debug/ward}"
if [[ ! -x "$bin" ]]; then
  echo "run.sh: ward binary not found at $bin (run \`cargo build\` or set WARD_BIN)" >&2
  exit 2
fi
export WARD_BIN="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund || exit 2
fi

status=0
summary=()
for db in ${WARD_JS_DBS:-sqlite postgres}; do
  echo "=== stream-chat SDK suite on $db ==="
  start=$(date +%s)
  if WARD_JS_DB="$db" npm test; then
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
