#!/usr/bin/env bash
# Side-by-side benchmark: Sentinel vs nginx vs HAProxy as reverse proxies in front of the
# same nginx origin, pinned, interleaved, medians + ratios. See bench/README.md.
#
#   bench/run.sh                      full run: 3 rounds x 10 s per run (about 10 minutes)
#   bench/run.sh --quick              1 round x 3 s (smoke run)
#   bench/run.sh --no-tls             only the plain-HTTP scenarios
#   bench/run.sh --only nginx,haproxy
#   bench/run.sh --check              premise checks only, no load (a few seconds)
#
# Environment overrides: SENTINEL DURATION ROUNDS CONNS TLS_CONNS THREADS PROXY_CPU LOAD_CPU
#                        WARMUP NGINX HAPROXY WRK OPENSSL KEEP_TMP=1 SENTINEL_ACCESS_LOG=1
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
LIB="/usr/bin/python3 $BENCH_DIR/lib/benchlib.py"

SENTINEL=${SENTINEL:-$REPO_DIR/build/src/cli/sentinel}
NGINX=${NGINX:-/usr/sbin/nginx}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
WRK=${WRK:-wrk}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-50 200}
TLS_CONNS=${TLS_CONNS:-50}
TLS=1
OPENSSL=${OPENSSL:-openssl}
THREADS=${THREADS:-1}
WARMUP=${WARMUP:-2}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
ONLY=sentinel,nginx,haproxy
CHECK_ONLY=0

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) DURATION=3; ROUNDS=1; WARMUP=1 ;;
        --check) CHECK_ONLY=1 ;;
        --no-tls) TLS=0 ;;
        --only) ONLY=$2; shift ;;
        --only=*) ONLY=${1#--only=} ;;
        --duration) DURATION=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

die() { echo "run.sh: FATAL: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

IFS=',' read -r -a PROXIES <<<"$ONLY"
for p in "${PROXIES[@]}"; do
    case $p in sentinel|nginx|haproxy) ;; *) die "unknown proxy '$p' in --only (sentinel,nginx,haproxy)" ;; esac
done
has_proxy() { local p; for p in "${PROXIES[@]}"; do [[ $p == "$1" ]] && return 0; done; return 1; }

for tool in curl taskset "$WRK" "$NGINX" "$OPENSSL" /usr/bin/python3; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
has_proxy haproxy && { command -v "$HAPROXY" >/dev/null || die "missing haproxy at $HAPROXY"; }
if has_proxy sentinel && [[ ! -x $SENTINEL ]]; then
    die "no Sentinel binary at $SENTINEL (build it, set SENTINEL=..., or use --only nginx,haproxy)"
fi
SENTINEL_BUILD=unknown   # CMAKE_BUILD_TYPE of the build tree holding the binary, if any
if has_proxy sentinel; then
    d=$(dirname "$(readlink -f "$SENTINEL")")
    while [[ $d != / && ! -f $d/CMakeCache.txt ]]; do d=$(dirname "$d"); done
    if [[ -f $d/CMakeCache.txt ]]; then
        SENTINEL_BUILD=$(sed -n 's/^CMAKE_BUILD_TYPE:STRING=//p' "$d/CMakeCache.txt")
        grep -q '^SENTINEL_SANITIZE:BOOL=ON' "$d/CMakeCache.txt" && SENTINEL_BUILD+="+sanitizers"
    fi
    [[ $SENTINEL_BUILD == Release || $SENTINEL_BUILD == RelWithDebInfo || $SENTINEL_BUILD == unknown ]] \
        || log "WARNING: Sentinel build type is '$SENTINEL_BUILD': its numbers do not mean much"
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds)"
if [[ $(nproc --all) -lt 2 ]]; then
    log "warning: fewer than 2 CPUs; proxy and load share CPU 0"; PROXY_CPU=0; LOAD_CPU=0
fi

# ------------------------------------------------------------------ processes & cleanup
source "$BENCH_DIR/lib/processes.sh"
bench_processes sentinel-bench

# Everything this script starts (curl, wrk, origin, python) inherits LOAD_CPU; only the
# proxies under test are started with `taskset -c $PROXY_CPU`.
taskset -cp "$LOAD_CPU" $$ >/dev/null

read -r ORIGIN_PORT SENTINEL_PORT NGINX_PORT HAPROXY_PORT SENTINEL_TLS_PORT NGINX_TLS_PORT HAPROXY_TLS_PORT \
    <<<"$($LIB ports 7)"
