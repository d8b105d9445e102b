# Sourced by the side-by-side benchmarks (run.sh, h2.sh): a temp dir, the processes a script
# starts, and a cleanup on exit that kills each of them with its whole process tree.
# Needs $LIB (benchlib.py) and log(). Sets TMP, PIDS (append every long-running process) and
# LOAD_PID (the load generator currently measuring, if any).

bench_processes() {   # temp-dir prefix
    TMP=$(mktemp -d "/tmp/$1.XXXXXX")
    PIDS=()
    LOAD_PID=
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

bench_cleanup() {
    local rc=$? pid all=()
    trap - EXIT INT TERM
    [[ -z $LOAD_PID ]] || kill -TERM "$LOAD_PID" 2>/dev/null || true
    # collect the whole trees first: nginx workers must not outlive a killed master
    for pid in "${PIDS[@]}"; do
        kill -0 "$pid" 2>/dev/null || continue
        read -r -a t <<<"$($LIB tree "$pid" 2>/dev/null || echo "$pid")"
        all+=("${t[@]}")
    done
    if [[ ${#all[@]} -gt 0 ]]; then
        kill -TERM "${all[@]}" 2>/dev/null || true
        for _ in $(seq 50); do
            local alive=0
            for pid in "${all[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
            [[ $alive == 0 ]] && break
            sleep 0.1
        done
        kill -KILL "${all[@]}" 2>/dev/null || true
    fi
    wait 2>/dev/null || true
    if [[ ${KEEP_TMP:-0} == 1 || $rc != 0 ]]; then
        log "logs and configs kept in $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}
