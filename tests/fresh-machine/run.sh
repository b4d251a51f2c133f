#!/usr/bin/env bash
# "A fresh machine, for real": the README's run command on a minimal Debian 12.
#
#   1. debootstraps a minimal Debian bookworm (--variant=minbase) into
#      target/fresh-machine/rootfs, from the Debian mirror this machine's apt uses;
#   2. installs in it only what a newcomer is assumed to have: gcc, git and curl, plus the
#      host's Rust toolchain (~/.cargo/bin and ~/.rustup bind-mounted read-only);
#   3. copies the repository's committed HEAD into it (git archive; not the work tree, not
#      target/);
#   4. runs the README's run command (taken from README.md, section "The two commands") as
#      root in a chroot, with WARD_BIND on a free loopback port; scripts/serve must install
#      the missing Debian packages itself and build and start the server;
#   5. waits (at most WARD_FRESH_TIMEOUT seconds, default 3600: a clean release build on two
#      busy cores took more than 40 min) for GET /healthz to answer 200, then sends SIGTERM
#      and expects the server to drain and exit 0.
# Prints the time each phase took and ends with "N passed, M failed".
#
# Needs root, debootstrap, unshare and network access to the Debian mirror and crates.io.
# Takes a long time (a clean release build): not part of the default test command; run it
# directly or with WARD_FRESH_MACHINE=1 scripts/test.sh.
#
# Everything runs inside private mount and PID namespaces (unshare): the bind mounts vanish
# and every process started in the chroot is killed when the test ends, however it ends.
# Environment: WARD_FRESH_MIRROR (default: the host's Debian mirror), WARD_FRESH_TIMEOUT,
# WARD_FRESH_KEEP=1 keeps target/fresh-machine/rootfs for inspection.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="$ROOT/target/fresh-machine"
ROOTFS="$WORK/rootfs"
TIMEOUT="${WARD_FRESH_TIMEOUT:-3600}"
SUITE=bookworm

log() { printf '[fresh-machine %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Mount points under the rootfs visible in this mount namespace.
mounts_under_rootfs() { findmnt -rn -o TARGET | grep -F "$ROOTFS" || true; }

# The mirror (and the security mirror) of the host's apt sources for Debian.
host_mirror() {
  local kind=$1 files
  files=$(ls /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
  [ -n "$files" ] || return 0
  # shellcheck disable=SC2086
  grep -hoE 'https?://[^ ]+' $files | grep -E '/debian(-security)?/?$' |
    if [ "$kind" = security ]; then grep -E 'debian-security/?$'; else grep -vE 'debian-security/?$'; fi |
    head -n1 | sed 's:/*$::'
}

# ---------------------------------------------------------------------------------------
# Outer part: checks, then the test itself in fresh namespaces, then removal of the rootfs.
if [ "${1:-}" != --inside ]; then
  [ "$(id -u)" -eq 0 ] || { echo "tests/fresh-machine/run.sh must run as root (debootstrap, chroot)" >&2; exit 2; }
  for tool in debootstrap unshare chroot curl git findmnt python3; do
    command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 2; }
  done
  if [ -n "$(mounts_under_rootfs)" ]; then
    echo "something is still mounted under $ROOTFS; unmount it first:" >&2
    mounts_under_rootfs >&2
    exit 2
  fi
  mkdir -p "$WORK"
  rm -rf --one-file-system "$ROOTFS"
  rc=0
  unshare --mount --pid --fork --propagation private --mount-proc -- "$0" --inside || rc=$?
  # The namespaces are gone, and with them every mount; check before deleting anything.
  if [ -n "$(mounts_under_rootfs)" ]; then
    echo "mounts left under $ROOTFS; not deleting it" >&2
    exit 1
  fi
  if [ "${WARD_FRESH_KEEP:-0}" = 1 ]; then
    log "kept $ROOTFS"
  else
    rm -rf --one-file-system "$ROOTFS"
  fi
  exit "$rc"
fi

# ---------------------------------------------------------------------------------------
# Inside private mount and PID namespaces (this shell is PID 1: when it exits, the kernel
# kills whatever the chroot left running).
PASSED=0
FAILED=0
pass() { echo "PASS  $*"; PASSED=$((PASSED + 1)); }
fail() { echo "FAIL  $*"; FAILED=$((FAILED + 1)); }
finish() {
  echo
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ] && [ "$PASSED" -gt 0 ]
}
trap 'rc=$?; fail "unexpected error (status $rc) at line $LINENO of $0"; finish; exit 1' ERR

