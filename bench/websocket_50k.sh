#!/usr/bin/env bash
# Many concurrent idle WebSocket connections through one Sentinel process (issue 6): Sentinel's
# resident memory per connection, and every connection still echoing a message at the end.
# A benchmark, not a test (not in CTest; test/integration/test_websocket_scale.py is the
# CI-sized version). See bench/README.md.
#
#   bench/websocket_50k.sh                      50,000 connections, 8 client processes
#   bench/websocket_50k.sh --connections 5000   another count
#
# Clients bind the source addresses 127.0.0.2-127.0.0.9 and the echo origins
# (test/support/ws_origin.py, one per address) listen on the same addresses, so no address pair
# needs more than a share of the ephemeral ports. Every process gets the hard RLIMIT_NOFILE
# (raised first when this shell may). Sentinel needs two descriptors per connection (client and
# upstream side): when its hard limit cannot be raised that far (raising it needs
# CAP_SYS_RESOURCE), the run uses the most connections that fit, says so, and exits 2.
# Environment overrides: SENTINEL CONNECTIONS CLIENTS WORKERS IDLE_SECONDS
set -euo pipefail

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(cd "$BENCH_DIR/.." && pwd)
PY=/usr/bin/python3
LIB="$PY $BENCH_DIR/lib/benchlib.py"
SENTINEL=${SENTINEL:-$REPO_DIR/build/src/cli/sentinel}
WS_ORIGIN=$REPO_DIR/test/support/ws_origin.py
WS_CLIENTS=$BENCH_DIR/lib/ws_clients.py
CONNECTIONS=${CONNECTIONS:-50000}
CLIENTS=${CLIENTS:-8}           # client processes; source address 127.0.0.(2 + i % 8)
WORKERS=${WORKERS:-2}
IDLE_SECONDS=${IDLE_SECONDS:-10}
ADDRESSES=(127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6 127.0.0.7 127.0.0.8 127.0.0.9)

while [[ $# -gt 0 ]]; do
    case $1 in
        --connections) CONNECTIONS=$2; shift 2 ;;
        --clients) CLIENTS=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "websocket_50k.sh: unknown argument '$1'" >&2; exit 2 ;;
    esac
done

die() { echo "websocket_50k.sh: FATAL: $*" >&2; exit 1; }
log() { echo "# $*" >&2; }
[[ -x $SENTINEL ]] || die "missing $SENTINEL (build it first)"
$PY -c "import websockets" 2>/dev/null || die "python3-websockets is missing for $PY"
command -v curl >/dev/null || die "missing tool: curl"

# ---- descriptors: Sentinel holds 2 per connection, plus listeners, admin and log files.
REQUESTED=$CONNECTIONS
need=$((2 * CONNECTIONS + 256))
hard=$(ulimit -Hn)
if [[ $hard != unlimited && $hard -lt $need ]]; then
    ulimit -Hn "$need" 2>/dev/null || log "cannot raise the hard RLIMIT_NOFILE from $hard to $need (needs CAP_SYS_RESOURCE)"
    hard=$(ulimit -Hn)
fi
ulimit -n "$hard"
CAPPED_BY=""
if [[ $hard != unlimited && $hard -lt $need ]]; then
    CONNECTIONS=$(( (hard - 256) / 2 / CLIENTS * CLIENTS ))
    CAPPED_BY="RLIMIT_NOFILE hard limit $hard: Sentinel needs 2 descriptors per connection"
    log "running $CONNECTIONS connections instead of $REQUESTED ($CAPPED_BY)"
fi
(( CONNECTIONS >= CLIENTS )) || die "too few connections"
PER_CLIENT=$((CONNECTIONS / CLIENTS))
CONNECTIONS=$((PER_CLIENT * CLIENTS))
read -r port_lo port_hi < /proc/sys/net/ipv4/ip_local_port_range
log "ephemeral ports $port_lo-$port_hi: $((port_hi - port_lo + 1)) per address pair;" \
    "$((CONNECTIONS / ${#ADDRESSES[@]})) needed per pair"

