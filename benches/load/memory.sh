#!/usr/bin/env bash
# Memory of `oidc proxy`, read from /proc/PID/status (VmRSS now, VmHWM peak):
#   - at rest after start-up;
#   - peak after a 1 GiB upload and after a 1 GiB download through the proxy (bearer token);
#   - after MEM_TOKENS (100000) distinct valid bearer tokens, in four slices, and after
#     MEM_SESSIONS (100000) distinct session cookies, in four slices: a bounded cache levels off.
# Minting 100k RS256 tokens takes one to three minutes of one core; MEM_TOKENS=20000 is quicker.
# Everything binds 127.0.0.1 and is stopped on exit.

source "$(dirname "$0")/common.sh"

TOKENS="${MEM_TOKENS:-100000}"
SESSIONS="${MEM_SESSIONS:-100000}"
GIB=$((1024 * 1024 * 1024))
CLIENT_ID="load-client"

build_tools
OIDC="$(find_oidc_bin)"
if [[ -z "$OIDC" ]]; then
    echo "memory: no oidc binary with the proxy subcommand (set OIDC_BIN)" >&2
    exit 2
fi

start "$BENCH_BIN/upstream" --port-file "$WORK/upstream.port" --max-seconds 900
wait_for_file "$WORK/upstream.port"
UPSTREAM="127.0.0.1:$(cat "$WORK/upstream.port")"
mkdir -p "$WORK/op"
COOKIE_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
echo "minting $TOKENS tokens and $SESSIONS session cookies..." >&2
start "$BENCH_BIN/benchop" --dir "$WORK/op" --audience "$CLIENT_ID" --tokens "$TOKENS" \
    --cookie-secret "$COOKIE_SECRET" --sessions "$SESSIONS" --max-seconds 900
wait_for_file "$WORK/op/port.txt" 6000
ISSUER="$(cat "$WORK/op/issuer.txt")"
TOKEN="$(cat "$WORK/op/token.txt")"

PROXY_PORT=$(free_port)
start "$OIDC" proxy --http-address "127.0.0.1:$PROXY_PORT" --upstream "http://$UPSTREAM" \
    --oidc-issuer-url "$ISSUER" --client-id "$CLIENT_ID" --client-secret load-secret \
    --cookie-secret "$COOKIE_SECRET" --cookie-secure=false --skip-jwt-bearer-tokens \
    --redirect-url "http://127.0.0.1:$PROXY_PORT/oauth2/callback" --email-domain '*' \
    ${PROXY_ARGS_EXTRA:-} >"$WORK/proxy.log" 2>&1
PROXY_PID=$LAST_PID
PROXY="http://127.0.0.1:$PROXY_PORT"
# The provider may still be busy minting when the proxy asks it for its keys.
wait_for_http "$PROXY/api/" 401 600
AUTH="Authorization: Bearer $TOKEN"
curl -sf -o /dev/null -H "$AUTH" "$PROXY/api/"

report() { # report LABEL
    printf '%-52s VmRSS %7s KiB   VmHWM %7s KiB\n' "$1" \
        "$(rss_kib "$PROXY_PID" VmRSS)" "$(rss_kib "$PROXY_PID" VmHWM)"
}
report "at rest, after one request"

start_s=$(date +%s.%N)
uploaded=$(head -c "$GIB" /dev/zero | curl -sf -T - -X POST -H "$AUTH" "$PROXY/upload")
report "after a 1 GiB upload ($uploaded bytes seen upstream, $(python3 -c "print(f'{$(date +%s.%N)-$start_s:.1f}')") s)"
start_s=$(date +%s.%N)
downloaded=$(curl -sf -H "$AUTH" -o /dev/null -w '%{size_download}' "$PROXY/download?bytes=$GIB")
report "after a 1 GiB download ($downloaded bytes, $(python3 -c "print(f'{$(date +%s.%N)-$start_s:.1f}')") s)"

# slices FILE HEADER PREFIX LABEL: four quarters of FILE's lines, RSS after each.
slices() {
    local file=$1 header=$2 prefix=$3 label=$4 lines quarter i line
    lines=$(wc -l <"$file")
    quarter=$(((lines + 3) / 4))
    split -l "$quarter" -d "$file" "$file.part"
    i=0
    for part in "$file".part*; do
        i=$((i + quarter))
        line=$("$BENCH_BIN/loadgen" --url "$PROXY/api/" --connections 8 --warmup 0 --seconds 300 \
            --requests "$(wc -l <"$part")" --rotate-header "$header" "$prefix" "$part")
        report "after $((i > lines ? lines : i)) distinct $label ($(sed -n 's/.*\(errors=[0-9]*\).*/\1/p' <<<"$line"))"
    done
}
slices "$WORK/op/tokens.txt" Authorization "Bearer " "bearer tokens"
slices "$WORK/op/cookies.txt" Cookie "" "session cookies"
echo "date: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
