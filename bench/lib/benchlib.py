#!/usr/bin/python3
"""Number crunching for bench/run.sh (stdlib only).

Subcommands:
  ports N                      print N distinct free TCP ports on 127.0.0.1
  tree PID                     print PID and all its descendants
  cpustat N                    print "<busy_ticks> <total_ticks>" of CPU N
  snap [--reset-hwm] PID       print "<cpu_ticks> <hwm_kib> <npids>" for PID and all its
                               descendants (utime+stime of every thread, VmHWM summed)
  stub URL                     print the "accepts" counter of an nginx stub_status page
  record ...                   parse one wrk --latency output and append a JSON line
  report RAW.jsonl META.json OUT.json
                               print the per-scenario tables and write the JSON report
"""
import json
import os
import re
import socket
import statistics
import sys
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- processes
def _ppid_map():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        # comm may contain spaces and parentheses: split after the last ')'
        rest = s[s.rindex(")") + 2:].split()
        kids.setdefault(int(rest[1]), []).append(int(d))
    return kids


def tree(pid):
    kids = _ppid_map()
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def cpu_ticks(pid):
    """utime+stime of the whole thread group (the process-level stat line
    already sums all live and exited threads)."""
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    rest = s[s.rindex(")") + 2:].split()
    # fields 14 and 15 (1-based) = rest[11], rest[12]
    return int(rest[11]) + int(rest[12])


def hwm_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def cmd_snap(args):
    reset = False
    if args and args[0] == "--reset-hwm":
        reset, args = True, args[1:]
    pids = tree(int(args[0]))
    ticks = hwm = n = 0
    for p in pids:
        try:
            if reset:
                # "5" resets the peak RSS (VmHWM) to the current RSS (Linux >= 4.0)
                try:
                    with open(f"/proc/{p}/clear_refs", "w") as f:
                        f.write("5")
                except OSError:
                    pass
            ticks += cpu_ticks(p)
            hwm += hwm_kib(p)
            n += 1
        except (OSError, ValueError):
            pass  # raced with an exiting process
    print(ticks, hwm, n)


def cmd_tree(args):
    print(" ".join(str(p) for p in tree(int(args[0]))))


def cmd_cpustat(args):
    """busy ticks (incl. steal) and total ticks of one CPU, from /proc/stat"""
    want = f"cpu{args[0]}"
    with open("/proc/stat") as f:
        for line in f:
            parts = line.split()
            if parts[0] == want:
                v = [int(x) for x in parts[1:]]
                idle = v[3] + v[4]  # idle + iowait
                total = sum(v[:8])  # guest time is already inside user
                print(total - idle, total)
                return
    raise SystemExit(f"no {want} in /proc/stat")


def cmd_ports(args):
    n = int(args[0])
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))
    for s in socks:
        s.close()


def cmd_stub(args):
    with urllib.request.urlopen(args[0], timeout=5) as r:
        body = r.read().decode()
    # Active connections: 1 \n server accepts handled requests \n 12 12 34 \n ...
    m = re.search(r"\n\s*(\d+)\s+(\d+)\s+(\d+)", body)
    print(m.group(1))


# ---------------------------------------------------------------- wrk parsing
_TIME = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}
_SIZE = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def _ms(tok):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", tok)
    if not m:
        raise ValueError(f"unparsable wrk latency {tok!r}")
    return float(m.group(1)) * _TIME[m.group(2)]


