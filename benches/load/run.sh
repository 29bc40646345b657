#!/usr/bin/env bash
# Loopback throughput, side by side in one run, one load generator (benches/src/bin/loadgen.rs):
#   (a)  the upstream directly
#   (a') Apache as a plain reverse proxy to it
#   (e)  Apache + mod_auth_openidc, AuthType oauth20, RS256 bearer token verified locally with
#        keys from a JWKS served over TLS on 127.0.0.1 (self-signed certificate)
#   (b)  oidc proxy, authentication off for the route (--skip-auth-route)
#   (c)  oidc proxy, valid bearer token (cached after the first request)
#   (d)  oidc proxy, valid session cookie (sealed by benchop with the proxy's cookie secret)
#   paired rounds: (b) carrying the same Authorization or Cookie header as (c) or (d), in turn
#        with them, LOAD_ROUNDS (7) rounds of 2 s; the median ratio is the cost of authentication
#   (b1) (c1) (d1) the same with one connection: the latency authentication adds, unqueued;
#        and in LOAD_LATENCY_ROUNDS (5) paired rounds of 2 s at one connection, (b) carrying the
#        same header as (c) or (d), the median per-round difference of p50 and p99
# (b)-(d) run when an `oidc` binary with the proxy subcommand is found (OIDC_BIN, else
# target/release/oidc, else target/debug/oidc). Apache rows run when apache2 and
# mod_auth_openidc are installed (apt-get install apache2 libapache2-mod-auth-openidc).
#
# Settings (environment): LOAD_SECONDS (5, at most 10), LOAD_CONNECTIONS (16), LOAD_THREADS
# (load generator threads, 1), LOAD_NO_BUILD=1 to skip the cargo build.
# Everything binds 127.0.0.1 and is stopped on exit.

source "$(dirname "$0")/common.sh"

SECONDS_PER_RUN="${LOAD_SECONDS:-5}"
if (( SECONDS_PER_RUN > 10 )); then SECONDS_PER_RUN=10; fi
CONNECTIONS="${LOAD_CONNECTIONS:-16}"
THREADS="${LOAD_THREADS:-1}"
PAIRED_ROUNDS="${LOAD_ROUNDS:-7}"
LATENCY_ROUNDS="${LOAD_LATENCY_ROUNDS:-5}"
CLIENT_ID="load-client"

build_tools

# One core per figure: the proxy under test (ours, or Apache) runs on core 1 and everything else
# (load generator, upstream, provider) on core 0, so that a row measures the proxy's own core
# rather than how the scheduler shares two cores among four busy processes. LOAD_PIN=0 turns
# this off; it is off by itself without taskset or with one core.
ON_LOAD=() ON_PROXY=()
if [[ "${LOAD_PIN:-1}" == 1 ]] && command -v taskset >/dev/null 2>&1 && (($(nproc) >= 2)); then
    ON_LOAD=(taskset -c 0) ON_PROXY=(taskset -c 1)
fi

# The upstream and the provider.
start "${ON_LOAD[@]}" "$BENCH_BIN/upstream" --port-file "$WORK/upstream.port" --max-seconds 300
wait_for_file "$WORK/upstream.port"
UPSTREAM="127.0.0.1:$(cat "$WORK/upstream.port")"
mkdir -p "$WORK/op"
COOKIE_SECRET=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
start "${ON_LOAD[@]}" "$BENCH_BIN/benchop" --dir "$WORK/op" --audience "$CLIENT_ID" \
    --cookie-secret "$COOKIE_SECRET" --max-seconds 300
wait_for_file "$WORK/op/port.txt"
ISSUER="$(cat "$WORK/op/issuer.txt")"
TOKEN="$(cat "$WORK/op/token.txt")"

declare -A RESULT
# measure KEY URL [loadgen args...]: runs the load generator and keeps its output line.
measure() {
    local key=$1 url=$2
    shift 2
    RESULT[$key]=$("${ON_LOAD[@]}" "$BENCH_BIN/loadgen" --url "$url" --connections "$CONNECTIONS" \
        --threads "$THREADS" --seconds "${RUN_SECONDS:-$SECONDS_PER_RUN}" --warmup 1 "$@")
    echo "  $key: ${RESULT[$key]}" >&2
}
field() { # field KEY NAME
    local line="${RESULT[$1]:-}"
    [[ -z "$line" ]] && { echo "-"; return; }
    sed -n "s/.*\b$2=\([^ ]*\).*/\1/p" <<<"$line"
}
ratio() { # ratio KEY_A KEY_B: rps(A)/rps(B)
    local a b
    a=$(field "$1" rps) b=$(field "$2" rps)
    if [[ "$a" == - || "$b" == - || "$b" == 0 ]]; then echo "-"; else
        python3 -c "print(f'{$a/$b:.2f}')"; fi
}
expect_status() { # expect_status CODE URL [curl args]: a check that auth is really enforced
    local want=$1 url=$2 got
    shift 2
    got=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$@" "$url" || true)
    if [[ "$got" != "$want" ]]; then
        echo "load: $url answered $got, expected $want" >&2
        return 1
    fi
}

