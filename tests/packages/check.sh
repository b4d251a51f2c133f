#!/usr/bin/env bash
# deploy/packages.txt is the one list of Debian packages Ward needs. This test fails when
# one of its users drifts from it:
#   - scripts/serve (the README's run command) must ask for exactly the build + runtime
#     sections, and print / run the exact apt-get line (run with fake dpkg-query, id,
#     apt-get and cargo on a PATH of its own);
#   - .ci/run must install exactly the build + runtime + test sections (same trick);
#   - the Dockerfile's build stage must install the build section, its runtime stage the
#     runtime section;
#   - README's run section names the build and runtime sections' packages as they are;
#   - every shared library the ward binary links (ldd) must come from the runtime section
#     or the packages those depend on, and every runtime package but ca-certificates must
#     provide one of them (skipped without a built binary: WARD_BIN or target/debug/ward).
# Prints PASS/FAIL lines and "N passed, M failed"; exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck source=scripts/lib/packages.sh
. scripts/lib/packages.sh

PASSED=0
FAILED=0
pass() { echo "PASS  $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL  $*"; FAILED=$((FAILED + 1)); }
# Compare two whitespace-separated lists as sets.
same_set() { [ "$(tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -u)" = "$(tr ' ' '\n' <<<"$2" | sed '/^$/d' | sort -u)" ]; }
words() { "$@" | tr '\n' ' ' | sed 's/ $//'; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

# --- the file itself --------------------------------------------------------------------
BUILD="$(words packages_list build)"
RUNTIME="$(words packages_list runtime)"
TEST="$(words packages_list test)"
if [ -n "$BUILD" ] && [ -n "$RUNTIME" ] && [ -n "$TEST" ]; then
  pass "deploy/packages.txt: build ($BUILD), runtime ($RUNTIME), test ($TEST)"
else
  fail "deploy/packages.txt: a section is empty or missing"
fi
dups="$(packages_list build runtime test | sort | uniq -d | tr '\n' ' ')"
[ -z "$dups" ] && pass "no package is listed twice" || fail "listed twice: $dups"
if ! packages_list build nosuchsection >/dev/null 2>&1; then
  pass "the reader refuses a section the file does not have"
else
  fail "packages_list accepted an unknown section"
fi

# --- a sandbox PATH with fakes ------------------------------------------------------------
# Real tools the scripts need, then fakes that record what they were asked.
BIN="$TMP/bin"
mkdir -p "$BIN"
for tool in bash awk cut dirname tr sed cat; do ln -s "$(command -v "$tool")" "$BIN/$tool"; done
# dpkg-query: $TMP/installed decides (all | none).
cat >"$BIN/dpkg-query" <<EOF
#!$(command -v bash)
[ "\$(cat "$TMP/installed")" = all ] && printf installed || exit 1
EOF
cat >"$BIN/id" <<EOF
#!$(command -v bash)
cat "$TMP/uid"
EOF
cat >"$BIN/apt-get" <<EOF
#!$(command -v bash)
echo "apt-get \$*" >>"$TMP/calls"
# .ci/run would go on to start PostgreSQL: stop it at the install.
[ "\$1" = install ] && [ -e "$TMP/apt-fails" ] && exit 100
exit 0
EOF
cat >"$TMP/cargo" <<EOF
#!$(command -v bash)
echo "cargo \$*" >>"$TMP/calls"
EOF
printf '#!/bin/sh\nexit 0\n' >"$TMP/stub"
chmod +x "$BIN"/* "$TMP/cargo" "$TMP/stub"

# run_sandboxed INSTALLED UID WITH_CARGO SCRIPT ARGS...: output in $TMP/out, status in $RC.
run_sandboxed() {
  local installed=$1 uid=$2 with_cargo=$3
  shift 3
  echo "$installed" >"$TMP/installed"
  echo "$uid" >"$TMP/uid"
  rm -f "$TMP/calls" "$BIN/cargo"
  # Packages checked by a command on PATH: a stub when "installed", nothing otherwise.
  local name check
  while read -r name check; do
    case "$check" in
      command=*)
        rm -f "$BIN/${check#command=}"
        [ "$installed" = none ] || ln -s "$TMP/stub" "$BIN/${check#command=}" ;;
    esac
  done < <(packages_entries build runtime test)
  [ "$with_cargo" = 0 ] || ln -s "$TMP/cargo" "$BIN/cargo"
  touch "$TMP/calls"
  RC=0
  env -i PATH="$BIN" HOME="$TMP/home" "$BIN/bash" "$@" >"$TMP/out" 2>&1 || RC=$?
}

# --- scripts/serve ------------------------------------------------------------------------
WANT_SERVE="$(words packages_list build runtime)"

run_sandboxed none 1000 1 scripts/serve
line="  sudo apt-get install -y --no-install-recommends $WANT_SERVE"
if [ "$RC" -eq 1 ] && grep -qxF -- "$line" "$TMP/out" && [ ! -s "$TMP/calls" ]; then
  pass "scripts/serve, not root, nothing installed: prints '${line# }' and exits 1"
else
  sed 's/^/      /' "$TMP/out"
  fail "scripts/serve, not root: expected exit 1 and the line '$line' (got exit $RC)"
fi

run_sandboxed none 0 1 scripts/serve --some-arg
want="apt-get update
apt-get install -y --no-install-recommends $WANT_SERVE
cargo run --manifest-path $ROOT/Cargo.toml --release --locked -- serve --some-arg"
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/calls")" = "$want" ]; then
  pass "scripts/serve as root installs build + runtime, then runs cargo run --release --locked -- serve"
else
  sed 's/^/      /' "$TMP/out" "$TMP/calls"
  fail "scripts/serve as root: expected the calls
$want"
fi

run_sandboxed all 1000 1 scripts/serve
if [ "$RC" -eq 0 ] && [ "$(cat "$TMP/calls")" = "cargo run --manifest-path $ROOT/Cargo.toml --release --locked -- serve" ]; then
  pass "scripts/serve with everything installed goes straight to cargo run"
else
  sed 's/^/      /' "$TMP/out" "$TMP/calls"
  fail "scripts/serve with everything installed"
fi

run_sandboxed all 1000 0 scripts/serve
if [ "$RC" -eq 1 ] && grep -q rustup "$TMP/out" && [ ! -s "$TMP/calls" ]; then
  pass "scripts/serve without cargo says to install Rust with rustup and exits 1"
else
  sed 's/^/      /' "$TMP/out"
  fail "scripts/serve without cargo (exit $RC)"
fi

# --- .ci/run ------------------------------------------------------------------------------
WANT_CI="$(words packages_list build runtime test)"
touch "$TMP/apt-fails"
run_sandboxed none 0 1 .ci/run
rm -f "$TMP/apt-fails"
got="$(grep '^apt-get install' "$TMP/calls" | sed 's/^apt-get install //; s/-y //; s/-qq //; s/--no-install-recommends //')"
if [ "$got" = "$WANT_CI" ]; then
  pass ".ci/run on a bare machine installs exactly build + runtime + test"
else
  sed 's/^/      /' "$TMP/out" "$TMP/calls"
  fail ".ci/run installs '$got', expected '$WANT_CI'"
fi

# --- Dockerfile ----------------------------------------------------------------------------
# The packages of the `apt-get install` in each stage (continuation lines joined).
stage_packages() {
  awk -v stage="$1" '
    { line = $0; while (line ~ /\\$/ && (getline next_line) > 0) line = substr(line, 1, length(line) - 1) " " next_line }
    line ~ /^FROM / { n++; name = (line ~ / AS [a-z]+/) ? $NF : "stage" n }
    line ~ /^RUN / && line ~ /apt-get install/ && name == stage {
      sub(/.*apt-get install/, "", line); sub(/&&.*/, "", line)
      for (i = 1; i <= split(line, w, /[ \t]+/); i++) if (w[i] != "" && w[i] !~ /^-/) printf "%s ", w[i]
    }' Dockerfile
}
last_stage="stage$(grep -c '^FROM ' Dockerfile)"
got="$(stage_packages build)"
if [ -n "$got" ] && same_set "$got" "$BUILD"; then
  pass "Dockerfile build stage installs the build section"
