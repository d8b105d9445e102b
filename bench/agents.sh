#!/usr/bin/env bash
# Cost of one agent: Sentinel with and without the echo agent on the request-headers event,
# same nginx origin, pinned and interleaved, medians over rounds. See bench/README.md.
#
#   bench/agents.sh                 3 rounds x 10 s per run, 1 and 50 connections
#   bench/agents.sh --quick         1 round x 3 s
#
# Reports, per connection count (closed loop, wrk): req/s, p50/p99 latency with and without
# the agent, and requests per CPU-second of Sentinel alone and of Sentinel + agent; and at a
# fixed offered rate below saturation (open loop, h2load --rps): p50/p99 with and without the
# agent, whose difference is the agent's added latency under load. Sentinel and the agent
# share PROXY_CPU; the load generators and the origin LOAD_CPU.
# Environment overrides: SENTINEL ECHO_AGENT DURATION ROUNDS CONNS RATE_CLIENTS RATE_PER_CLIENT
#                        PROXY_CPU LOAD_CPU NGINX WRK H2LOAD
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
LIB="/usr/bin/python3 $BENCH_DIR/lib/benchlib.py"
SENTINEL=${SENTINEL:-$REPO_DIR/build/src/cli/sentinel}
ECHO_AGENT=${ECHO_AGENT:-$REPO_DIR/build/agents/echo/sentinel-echo-agent}
NGINX=${NGINX:-/usr/sbin/nginx}
WRK=${WRK:-wrk}
DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-1 50}
RATE_CLIENTS=${RATE_CLIENTS:-4}
RATE_PER_CLIENT=${RATE_PER_CLIENT:-1250}   # 4 x 1,250 = 5,000 requests/s offered (few clients: their timers fire together)
H2LOAD=${H2LOAD:-h2load}
PROXY_CPU=${PROXY_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}

case ${1:-} in
    --quick) DURATION=3; ROUNDS=1 ;;
    "") ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "agents.sh: unknown argument '$1'" >&2; exit 2 ;;
esac

die() { echo "agents.sh: FATAL: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }
for f in "$SENTINEL" "$ECHO_AGENT"; do [[ -x $f ]] || die "missing $f (build it first)"; done
for tool in curl taskset "$WRK" "$NGINX" "$H2LOAD"; do command -v "$tool" >/dev/null || die "missing tool: $tool"; done

TMP=$(mktemp -d /tmp/sentinel-agent-bench.XXXXXX)
PIDS=()
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${PIDS[@]}"; do
        for p in $($LIB tree "$pid" 2>/dev/null || echo "$pid"); do kill -TERM "$p" 2>/dev/null || true; done
    done
    wait 2>/dev/null || true
    [[ $rc == 0 ]] && rm -rf "$TMP" || log "logs kept in $TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
taskset -cp "$LOAD_CPU" $$ >/dev/null

read -r ORIGIN_PORT PROXY_PORT <<<"$($LIB ports 2)"
USER_LINE=""
[[ $(id -u) == 0 ]] && USER_LINE="user root;"

# ---- origin: nginx; it reports the echo agent's header back, as proof the agent ran
mkdir -p "$TMP/origin/html" "$TMP/origin/logs"
printf 'hello world!\n' >"$TMP/origin/html/small"
cat >"$TMP/origin/nginx.conf" <<EOF
$USER_LINE
worker_processes 1;
daemon off;
pid $TMP/origin/nginx.pid;
error_log $TMP/origin/logs/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $TMP/origin/tmp_body;
    proxy_temp_path $TMP/origin/tmp_proxy;
    fastcgi_temp_path $TMP/origin/tmp_fastcgi;
    uwsgi_temp_path $TMP/origin/tmp_uwsgi;
    scgi_temp_path $TMP/origin/tmp_scgi;
    keepalive_requests 100000;
    server {
        listen 127.0.0.1:$ORIGIN_PORT reuseport;
        root $TMP/origin/html;
        add_header X-Origin-Saw-Echo "\$http_x_echo_agent" always;
    }
}
EOF
"$NGINX" -p "$TMP/origin" -c "$TMP/origin/nginx.conf" >"$TMP/origin.log" 2>&1 &
PIDS+=("$!")