MIRROR="${WARD_FRESH_MIRROR:-$(host_mirror main)}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
SECURITY="$(host_mirror security)"
SECURITY="${SECURITY:-${MIRROR%/debian}/debian-security}"

# The README's run command: the first ```sh block after "## The two commands".
RUN_COMMAND="$(awk '/^## The two commands/ { s = 1 } s && /^```sh/ { b = 1; next } b && /^```/ { exit } b' "$ROOT/README.md")"
if [ "$RUN_COMMAND" = scripts/serve ]; then
  pass "README's run command is: $RUN_COMMAND"
else
  fail "README's run command is '$RUN_COMMAND', expected scripts/serve"
fi

HOST_CARGO_BIN="$(dirname "$(command -v cargo)")"
HOST_RUSTUP="${RUSTUP_HOME:-$HOME/.rustup}"
[ -d "$HOST_RUSTUP" ] || { fail "no rustup home at $HOST_RUSTUP"; finish; exit 1; }

t0=$SECONDS
log "debootstrap --variant=minbase $SUITE $ROOTFS $MIRROR"
if debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
  pass "debootstrap minbase $SUITE ($((SECONDS - t0)) s)"
else
  tail -n 30 "$WORK/debootstrap.log"
  fail "debootstrap (log: $WORK/debootstrap.log)"
  finish
  exit 1
fi

cat >"$ROOTFS/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
cp /etc/resolv.conf "$ROOTFS/etc/resolv.conf"
mount -t proc proc "$ROOTFS/proc"
mount -t sysfs -o ro sysfs "$ROOTFS/sys"
# The host's Rust toolchain, read-only, where rustup puts it for root.
mkdir -p "$ROOTFS/root/.cargo/bin" "$ROOTFS/root/.rustup"
mount --bind -o ro "$HOST_CARGO_BIN" "$ROOTFS/root/.cargo/bin"
mount --bind -o ro "$HOST_RUSTUP" "$ROOTFS/root/.rustup"

in_chroot() {
  chroot "$ROOTFS" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
    PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    "$@"
}

# What the issue assumes a newcomer has besides Rust: gcc, git and curl (a plain
# `apt-get install`, recommends included, as a person would type it).
t1=$SECONDS
if in_chroot sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc git curl' \
  >"$WORK/newcomer-tools.log" 2>&1; then
  pass "newcomer's tools installed: gcc git curl ($((SECONDS - t1)) s)"
else
  tail -n 30 "$WORK/newcomer-tools.log"
  fail "installing gcc git curl in the chroot"
  finish
  exit 1
