#!/usr/bin/env bash
# Start-up times, median of STARTUP_ROUNDS (5) rounds each:
#   - `oidc proxy`: from spawn to the first 200 for a bearer-token request, which needs the
#     provider's discovery and keys (the provider is already answering on 127.0.0.1);
#   - `oidc decode TOKEN`: from spawn to exit.
# Everything binds 127.0.0.1 and is stopped on exit.

source "$(dirname "$0")/common.sh"

ROUNDS="${STARTUP_ROUNDS:-5}"
CLIENT_ID="load-client"

build_tools
OIDC="$(find_oidc_bin)"
if [[ -z "$OIDC" ]]; then
    echo "startup: no oidc binary with the proxy subcommand (set OIDC_BIN)" >&2
    exit 2
fi
start "$BENCH_BIN/upstream" --port-file "$WORK/upstream.port" --max-seconds 300
wait_for_file "$WORK/upstream.port"
mkdir -p "$WORK/op"
start "$BENCH_BIN/benchop" --dir "$WORK/op" --audience "$CLIENT_ID" --max-seconds 300
wait_for_file "$WORK/op/port.txt"
TOKEN="$(cat "$WORK/op/token.txt")"
PROXY_PORT=$(free_port)

echo "oidc proxy, spawn to first authenticated 200 ($OIDC):"
"$BENCH_BIN/startup" --url "http://127.0.0.1:$PROXY_PORT/api/" \
    --header "Authorization: Bearer $TOKEN" --rounds "$ROUNDS" -- \
    "$OIDC" proxy --http-address "127.0.0.1:$PROXY_PORT" \
    --upstream "http://127.0.0.1:$(cat "$WORK/upstream.port")" \
    --oidc-issuer-url "$(cat "$WORK/op/issuer.txt")" --client-id "$CLIENT_ID" \
    --client-secret load-secret --cookie-secret "$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')" \
    --cookie-secure=false --skip-jwt-bearer-tokens \
    --redirect-url "http://127.0.0.1:$PROXY_PORT/oauth2/callback" --email-domain '*'
echo "oidc decode, spawn to exit:"
"$BENCH_BIN/startup" --exit --rounds "$ROUNDS" -- "$OIDC" decode "$TOKEN"
echo "date: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