echo "measuring: $SECONDS_PER_RUN s per row, $CONNECTIONS connections, $THREADS load thread(s)," \
    "${ON_PROXY[*]:-no pinning}" >&2
measure a "http://$UPSTREAM/"

# Apache, plain and with mod_auth_openidc.
APACHE_MODULES=/usr/lib/apache2/modules
if command -v apache2 >/dev/null 2>&1 || [[ -x /usr/sbin/apache2 ]]; then
    if [[ -f "$APACHE_MODULES/mod_auth_openidc.so" ]]; then
        TLS_PORT=$(free_port)
        openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
            -addext subjectAltName=IP:127.0.0.1 \
            -keyout "$WORK/tls.key" -out "$WORK/tls.crt" >/dev/null 2>&1
        (cd "$WORK/op" && exec openssl s_server -quiet -WWW -accept "127.0.0.1:$TLS_PORT" \
            -cert "$WORK/tls.crt" -key "$WORK/tls.key" >/dev/null 2>&1) &
        STARTED_PIDS+=("$!")
        wait_for_http "https://127.0.0.1:$TLS_PORT/jwks.json" 200
        PLAIN_PORT=$(free_port)
        AUTH_PORT=$(free_port)
        mkdir -p "$WORK/apache"
        chmod 755 "$WORK" "$WORK/apache"
        cat >"$WORK/apache/httpd.conf" <<EOF
ServerRoot /etc/apache2
ServerName 127.0.0.1
PidFile $WORK/apache/httpd.pid
ErrorLog $WORK/apache/error.log
LogLevel warn
User www-data
Group www-data
LoadModule mpm_event_module $APACHE_MODULES/mod_mpm_event.so
LoadModule authn_core_module $APACHE_MODULES/mod_authn_core.so
LoadModule authz_core_module $APACHE_MODULES/mod_authz_core.so
LoadModule authz_user_module $APACHE_MODULES/mod_authz_user.so
LoadModule proxy_module $APACHE_MODULES/mod_proxy.so
LoadModule proxy_http_module $APACHE_MODULES/mod_proxy_http.so
LoadModule auth_openidc_module $APACHE_MODULES/mod_auth_openidc.so
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 30
Listen 127.0.0.1:$PLAIN_PORT
Listen 127.0.0.1:$AUTH_PORT
OIDCOAuthVerifyJwksUri https://127.0.0.1:$TLS_PORT/jwks.json
OIDCOAuthSSLValidateServer Off
OIDCOAuthRemoteUserClaim sub
OIDCCacheType shm
<VirtualHost 127.0.0.1:$PLAIN_PORT>
    ProxyPass / http://$UPSTREAM/
    <Location />
        Require all granted
    </Location>
</VirtualHost>
<VirtualHost 127.0.0.1:$AUTH_PORT>
    ProxyPass / http://$UPSTREAM/
    <Location />
        AuthType oauth20
        Require valid-user
    </Location>
</VirtualHost>
EOF
        "${ON_PROXY[@]}" /usr/sbin/apache2 -f "$WORK/apache/httpd.conf" -k start
        wait_for_file "$WORK/apache/httpd.pid"
        wait_for_http "http://127.0.0.1:$PLAIN_PORT/" 200
        expect_status 401 "http://127.0.0.1:$AUTH_PORT/"
        expect_status 200 "http://127.0.0.1:$AUTH_PORT/" -H "Authorization: Bearer $TOKEN"
        measure "a'" "http://127.0.0.1:$PLAIN_PORT/"
        measure e "http://127.0.0.1:$AUTH_PORT/" --header "Authorization: Bearer $TOKEN"
        kill "$(cat "$WORK/apache/httpd.pid")" 2>/dev/null || true
        sleep 0.5
    else
        echo "load: mod_auth_openidc is not installed; Apache rows skipped" >&2
    fi
else
    echo "load: apache2 is not installed; Apache rows skipped" >&2
fi

