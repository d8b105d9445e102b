#!/usr/bin/env bash
# HTTP/2 downstream benchmark: Sentinel vs nginx vs HAProxy terminating h2 (TLS + ALPN h2, and
# cleartext h2c with prior knowledge) and proxying over HTTP/1.1 keep-alive to one nginx origin;
# h2load with many streams per connection, pinned, interleaved, medians + ratios. See bench/README.md.
#
#   bench/h2.sh                       full: 2 scenarios x 3 rounds x 10 s per proxy (about 3.5 minutes)
#   bench/h2.sh --quick               1 round x 3 s (smoke run)
#   bench/h2.sh --no-tls              only the h2c (cleartext, prior knowledge) scenario
#   bench/h2.sh --no-h2c              only the h2-over-TLS scenario
#   bench/h2.sh --only nginx,haproxy
#   bench/h2.sh --check               premise checks only, no load (a few seconds)
#
# Environment overrides: SENTINEL DURATION ROUNDS CONNS STREAMS WARMUP PROXY_CPU LOAD_CPU
#                        UPSTREAM_POOL TLS13_CIPHER LATENCY_LOG=0 SENTINEL_HTTP2_BLOCK=0 NGINX
#                        HAPROXY H2LOAD OPENSSL KEEP_TMP=1
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
LIB="/usr/bin/python3 $BENCH_DIR/lib/benchlib.py"    # ports, tree, snap, cpustat, stub
H2LIB="/usr/bin/python3 $BENCH_DIR/lib/h2bench.py"   # h2load parsing, report (uses benchlib)

SENTINEL=${SENTINEL:-$REPO_DIR/build/src/cli/sentinel}
NGINX=${NGINX:-/usr/sbin/nginx}
HAPROXY=${HAPROXY:-/usr/sbin/haproxy}
H2LOAD=${H2LOAD:-h2load}
OPENSSL=${OPENSSL:-openssl}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-4}            # h2load client connections (space-separated list: one scenario each)
STREAMS=${STREAMS:-100}      # h2load -m: concurrent streams per connection
WARMUP=${WARMUP:-2}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
# idle upstream connections kept per proxy worker: CONNS x STREAMS requests are in flight at
# once, so the pool must hold that many or the proxies close and reopen origin connections
UPSTREAM_POOL=${UPSTREAM_POOL:-1024}
LATENCY_LOG=${LATENCY_LOG:-1}                   # h2load --log-file for p50/p99
# the only TLS 1.3 suite h2load offers, so that all proxies encrypt alike (left to themselves,
# nginx takes h2load's first choice, AES-128, and HAProxy its own, AES-256); AES-256-GCM is
# what a default `openssl s_client` (and bench/run.sh's wrk) gets from all three
TLS13_CIPHER=${TLS13_CIPHER:-TLS_AES_256_GCM_SHA384}
export H2BENCH_TLS13_CIPHER=$TLS13_CIPHER
SENTINEL_HTTP2_BLOCK=${SENTINEL_HTTP2_BLOCK:-1}  # 0: rely on Sentinel's HTTP/2 defaults only
TLS=1
H2C=1
ONLY=sentinel,nginx,haproxy
CHECK_ONLY=0
CMDLINE="bench/h2.sh${*:+ $*}"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }

while [[ $# -gt 0 ]]; do
    case $1 in
        --quick) DURATION=3; ROUNDS=1; WARMUP=1 ;;
        --check) CHECK_ONLY=1 ;;
        --no-tls) TLS=0 ;;
        --no-h2c) H2C=0 ;;
        --only) ONLY=$2; shift ;;
        --only=*) ONLY=${1#--only=} ;;
        --duration) DURATION=$2; shift ;;
        --rounds) ROUNDS=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "h2.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

die() { echo "h2.sh: FATAL: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }

[[ $TLS == 1 || $H2C == 1 ]] || die "--no-tls and --no-h2c together leave nothing to run"
MODES=()
[[ $TLS == 1 ]] && MODES+=(h2)
[[ $H2C == 1 ]] && MODES+=(h2c)

IFS=',' read -r -a PROXIES <<<"$ONLY"
for p in "${PROXIES[@]}"; do
    case $p in sentinel|nginx|haproxy) ;; *) die "unknown proxy '$p' in --only (sentinel,nginx,haproxy)" ;; esac
