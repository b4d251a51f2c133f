#!/usr/bin/env bash
# Checks `ward serve` against its own OpenAPI description (GET /openapi.json) with
# schemathesis: no 5xx, and every status, content type and body as described. One fresh
# server per database (SQLite; PostgreSQL too unless WARD_OPENAPI_DBS says otherwise), each
# called as the backend holding the API secret, as an auditor (a user token) and as an admin
# (a session with its second factor verified). Fails on any finding.
#
# Environment:
#   WARD_BIN               the server binary (default target/debug/ward)
#   WARD_OPENAPI_DBS       "sqlite postgres" (default) or one of them
#   WARD_OPENAPI_EXAMPLES  examples per operation and phase (default 15)
#   WARD_OPENAPI_SEED      schemathesis' seed (default random; printed, to replay a run)
#   WARD_TEST_PG_URL       PostgreSQL server (default postgres://postgres@127.0.0.1:5432)
#   WARD_TOOLS_DIR         where the schemathesis venv lives (default ~/.cache/ward-tools)
set -euo pipefail
cd "$(dirname "$0")/../.."

version=4.32.5
venv="${WARD_TOOLS_DIR:-$HOME/.cache/ward-tools}/schemathesis-$version"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
fi
bin="${WARD_BIN:-$PWD/target/debug/ward}"
examples="${WARD_OPENAPI_EXAMPLES:-15}"
seed="${WARD_OPENAPI_SEED:-$RANDOM}"
pg="${WARD_TEST_PG_URL:-postgres://postgres@127.0.0.1:5432}"
pg="${pg%/}"

work="$(mktemp -d)"
server_pid=""
pg_db=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$pg_db" ]; then psql -q "$pg/postgres" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Starts a fresh server on a free port (WARD_BIND port 0) with a bootstrap admin; sets
# $base, $key, $secret and $admin/$password.
start_server() {
  local db="$1" data="$work/$1"
  mkdir -p "$data"
  # Under the test command the server logs at debug into the suite's log directory, which
  # tests/logscan/scan.py checks for PHI and secrets (the generated ones listed for it).
  local log="$data/ward.log"
  export WARD_DATA_DIR="$data" WARD_BIND=127.0.0.1:0 WARD_LOG=warn
  if [ -n "${WARD_TEST_LOG_DIR:-}" ]; then
    log="$WARD_TEST_LOG_DIR/openapi-$db.log" WARD_LOG=debug
  fi
  export WARD_API_KEY="key$RANDOM$RANDOM" WARD_API_SECRET="secret-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
  unset WARD_DATABASE_URL
  if [ "$db" = postgres ]; then
    pg_db="ward_openapi_$RANDOM$RANDOM"
    psql -q "$pg/postgres" -c "CREATE DATABASE $pg_db" >/dev/null
    export WARD_DATABASE_URL="$pg/$pg_db"
  fi
  key="$WARD_API_KEY" secret="$WARD_API_SECRET" admin=oa-admin password="openapi-$RANDOM-password"
  if [ -n "${WARD_TEST_LOG_DIR:-}" ]; then
    mkdir -p "$WARD_TEST_LOG_DIR/known-secrets"
    printf '%s\n%s\n' "$secret" "$password" >"$WARD_TEST_LOG_DIR/known-secrets/openapi-$db.txt"
  fi
  WARD_BOOTSTRAP_PASSWORD="$password" "$bin" admin bootstrap --user-id "$admin" >/dev/null
  "$bin" serve >"$data/stdout" 2>"$log" &
  server_pid=$!
  local deadline=$((SECONDS + 60))
  base=""
  while [ -z "$base" ]; do
    base="$(sed -n 's/^ward: listening on \(http:\/\/[^ ]*\)$/\1/p' "$data/stdout")"
    if [ -z "$base" ] && { [ $SECONDS -ge $deadline ] || ! kill -0 "$server_pid" 2>/dev/null; }; then
      echo "ward did not start ($db):" >&2
      tail -20 "$log" >&2
      exit 1
    fi
    [ -n "$base" ] || sleep 0.2
  done
}

stop_server() {
  kill "$server_pid"
  wait "$server_pid" || true
  server_pid=""
  if [ -n "$pg_db" ]; then psql -q "$pg/postgres" -c "DROP DATABASE $pg_db" >/dev/null; pg_db=""; fi
}

# schemathesis as one caller: $1 names the run, $2 the TOML of its [auth.openapi.*]
# credentials, the rest selects operations.
fuzz() {
  local name="$1" auth="$2"
  shift 2
  local config="$work/$name.toml"
  (umask 077 && printf '%s\n' "$auth" >"$config")
  echo "--- schemathesis as $name"
  # From the temp dir: schemathesis keeps a cache (.schemathesis/) in its working directory.
  # One worker: with two threads, hypothesis's ast.parse of its own source raced inside
  # CPython 3.11 ("AST constructor recursion depth mismatch"), a runtime error of the tool.
  (cd "$work" && "$venv/bin/schemathesis" --config-file "$config" --no-color run "$base/openapi.json" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --phases examples,coverage,fuzzing --max-examples "$examples" --seed "$seed" \
    --generation-database none --workers 1 --suppress-health-check all "$@")
}

token_auth() {
  printf '[auth.openapi.api_key]\napi_key = "%s"\n[auth.openapi.stream_token]\napi_key = "%s"\n' "$key" "$1"
}

echo "schemathesis $version, seed $seed, $examples examples per operation and phase"
for db in ${WARD_OPENAPI_DBS:-sqlite postgres}; do
  echo "=== $db"
  start_server "$db"
  eval "$(python3 tests/openapi/credentials.py "$base" "$key" "$secret" "$admin" "$password")"
  session="$(printf '[auth.openapi.session]\napi_key = "%s"\n' "$ADMIN_SESSION")"
  fuzz "server-$db" "$(token_auth "$SERVER_TOKEN")" --exclude-tag auth
  fuzz "auditor-$db" "$(token_auth "$AUDITOR_TOKEN")" --include-tag audit
  # Logging out and ending every session end this session: they run last, on their own.
  fuzz "admin-$db" "$session" --include-tag auth --include-tag admin --include-tag compliance \
    --exclude-operation-id logout --exclude-operation-id revoke_all
  fuzz "admin-logout-$db" "$session" --include-operation-id logout --include-operation-id revoke_all
  stop_server
done
echo "schemathesis: no finding"
