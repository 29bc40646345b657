#!/usr/bin/env bash
# Instructions per proxied request, counted by callgrind: a figure that shared cores do not
# disturb, for comparing two builds where throughput rounds spread by ±20 %.
#
# For the proxy (OIDC_BIN, else target/release/oidc) and, when BASELINE_OIDC_BIN is set, for a
# baseline build in the same run: the proxy runs under `valgrind --tool=callgrind`; one keep-alive
# connection sends REQUESTS (2000) requests carrying the same Authorization header to a route with
# authentication off (--skip-auth-route) and then to a protected route (the bearer token is
# validated once, then cached), each after 200 warm-up requests; the counters are zeroed before
# and dumped after each batch. Prints instructions per request for both routes, what
# authentication adds, and, with a baseline, the ratio baseline/new of each. CREDENTIAL=cookie
# sends a session cookie (sealed by benchop with the proxy's cookie secret) instead of the token.
#
# CALLGRIND_DIR=DIR keeps the dumps there (callgrind_annotate DIR/new.cg.2 shows where the
# protected route's instructions go).
#
# Needs valgrind (apt-get install valgrind). LOAD_NO_BUILD=1 skips building the bench tools.
source "$(dirname "$0")/common.sh"

REQUESTS="${REQUESTS:-2000}"
CREDENTIAL="${CREDENTIAL:-bearer}"
case "$CREDENTIAL" in
    bearer | cookie) ;;
    *) echo "instructions.sh: CREDENTIAL is bearer or cookie, not '$CREDENTIAL'" >&2; exit 2 ;;
esac
build_tools
command -v valgrind >/dev/null && command -v callgrind_control >/dev/null || {
    echo "instructions.sh: valgrind is not installed" >&2
    exit 2
}

start "$BENCH_BIN/upstream" --port-file "$WORK/upstream.port" --max-seconds 600
wait_for_file "$WORK/upstream.port"
UPSTREAM="127.0.0.1:$(cat "$WORK/upstream.port")"
mkdir -p "$WORK/op"
COOKIE_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
start "$BENCH_BIN/benchop" --dir "$WORK/op" --audience load-client \
    --cookie-secret "$COOKIE_SECRET" --max-seconds 600
wait_for_file "$WORK/op/port.txt"
ISSUER="$(cat "$WORK/op/issuer.txt")"
if [[ "$CREDENTIAL" == cookie ]]; then
    HEADER="Cookie: $(cat "$WORK/op/cookie.txt")"
else
    HEADER="Authorization: Bearer $(cat "$WORK/op/token.txt")"
fi

# count NAME BINARY: prints "NAME OFF ON" (instructions per request, auth off and on).
count() {
    local name=$1 binary=$2 port pid
    port=$(free_port)
    start valgrind --tool=callgrind --callgrind-out-file="$WORK/$name.cg" \
        "$binary" proxy --http-address "127.0.0.1:$port" --upstream "http://$UPSTREAM" \
        --oidc-issuer-url "$ISSUER" --client-id load-client --client-secret load-secret \
        --cookie-secret "$COOKIE_SECRET" --cookie-secure=false --skip-jwt-bearer-tokens \
        --redirect-url "http://127.0.0.1:$port/oauth2/callback" --email-domain '*' \
        --skip-auth-route '^/public' >"$WORK/$name.log" 2>&1
    pid=$LAST_PID
    if ! wait_for_http "http://127.0.0.1:$port/readyz" 200 600; then
        cat "$WORK/$name.log" >&2
        exit 1
    fi
    python3 - "$port" "$HEADER" "$pid" "$REQUESTS" "$WORK/$name.cg" "$name" <<'PY'
import glob, http.client, subprocess, sys

port, header, pid, requests, prefix, name = sys.argv[1:]
port, requests = int(port), int(requests)
header_name, header_value = header.split(': ', 1)

def send(path, count):
    connection = http.client.HTTPConnection('127.0.0.1', port)
    for _ in range(count):
        connection.request('GET', path, headers={header_name: header_value})
        answer = connection.getresponse()
        answer.read()
        if answer.status != 200:
            sys.exit(f'{path} answered {answer.status}')
    connection.close()

def control(*args):
    subprocess.run(['callgrind_control', *args, pid], check=True, capture_output=True)

per_request = []
for path in ['/public/', '/api/']:
    send(path, 200)
    control('--zero')
    send(path, requests)
    before = set(glob.glob(prefix + '.*'))
    control('--dump=' + path)
    dumps = sorted(set(glob.glob(prefix + '.*')) - before) or sorted(glob.glob(prefix + '.*'))
    with open(dumps[-1]) as dump:
        summary = next(int(line.split()[1]) for line in dump if line.startswith('summary:'))
    per_request.append(summary / requests)
print(name, round(per_request[0]), round(per_request[1]))
PY
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    if [[ -n "${CALLGRIND_DIR:-}" ]]; then
        mkdir -p "$CALLGRIND_DIR"
        cp "$WORK/$name".cg.* "$CALLGRIND_DIR/"
    fi
}

NEW="$(find_oidc_bin)"
[[ -n "$NEW" ]] || { echo "instructions.sh: no oidc binary (build with cargo build --release -p oidc-cli)" >&2; exit 2; }
read -r _ new_off new_on < <(count new "$NEW")
printf '%-10s %14s %14s %14s\n' build "auth off" "auth on" "auth adds"
printf '%-10s %14s %14s %14s\n' new "$new_off" "$new_on" $((new_on - new_off))
if [[ -n "${BASELINE_OIDC_BIN:-}" ]]; then
    read -r _ base_off base_on < <(count baseline "$BASELINE_OIDC_BIN")
    printf '%-10s %14s %14s %14s\n' baseline "$base_off" "$base_on" $((base_on - base_off))
    python3 - "$base_off" "$base_on" "$new_off" "$new_on" <<'PY'
import sys
base_off, base_on, new_off, new_on = map(int, sys.argv[1:])
print(f'ratio baseline/new, instructions per request: auth off {base_off / new_off:.3f}, '
      f'auth on {base_on / new_on:.3f}, what auth adds {(base_on - base_off) / (new_on - new_off):.3f}')
PY
fi
if [[ "$CREDENTIAL" == cookie ]]; then
    echo "instructions per request over $REQUESTS requests, one connection, the same session cookie"
else
    echo "instructions per request over $REQUESTS requests, one connection, cached bearer token"
fi
