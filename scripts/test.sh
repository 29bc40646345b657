#!/usr/bin/env bash
# The project's test command: installs what the tests need (idempotently), checks formatting,
# lints and docs, runs every test, keeps benches and fuzz targets compiling, and prints a summary.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    skip the installs and the end-to-end suite
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=0

step() { printf '\n== %s\n' "$*"; }
timed() {
  local name=$1; shift
  local start=$SECONDS
  "$@"
  printf -- '-- %s took %ds\n' "$name" $((SECONDS - start)) | tee -a target/step-times.txt
}
mkdir -p target && : > target/step-times.txt

if ! $quick; then
  step "Installing what the tests need"
  timed install bash scripts/install-test-deps.sh
fi

step "Formatting"
timed fmt cargo fmt --all --check

step "Lints"
timed clippy cargo clippy --workspace --all-targets --locked -- -D warnings

step "Docs"
RUSTDOCFLAGS="-D warnings" timed doc cargo doc --workspace --no-deps --locked

step "Tests"
log=target/test-output.txt
set +e
timed test cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e

step "Benches and examples still build"
timed bench-build cargo bench --workspace --no-run --locked

step "Summary"
cat target/step-times.txt
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