done
has_proxy() { local p; for p in "${PROXIES[@]}"; do [[ $p == "$1" ]] && return 0; done; return 1; }

for tool in curl taskset "$H2LOAD" "$NGINX" "$OPENSSL" /usr/bin/python3; do
    command -v "$tool" >/dev/null || die "missing tool: $tool"
done
# the origin needs no HTTP/2, but nginx under test does
if has_proxy nginx; then
    # (here-strings, not pipes into grep -q: under pipefail an early grep exit is a SIGPIPE failure)
    grep -q -- '--with-http_v2_module' <<<"$("$NGINX" -V 2>&1)" || die "$NGINX was built without http_v2 (nginx -V)"
fi
if has_proxy haproxy; then
    command -v "$HAPROXY" >/dev/null || die "missing haproxy at $HAPROXY"
    grep -qE '^ *h2 : mode=HTTP' <<<"$("$HAPROXY" -vv 2>/dev/null)" || die "$HAPROXY has no h2 multiplexer (haproxy -vv)"
fi
SENTINEL_BUILD=unknown
if has_proxy sentinel; then
    [[ -x $SENTINEL ]] || die "no Sentinel binary at $SENTINEL (build it, set SENTINEL=..., or use --only nginx,haproxy)"
    SENTINEL_BUILD=$($H2LIB sentinel-build "$SENTINEL")
    [[ $SENTINEL_BUILD == Release || $SENTINEL_BUILD == RelWithDebInfo || $SENTINEL_BUILD == unknown ]] \
        || log "WARNING: Sentinel build type is '$SENTINEL_BUILD': its numbers do not mean much"
fi
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"
[[ $DURATION =~ ^[1-9][0-9]*$ ]] || die "DURATION must be a positive integer (seconds)"
[[ $STREAMS =~ ^[1-9][0-9]*$ ]] || die "STREAMS must be a positive integer"
for c in $CONNS; do [[ $c =~ ^[1-9][0-9]*$ ]] || die "CONNS must be positive integers"; done
if [[ $(nproc --all) -lt 2 ]]; then
    log "warning: fewer than 2 CPUs; proxy and load share CPU 0"; PROXY_CPU=0; LOAD_CPU=0
fi

# ------------------------------------------------------------------ processes & cleanup
source "$BENCH_DIR/lib/processes.sh"
bench_processes sentinel-h2bench

# Everything this script starts (curl, h2load, origin, python) inherits LOAD_CPU; only the
# proxies under test are started with `taskset -c $PROXY_CPU`.
taskset -cp "$LOAD_CPU" $$ >/dev/null

read -r ORIGIN_PORT SENTINEL_TLS_PORT NGINX_TLS_PORT HAPROXY_TLS_PORT SENTINEL_H2C_PORT NGINX_H2C_PORT HAPROXY_H2C_PORT \
    <<<"$($LIB ports 7)"
declare -A TLS_PORT=([sentinel]=$SENTINEL_TLS_PORT [nginx]=$NGINX_TLS_PORT [haproxy]=$HAPROXY_TLS_PORT)
declare -A H2C_PORT=([sentinel]=$SENTINEL_H2C_PORT [nginx]=$NGINX_H2C_PORT [haproxy]=$HAPROXY_H2C_PORT)
declare -A PID
BODY=small
BODY_BYTES=13

USER_LINE=""
[[ $(id -u) == 0 ]] && USER_LINE="user root;"   # workers must read the 0700 mktemp dir

# ------------------------------------------------------------------ TLS material
# The same ECDSA P-256 certificate (CN=localhost, chain = leaf + test CA) as bench/run.sh.
CERTS=$TMP/tls
sh "$REPO_DIR/test/support/make-certs.sh" "$CERTS" >/dev/null 2>&1 || die "make-certs.sh failed"
cat "$CERTS/site.pem" "$CERTS/site.key" >"$CERTS/combined.pem"   # HAProxy: cert + key in one file

