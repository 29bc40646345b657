#!/usr/bin/env bash
# Soak and many-credentials runs of the `oidc proxy` sidecar, on 127.0.0.1 only, bounded in time.
#
# Pieces (all built from this workspace): `benchop` (the OpenID Provider: discovery, key set and
# pre-minted RS256 access tokens, and session cookies sealed with the proxy's cookie secret by
# the same codec `oidc proxy` uses), `upstream` (a small HTTP server), `oidc proxy` (under test)
# and `loadgen` (closed-loop HTTP/1.1 load; prints rps, p50, p99, requests and errors).
#
# Runs:
#   1. bearer soak: one valid token, full speed for SOAK_SECONDS;
#   2. many tokens: MANY distinct valid tokens, each sent once, through the same proxy;
#   3. cookie-session soak: one valid session cookie, full speed for SOAK_SECONDS;
#   4. many sessions: MANY distinct valid session cookies, each sent once.
# For each run it prints throughput, p50/p99 latency, the error count (target: 0 non-2xx for
# valid credentials) and the proxy's RSS before and after (target: growth bounded by the token
# cache, 10 000 entries by default; a session cookie is opened statelessly, so runs 3 and 4
# should not grow beyond allocator warm-up).
#
# Usage: benches/soak/soak.sh [--seconds 300] [--connections 32] [--many 100000] [--debug]
# (SOAK_NO_BUILD=1 skips the cargo build and uses the binaries already in the target folder.)
# Every process started here is stopped on exit; each also stops by itself after its time limit.
set -euo pipefail

SOAK_SECONDS=300
CONNECTIONS=32
MANY=100000
PROFILE=release
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) SOAK_SECONDS="$2"; shift 2 ;;
    --connections) CONNECTIONS="$2"; shift 2 ;;
    --many) MANY="$2"; shift 2 ;;
    --debug) PROFILE=debug; shift ;;
    *) echo "soak: unknown argument $1" >&2; exit 2 ;;
  esac
done

ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
if [[ "${SOAK_NO_BUILD:-0}" == 1 ]]; then
  : # the binaries in $TARGET/$PROFILE are used as they are
elif [[ "$PROFILE" == release ]]; then
  (cd "$ROOT" && cargo build --release -q -p oidc-cli -p oidc-benches --bins)
else
  (cd "$ROOT" && cargo build -q -p oidc-cli -p oidc-benches --bins)
fi
BIN="$TARGET/$PROFILE"
WORK="$(mktemp -d)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

LIMIT=$((2 * SOAK_SECONDS + 900))
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_for_file FILE [TENTHS [PID]]: waits until FILE exists (default 60 s), failing early when
# PID has exited.
wait_for_file() {
  local _
  for _ in $(seq 1 "${2:-600}"); do
    [[ -s "$1" ]] && return 0
    if [[ -n "${3:-}" ]] && ! kill -0 "$3" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "soak: $1 never appeared" >&2
  exit 1
}
wait_for_port() { for _ in $(seq 1 600); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "soak: port $1 never opened" >&2; exit 1; }
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

COOKIE_SECRET="soak-cookie-secret-that-is-long-enough-0123456789"
echo "soak: minting $MANY tokens and sealing $MANY session cookies (once)" >&2
mkdir -p "$WORK/op"
"$BIN/benchop" --dir "$WORK/op" --audience soak-client --tokens "$MANY" \
  --cookie-secret "$COOKIE_SECRET" --sessions "$MANY" --max-seconds "$LIMIT" >/dev/null &
PIDS+=($!)
# Minting 100 000 RS256 tokens takes one to three minutes of one core.
wait_for_file "$WORK/op/port.txt" 6000 "$!"
ISSUER="$(cat "$WORK/op/issuer.txt")"

"$BIN/upstream" --port-file "$WORK/upstream.port" --max-seconds "$LIMIT" >/dev/null &
PIDS+=($!)
wait_for_file "$WORK/upstream.port"
UPSTREAM_PORT="$(cat "$WORK/upstream.port")"