# ---- the echo agent and Sentinel, both on PROXY_CPU
taskset -c "$PROXY_CPU" "$ECHO_AGENT" --socket "$TMP/echo.sock" --ready-file "$TMP/echo.ready" >"$TMP/echo.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
for _ in $(seq 100); do [[ -f $TMP/echo.ready ]] && break; sleep 0.05; done
[[ -f $TMP/echo.ready ]] || die "echo agent not ready (log: $TMP/echo.log)"

cat >"$TMP/sentinel.kdl" <<EOF
system { workers 1; }
listeners { listener "bench" { listen "127.0.0.1:$PROXY_PORT" } }
agents { agent "echo" { socket "$TMP/echo.sock"; failure-mode "closed"; timeout "1s" } }
routes {
    route "agent" {
        match { path-prefix "/agent/" }
        rewrite { strip-prefix "/agent" }
        upstream "origin"
        agents "echo"
    }
    route "plain" { match { path-prefix "/" }; upstream "origin" }
}
upstreams { upstream "origin" { endpoint "127.0.0.1:$ORIGIN_PORT"; pool { max-idle 256 } } }
EOF
taskset -c "$PROXY_CPU" "$SENTINEL" run -c "$TMP/sentinel.kdl" >"$TMP/sentinel.log" 2>&1 &
SENTINEL_PID=$!
PIDS+=("$SENTINEL_PID")
BASE="http://127.0.0.1:$PROXY_PORT"
for _ in $(seq 200); do curl -s -o /dev/null --max-time 1 "$BASE/small" && break; sleep 0.05; done

# ---- premises: both paths give the same body; only the agent path went through the agent
check_headers() {   # path expected-echo-header
    local h
    h=$(curl -s -D - -o "$TMP/body" "$BASE$1" | tr -d '\r')
    grep -q '^HTTP/1.1 200' <<<"$h" || die "$1: not 200"
    cmp -s "$TMP/body" "$TMP/origin/html/small" || die "$1: body differs from the origin's"
    local saw
    saw=$(sed -n 's/^X-Origin-Saw-Echo: *//Ip' <<<"$h")
    [[ $saw == "$2" ]] || die "$1: origin saw X-Echo-Agent '$saw', want '$2'"
}
check_headers /small ""
ECHO_VERSION=$(curl -s -D - -o /dev/null "$BASE/agent/small" | tr -d '\r' | sed -n 's/^X-Origin-Saw-Echo: *//Ip')
[[ -n $ECHO_VERSION ]] || die "/agent/small: the origin did not see X-Echo-Agent (agent not consulted)"
check_headers /agent/small "$ECHO_VERSION"
log "premises hold: /agent/ requests carry X-Echo-Agent $ECHO_VERSION to the origin, /small does not"

RAW=$TMP/raw.txt
: >"$RAW"
run_one() {   # path conns
    local out=$TMP/wrk.txt s0 s1 a0 a1
    read -r s0 _ _ <<<"$($LIB snap "$SENTINEL_PID")"
    read -r a0 _ _ <<<"$($LIB snap "$AGENT_PID")"
    "$WRK" -t1 -c"$2" -d"${DURATION}s" --latency "$BASE$1" >"$out" 2>&1 || die "wrk failed"
    read -r s1 _ _ <<<"$($LIB snap "$SENTINEL_PID")"
    read -r a1 _ _ <<<"$($LIB snap "$AGENT_PID")"
    /usr/bin/python3 -c "
import sys; sys.path.insert(0, '$BENCH_DIR/lib'); import benchlib
r = benchlib.parse_wrk(open('$out').read())
assert r['non2xx'] == 0 and r['socket_errors'] == 0, r
hz = $(getconf CLK_TCK)
s = ($s1 - $s0) / hz; a = ($a1 - $a0) / hz
print('$1', $2, r['rps'], r['p50_ms'], r['p99_ms'], r['requests'] / max(s, 1e-9), r['requests'] / max(s + a, 1e-9))
" >>"$RAW"
}