# ------------------------------------------------------------------ origin (nginx, HTTP/1.1)
# The origin of bench/run.sh: /small is `return 200 "hello world!\n"` (13 B).
mkdir -p "$TMP/origin/html" "$TMP/origin/logs"
printf 'hello world!\n' >"$TMP/origin/small.expected"
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
        location = /headers {
            return 200 "xff=\$http_x_forwarded_for rid=\$http_x_request_id\n";
        }
        location = /stub_status { stub_status; }
    }
}
EOF

wait_ready() {   # name pid url: polls until the proxy answers (HTTP/1.1 over TLS: all three
                 # speak it whatever their HTTP/2 support, so readiness does not depend on h2)
    local name=$1 pid=$2 url=$3 i
    for i in $(seq 200); do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$TMP/$name.log" >&2 || true; die "$name exited during startup"; }
        if curl -sk --http1.1 -o /dev/null --max-time 1 "$url"; then return 0; fi
        sleep 0.05
    done
    tail -20 "$TMP/$name.log" >&2 || true
    die "$name not answering on $url after 10 s"
}

start_origin() {
    "$NGINX" -p "$TMP/origin" -c "$TMP/origin/nginx.conf" -e "$TMP/origin/logs/error.log" \
        >"$TMP/origin.log" 2>&1 &
    PID[origin]=$!; PIDS+=("$!")
    wait_ready origin "${PID[origin]}" "http://127.0.0.1:$ORIGIN_PORT/small"
}

# ------------------------------------------------------------------ proxies under test
# As in bench/run.sh: 1 worker each on PROXY_CPU, X-Forwarded-For + X-Request-Id to the origin,
# X-Request-Id back to the client, no logging, no TLS resumption, HTTP/1.1 keep-alive upstream.
# Added here: h2 via ALPN on the TLS listener, an h2c (prior knowledge) listener, at most
# $STREAMS concurrent streams per connection everywhere, and an idle upstream pool of
# $UPSTREAM_POOL on all three.
write_sentinel_conf() {
    local h2=""
    if [[ $SENTINEL_HTTP2_BLOCK == 1 ]]; then
        h2="http2 #true { max-concurrent-streams $STREAMS; initial-window-size \"64KiB\"; max-frame-size \"16KiB\"; max-header-list-size \"32KiB\" }"
    fi
    cat >"$TMP/sentinel.kdl" <<EOF
system { workers 1 }
listeners {
    // cleartext: h2c with prior knowledge (HTTP/2 is on by default on http listeners)
    listener "bench-h2c" {
        listen "127.0.0.1:$SENTINEL_H2C_PORT"
        $h2
    }
    // TLS: h2 via ALPN (on by default on https listeners)
    listener "bench-tls" {
        listen "127.0.0.1:$SENTINEL_TLS_PORT"
        protocol "https"
        $h2
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
upstreams { upstream "origin" { endpoint "127.0.0.1:$ORIGIN_PORT"; pool { max-idle $UPSTREAM_POOL } } }
EOF
}

# nginx 1.22: `listen … ssl http2` = h2 via ALPN; `listen … http2` without ssl = h2c prior
# knowledge. keepalive_requests also bounds requests per HTTP/2 connection (since 1.19.7).
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
    http2_max_concurrent_streams $STREAMS;
    upstream origin {
        server 127.0.0.1:$ORIGIN_PORT;
        keepalive $UPSTREAM_POOL;
        keepalive_requests 100000000;
        keepalive_timeout 300s;
    }
    server {
        listen 127.0.0.1:$NGINX_H2C_PORT http2 backlog=4096;
        listen 127.0.0.1:$NGINX_TLS_PORT ssl http2 backlog=4096;
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

# HAProxy 2.6: `alpn h2,http/1.1` on the ssl bind; `proto h2` = h2c prior knowledge.
write_haproxy_conf() {
    cat >"$TMP/haproxy.cfg" <<EOF
global
    nbthread 1
    maxconn 8192
    tune.ssl.cachesize 0
    tune.h2.max-concurrent-streams $STREAMS
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
    bind 127.0.0.1:$HAPROXY_H2C_PORT proto h2
    bind 127.0.0.1:$HAPROXY_TLS_PORT ssl crt $CERTS/combined.pem ssl-min-ver TLSv1.2 no-tls-tickets alpn h2,http/1.1
    unique-id-format %[uuid()]
    unique-id-header X-Request-Id
    http-response set-header X-Request-Id %[unique-id]
    default_backend origin

backend origin
    server origin 127.0.0.1:$ORIGIN_PORT pool-max-conn $UPSTREAM_POOL
EOF
}

start_proxy() {
    local p=$1
    case $p in
        sentinel)
            write_sentinel_conf
            if ! "$SENTINEL" validate "$TMP/sentinel.kdl" >"$TMP/sentinel.log" 2>&1; then
                cat "$TMP/sentinel.log" >&2
                if [[ $SENTINEL_HTTP2_BLOCK == 1 ]] && grep -q 'http2' "$TMP/sentinel.log"; then
                    die "sentinel rejected the listener 'http2' block: this binary has no HTTP/2 support, so sentinel did not negotiate h2 (SENTINEL_HTTP2_BLOCK=0 runs it with its defaults only)"
                fi
                die "sentinel rejected its config ($TMP/sentinel.kdl)"
            fi
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
    wait_ready "$p" "${PID[$p]}" "https://127.0.0.1:${TLS_PORT[$p]}/small"
}

# ------------------------------------------------------------------ premise checks
FAILED_CHECKS=0
FAILED_WHO=()    # proxies (or "origin") with a failed check
check() {   # description, then the command; records failures, keeps going
    local what=$1; shift
    if "$@"; then
        log "  ok    $what"
    else
        log "  FAIL  $what"
        FAILED_CHECKS=$((FAILED_CHECKS + 1))
        [[ " ${FAILED_WHO[*]} " == *" ${what%% *} "* ]] || FAILED_WHO+=("${what%% *}")
    fi
}

base_url() {   # proxy mode
    case $2 in
        h2) echo "https://localhost:${TLS_PORT[$1]}" ;;
        h2c) echo "http://127.0.0.1:${H2C_PORT[$1]}" ;;
    esac
}
h2_curl() {   # proxy mode, then curl args: HTTP/2 only (TLS: ALPN offers h2 first, with the
              # test CA and "localhost" → 127.0.0.1; h2c: prior knowledge)
    local p=$1 m=$2; shift 2
    case $m in
        h2) curl --http2 --cacert "$CERTS/ca.pem" --resolve "localhost:${TLS_PORT[$p]}:127.0.0.1" "$@" ;;
        h2c) curl --http2-prior-knowledge "$@" ;;
    esac
}