declare -A PORT=([sentinel]=$SENTINEL_PORT [nginx]=$NGINX_PORT [haproxy]=$HAPROXY_PORT)
declare -A TLS_PORT=([sentinel]=$SENTINEL_TLS_PORT [nginx]=$NGINX_TLS_PORT [haproxy]=$HAPROXY_TLS_PORT)
declare -A PID
declare -A BODY_BYTES=([small]=13 [16k]=16384)
BODIES=(small 16k)

wait_ready() {   # name pid url
    local name=$1 pid=$2 url=$3 i
    for i in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$TMP/$name.log" >&2 || true; die "$name exited during startup"; }
        if curl -s -o /dev/null --max-time 1 "$url"; then return 0; fi
        sleep 0.05
    done
    tail -20 "$TMP/$name.log" >&2 || true
    die "$name not answering on $url after 10 s"
}

USER_LINE=""
[[ $(id -u) == 0 ]] && USER_LINE="user root;"   # workers must read the 0700 mktemp dir

# ------------------------------------------------------------------ TLS material
# One ECDSA P-256 certificate (CN=localhost, chain = leaf + test CA) for all three proxies.
# Each proxy has a second, TLS listener with session resumption OFF (no tickets, no session
# cache), so that with `Connection: close` every request is a full handshake whatever the
# client does; keep-alive TLS runs use the same listener (resumption plays no part there).
CERTS=$TMP/tls
sh "$REPO_DIR/test/support/make-certs.sh" "$CERTS" >/dev/null 2>&1 || die "make-certs.sh failed"
cat "$CERTS/site.pem" "$CERTS/site.key" >"$CERTS/combined.pem"   # HAProxy: cert + key in one file

# ------------------------------------------------------------------ origin (nginx)
mkdir -p "$TMP/origin/html" "$TMP/origin/logs"
printf 'hello world!\n' >"$TMP/origin/html/small"
head -c 16384 /dev/zero | tr '\0' 'x' >"$TMP/origin/html/16k"
cat >"$TMP/origin/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
master_process off;
daemon off;
pid $TMP/origin/nginx.pid;
error_log $TMP/origin/logs/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $TMP/origin/tmp_body;
    proxy_temp_path $TMP/origin/tmp_proxy;
    fastcgi_temp_path $TMP/origin/tmp_fastcgi;
    uwsgi_temp_path $TMP/origin/tmp_uwsgi;
    scgi_temp_path $TMP/origin/tmp_scgi;
    default_type text/plain;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    server {
        listen 127.0.0.1:$ORIGIN_PORT backlog=4096;
        root $TMP/origin/html;
        location = /small { return 200 "hello world!\n"; }
        location = /16k { }
        location = /headers {
            return 200 "xff=\$http_x_forwarded_for rid=\$http_x_request_id\n";
        }
        location = /stub_status { stub_status; }
    }
}
EOF

start_origin() {
    "$NGINX" -p "$TMP/origin" -c "$TMP/origin/nginx.conf" -e "$TMP/origin/logs/error.log" \
        >"$TMP/origin.log" 2>&1 &
    PID[origin]=$!; PIDS+=("$!")
    wait_ready origin "${PID[origin]}" "http://127.0.0.1:$ORIGIN_PORT/small"
}