RATE_RAW=$TMP/rate.txt
: >"$RATE_RAW"
run_rate() {   # path: fixed offered rate, per-request latencies from h2load's log
    "$H2LOAD" --h1 -c"$RATE_CLIENTS" -t1 --rps="$RATE_PER_CLIENT" -D "$DURATION" --log-file="$TMP/h2load.log" \
        "$BASE$1" >"$TMP/h2load.txt" 2>&1 || die "h2load failed: $(tail -3 "$TMP/h2load.txt")"
    /usr/bin/python3 - "$TMP/h2load.log" "$1" >>"$RATE_RAW" <<'PY'
import statistics, sys
rows = [l.split('\t') for l in open(sys.argv[1]) if l.strip()]
bad = [r for r in rows if r[1] != '200']
assert rows and not bad, f"{len(bad)} of {len(rows)} requests not 200"
us = sorted(int(r[2]) for r in rows)
q = lambda f: us[min(len(us) - 1, int(f * len(us)))]
print(sys.argv[2], len(us), q(0.5), q(0.99))
PY
}

log "warm-up"
"$WRK" -t1 -c50 -d2s "$BASE/small" >/dev/null 2>&1
"$WRK" -t1 -c50 -d2s "$BASE/agent/small" >/dev/null 2>&1
for ((r = 1; r <= ROUNDS; r++)); do
    for c in $CONNS; do
        if ((r % 2)); then order=(/small /agent/small); else order=(/agent/small /small); fi
        for path in "${order[@]}"; do
            log "round $r: $path, $c connections"
            run_one "$path" "$c"
        done
    done
    if ((r % 2)); then order=(/small /agent/small); else order=(/agent/small /small); fi
    for path in "${order[@]}"; do
        log "round $r: $path at $((RATE_CLIENTS * RATE_PER_CLIENT)) requests/s"
        run_rate "$path"
    done
done

/usr/bin/python3 - "$RAW" "$CONNS" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
def med(path, c, i):
    return statistics.median(float(r[i]) for r in rows if r[0] == path and r[1] == c)
print("| connections | req/s plain | req/s agent | p50 plain | p50 agent | p50 added | p99 plain | p99 agent | p99 added | req per Sentinel CPU-s, plain | with agent | with agent, Sentinel + agent CPU |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for c in sys.argv[2].split():
    p = lambda i: med("/small", c, i)
    a = lambda i: med("/agent/small", c, i)
    print(f"| {c} | {p(2):,.0f} | {a(2):,.0f} | {p(3)*1000:.0f} µs | {a(3)*1000:.0f} µs | **{(a(3)-p(3))*1000:.0f} µs** | "
          f"{p(4)*1000:.0f} µs | {a(4)*1000:.0f} µs | {(a(4)-p(4))*1000:.0f} µs | {p(5):,.0f} | {a(5):,.0f} | {a(6):,.0f} |")
PY
/usr/bin/python3 - "$RATE_RAW" "$((RATE_CLIENTS * RATE_PER_CLIENT))" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = lambda path, i: statistics.median(float(r[i]) for r in rows if r[0] == path)
print()
print(f"Fixed offered rate, {int(sys.argv[2]):,} requests/s ({len(rows) // 2} runs each):")
print("| | p50 | p99 |")
print("|---|---|---|")
print(f"| without agent | {med('/small', 2):.0f} µs | {med('/small', 3):.0f} µs |")
print(f"| with echo agent | {med('/agent/small', 2):.0f} µs | {med('/agent/small', 3):.0f} µs |")
print(f"| **added by the agent** | **{med('/agent/small', 2) - med('/small', 2):.0f} µs** | **{med('/agent/small', 3) - med('/small', 3):.0f} µs** |")
PY
