#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a bounded time: `bash scripts/fuzz.sh [SECONDS]`
# (60 per target by default; CI runs it with less). Each target starts from its committed
# corpus (fuzz/corpus/<target>, seeds from `cargo run -p ravproto --example fuzz_seeds`) and
# writes what it finds to target/fuzz/corpus/<target>, so the checkout stays clean; copy new
# inputs worth keeping into fuzz/corpus by hand. A crash leaves its input under
# target/fuzz/artifacts/<target>/ and fails the script: make it a regression test (README,
# "Fuzzing"), then fix it.
# Needs cargo-fuzz (installed here when missing) and a nightly rustc, or the stable one with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz passes -Z flags for the sanitizer).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
# FUZZ_TARGETS="op_json subscript" runs some of them.
read -r -a targets <<< "${FUZZ_TARGETS:-tensor_frame op_json subscript checkpoint federated}"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked --version 0.13.2
fi
if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
  toolchain=(+nightly)
else
  toolchain=()
  export RUSTC_BOOTSTRAP=1
fi

build=target/fuzz
echo "== building the fuzz targets (address sanitizer, debug assertions)"
cargo "${toolchain[@]}" fuzz build --fuzz-dir fuzz --target-dir "$build/build"
for target in "${targets[@]}"; do
  echo "== fuzzing $target for ${seconds} s"
  mkdir -p "$build/corpus/$target" "$build/artifacts/$target"
  # The malloc limit is far above the op_json target's 64 MiB budget: an op that allocates
  # past it got by the budget check. -timeout catches a hang on one input.
  dict=()
  if [[ -f "fuzz/$target.dict" ]]; then dict=(-dict="fuzz/$target.dict"); fi
  cargo "${toolchain[@]}" fuzz run --fuzz-dir fuzz --target-dir "$build/build" "$target" \
    "$build/corpus/$target" "fuzz/corpus/$target" -- "${dict[@]}" \
    -max_total_time="$seconds" -timeout=30 -rss_limit_mb=3072 -malloc_limit_mb=1024 \
    -artifact_prefix="$build/artifacts/$target/" -print_final_stats=1 2>&1 |
    grep -v '^#[0-9]*\s*\(NEW\|REDUCE\|pulse\)' || { echo "fuzz target $target failed: its input is in $build/artifacts/$target/"; exit 1; }
done
echo "== fuzz ok: ${#targets[@]} targets, ${seconds} s each"