TMP=$(mktemp -d /tmp/sentinel-ws-bench.XXXXXX)
PIDS=()
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for fd in "${CLIENT_FDS[@]:-}"; do [[ -n $fd ]] && { echo close >&"$fd"; exec {fd}>&-; } 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do
        for p in $($LIB tree "$pid" 2>/dev/null || echo "$pid"); do kill -TERM "$p" 2>/dev/null || true; done
    done
    wait 2>/dev/null || true
    [[ $rc == 0 || $rc == 2 ]] && rm -rf "$TMP" || log "logs kept in $TMP"
    exit "$rc"
}
CLIENT_FDS=()
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
wait_for_line() {  # file pattern seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

# ---- origins: one per address
ENDPOINTS=""
for a in "${ADDRESSES[@]}"; do
    $PY "$WS_ORIGIN" --host "$a" --no-compression --no-ping > "$TMP/origin.$a" 2>&1 &
    PIDS+=($!)
done
for a in "${ADDRESSES[@]}"; do
    wait_for_line "$TMP/origin.$a" '^listening' 20 || die "origin on $a did not start: $(cat "$TMP/origin.$a")"
    ENDPOINTS+="        endpoint \"$a:$(awk '/^listening/ {print $2}' "$TMP/origin.$a")\""$'\n'
done

# ---- Sentinel
read -r PORT ADMIN <<< "$($LIB ports 2 | tr '\n' ' ')"
CAP=$((CONNECTIONS + 1000))
cat > "$TMP/sentinel.kdl" <<EOF
system { workers $WORKERS; max-connections $CAP; max-connections-per-worker $CAP }
admin { listen "127.0.0.1:$ADMIN" }
listeners { listener "ws" { listen "127.0.0.1:$PORT" } }
routes {
    route "ws" {
        match { path "/ws" }
        upstream "echo"
        websocket #true { idle-timeout "30m"; max-connections $CAP }
    }
}
upstreams {
    upstream "echo" {
$ENDPOINTS    }
}
EOF
"$SENTINEL" run -c "$TMP/sentinel.kdl" > "$TMP/sentinel.log" 2>&1 &
SENTINEL_PID=$!
PIDS+=("$SENTINEL_PID")
for ((i = 0; i < 200; i++)); do
    curl -fs "http://127.0.0.1:$ADMIN/healthz" >/dev/null 2>&1 && break
    kill -0 "$SENTINEL_PID" 2>/dev/null || die "sentinel exited: $(tail -5 "$TMP/sentinel.log")"
    sleep 0.1
done
metric() { curl -fs "http://127.0.0.1:$ADMIN/metrics" | awk -v m="$1" '$1 ~ "^"m"({|$)" {s += $2} END {print s + 0}'; }
RSS_START=$(rss_kib "$SENTINEL_PID")
log "sentinel pid $SENTINEL_PID on 127.0.0.1:$PORT, $WORKERS workers, RSS $RSS_START KiB at start"

# ---- clients: open, then idle
START=$(date +%s.%N)
for ((i = 0; i < CLIENTS; i++)); do
    mkfifo "$TMP/in.$i"
    $PY "$WS_CLIENTS" "ws://127.0.0.1:$PORT/ws" "$PER_CLIENT" "${ADDRESSES[i % ${#ADDRESSES[@]}]}" \
        < "$TMP/in.$i" > "$TMP/out.$i" 2> "$TMP/err.$i" &
    PIDS+=($!)
    exec {fd}> "$TMP/in.$i"
    CLIENT_FDS+=("$fd")
done
for ((i = 0; i < CLIENTS; i++)); do
    wait_for_line "$TMP/out.$i" '^\(open\|failed\)' 600 || die "client $i did not finish opening: $(tail -3 "$TMP/err.$i")"
    grep -q '^failed' "$TMP/out.$i" && die "client $i: $(cat "$TMP/out.$i")"
done
OPEN_SECONDS=$(echo "$(date +%s.%N) - $START" | bc)
log "$CONNECTIONS connections open in ${OPEN_SECONDS%.*} s; idling ${IDLE_SECONDS} s"
sleep "$IDLE_SECONDS"
RSS_OPEN=$(rss_kib "$SENTINEL_PID")
FDS=$(ls "/proc/$SENTINEL_PID/fd" | wc -l)
ACTIVE=$(metric sentinel_websocket_connections_active)

# ---- every connection echoes once
START=$(date +%s.%N)
for fd in "${CLIENT_FDS[@]}"; do echo echo >&"$fd"; done
ECHOED=0
for ((i = 0; i < CLIENTS; i++)); do
    wait_for_line "$TMP/out.$i" '^echoed' 600 || die "client $i did not finish echoing"
    ECHOED=$((ECHOED + $(awk '/^echoed/ {print $2}' "$TMP/out.$i")))
done
ECHO_SECONDS=$(echo "$(date +%s.%N) - $START" | bc)
RSS_END=$(rss_kib "$SENTINEL_PID")

cat <<EOF

WebSocket idle connections through one Sentinel ($WORKERS workers)
  connections requested        $REQUESTED
  connections run              $CONNECTIONS${CAPPED_BY:+   (capped: $CAPPED_BY)}
  open (gauge)                 $ACTIVE
  Sentinel descriptors         $FDS
  Sentinel RSS at start        $((RSS_START / 1024)) MiB
  Sentinel RSS, all idle       $((RSS_OPEN / 1024)) MiB
  RSS per connection           $(echo "scale=1; ($RSS_OPEN - $RSS_START) / $CONNECTIONS" | bc) KiB (increase over start / connections)
  Sentinel RSS after echoes    $((RSS_END / 1024)) MiB
  echoed                       $ECHOED of $CONNECTIONS
  time to open, to echo        ${OPEN_SECONDS%.*} s, $(printf '%.1f' "$ECHO_SECONDS") s
EOF
[[ $ECHOED == "$CONNECTIONS" && ${ACTIVE%.*} == "$CONNECTIONS" ]] || die "not every connection was open and echoed"
[[ -z $CAPPED_BY ]] || exit 2
