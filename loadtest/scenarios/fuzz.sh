#!/usr/bin/env bash
# Runs every cargo fuzz target in tests/fuzz (what hookrelay takes from outside:
# signatures, event types, endpoint URLs, ingest bodies, settings) for MINUTES
# (10) each, JOBS (2) at a time, and prints each target's executions and whether
# it found a crash (inputs land in tests/fuzz/artifacts/TARGET). TARGETS picks some.
# Not part of CI. cargo fuzz asks for flags of the nightly compiler: the stable
# toolchain takes them with RUSTC_BOOTSTRAP=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
MINUTES="${MINUTES:-10}"
JOBS="${JOBS:-2}"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
cd "$ROOT"
TARGETS="${TARGETS:-$(cargo fuzz list --fuzz-dir tests/fuzz | tr '\n' ' ')}"
cargo fuzz build --fuzz-dir tests/fuzz --sanitizer none --debug-assertions >/dev/null
OUT="$ROOT/target/fuzz-runs"
mkdir -p "$OUT"
run() {
  local t="$1"
  mkdir -p "tests/fuzz/corpus/$t"
  if cargo fuzz run --fuzz-dir tests/fuzz --sanitizer none --debug-assertions "$t" -- \
       -max_total_time=$((MINUTES * 60)) -print_final_stats=1 >"$OUT/$t.log" 2>&1; then
    crash=none
  else
    crash="$(ls -t "tests/fuzz/artifacts/$t" 2>/dev/null | head -1)"
  fi
  local runs
  runs="$(grep -m1 'stat::number_of_executed_units' "$OUT/$t.log" | awk '{print $2}')"
  echo "{\"target\": \"$t\", \"minutes\": $MINUTES, \"executions\": ${runs:-0}, \"crash\": \"${crash:-see $OUT/$t.log}\"}"
}
export -f run
export MINUTES OUT
printf '%s\n' $TARGETS | xargs -P "$JOBS" -I{} bash -c 'run {}'