else
  fail "Dockerfile build stage installs '$got', deploy/packages.txt [build] is '$BUILD'"
fi
got="$(stage_packages "$last_stage")"
if [ -n "$got" ] && same_set "$got" "$RUNTIME"; then
  pass "Dockerfile runtime stage installs the runtime section"
else
  fail "Dockerfile runtime stage installs '$got', deploy/packages.txt [runtime] is '$RUNTIME'"
fi
if grep -q '^FROM debian:bookworm-slim' Dockerfile && [ "$(grep '^FROM ' Dockerfile | tail -n1)" = "FROM debian:bookworm-slim" ]; then
  pass "the runtime stage is debian:bookworm-slim (the suite deploy/packages.txt names)"
else
  fail "the runtime stage is not debian:bookworm-slim"
fi

# --- README ---------------------------------------------------------------------------------
# The run section names the two sections' packages; they must be the file's, in its order.
readme="$(awk '/^## The two commands/ { s = 1; next } s && /^## / { exit } s' README.md | tr '\n' ' ' | tr -s ' ')"
if [[ "$readme" == *"section build (\`$BUILD\`)"* ]] && [[ "$readme" == *"section runtime (\`$RUNTIME\`)"* ]]; then
  pass "README's run section lists the build and runtime sections as they are"