# ------------------------------------------------------------------ proxies under test
write_sentinel_conf() {
    cat >"$TMP/sentinel.kdl" <<EOF
system { workers 1 }
listeners {
    listener "bench" { listen "127.0.0.1:$SENTINEL_PORT" }
    listener "bench-tls" {
        listen "127.0.0.1:$SENTINEL_TLS_PORT"
        protocol "https"
        tls {
            certificate "$CERTS/site.pem" key="$CERTS/site.key"
            session-tickets #false
            session-cache-size 0
            // nginx and HAProxy add no such headers: same work
            security-headers { enabled #false }
        }
    }
}
routes { route "all" { match { path-prefix "/" }; upstream "origin" } }
upstreams { upstream "origin" { endpoint "127.0.0.1:$ORIGIN_PORT"; pool { max-idle 256 } } }
EOF
    # SENTINEL_ACCESS_LOG=1: the same run with Sentinel writing a JSON access log (the cost of
    # logging; metrics are always on). nginx and HAProxy keep theirs off either way.
    if [[ ${SENTINEL_ACCESS_LOG:-0} == 1 ]]; then
        echo "observability { access-log { path \"$TMP/access.log\" } }" >>"$TMP/sentinel.kdl"
    fi
}

# Same upstream idle-pool size as Sentinel's `max-idle 256` (see README: "equivalent work").
write_nginx_conf() {
    mkdir -p "$TMP/nginx/logs"
    cat >"$TMP/nginx/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
master_process on;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/logs/error.log warn;
worker_rlimit_nofile 16384;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path $TMP/nginx/tmp_body;
    proxy_temp_path $TMP/nginx/tmp_proxy;
    fastcgi_temp_path $TMP/nginx/tmp_fastcgi;
    uwsgi_temp_path $TMP/nginx/tmp_uwsgi;
    scgi_temp_path $TMP/nginx/tmp_scgi;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive 256;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT backlog=4096;
        listen 127.0.0.1:$NGINX_TLS_PORT ssl backlog=4096;
        ssl_certificate $CERTS/site.pem;
        ssl_certificate_key $CERTS/site.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache off;
        ssl_session_tickets off;
        location / {
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_set_header X-Request-Id \$request_id;
            add_header X-Request-Id \$request_id always;
        }
    }
}
EOF
}

write_haproxy_conf() {
    cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8192
    tune.ssl.cachesize 0
    # no 'log' line: no logging

defaults
    mode http
    option http-keep-alive
    option forwardfor
    http-reuse always
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    timeout http-request 10s
    timeout http-keep-alive 300s

frontend bench
    bind 127.0.0.1:$HAPROXY_PORT
    bind 127.0.0.1:$HAPROXY_TLS_PORT ssl crt $CERTS/combined.pem ssl-min-ver TLSv1.2 no-tls-tickets
    unique-id-format %[uuid()]
    unique-id-header X-Request-Id
    http-response set-header X-Request-Id %[unique-id]
    default_backend origin

backend origin
    server origin 127.0.0.1:$ORIGIN_PORT
EOF
}

start_proxy() {
    local p=$1
    case $p in
        sentinel)
            write_sentinel_conf
            taskset -c "$PROXY_CPU" "$SENTINEL" run -c "$TMP/sentinel.kdl" >"$TMP/sentinel.log" 2>&1 & ;;
        nginx)
            write_nginx_conf
            taskset -c "$PROXY_CPU" "$NGINX" -p "$TMP/nginx" -c "$TMP/nginx/nginx.conf" \
                -e "$TMP/nginx/logs/error.log" >"$TMP/nginx.log" 2>&1 & ;;
        haproxy)
            write_haproxy_conf
            "$HAPROXY" -c -q -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 \
                || { cat "$TMP/haproxy.log" >&2; die "haproxy rejected its config"; }
            taskset -c "$PROXY_CPU" "$HAPROXY" -db -f "$TMP/haproxy.cfg" >"$TMP/haproxy.log" 2>&1 & ;;
    esac
    PID[$p]=$!; PIDS+=("$!")
    wait_ready "$p" "${PID[$p]}" "http://127.0.0.1:${PORT[$p]}/small"
}

# ------------------------------------------------------------------ premise checks
FAILED_CHECKS=0
check() {   # description, then the command; records failures, keeps going
    local what=$1; shift
    if "$@"; then
        log "  ok    $what"
    else
        log "  FAIL  $what"
        FAILED_CHECKS=$((FAILED_CHECKS + 1))
    fi
}

