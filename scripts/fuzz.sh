#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30) so that none of them can rot.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Installs cargo-fuzz when missing, seeds the corpora (fuzz/seed.sh), builds all targets once,
# then runs them one after another (niced, one at a time: the machine is shared) and prints, per
# target, the executions, libFuzzer's final coverage (cov, ft) and the corpus size. Targets run
# FUZZ_JOBS at a time (default: the number of cores). Exits non-zero when any target crashes; the
# crashing input is left in fuzz/artifacts/<target>/.
#
# FUZZ_SANITIZER (default none) is passed to cargo-fuzz. The code under test is safe Rust, so
# AddressSanitizer could only find a memory error in a dependency's unsafe code (aws-lc's C is
# not instrumented either way); `address` makes a fresh build about a quarter longer, and is
# worth it for a long campaign.
#
# cargo-fuzz needs nightly-only compiler flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain take
# them. Builds go to FUZZ_TARGET_DIR (default fuzz/target), never to the workspace's target
# directory, whose artifacts the fuzzing flags would otherwise all rebuild.
set -euo pipefail

seconds="${1:-30}"
shift || true
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$root/fuzz"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$fuzz_dir/target}"
export RUSTC_BOOTSTRAP=1
sanitizer="${FUZZ_SANITIZER:-none}"

if ! [[ "$seconds" =~ ^[0-9]+$ ]] || [ "$seconds" -lt 1 ]; then
  echo "fuzz.sh: SECONDS must be a positive whole number, not '$seconds'" >&2
  exit 2
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

cd "$fuzz_dir"
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

bash "$fuzz_dir/seed.sh" >/dev/null
echo "fuzz.sh: building ${#targets[@]} targets" >&2
if [ "$#" -gt 0 ]; then
  for target in "${targets[@]}"; do nice -n 10 cargo fuzz build -s "$sanitizer" "$target"; done
else
  nice -n 10 cargo fuzz build -s "$sanitizer"
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
jobs="${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}"
if ! [[ "$jobs" =~ ^[0-9]+$ ]] || [ "$jobs" -lt 1 ]; then jobs=1; fi

# run_target TARGET: one libFuzzer campaign; its log and exit status go to $logs.
run_target() {
  local target=$1
  mkdir -p "$fuzz_dir/corpus/$target"
  nice -n 10 cargo fuzz run -s "$sanitizer" "$target" "$fuzz_dir/corpus/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048 \
    >"$logs/$target.log" 2>&1
  echo $? >"$logs/$target.status"
}

running=0
for target in "${targets[@]}"; do
  run_target "$target" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then
    wait -n || true
    running=$((running - 1))
  fi
done
wait || true

failed=()
printf '%-24s %12s %8s %8s %8s %s\n' target executions cov ft corpus result
for target in "${targets[@]}"; do
  log="$logs/$target.log"
  status=ok
  if [ "$(cat "$logs/$target.status" 2>/dev/null || echo 1)" != 0 ]; then
    status=CRASH
    failed+=("$target")
  fi
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
  last="$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -n 1 || true)"
  cov="$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")"
  ft="$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")"
  corpus="$(find "$fuzz_dir/corpus/$target" -type f | wc -l)"
  printf '%-24s %12s %8s %8s %8s %s\n' "$target" "${execs:-?}" "${cov:-?}" "${ft:-?}" "$corpus" "$status"
  if [ "$status" != ok ]; then
    grep -E 'panicked|ERROR: |SUMMARY|Test unit written' "$log" | head -n 8 >&2 || true
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz.sh: ${#failed[@]} target(s) crashed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets ran ${seconds}s each without a crash"