else
  fail "README's run section must say: section build (\`$BUILD\`) ... section runtime (\`$RUNTIME\`)"
fi

# --- the binary's shared libraries ---------------------------------------------------------
WARD="${WARD_BIN:-$ROOT/target/debug/ward}"
if [ -x "$WARD" ] && command -v ldd >/dev/null && command -v dpkg-query >/dev/null; then
  # Packages providing the libraries ldd resolves.
  providers=""
  unresolved=""
  while read -r lib path; do
    pkg="$(dpkg -S "$path" 2>/dev/null || dpkg -S "$(readlink -f "$path")" 2>/dev/null || true)"
    pkg="${pkg%%:*}"
    if [ -n "$pkg" ]; then providers="$providers $pkg"; else unresolved="$unresolved $lib"; fi
  done < <(ldd "$WARD" | awk '$2 == "=>" && $3 ~ /^\// { print $1, $3 }')
  # The runtime section and, recursively, what the installed packages depend on.
  closure=" "
  queue="$RUNTIME"
  while [ -n "${queue// /}" ]; do
    next=""
    for p in $queue; do
      case "$closure" in *" $p "*) continue ;; esac
      closure="$closure$p "
      deps="$(dpkg-query -W -f='${Depends}, ${Pre-Depends}' "$p" 2>/dev/null || true)"
      next="$next $(tr ',|' '\n\n' <<<"$deps" | sed 's/(.*)//; s/:any//; s/^ *//; s/ *$//' | sed '/^$/d' | tr '\n' ' ')"
    done
    queue="$next"
  done
  outside=""
  for p in $providers; do case "$closure" in *" $p "*) ;; *) outside="$outside $p" ;; esac; done
  if [ -z "$unresolved" ] && [ -z "$outside" ]; then
    pass "every library $(basename "$WARD") links comes from the runtime section or its dependencies"
  else
    fail "libraries outside the runtime section: packages${outside:- none}; no package for${unresolved:- none}"
  fi
  unused=""
  for p in $RUNTIME; do
    [ "$p" = ca-certificates ] && continue # not linked: OpenSSL reads its CA bundle
    case " $providers " in *" $p "*) ;; *) unused="$unused $p" ;; esac
  done
  if [ -z "$unused" ]; then
    pass "every runtime package except ca-certificates provides a library the binary links"
  else
    fail "runtime packages the binary does not link:$unused"
  fi
else
  echo "SKIP  shared-library checks (no built binary at $WARD, or no ldd/dpkg)"
fi

echo
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