expect_body() {   # base_url path expected_bytes
    local got
    got=$(curl -s -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' "$1$2") || got="curl-error"
    [[ $got == "200 $3" ]] || { echo "    $1$2: got '$got', want '200 $3'" >&2; return 1; }
}

expect_forwarded_headers() {   # base_url: origin saw X-Forwarded-For and X-Request-Id
    local got
    got=$(curl -s --max-time 5 "$1/headers") || got="curl-error"
    [[ $got =~ ^xff=127\.0\.0\.1\ rid=[^[:space:]]+$ ]] \
        || { echo "    origin saw: '$got'" >&2; return 1; }
}

expect_response_request_id() {   # base_url
    curl -s -D - -o /dev/null --max-time 5 "$1/small" | tr -d '\r' \
        | grep -qiE '^x-request-id: *[^ ]+$' \
        || { echo "    no X-Request-Id response header" >&2; return 1; }
}

tls_base() { echo "https://localhost:${TLS_PORT[$1]}"; }
tls_curl() {   # proxy, then curl args: TLS with the test CA, "localhost" → 127.0.0.1
    local p=$1; shift
    curl --cacert "$CERTS/ca.pem" --resolve "localhost:${TLS_PORT[$p]}:127.0.0.1" "$@"
}

expect_tls_body() {   # proxy path expected_bytes
    local got
    got=$(tls_curl "$1" -s -o /dev/null --max-time 5 -w '%{http_code} %{size_download}' "$(tls_base "$1")$2") \
        || got="curl-error"
    [[ $got == "200 $3" ]] || { echo "    $(tls_base "$1")$2: got '$got', want '200 $3'" >&2; return 1; }
}

tls_params() {   # port: "version cipher group leaf-sha256" of a default client's handshake
    local out fp
    out=$(echo Q | timeout 10 "$OPENSSL" s_client -connect "127.0.0.1:$1" -servername localhost 2>/dev/null) || true
    fp=$(printf '%s\n' "$out" | "$OPENSSL" x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//') || true
    printf '%s %s %s\n' \
        "$(printf '%s\n' "$out" | sed -n 's/^New, \(TLSv[0-9.]*\), Cipher is \(.*\)/\1 \2/p' | head -1)" \
        "$(printf '%s\n' "$out" | sed -n 's/^Server Temp Key: \([^,]*\).*/\1/p' | head -1)" "$fp"
}

TLS_REFERENCE=""
expect_same_tls() {   # proxy: same version, cipher, group and certificate as the first proxy
    local got
    got=$(tls_params "${TLS_PORT[$1]}")
    [[ $got =~ ^TLSv1\.3\ [A-Z0-9_]+\ [A-Za-z0-9-]+\ [0-9A-F:]+$ ]] \
        || { echo "    handshake parameters: '$got'" >&2; return 1; }
    [[ -n $TLS_REFERENCE ]] || TLS_REFERENCE=$got
    [[ $got == "$TLS_REFERENCE" ]] \
        || { echo "    '$got' differs from the first proxy's '$TLS_REFERENCE'" >&2; return 1; }
    echo "    $got" >&2
}

expect_no_resumption() {   # proxy: -reconnect never resumes, in TLS 1.2 (tickets come in the handshake) or 1.3
    local v out
    for v in -tls1_2 -tls1_3; do
        out=$(printf 'GET /small HTTP/1.1\r\nHost: localhost\r\n\r\n' \
              | timeout 20 "$OPENSSL" s_client -connect "127.0.0.1:${TLS_PORT[$1]}" -servername localhost \
                    $v -reconnect 2>/dev/null) || true
        [[ $(grep -c '^New, TLS' <<<"$out") -ge 6 ]] \
            || { echo "    $v: $(grep -cE '^(New|Reused), ' <<<"$out") handshakes seen, $(grep -c '^Reused, ' <<<"$out") resumed" >&2; return 1; }
    done
}

proxy_pinned() {   # name: every thread of every process on PROXY_CPU only
    local pid tid aff
    for pid in $($LIB tree "${PID[$1]}"); do
        for tid in /proc/"$pid"/task/*; do
            aff=$(taskset -cp "${tid##*/}" 2>/dev/null | sed 's/.*: //') || continue
            [[ $aff == "$PROXY_CPU" ]] || { echo "    thread ${tid##*/} affinity '$aff'" >&2; return 1; }
        done
    done
}

# ------------------------------------------------------------------ one measured run
RAW=$TMP/raw.jsonl
: >"$RAW"

stub_accepts() { $LIB stub "http://127.0.0.1:$ORIGIN_PORT/stub_status"; }

run_one() {   # proxy conns body round order mode(http|tls|tls-hs)
    local p=$1 c=$2 b=$3 r=$4 o=$5 m=${6:-http} before after a0 a1 c0 c1 w0 w1 t0 t1 hwm npids
    local out="$TMP/wrk-$1-$6-$2-$3-$4.txt" url=(http://127.0.0.1:${PORT[$1]}/$3)
    case $m in
        tls) url=("https://127.0.0.1:${TLS_PORT[$p]}/$b") ;;
        # wrk reconnects after each `Connection: close` response: one full handshake per
        # request (the proxies do not resume sessions, see the TLS listeners)
        tls-hs) url=(-H "Connection: close" "https://127.0.0.1:${TLS_PORT[$p]}/$b") ;;
    esac
    a0=$(stub_accepts)
    read -r c0 w0 <<<"$($LIB cpustat "$PROXY_CPU")"
    before=$($LIB snap --reset-hwm "${PID[$p]}")
    # in the background + wait, so that INT/TERM run the cleanup trap at once
    "$WRK" -t"$THREADS" -c"$c" -d"${DURATION}s" --latency "${url[@]}" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || { cat "$out" >&2; die "wrk failed against $p"; }
    LOAD_PID=
    after=$($LIB snap "${PID[$p]}")
    read -r c1 w1 <<<"$($LIB cpustat "$PROXY_CPU")"
    a1=$(stub_accepts)
    kill -0 "${PID[$p]}" 2>/dev/null || die "$p died during the run (log: $TMP/$p.log)"
    read -r t0 _ _ <<<"$before"
    read -r t1 hwm npids <<<"$after"
    $LIB record "$RAW" "$out" "$p" "$c" "$b" "${BODY_BYTES[$b]}" "$r" "$o" "$DURATION" \
        "$t0" "$t1" "$hwm" "$npids" "$a0" "$a1" "$c0" "$c1" "$w0" "$w1" "$m"
}