# Our proxy.
OIDC="$(find_oidc_bin)"
if [[ -n "$OIDC" ]]; then
    PROXY_PORT=$(free_port)
    # shellcheck disable=SC2086
    start "${ON_PROXY[@]}" "$OIDC" proxy --http-address "127.0.0.1:$PROXY_PORT" --upstream "http://$UPSTREAM" \
        --oidc-issuer-url "$ISSUER" --client-id "$CLIENT_ID" --client-secret load-secret \
        --cookie-secret "$COOKIE_SECRET" --cookie-secure=false --skip-jwt-bearer-tokens \
        --redirect-url "http://127.0.0.1:$PROXY_PORT/oauth2/callback" --email-domain '*' \
        --skip-auth-route '^/public' ${PROXY_ARGS_EXTRA:-} >"$WORK/proxy.log" 2>&1
    if ! wait_for_http "http://127.0.0.1:$PROXY_PORT/public/" 200; then
        cat "$WORK/proxy.log" >&2
        exit 1
    fi
    expect_status 200 "http://127.0.0.1:$PROXY_PORT/api/" -H "Authorization: Bearer $TOKEN"
    if expect_status 401 "http://127.0.0.1:$PROXY_PORT/api/" -H "Authorization: Bearer x.y.z"; then
        measure b "http://127.0.0.1:$PROXY_PORT/public/"
        measure c "http://127.0.0.1:$PROXY_PORT/api/" --header "Authorization: Bearer $TOKEN"
        COOKIE="$(cat "$WORK/op/cookie.txt")"
        if expect_status 200 "http://127.0.0.1:$PROXY_PORT/app/" -H "Cookie: $COOKIE"; then
            measure d "http://127.0.0.1:$PROXY_PORT/app/" --header "Cookie: $COOKIE"
        fi
        # Paired rounds: the same request with authentication off (skip-auth route) and on, in
        # turn, so that both sides carry the same bytes through the load generator, the proxy
        # and the upstream, and a neighbour's burst hits one round rather than one side.
        for ((round = 1; round <= PAIRED_ROUNDS; round++)); do
            RUN_SECONDS=2 measure "pair_bh$round" "http://127.0.0.1:$PROXY_PORT/public/" \
                --header "Authorization: Bearer $TOKEN"
            RUN_SECONDS=2 measure "pair_c$round" "http://127.0.0.1:$PROXY_PORT/api/" \
                --header "Authorization: Bearer $TOKEN"
            if [[ -n "${COOKIE:-}" ]]; then
                RUN_SECONDS=2 measure "pair_bk$round" "http://127.0.0.1:$PROXY_PORT/public/" \
                    --header "Cookie: $COOKIE"
                RUN_SECONDS=2 measure "pair_d$round" "http://127.0.0.1:$PROXY_PORT/app/" \
                    --header "Cookie: $COOKIE"
            fi
        done
        # Latency added by authentication, read without queueing: one connection, one request
        # at a time, so that p99 is the request's own time rather than its wait for a core.
        CONNECTIONS=1 measure b1 "http://127.0.0.1:$PROXY_PORT/public/"
        CONNECTIONS=1 measure c1 "http://127.0.0.1:$PROXY_PORT/api/" --header "Authorization: Bearer $TOKEN"
        if [[ -n "${COOKIE:-}" ]]; then
            CONNECTIONS=1 measure d1 "http://127.0.0.1:$PROXY_PORT/app/" --header "Cookie: $COOKIE"
        fi
        # The same in paired rounds: a neighbour's burst lands in one round, not on one side.
        for ((round = 1; round <= LATENCY_ROUNDS; round++)); do
            CONNECTIONS=1 RUN_SECONDS=2 measure "lat_bh$round" "http://127.0.0.1:$PROXY_PORT/public/" \
                --header "Authorization: Bearer $TOKEN"
            CONNECTIONS=1 RUN_SECONDS=2 measure "lat_c$round" "http://127.0.0.1:$PROXY_PORT/api/" \
                --header "Authorization: Bearer $TOKEN"
            if [[ -n "${COOKIE:-}" ]]; then
                CONNECTIONS=1 RUN_SECONDS=2 measure "lat_bk$round" "http://127.0.0.1:$PROXY_PORT/public/" \
                    --header "Cookie: $COOKIE"
                CONNECTIONS=1 RUN_SECONDS=2 measure "lat_d$round" "http://127.0.0.1:$PROXY_PORT/app/" \
                    --header "Cookie: $COOKIE"
            fi
        done
    fi
else
    echo "load: no oidc binary with the proxy subcommand; rows (b)-(d) skipped" >&2