expect_h2_body() {   # proxy mode: HTTP/2, 200 and exactly the origin's /small body
    local p=$1 m=$2 got
    got=$(h2_curl "$p" "$m" -s -o "$TMP/body.$p.$m" --max-time 5 -w '%{http_code} %{http_version}' \
          "$(base_url "$p" "$m")/small" 2>&1) || got="curl error $? ($got)"
    if [[ $got != "200 2" ]]; then
        echo "    $p did not negotiate $m: curl got '$got', want '200 2' (status, HTTP version)" >&2
        return 1
    fi
    cmp -s "$TMP/body.$p.$m" "$TMP/origin/small.expected" \
        || { echo "    body differs from the origin's /small" >&2; return 1; }
}

expect_h2_headers() {   # proxy mode: the origin saw X-Forwarded-For and X-Request-Id; the client
                        # got X-Request-Id back (same work as bench/run.sh)
    local p=$1 m=$2 got hdrs
    got=$(h2_curl "$p" "$m" -s -D "$TMP/hdrs.$p.$m" --max-time 5 "$(base_url "$p" "$m")/headers") || got="curl-error"
    [[ $got =~ ^xff=127\.0\.0\.1\ rid=[^[:space:]]+$ ]] || { echo "    origin saw: '$got'" >&2; return 1; }
    hdrs=$(tr -d '\r' <"$TMP/hdrs.$p.$m")
    grep -q '^HTTP/2 200' <<<"$hdrs" || { echo "    not an HTTP/2 200: $(head -1 <<<"$hdrs")" >&2; return 1; }
    grep -qiE '^x-request-id: *[^ ]+$' <<<"$hdrs" || { echo "    no X-Request-Id response header" >&2; return 1; }
}