# ------------------------------------------------------------------ main
log "tmp dir $TMP; proxies: ${PROXIES[*]}; sentinel build: $SENTINEL_BUILD; rounds $ROUNDS x ${DURATION}s; conns: $CONNS; tls: $([[ $TLS == 1 ]] && echo "$TLS_CONNS conns" || echo off); cpu: proxy=$PROXY_CPU load+origin=$LOAD_CPU"
start_origin
for p in "${PROXIES[@]}"; do start_proxy "$p"; done

log "premise checks"
check "origin /small is 200 + 13 B" expect_body "http://127.0.0.1:$ORIGIN_PORT" /small 13
check "origin /16k is 200 + 16384 B" expect_body "http://127.0.0.1:$ORIGIN_PORT" /16k 16384
for p in "${PROXIES[@]}"; do
    base="http://127.0.0.1:${PORT[$p]}"
    check "$p /small is 200 + 13 B" expect_body "$base" /small 13
    check "$p /16k is 200 + 16384 B" expect_body "$base" /16k 16384
    check "$p forwards X-Forwarded-For and X-Request-Id to the origin" expect_forwarded_headers "$base"
    check "$p returns X-Request-Id to the client" expect_response_request_id "$base"
    check "$p runs only on CPU $PROXY_CPU" proxy_pinned "$p"
    if [[ $TLS == 1 ]]; then
        check "$p TLS /small is 200 + 13 B" expect_tls_body "$p" /small 13
        check "$p TLS /16k is 200 + 16384 B" expect_tls_body "$p" /16k 16384
        check "$p TLS: same version, cipher, group and certificate as the others" expect_same_tls "$p"
        check "$p TLS: sessions are never resumed (full handshake per connection)" expect_no_resumption "$p"
    fi
done
[[ $FAILED_CHECKS == 0 ]] || die "$FAILED_CHECKS premise check(s) failed: the comparison would be meaningless"
if [[ $CHECK_ONLY == 1 ]]; then log "all premise checks passed (--check: no load run)"; exit 0; fi

log "warm-up (${WARMUP}s per proxy, not recorded)"
for p in "${PROXIES[@]}"; do
    "$WRK" -t"$THREADS" -c50 -d"${WARMUP}s" "http://127.0.0.1:${PORT[$p]}/small" >/dev/null 2>&1 \
        || die "warm-up wrk failed against $p"
    if [[ $TLS == 1 ]]; then
        "$WRK" -t"$THREADS" -c50 -d1s "https://127.0.0.1:${TLS_PORT[$p]}/small" >/dev/null 2>&1 \
            || die "TLS warm-up wrk failed against $p"
    fi
done