fi

# The table.
printf '\n%-44s %9s %8s %8s %7s\n' "row" "rps" "p50 us" "p99 us" "errors"
for key in a "a'" e b c d b1 c1 d1; do
    case $key in
    a) name="(a)  upstream direct" ;;
    "a'") name="(a') Apache, no auth" ;;
    e) name="(e)  Apache + mod_auth_openidc, bearer RS256" ;;
    b) name="(b)  oidc proxy, auth off for the route" ;;
    c) name="(c)  oidc proxy, bearer RS256 (cached)" ;;
    d) name="(d)  oidc proxy, session cookie" ;;
    b1) name="(b1) as (b), one connection" ;;
    c1) name="(c1) as (c), one connection" ;;
    d1) name="(d1) as (d), one connection" ;;
    esac
    printf '%-44s %9s %8s %8s %7s\n' "$name" "$(field "$key" rps)" "$(field "$key" p50_us)" \
        "$(field "$key" p99_us)" "$(field "$key" errors)"
done
echo
echo "ratios (requests per second):"
echo "  (a')/(a) Apache proxying          $(ratio "a'" a)"
echo "  (e)/(a') mod_auth_openidc bearer  $(ratio e "a'")"
echo "  (b)/(a)  oidc proxying            $(ratio b a)"
echo "  (c)/(b)  oidc bearer             $(ratio c b)"
echo "  (d)/(b)  oidc cookie             $(ratio d b)"
echo "  (c)/(e)  oidc vs Apache, bearer, target>=3 $(ratio c e)"
added() { # added KEY_A KEY_B NAME: NAME(A) - NAME(B) in microseconds
    local a b
    a=$(field "$1" "$3") b=$(field "$2" "$3")
    if [[ "$a" == - || "$b" == - ]]; then echo "-"; else echo "$((a - b))"; fi
}
paired() { # paired AUTH_KEY PLAIN_KEY: the median over the rounds of rps(AUTH)/rps(PLAIN)
    local round a b ratios=()
    for ((round = 1; round <= PAIRED_ROUNDS; round++)); do
        a=$(field "$1$round" rps) b=$(field "$2$round" rps)
        [[ "$a" == - || "$b" == - || "$b" == 0 ]] && continue
        ratios+=("$a/$b")
    done
    if ((${#ratios[@]} == 0)); then echo "-"; return; fi
    python3 - "${ratios[@]}" <<'PY'
import statistics, sys
r = sorted(float(a) / float(b) for a, b in (x.split("/") for x in sys.argv[1:]))
print(f"{statistics.median(r):.2f} (rounds: {' '.join(f'{x:.2f}' for x in r)})")
PY
}
paired_added() { # paired_added AUTH_KEY PLAIN_KEY NAME: median over the rounds of NAME(AUTH)-NAME(PLAIN)
    local round a b diffs=()
    for ((round = 1; round <= LATENCY_ROUNDS; round++)); do
        a=$(field "$1$round" "$3") b=$(field "$2$round" "$3")
        [[ "$a" == - || "$b" == - || -z "$a" || -z "$b" ]] && continue
        diffs+=("$((a - b))")
    done
    if ((${#diffs[@]} == 0)); then echo "-"; return; fi
    python3 - "${diffs[@]}" <<'PY'
import statistics, sys
d = sorted(int(x) for x in sys.argv[1:])
print(f"{statistics.median(d):.0f} (rounds: {' '.join(str(x) for x in d)})")
PY
}
echo "paired ratios, same request with authentication off and on, median of $PAIRED_ROUNDS rounds of 2 s:"
echo "  (c)/(b with the same Authorization header), target>=0.90 $(paired pair_c pair_bh)"
echo "  (d)/(b with the same Cookie header), target>=0.95      $(paired pair_d pair_bk)"
echo "latency added by authentication, one connection (microseconds), single rows:"
echo "  bearer (c1)-(b1): p50 $(added c1 b1 p50_us), p99 $(added c1 b1 p99_us)"
echo "  cookie (d1)-(b1): p50 $(added d1 b1 p50_us), p99 $(added d1 b1 p99_us)"
echo "the same, median of $LATENCY_ROUNDS paired rounds of 2 s (same header on both sides):"
echo "  bearer p50 $(paired_added lat_c lat_bh p50_us), p99 $(paired_added lat_c lat_bh p99_us) (target p99 < 100)"
echo "  cookie p50 $(paired_added lat_d lat_bk p50_us), p99 $(paired_added lat_d lat_bk p99_us) (target p99 < 100)"
echo "date: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
