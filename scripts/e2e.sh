#!/usr/bin/env bash
# Runs the end-to-end suite (Node's built-in test runner over e2e/tests/) and prints a summary.
#
# Usage: scripts/e2e.sh [--install] [test files...]
#   --install   run scripts/install-e2e-deps.sh first
# Environment:
#   E2E_REQUIRE_PROXY=1  tests that need target/debug/oidc fail instead of being skipped
#   E2E_REQUIRE_ALL=1    a missing chromium, caddy or MLflow fails instead of skipping
#   OIDC_BIN             the proxy binary (default: $CARGO_TARGET_DIR/debug/oidc or target/debug/oidc)
#   E2E_VERBOSE=1        echo every child process's output
# Exit status: that of the test runner (0 when nothing failed).
set -uo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
files=()
for arg in "$@"; do
  case "$arg" in
    --install) "$repo/scripts/install-e2e-deps.sh" || exit $? ;;
    *) files+=("$arg") ;;
  esac
done
[ "${#files[@]}" -gt 0 ] || files=(tests/)

if [ ! -d "$repo/e2e/node_modules" ]; then
  echo "e2e: e2e/node_modules missing: run scripts/install-e2e-deps.sh (or scripts/e2e.sh --install)" >&2
  exit 2
fi

log="$(mktemp)"
trap 'rm -f "$log"' EXIT
start=$(date +%s)
(cd "$repo/e2e" && node --test --test-reporter=tap --test-timeout=600000 "${files[@]}") 2>&1 | tee "$log"
status=${PIPESTATUS[0]}

count() { sed -n "s/^# $1 \([0-9]*\)$/\1/p" "$log" | tail -1; }
passed=$(count pass) failed=$(count fail) cancelled=$(count cancelled)
# Skipped suites are not in the runner's own `# skipped` count: count every SKIP line instead.
skipped=$(grep -cE '^ *ok [0-9]+ .* # SKIP' "$log")
echo
grep -E '^ *ok [0-9]+ .* # SKIP ' "$log" | sed -E 's/^ *ok [0-9]+ - /e2e: skipped: /' | sort -u
echo "e2e: $(( $(date +%s) - start ))s"
echo "e2e: ${passed:-0} passed, $(( ${failed:-0} + ${cancelled:-0} )) failed, ${skipped:-0} skipped"
exit "$status"