n=${#PROXIES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    # rotate the order each round so no proxy always runs first (or right after another)
    order=()
    for ((i = 0; i < n; i++)); do order+=("${PROXIES[$(((i + r - 1) % n))]}"); done
    log "round $r/$ROUNDS: order ${order[*]}"
    for c in $CONNS; do
        for b in "${BODIES[@]}"; do
            for ((i = 0; i < n; i++)); do
                run_one "${order[$i]}" "$c" "$b" "$r" "$i" http
            done
        done
    done
    if [[ $TLS == 1 ]]; then
        for c in $TLS_CONNS; do
            for m in tls tls-hs; do
                for ((i = 0; i < n; i++)); do
                    run_one "${order[$i]}" "$c" small "$r" "$i" "$m"
                done
            done
        done
    fi
done

# ------------------------------------------------------------------ report
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BENCH_DIR/results"
OUT="$BENCH_DIR/results/$STAMP.json"
{
    declare -A versions=(
        [nginx]="$("$NGINX" -v 2>&1 | head -1)"
        [haproxy]="$("$HAPROXY" -v 2>/dev/null | head -1 || true)"
        [wrk]="$("$WRK" -v 2>&1 | head -1 || true)"
        [sentinel]="$(has_proxy sentinel && { "$SENTINEL" --version 2>/dev/null | head -1 || true; } || true)"
    )
    export META_PROXIES="${PROXIES[*]}" META_CONNS="$CONNS" META_DURATION="$DURATION" \
        META_ROUNDS="$ROUNDS" META_THREADS="$THREADS" META_PROXY_CPU="$PROXY_CPU" \
        META_LOAD_CPU="$LOAD_CPU" META_STAMP="$STAMP" META_TMP="$TMP" \
        META_GIT="$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo none)" \
        META_V_NGINX="${versions[nginx]}" META_V_HAPROXY="${versions[haproxy]}" \
        META_V_WRK="${versions[wrk]}" META_V_SENTINEL="${versions[sentinel]}" \
        META_SENTINEL="$SENTINEL" META_SENTINEL_BUILD="$SENTINEL_BUILD" \
        META_TLS="$TLS" META_TLS_CONNS="$TLS_CONNS" META_TLS_PARAMS="$TLS_REFERENCE" \
        META_V_OPENSSL="$("$OPENSSL" version 2>/dev/null || true)"
    /usr/bin/python3 - "$TMP/meta.json" <<'EOF'
import json, os, sys
e = os.environ
tmp = e["META_TMP"]
def rd(p):
    try:
        return open(p).read()
    except OSError:
        return None
meta = {
    "timestamp": e["META_STAMP"], "git": e["META_GIT"], "host": os.uname().nodename,
    "kernel": os.uname().release, "nproc": os.cpu_count(),
    "loadavg_at_end": rd("/proc/loadavg").split()[:3],
    "proxies": e["META_PROXIES"].split(), "conns": [int(c) for c in e["META_CONNS"].split()],
    "bodies": ["small", "16k"], "body_bytes": {"small": 13, "16k": 16384},
    "duration_s": int(e["META_DURATION"]), "rounds": int(e["META_ROUNDS"]),
    "wrk_threads": int(e["META_THREADS"]),
    # (mode, conns, body) in report order; "tls" = HTTPS keep-alive, "tls-hs" = a new
    # connection and a full TLS handshake per request
    "scenarios": [["http", int(c), b] for c in e["META_CONNS"].split() for b in ("small", "16k")]
                 + ([[m, int(c), "small"] for c in e["META_TLS_CONNS"].split() for m in ("tls", "tls-hs")]
                    if e["META_TLS"] == "1" else []),
    "tls": {"handshake": e["META_TLS_PARAMS"], "openssl": e["META_V_OPENSSL"],
            "certificate": "ECDSA P-256 (test/support/make-certs.sh site.pem)",
            "resumption": "off on all three (tickets and session cache)"} if e["META_TLS"] == "1" else None,
    "cpus": {"proxy": e["META_PROXY_CPU"], "load_and_origin": e["META_LOAD_CPU"]},
    "versions": {"nginx": e["META_V_NGINX"], "haproxy": e["META_V_HAPROXY"],
                 "wrk": e["META_V_WRK"], "sentinel": e["META_V_SENTINEL"],
                 "sentinel_binary": e["META_SENTINEL"],
                 "sentinel_build": e["META_SENTINEL_BUILD"]},
    "configs": {"origin": rd(f"{tmp}/origin/nginx.conf"), "sentinel": rd(f"{tmp}/sentinel.kdl"),
                "nginx": rd(f"{tmp}/nginx/nginx.conf"), "haproxy": rd(f"{tmp}/haproxy.cfg")},
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
}
$LIB report "$RAW" "$TMP/meta.json" "$OUT"
