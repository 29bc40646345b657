# Helpers shared by the load scripts: where the binaries are, a scratch folder, processes that
# are stopped on exit, free loopback ports, waiting for a port, and reading RSS from /proc.
# Sourced, not run.

set -euo pipefail

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/target}"
BENCH_BIN="$CARGO_TARGET_DIR/release"
WORK="$(mktemp -d -t oidc-load.XXXXXX)"
STARTED_PIDS=()

cleanup() {
    local pid
    for pid in "${STARTED_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${STARTED_PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -f "$WORK/apache/httpd.pid" ]]; then
        kill "$(cat "$WORK/apache/httpd.pid")" 2>/dev/null || true
    fi
    sleep 0.2
    rm -rf "$WORK"
}
trap cleanup EXIT

# Builds the bench binaries (release) unless LOAD_NO_BUILD=1.
build_tools() {
    if [[ "${LOAD_NO_BUILD:-0}" != 1 ]]; then
        cargo build --quiet --release -p oidc-benches --bins >&2
    fi
}

# Starts a command in the background, remembering its pid for cleanup; prints the pid.
start() {
    "$@" &
    local pid=$!
    STARTED_PIDS+=("$pid")
    LAST_PID=$pid
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# wait_for_file FILE [tenths]: waits until FILE exists (default 10 s).
wait_for_file() {
    local i
    for ((i = 0; i < ${2:-100}; i++)); do
        [[ -s "$1" ]] && return 0
        sleep 0.1
    done
    echo "load: $1 did not appear" >&2
    return 1
}

# wait_for_http URL [expected status] [tenths]: waits until URL answers (default: any status,
# 10 s).
wait_for_http() {
    local i code
    for ((i = 0; i < ${3:-100}; i++)); do
        code=$(curl -sk -o /dev/null -w '%{http_code}' --max-time 1 "$1" || true)
        if [[ "$code" != 000 && ( -z "${2:-}" || "$code" == "$2" ) ]]; then
            return 0
        fi
        sleep 0.1
    done
    echo "load: $1 did not answer ${2:-}" >&2
    return 1
}

# rss_kib PID FIELD: VmRSS or VmHWM of a process, in KiB.
rss_kib() {
    awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"
}

# The oidc binary: $OIDC_BIN, else the release build, else the debug build; empty when none
# has the proxy subcommand.
find_oidc_bin() {
    local candidate
    for candidate in "${OIDC_BIN:-}" "$CARGO_TARGET_DIR/release/oidc" "$CARGO_TARGET_DIR/debug/oidc"; do
        if [[ -n "$candidate" && -x "$candidate" ]] && "$candidate" proxy --help >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 0
}