tls_params() {   # port: "version cipher group alpn leaf-sha256" of a client offering only h2
    local out fp alpn
    out=$(echo Q | timeout 10 "$OPENSSL" s_client -connect "127.0.0.1:$1" -servername localhost -alpn h2 2>/dev/null | tr -d '\0') || true
    fp=$(printf '%s\n' "$out" | "$OPENSSL" x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//') || true
    alpn=$(printf '%s\n' "$out" | sed -n 's/^ALPN protocol: \(.*\)/alpn=\1/p; s/^No ALPN negotiated.*/alpn=none/p' | head -1)
    printf '%s %s %s %s\n' \
        "$(printf '%s\n' "$out" | sed -n 's/^New, \(TLSv[0-9.]*\), Cipher is \(.*\)/\1 \2/p' | head -1)" \
        "$(printf '%s\n' "$out" | sed -n 's/^Server Temp Key: \([^,]*\).*/\1/p' | head -1)" "${alpn:-alpn=?}" "$fp"
}

TLS_REFERENCE=""
expect_alpn_h2_same_tls() {   # proxy: ALPN selects h2; same version, cipher, group and
                              # certificate as the first proxy checked
    local p=$1 got
    got=$(tls_params "${TLS_PORT[$p]}")
    [[ $got == *" alpn=h2 "* ]] \
        || { echo "    $p did not negotiate h2 via ALPN: '$got'" >&2; return 1; }
    [[ $got =~ ^TLSv1\.3\ [A-Z0-9_]+\ [A-Za-z0-9-]+\ alpn=h2\ [0-9A-F:]+$ ]] \
        || { echo "    handshake parameters: '$got'" >&2; return 1; }
    [[ -n $TLS_REFERENCE ]] || TLS_REFERENCE=$got
    [[ $got == "$TLS_REFERENCE" ]] \
        || { echo "    '$got' differs from the first proxy's '$TLS_REFERENCE'" >&2; return 1; }
    echo "    $got" >&2
}

expect_h2load_clean() {   # proxy mode: a short h2load run at full concurrency negotiates h2/h2c
                          # (h2load's "Application protocol") and every request succeeds
    local p=$1 m=$2 c n out="$TMP/probe-$1-$2.txt" url
    c=$(set -- $CONNS; echo "$1")
    n=$((c * STREAMS * 2))
    url=$(base_url "$p" "$m" | sed 's/localhost/127.0.0.1/')/$BODY
    timeout 30 "$H2LOAD" -t1 -c"$c" -m"$STREAMS" -n"$n" --npn-list=h2 --tls13-ciphers="$TLS13_CIPHER" "$url" >"$out" 2>&1 || true
    $H2LIB probe "$m" "$out" "$n" || { echo "    $p did not negotiate $m or failed requests (h2load output: $out)" >&2; return 1; }
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

h2load_url() { base_url "$1" "$2" | sed 's/localhost/127.0.0.1/'; }

run_one() {   # proxy mode conns round order
    local p=$1 m=$2 c=$3 r=$4 o=$5 before after a0 a1 c0 c1 w0 w1 t0 t1 hwm npids
    local out="$TMP/h2load-$p-$m-$c-$r.txt" lf="-" logopt=()
    if [[ $LATENCY_LOG == 1 ]]; then lf="$TMP/h2load-$p-$m-$c-$r.log"; logopt=(--log-file="$lf"); fi
    a0=$(stub_accepts)
    read -r c0 w0 <<<"$($LIB cpustat "$PROXY_CPU")"
    before=$($LIB snap --reset-hwm "${PID[$p]}")
    # --npn-list=h2: never fall back to HTTP/1.1 over TLS; in the background + wait, so that
    # INT/TERM run the cleanup trap at once
    "$H2LOAD" -t1 -c"$c" -m"$STREAMS" -D"$DURATION" --npn-list=h2 --tls13-ciphers="$TLS13_CIPHER" "${logopt[@]}" \
        "$(h2load_url "$p" "$m")/$BODY" >"$out" 2>&1 &
    LOAD_PID=$!
    wait "$LOAD_PID" || { cat "$out" >&2; die "h2load failed against $p ($m)"; }
    LOAD_PID=
    after=$($LIB snap "${PID[$p]}")
    read -r c1 w1 <<<"$($LIB cpustat "$PROXY_CPU")"
    a1=$(stub_accepts)
    kill -0 "${PID[$p]}" 2>/dev/null || die "$p died during the run (log: $TMP/$p.log)"
    read -r t0 _ _ <<<"$before"
    read -r t1 hwm npids <<<"$after"
    $H2LIB record "$RAW" "$out" "$lf" "$p" "$m" "$c" "$STREAMS" "$BODY" "$BODY_BYTES" "$r" "$o" "$DURATION" \
        "$t0" "$t1" "$hwm" "$npids" "$a0" "$a1" "$c0" "$c1" "$w0" "$w1"
    [[ $lf == - ]] || rm -f "$lf"   # up to a few MB each; the percentiles are in the record
}

# ------------------------------------------------------------------ main
log "tmp dir $TMP; proxies: ${PROXIES[*]}; sentinel build: $SENTINEL_BUILD; scenarios: ${MODES[*]}; rounds $ROUNDS x ${DURATION}s; h2load -c ${CONNS// /,} -m $STREAMS; cpu: proxy=$PROXY_CPU load+origin=$LOAD_CPU"
start_origin
for p in "${PROXIES[@]}"; do start_proxy "$p"; done

log "premise checks"
check "origin /small is 200 + the 13-byte body" \
    eval 'curl -s --max-time 5 "http://127.0.0.1:$ORIGIN_PORT/small" | cmp -s - "$TMP/origin/small.expected"'
for p in "${PROXIES[@]}"; do
    check "$p runs only on CPU $PROXY_CPU" proxy_pinned "$p"
    for m in "${MODES[@]}"; do
        if [[ $m == h2 ]]; then check "$p TLS: ALPN h2; same version, cipher, group and certificate as the others" \
            expect_alpn_h2_same_tls "$p"; fi
        check "$p $m: curl gets HTTP/2 200 and the origin's /small body" expect_h2_body "$p" "$m"
        check "$p $m: X-Forwarded-For and X-Request-Id to the origin, X-Request-Id back" expect_h2_headers "$p" "$m"
        check "$p $m: h2load -m $STREAMS: Application protocol $m, 0 failed, 0 errored, all 2xx" \
            expect_h2load_clean "$p" "$m"
    done
done
[[ $FAILED_CHECKS == 0 ]] \
    || die "$FAILED_CHECKS premise check(s) failed (${FAILED_WHO[*]}): the comparison would be meaningless"
if [[ $CHECK_ONLY == 1 ]]; then log "all premise checks passed (--check: no load run)"; exit 0; fi

log "warm-up (${WARMUP}s per proxy and scenario, not recorded)"
for p in "${PROXIES[@]}"; do
    for m in "${MODES[@]}"; do
        "$H2LOAD" -t1 -c"$(set -- $CONNS; echo "$1")" -m"$STREAMS" -D"$WARMUP" --npn-list=h2 --tls13-ciphers="$TLS13_CIPHER" \
            "$(h2load_url "$p" "$m")/$BODY" >"$TMP/warmup.txt" 2>&1 \
            || { cat "$TMP/warmup.txt" >&2; die "warm-up h2load failed against $p ($m)"; }
    done
done

n=${#PROXIES[@]}
for ((r = 1; r <= ROUNDS; r++)); do
    # rotate the order each round so no proxy always runs first (or right after another)
    order=()
    for ((i = 0; i < n; i++)); do order+=("${PROXIES[$(((i + r - 1) % n))]}"); done
    log "round $r/$ROUNDS: order ${order[*]}"
    for m in "${MODES[@]}"; do
        for c in $CONNS; do
            for ((i = 0; i < n; i++)); do
                run_one "${order[$i]}" "$m" "$c" "$r" "$i"
            done
        done
    done
done

# ------------------------------------------------------------------ report
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$BENCH_DIR/results"
OUT="$BENCH_DIR/results/h2-$STAMP.json"
MD="$BENCH_DIR/results/h2-$STAMP.md"
# shellcheck disable=SC2155  # version strings: a failing tool just leaves them empty
export META_PROXIES="${PROXIES[*]}" META_CONNS="$CONNS" META_STREAMS="$STREAMS" META_MODES="${MODES[*]}" \
    META_DURATION="$DURATION" META_ROUNDS="$ROUNDS" META_PROXY_CPU="$PROXY_CPU" \
    META_LOAD_CPU="$LOAD_CPU" META_STAMP="$STAMP" META_TMP="$TMP" META_CMD="$CMDLINE" \
    META_POOL="$UPSTREAM_POOL" META_LATENCY_LOG="$LATENCY_LOG" META_BODY="$BODY" META_BODY_BYTES="$BODY_BYTES" \
    META_GIT="$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo none)" \
    META_V_NGINX="$("$NGINX" -v 2>&1 | head -1)" \
    META_V_HAPROXY="$( { "$HAPROXY" -v 2>/dev/null || true; } | head -1)" \
    META_V_H2LOAD="$( { "$H2LOAD" --version 2>/dev/null || true; } | head -1)" \
    META_V_SENTINEL="$(has_proxy sentinel && { "$SENTINEL" --version 2>/dev/null | head -1 || true; } || true)" \
    META_SENTINEL="$SENTINEL" META_SENTINEL_BUILD="$SENTINEL_BUILD" \
    META_TLS_PARAMS="$TLS_REFERENCE" META_CIPHER="$TLS13_CIPHER" META_V_OPENSSL="$("$OPENSSL" version 2>/dev/null || true)"
/usr/bin/python3 - "$TMP/meta.json" <<'EOF'
import json, os, sys
e = os.environ
tmp = e["META_TMP"]
def rd(p):
    try:
        return open(p).read()
    except OSError:
        return None
body, conns = e["META_BODY"], [int(c) for c in e["META_CONNS"].split()]
meta = {
    "benchmark": "bench/h2.sh", "command": e["META_CMD"],
    "timestamp": e["META_STAMP"], "git": e["META_GIT"], "host": os.uname().nodename,
    "kernel": os.uname().release, "nproc": os.cpu_count(),
    "loadavg_at_end": rd("/proc/loadavg").split()[:3],
    "proxies": e["META_PROXIES"].split(), "conns": conns, "streams": int(e["META_STREAMS"]),
    "bodies": [body], "body_bytes": {body: int(e["META_BODY_BYTES"])},
    "duration_s": int(e["META_DURATION"]), "rounds": int(e["META_ROUNDS"]),
    # (mode, conns, body) in report order: "h2" = TLS + ALPN h2, "h2c" = cleartext prior knowledge
    "scenarios": [[m, c, body] for m in e["META_MODES"].split() for c in conns],
    "load": "h2load -t1 -c<conns> -m<streams> -D<duration> --npn-list=h2 --tls13-ciphers=" + e["META_CIPHER"],
    "latency_log": e["META_LATENCY_LOG"] == "1",
    "upstream_pool": int(e["META_POOL"]),
    "tls": {"handshake": e["META_TLS_PARAMS"], "openssl": e["META_V_OPENSSL"],
            "certificate": "ECDSA P-256 (test/support/make-certs.sh site.pem)",
            "resumption": "off on all three (tickets and session cache)"},
    "cpus": {"proxy": e["META_PROXY_CPU"], "load_and_origin": e["META_LOAD_CPU"]},
    "versions": {"nginx": e["META_V_NGINX"], "haproxy": e["META_V_HAPROXY"],
                 "h2load": e["META_V_H2LOAD"], "sentinel": e["META_V_SENTINEL"],
                 "sentinel_binary": e["META_SENTINEL"], "sentinel_build": e["META_SENTINEL_BUILD"]},
    "configs": {"origin": rd(f"{tmp}/origin/nginx.conf"), "sentinel": rd(f"{tmp}/sentinel.kdl"),
                "nginx": rd(f"{tmp}/nginx/nginx.conf"), "haproxy": rd(f"{tmp}/haproxy.cfg")},
}
json.dump(meta, open(sys.argv[1], "w"), indent=1)
EOF
$H2LIB report "$RAW" "$TMP/meta.json" "$OUT" "$MD"