PROXY_PORT="$(free_port)"
"$BIN/oidc" proxy \
  --http-address "127.0.0.1:$PROXY_PORT" \
  --upstream "http://127.0.0.1:$UPSTREAM_PORT/" \
  --oidc-issuer-url "$ISSUER" \
  --client-id soak-client \
  --client-secret soak-secret \
  --redirect-url "http://127.0.0.1:$PROXY_PORT/oauth2/callback" \
  --cookie-secret "$COOKIE_SECRET" \
  --cookie-secure=false \
  --email-domain '*' \
  --skip-jwt-bearer-tokens=true \
  >"$WORK/proxy.log" 2>&1 &
PROXY_PID=$!
PIDS+=("$PROXY_PID")
wait_for_port "$PROXY_PORT"
# The port opens at once; /readyz answers 200 once the provider's metadata and keys are loaded.
wait_for_ready() { for _ in $(seq 1 600); do python3 -c 'import sys, urllib.request; sys.exit(urllib.request.urlopen(sys.argv[1]).status != 200)' "http://127.0.0.1:$1/readyz" 2>/dev/null && return 0; sleep 0.1; done; echo "soak: the proxy on port $1 never became ready" >&2; exit 1; }
wait_for_ready "$PROXY_PORT"
URL="http://127.0.0.1:$PROXY_PORT/api/soak"
COOKIE="$(cat "$WORK/op/cookie.txt")"
# One request per credential kind proves the wiring before measuring (loadgen exits 0 either
# way, so its error count is read), and one request without credentials proves that
# authentication is enforced.
one_request() { # one_request EXPECTED_ERRORS [loadgen args...]
  local want="$1" got
  shift
  got="$("$BIN/loadgen" --url "$URL" --connections 1 --seconds 5 --warmup 0 --requests 1 \
    --expect-status 200 "$@")"
  if [[ "$got" != *" errors=$want "* ]]; then
    echo "soak: wiring check expected errors=$want, got: $got" >&2
    exit 1
  fi
}
one_request 0 --header "Authorization: Bearer $(cat "$WORK/op/token.txt")"
one_request 0 --header "Cookie: $COOKIE"
one_request 1

FAILED_RUNS=0
report() {
  local name="$1" before="$2" line="$3" after
  after="$(rss_kib "$PROXY_PID")"
  echo "$name: $line rss_start_kib=$before rss_end_kib=$after rss_growth_kib=$((after - before))"
  [[ "$line" == *" errors=0 "* ]] || FAILED_RUNS=$((FAILED_RUNS + 1))
}

before="$(rss_kib "$PROXY_PID")"
line="$("$BIN/loadgen" --url "$URL" --connections "$CONNECTIONS" --seconds "$SOAK_SECONDS" \
  --warmup 2 --expect-status 200 --header "Authorization: Bearer $(cat "$WORK/op/token.txt")")"
report "bearer-soak" "$before" "$line"

before="$(rss_kib "$PROXY_PID")"
line="$("$BIN/loadgen" --url "$URL" --connections "$CONNECTIONS" --seconds "$LIMIT" --warmup 0 \
  --requests "$MANY" --expect-status 200 \
  --rotate-header Authorization "Bearer " "$WORK/op/tokens.txt")"
report "bearer-many-tokens($MANY)" "$before" "$line"

before="$(rss_kib "$PROXY_PID")"
line="$("$BIN/loadgen" --url "$URL" --connections "$CONNECTIONS" --seconds "$SOAK_SECONDS" \
  --warmup 2 --expect-status 200 --header "Cookie: $COOKIE")"
report "cookie-soak" "$before" "$line"

before="$(rss_kib "$PROXY_PID")"
line="$("$BIN/loadgen" --url "$URL" --connections "$CONNECTIONS" --seconds "$LIMIT" --warmup 0 \
  --requests "$MANY" --expect-status 200 --rotate-header Cookie "" "$WORK/op/cookies.txt")"
report "cookie-many-sessions($MANY)" "$before" "$line"
echo "soak: $(date -u +%FT%TZ), $PROFILE build, $CONNECTIONS connections, $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"

if grep -qi "panicked" "$WORK/proxy.log"; then
  echo "soak: the proxy panicked" >&2
  exit 1
fi
if ((FAILED_RUNS > 0)); then
  echo "soak: $FAILED_RUNS run(s) had non-2xx answers or failed requests for valid credentials" >&2
  exit 1
fi
