#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo fuzz, libFuzzer, nightly): builds every target in fuzz/
# once, replays the committed crash inputs (fuzz/regressions/<target>/), then fuzzes each
# target for WARD_FUZZ_SECONDS (default 30) from its seed corpus (fuzz/corpus/<target>/,
# copied: the run's finds stay out of the tree). Fails on any crash, timeout or
# out-of-memory, and prints per target the inputs executed.
#
#   tests/fuzz/run.sh                 # every target, 30 s each (the CI budget)
#   WARD_FUZZ_SECONDS=600 tests/fuzz/run.sh jwt filter   # longer, some targets
#
# Builds without a sanitizer: Ward forbids `unsafe`, so AddressSanitizer would find little
# for the time it costs; debug assertions and overflow checks stay on (cargo fuzz's release
# default). Installs the nightly toolchain and cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${WARD_FUZZ_SECONDS:-30}"
# Per-input limits: a hang or a blow-up is a failure like a crash.
timeout_secs="${WARD_FUZZ_TIMEOUT:-10}"
rss_mb="${WARD_FUZZ_RSS_MB:-2048}"
fuzz_version="0.13.2"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version 2>/dev/null | grep -q "$fuzz_version"; then
  cargo install --locked "cargo-fuzz@$fuzz_version"
fi

build=(cargo +nightly fuzz build --sanitizer none)
started=$SECONDS
"${build[@]}"
echo "fuzz build: $((SECONDS - started)) s"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list)
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
bin_dir="fuzz/target/x86_64-unknown-linux-gnu/release"
failed=0
for target in "${targets[@]}"; do
  bin="$bin_dir/$target"
  flags=(-timeout="$timeout_secs" -rss_limit_mb="$rss_mb" -print_final_stats=1)
  # A dictionary per target, or per family (saml_acs and saml_preparse share saml.dict).
  for dict in "fuzz/dict/$target.dict" "fuzz/dict/${target%%_*}.dict"; do
    if [ -f "$dict" ]; then
      flags+=(-dict="$dict")
      break
    fi
  done

  regressions="fuzz/regressions/$target"
  if [ -d "$regressions" ] && [ -n "$(ls -A "$regressions")" ]; then
    if ! "$bin" "${flags[@]}" "$regressions"/* >"$work/$target.replay.log" 2>&1; then
      echo "FAIL $target: a committed crash input fails again" >&2
      tail -n 40 "$work/$target.replay.log" >&2
      failed=1
      continue
    fi
  fi

  corpus="$work/corpus-$target"
  mkdir -p "$corpus" "$work/artifacts-$target"
  [ -d "fuzz/corpus/$target" ] && cp -r "fuzz/corpus/$target/." "$corpus/"
  log="$work/$target.log"
  if "$bin" "${flags[@]}" -max_total_time="$seconds" \
    -artifact_prefix="$work/artifacts-$target/" "$corpus" >"$log" 2>&1; then
    execs="$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')"
    printf 'ok   %-14s %10s inputs in %s s\n' "$target" "$execs" "$seconds"
  else
    echo "FAIL $target: crash, timeout or out-of-memory; the input:" >&2
    tail -n 60 "$log" >&2
    mkdir -p "fuzz/artifacts/$target"
    cp "$work/artifacts-$target/"* "fuzz/artifacts/$target/" 2>/dev/null || true
    echo "(kept under fuzz/artifacts/$target/; fix, then add it to $regressions/)" >&2
    failed=1
  fi
done
exit "$failed"