def parse_wrk(text):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not m:
        raise ValueError("no 'Requests/sec' in wrk output")
    r["rps"] = float(m.group(1))
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+)(\w+) read", text)
    r["requests"] = int(m.group(1))
    r["wrk_seconds"] = float(m.group(2)) * _TIME[m.group(3)] / 1000.0
    r["bytes_read"] = float(m.group(4)) * _SIZE[m.group(5)]
    dist = re.search(r"Latency Distribution\s*\n((?:\s+\d+%\s+\S+\s*\n)+)", text)
    if not dist:
        raise ValueError("no latency distribution (run wrk with --latency)")
    for pct, val in re.findall(r"(\d+)%\s+(\S+)", dist.group(1)):
        r[f"p{pct}_ms"] = _ms(val)
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    r["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return r


def cmd_record(args):
    """record OUT.jsonl WRK_OUT proxy conns body body_bytes round order duration
              ticks0 ticks1 hwm_kib npids accepts0 accepts1 cpubusy0 cpubusy1 cputotal0 cputotal1
              [mode: http (default) | tls (HTTPS keep-alive) | tls-hs (full handshake per request)]"""
    mode = args[19] if len(args) > 19 else "http"
    (out, wrk_out, proxy, conns, body, body_bytes, rnd, order, duration,
     t0, t1, hwm, npids, a0, a1, b0, b1, w0, w1) = args[:19]
    with open(wrk_out) as f:
        text = f.read()
    w = parse_wrk(text)
    cpu_s = (int(t1) - int(t0)) / CLK_TCK
    rec = {
        "proxy": proxy, "mode": mode, "conns": int(conns), "body": body, "body_bytes": int(body_bytes),
        "round": int(rnd), "order": int(order), "duration_s": float(duration),
        **w,
        "cpu_s": cpu_s,
        "cpu_util": cpu_s / w["wrk_seconds"] if w["wrk_seconds"] else None,
        "req_per_cpu_s": w["requests"] / cpu_s if cpu_s > 0 else None,
        "cpu_us_per_req": cpu_s * 1e6 / w["requests"] if w["requests"] else None,
        "peak_rss_kib": int(hwm), "pids": int(npids),
        # time the proxy's CPU spent on anything but the proxy (other engineers' builds,
        # hypervisor steal): the noise on this run
        # (share of that CPU's ticks over the window; the window is slightly longer than
        # the wrk run, which dilutes it a little)
        "foreign_cpu_util": (max(0, int(b1) - int(b0) - (int(t1) - int(t0))) /
                             max(1, int(w1) - int(w0))),
        # new upstream (origin) connections accepted during the run; the stub_status
        # probe itself is one accepted connection, hence the -1
        "upstream_conns": int(a1) - int(a0) - 1,
        "bytes_per_resp": w["bytes_read"] / w["requests"] if w["requests"] else None,
    }
    problems = []
    if w["non2xx"]:
        problems.append(f"{w['non2xx']} non-2xx responses")
    if w["socket_errors"]:
        problems.append(f"{w['socket_errors']} socket errors")
    # a few new upstream connections per run are normal (pool growth, and connections
    # aborted when wrk stops mid-request); far more than the client connections means
    # the proxy is not reusing upstream connections, i.e. not doing equivalent work
    if rec["upstream_conns"] > 2 * int(conns):
        problems.append(f"{rec['upstream_conns']} new upstream connections (no reuse?)")
    # wrk prints the byte count with 2 decimals in B/KB/MB/GB: allow 2% slack
    if rec["bytes_per_resp"] is not None and rec["bytes_per_resp"] < 0.98 * int(body_bytes):
        problems.append(f"only {rec['bytes_per_resp']:.0f} bytes/response < body {body_bytes}")
    notes = []
    if rec["cpu_util"] is not None and rec["cpu_util"] < 0.8:
        notes.append(f"proxy used only {rec['cpu_util']:.0%} of its CPU: the bottleneck "
                     f"was elsewhere (load CPU busy? proxy waiting?)")
    if rec["foreign_cpu_util"] > 0.1:
        notes.append(f"{rec['foreign_cpu_util']:.0%} of the proxy CPU went to other processes")
    rec["problems"] = problems
    rec["notes"] = notes
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    msg = (f"  {proxy:<9} {mode:<6} {conns:>4}c {body:<5} r{rnd}: {w['rps']:>10.0f} req/s  "
           f"p99 {w.get('p99_ms', float('nan')):7.2f} ms  cpu {cpu_s:6.2f} s  "
           f"{rec['req_per_cpu_s'] or 0:>8.0f} req/cpu-s")
    if problems:
        msg += "  !! " + "; ".join(problems)
    if notes:
        msg += "  (note: " + "; ".join(notes) + ")"
    print(msg, flush=True)


# ---------------------------------------------------------------- report
COLS = [
    # key, header, format
    ("rps", "req/s", "{:>10.0f}"),
    ("p50_ms", "p50 ms", "{:>8.2f}"),
    ("p99_ms", "p99 ms", "{:>8.2f}"),
    ("cpu_s", "cpu-s", "{:>7.2f}"),
    ("cpu_util", "cpu%", "{:>6.0%}"),
    ("foreign_cpu_util", "noise%", "{:>6.0%}"),
    ("req_per_cpu_s", "req/cpu-s", "{:>10.0f}"),
    ("cpu_us_per_req", "cpu-us/req", "{:>10.1f}"),
    ("peak_rss_mib", "rss MiB", "{:>8.1f}"),
    ("upstream_conns", "up-conns", "{:>9.0f}"),
]
RATIOS = [("rps", "req/s"), ("req_per_cpu_s", "req/cpu-s"), ("p99_ms", "p99")]
MODE_TITLE = {"http": "", "tls": "HTTPS keep-alive, ", "tls-hs": "HTTPS full handshake per request, "}


def _median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def cmd_report(args):
    raw, meta_path, out = args
    with open(raw) as f:
        runs = [json.loads(l) for l in f if l.strip()]
    with open(meta_path) as f:
        meta = json.load(f)
    for r in runs:
        r["peak_rss_mib"] = r["peak_rss_kib"] / 1024.0
    proxies = meta["proxies"]
    scenarios = [tuple(s) for s in meta.get("scenarios") or
                 [("http", c, b) for c in meta["conns"] for b in meta["bodies"]]]
    summary = []
    bad = 0
    for mode, conns, body in scenarios:
        body_bytes = meta["body_bytes"][body]
        rows = {}
        for p in proxies:
            rs = [r for r in runs if r["proxy"] == p and r.get("mode", "http") == mode
                  and r["conns"] == conns and r["body"] == body]
            if not rs:
                continue
            med = {k: _median([r.get(k) for r in rs]) for k, _, _ in COLS}
            med["rounds"] = len(rs)
            med["problems"] = sorted({x for r in rs for x in r["problems"]})
            med["noted_runs"] = sum(1 for r in rs if r.get("notes"))
            bad += sum(1 for r in rs if r["problems"])
            rows[p] = med
        # ratios of the subject (Sentinel; without it, the first proxy listed) to the others
        ratios = {}
        subject = "sentinel" if "sentinel" in rows else next(iter(rows), None)
        for other in rows:
            if other == subject:
                continue
            ratios[f"{subject}/{other}"] = {
                k: (rows[subject][k] / rows[other][k]
                    if rows[subject][k] is not None and rows[other][k] else None)
                for k, _ in RATIOS}
        summary.append({"mode": mode, "conns": conns, "body": body, "body_bytes": body_bytes,
                        "median": rows, "ratios": ratios})

        n = max((m["rounds"] for m in rows.values()), default=0)
        print()
        print(f"== {MODE_TITLE[mode]}{conns} connections, {body} body ({body_bytes} B): "
              f"median of {n} round(s) ==")
        if mode == "tls-hs":
            print("   (one request = one new connection = one full handshake: req/s = handshakes/s, "
                  "req/cpu-s = handshakes per proxy CPU-second)")
        hdr = f"{'proxy':<10}" + "".join(
            " " + h.rjust(len(fmt.format(0))) for k, h, fmt in COLS)
        print(hdr)
        for p, med in rows.items():
            line = f"{p:<10}"
            for k, h, fmt in COLS:
                width = len(fmt.format(0))
                v = med[k]
                line += " " + (fmt.format(v) if v is not None else "-".rjust(width))
            if med["problems"]:
                line += "   !! " + "; ".join(med["problems"])
            if med["noted_runs"]:
                line += f"   ({med['noted_runs']} run(s) with notes: see JSON)"
            print(line)
        for name, rat in ratios.items():
            parts = [f"{h} {rat[k]:.2f}x" if rat[k] is not None else f"{h} -"
                     for k, h in RATIOS]
            print(f"  {name:<16} " + "   ".join(parts))

    report = {"meta": meta, "summary": summary, "runs": runs}
    with open(out, "w") as f:
        json.dump(report, f, indent=1)
    print()
    if bad:
        print(f"WARNING: {bad} run(s) had problems (errors or short responses); "
              f"their figures are not comparable.")
    print(f"raw results: {out}")
    return 1 if bad else 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"ports": cmd_ports, "tree": cmd_tree, "cpustat": cmd_cpustat, "snap": cmd_snap, "stub": cmd_stub,
          "record": cmd_record, "report": cmd_report}[cmd]
    sys.exit(fn(args) or 0)


if __name__ == "__main__":
    main()
