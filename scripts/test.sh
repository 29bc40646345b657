#!/usr/bin/env bash
# The project's test command: installs what the tests need (idempotently), checks formatting,
# lints and docs (clippy --all-targets also type-checks benches and examples), runs every test,
# the end-to-end suite and each fuzz target briefly, and prints a summary.
#
#   scripts/test.sh            everything
#   scripts/test.sh --quick    skip the installs, the end-to-end suite and the fuzz targets
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=0

step() { printf '\n== %s\n' "$*"; }
timed() {
  local name=$1; shift
  local start=$SECONDS rc=0
  "$@" || rc=$?
  printf -- '-- %s took %ds\n' "$name" $((SECONDS - start)) | tee -a target/step-times.txt
  return "$rc"
}
mkdir -p target && : > target/step-times.txt

# background NAME COMMAND...: starts COMMAND, its output to target/NAME.log, and records its
# pid; finish NAME waits for it, prints the log and returns its status. The end-to-end installs
# (mostly downloads) and the fuzz targets (their own target directory, at the lowest priority)
# run this way, in the time the foreground leaves idle instead of after it.
declare -A background_pids
background() {
  local name=$1; shift
  (timed "$name" "$@") >"target/$name.log" 2>&1 &
  background_pids[$name]=$!
}
kill_tree() {
  local child
  for child in $(pgrep -P "$1" || true); do kill_tree "$child"; done
  kill "$1" 2>/dev/null || true
}
trap 'for pid in "${background_pids[@]}"; do kill_tree "$pid"; done' EXIT
finish() {
  local name=$1 rc=0
  wait "${background_pids[$name]}" || rc=$?
  unset "background_pids[$name]"
  cat "target/$name.log"
  return "$rc"
}

if ! $quick; then
  step "Installing what the tests need"
  timed install bash scripts/install-test-deps.sh
  background install-e2e bash scripts/install-e2e-deps.sh
  background fuzz nice -n 19 bash scripts/fuzz.sh "${FUZZ_SECONDS:-15}"
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

e2e_status=0
if ! $quick; then
  step "End-to-end: real provider, browser, MLflow, Caddy"
  finish install-e2e
  set +e
  E2E_REQUIRE_PROXY=1 E2E_REQUIRE_ALL="${CI:+1}" timed e2e bash scripts/e2e.sh 2>&1 | tee target/e2e-output.txt
  e2e_status=${PIPESTATUS[0]}
  set -e
fi

fuzz_status=0
if ! $quick; then
  step "Fuzz targets, briefly (scripts/fuzz.sh SECONDS runs a longer campaign)"
  finish fuzz || fuzz_status=$?
fi

step "Summary"
cat target/step-times.txt
cargo_counts=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "%d %d %d", p, f, s }' "$log")
e2e_counts=$(sed -n 's/^e2e: \([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p' target/e2e-output.txt 2>/dev/null | tail -1 || true)
read -r cp cf cs <<<"$cargo_counts"
read -r ep ef es <<<"${e2e_counts:-0 0 0}"
echo "cargo test: $cp passed, $cf failed, $cs skipped"
echo "e2e: $ep passed, $ef failed, $es skipped"
echo "all: $((cp + ep)) passed, $((cf + ef)) failed, $((cs + es)) skipped"
[ "$status" -eq 0 ] || exit "$status"
[ "$e2e_status" -eq 0 ] || exit "$e2e_status"
exit "$fuzz_status"