fi
# The network's trust anchors are the machine's, like /etc/resolv.conf: local CA
# certificates of the host (e.g. a TLS-inspecting egress proxy's) go into the chroot's store.
if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
  mkdir -p "$ROOTFS/usr/local/share/ca-certificates"
  cp /usr/local/share/ca-certificates/*.crt "$ROOTFS/usr/local/share/ca-certificates/"
  in_chroot update-ca-certificates >>"$WORK/newcomer-tools.log" 2>&1
  log "added the host's local CA certificates: $(cd /usr/local/share/ca-certificates && echo *.crt)"
fi
if in_chroot cargo --version >/dev/null 2>&1; then
  pass "host toolchain usable in the chroot: $(in_chroot cargo --version)"
else
  fail "cargo does not run in the chroot"
fi
# Nothing of Ward's list may be there yet, or the test would prove nothing.
already="$(in_chroot sh -c 'for p in pkg-config libssl-dev libxmlsec1-dev libclang-dev; do dpkg-query -W -f="\${db:Status-Status} \${Package}\n" $p 2>/dev/null; done; true' | awk '$1 == "installed" { print $2 }')"
if [ -z "$already" ]; then
  pass "the chroot lacks pkg-config, libssl-dev, libxmlsec1-dev and libclang-dev"
else
  fail "the chroot already has: $already"
fi

mkdir -p "$ROOTFS/root/ward"
git -C "$ROOT" archive --format=tar HEAD | tar -x -C "$ROOTFS/root/ward"
log "copied $(git -C "$ROOT" rev-parse --short HEAD) to /root/ward"

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
log "running '$RUN_COMMAND' in /root/ward as root, WARD_BIND=127.0.0.1:$PORT (output: $WORK/serve.log)"
t2=$SECONDS
# setsid: its own process group, so SIGTERM reaches the server whatever execs what.
setsid chroot "$ROOTFS" /usr/bin/env -i HOME=/root TERM=dumb LANG=C.UTF-8 \
  PATH=/root/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  WARD_BIND="127.0.0.1:$PORT" \
  bash -c "cd /root/ward && exec $RUN_COMMAND" >"$WORK/serve.log" 2>&1 &
SERVER=$!

healthy=0
next_note=$((SECONDS + 300))
while [ $((SECONDS - t2)) -lt "$TIMEOUT" ]; do
  if ! kill -0 "$SERVER" 2>/dev/null; then
    break
  fi
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$PORT/healthz" || true)"
  if [ "$code" = 200 ]; then
    healthy=1
    break
  fi
  if [ "$SECONDS" -ge "$next_note" ]; then
    log "still waiting ($((SECONDS - t2)) s): $(tail -n 1 "$WORK/serve.log" | cut -c1-160)"
    next_note=$((SECONDS + 300))
  fi
  sleep 2
done
elapsed=$((SECONDS - t2))

if [ "$healthy" = 1 ]; then
  pass "GET /healthz answered 200 after $elapsed s (from '$RUN_COMMAND' on the fresh machine)"
else
  tail -n 40 "$WORK/serve.log"
  if kill -0 "$SERVER" 2>/dev/null; then
    fail "no 200 from /healthz within $TIMEOUT s (log: $WORK/serve.log)"
  else
    rc=0
    wait "$SERVER" || rc=$?
    fail "'$RUN_COMMAND' exited with status $rc after $elapsed s without serving /healthz (log: $WORK/serve.log)"
  fi
fi
if grep -q 'installing the Debian packages Ward needs' "$WORK/serve.log"; then
  pass "scripts/serve installed the missing Debian packages: $(grep -m1 'installing the Debian packages' "$WORK/serve.log" | sed 's/.*run: //')"
else
  fail "scripts/serve did not report installing the missing Debian packages"
fi

if [ "$healthy" != 1 ]; then
  # Still building or stuck: nothing to drain (leaving this PID namespace kills the rest).
  kill -KILL -- "-$SERVER" 2>/dev/null || true
elif kill -0 "$SERVER" 2>/dev/null; then
  kill -TERM -- "-$SERVER" 2>/dev/null || true
  stopped=0
  for _ in $(seq 1 60); do
    kill -0 "$SERVER" 2>/dev/null || { stopped=1; break; }
    sleep 1
  done
  if [ "$stopped" = 1 ]; then
    rc=0
    wait "$SERVER" || rc=$?
    if [ "$rc" -eq 0 ]; then
      pass "the server drained and exited 0 on SIGTERM"
    else
      fail "the server exited with status $rc on SIGTERM"
    fi
  else
    fail "the server still runs 60 s after SIGTERM"
    kill -KILL -- "-$SERVER" 2>/dev/null || true
  fi
fi

log "times: debootstrap $((t1 - t0)) s, newcomer's tools $((t2 - t1)) s, run command to /healthz ${elapsed} s"
trap - ERR
finish
