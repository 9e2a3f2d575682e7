#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets: the Singer decoder, the key template
# parser/renderer, schema planning and the CSV/JSON encoders) for FUZZ_SECONDS each (default 30),
# starting from and adding to the corpus kept in fuzz/corpus. A crash, panic, hang (>10 s per
# input) or memory blow-up (>2 GiB) fails the script; the input is saved in fuzz/artifacts.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# cargo-fuzz passes nightly-only flags; this lets the machine's one stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
for target in decode template csv config; do
  mkdir -p "corpus/$target"
  status=0
  cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="${FUZZ_SECONDS:-30}" -rss_limit_mb=2048 -timeout=10 >"$log" 2>&1 || status=$?
  grep -E "^(Done|==|SUMMARY|thread|panicked)" "$log" || true
  if [ "$status" -ne 0 ]; then
    tail -n 40 "$log"
    echo "fuzz target $target failed (exit $status); the input is in fuzz/artifacts/$target" >&2
    exit "$status"
  fi
done
echo "fuzzing passed"
