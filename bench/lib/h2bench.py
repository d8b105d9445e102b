#!/usr/bin/python3
"""h2load parsing and reporting for bench/h2.sh (stdlib only).

The process-tree CPU/RSS snapshots, free ports, /proc/stat and stub_status helpers, the
medians and the per-scenario tables come from benchlib.py (imported, not copied): h2.sh calls
`benchlib.py ports|tree|snap|cpustat|stub` directly, and `report` below hands its records to
benchlib's report with the HTTP/2 scenario titles and one extra latency column.

Subcommands:
  probe MODE H2LOAD_OUT EXPECTED_REQUESTS
                     premise check of a short h2load run: application protocol is MODE
                     (h2 or h2c), every request succeeded with a 2xx, 0 failed/errored
  record ...         parse one measured h2load run (+ its --log-file) and append a JSON line
  report RAW.jsonl META.json OUT.json MARKDOWN_OUT
                     print the per-scenario tables (benchlib), write the JSON report, and
                     print + write a markdown table for bench/RESULTS.md
  sentinel-build BINARY
                     CMAKE_BUILD_TYPE (+ "+sanitizers") of the build tree holding BINARY
"""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402  (same directory)

# scenario modes of h2.sh: what h2load must report as "Application protocol"
ALPN = {"h2": "h2", "h2c": "h2c"}


# ---------------------------------------------------------------- h2load parsing
def _num(s):
    return float(s.replace(",", ""))


def _dur_ms(tok):
    """h2load prints durations as 212us, 36.26ms, 1.02s"""
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", tok)
    if not m:
        raise ValueError(f"unparsable h2load duration {tok!r}")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1000.0}[m.group(2)]


def parse_h2load(text):
    """The summary h2load prints at the end (nghttp2 1.52 format)."""
    r = {}
    m = re.search(r"^Application protocol: (\S+)", text, re.M)
    r["app_protocol"] = m.group(1) if m else None
    m = re.search(r"^TLS Protocol: (\S+)", text, re.M)
    r["tls_protocol"] = m.group(1) if m else None
    m = re.search(r"^Cipher: (\S+)", text, re.M)
    r["tls_cipher"] = m.group(1) if m else None
    m = re.search(r"^finished in ([\d.]+)(us|ms|s), ([\d.]+) req/s", text, re.M)
    if not m:
        raise ValueError("no 'finished in ... req/s' line in h2load output")
    r["h2load_seconds"] = _dur_ms(m.group(1) + m.group(2)) / 1000.0
    r["h2load_rps"] = float(m.group(3))
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", text, re.M)
    if not m:
        raise ValueError("no 'requests:' line in h2load output")
    (r["req_total"], r["req_started"], r["req_done"], r["succeeded"], r["failed"],
     r["errored"], r["timeout"]) = (int(x) for x in m.groups())
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text, re.M)
    r["status_2xx"], r["status_3xx"], r["status_4xx"], r["status_5xx"] = (
        (int(x) for x in m.groups()) if m else (0, 0, 0, 0))
    m = re.search(r"^traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?, .*?\((\d+)\) data",
                  text, re.M)
    if m:
        r["bytes_total"], r["bytes_headers"], r["bytes_data"] = (int(x) for x in m.groups())
    # "time for request:  min  max  mean  sd  +/- sd" (no percentiles in h2load's summary)
    m = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)", text, re.M)
    if m:
        r["min_ms"], r["max_ms"], r["mean_ms"], r["sd_ms"] = (_dur_ms(x) for x in m.groups())
    return r


def parse_log(path):
    """h2load --log-file: start time (us since epoch) TAB status (-1 = failed stream) TAB
    microseconds until the end of the response. Returns percentiles over the 2xx rows."""
    us, bad = [], 0
    with open(path) as f:
        for line in f:
            parts = line.split("\t")
            if len(parts) < 3:
                continue
            if not parts[1].startswith("2"):
                bad += 1
                continue
            us.append(int(parts[2]))
    if not us:
        return {"log_rows": bad, "log_bad_rows": bad}
    us.sort()

    def q(f):
        return us[min(len(us) - 1, int(f * len(us)))] / 1000.0

    return {"log_rows": len(us) + bad, "log_bad_rows": bad,
            "p50_ms": q(0.50), "p90_ms": q(0.90), "p99_ms": q(0.99)}


def check_h2load(r, mode, expected=None):
    """Problems that make an h2load run invalid (empty list = clean)."""
    problems = []
    want = ALPN[mode]
    if r["app_protocol"] != want:
        problems.append(f"h2load negotiated {r['app_protocol'] or 'no protocol'}, not {want}")
    # over TLS every proxy must do the same record encryption: h2.sh offers h2load one
    # TLS 1.3 cipher suite only (H2BENCH_TLS13_CIPHER)
    cipher = os.environ.get("H2BENCH_TLS13_CIPHER")
    if mode == "h2" and (r["tls_protocol"] != "TLSv1.3" or (cipher and r["tls_cipher"] != cipher)):
        problems.append(f"h2load got {r['tls_protocol']} {r['tls_cipher']}, not TLSv1.3 {cipher or ''}")
    if r["failed"] or r["errored"] or r["timeout"]:
        problems.append(f"{r['failed']} failed, {r['errored']} errored, {r['timeout']} timed out requests")
    non2xx = r["status_3xx"] + r["status_4xx"] + r["status_5xx"]
    if non2xx:
        problems.append(f"{non2xx} non-2xx responses")
    if r["succeeded"] == 0:
        problems.append("no request succeeded")
    if expected is not None and r["succeeded"] != expected:
        problems.append(f"{r['succeeded']} of {expected} requests succeeded")
    return problems


# ---------------------------------------------------------------- subcommands
def cmd_probe(args):
    mode, out, expected = args[0], args[1], int(args[2])
    with open(out) as f:
        text = f.read()
    try:
        r = parse_h2load(text)
    except ValueError as e:
        tail = "\n".join(text.strip().splitlines()[-3:])
        print(f"    h2load: {e}; its last lines:\n      {tail}", file=sys.stderr)
        return 1
    problems = check_h2load(r, mode, expected)
    if problems:
        print("    h2load: " + "; ".join(problems), file=sys.stderr)
        return 1
    tls = f", {r['tls_protocol']} {r['tls_cipher']}" if r["tls_protocol"] else ""
    print(f"    h2load: Application protocol: {r['app_protocol']}{tls}; "
          f"{r['succeeded']}/{expected} succeeded, 0 failed, 0 errored", file=sys.stderr)
    return 0


def cmd_record(args):
    """record OUT.jsonl H2LOAD_OUT LOG_FILE|- proxy mode conns streams body body_bytes round order
              duration ticks0 ticks1 hwm_kib npids accepts0 accepts1 cpubusy0 cpubusy1 cputotal0 cputotal1"""
    (out, h2_out, log_file, proxy, mode, conns, streams, body, body_bytes, rnd, order, duration,
     t0, t1, hwm, npids, a0, a1, b0, b1, w0, w1) = args
    with open(h2_out) as f:
        text = f.read()
    h = parse_h2load(text)
    lat = parse_log(log_file) if log_file != "-" and os.path.exists(log_file) else {}
    cpu_s = (int(t1) - int(t0)) / benchlib.CLK_TCK
    # in timing-based mode (-D) h2load counts the requests that completed within the main
    # duration; its "finished in" is that duration
    seconds = h["h2load_seconds"] or float(duration)
    reqs = h["succeeded"]
    rec = {
        "proxy": proxy, "mode": mode, "conns": int(conns), "streams": int(streams),
        "body": body, "body_bytes": int(body_bytes), "round": int(rnd), "order": int(order),
        "duration_s": float(duration),
        **h, **lat,
        "requests": reqs,
        "rps": reqs / seconds if seconds else None,
        "cpu_s": cpu_s,
        "cpu_util": cpu_s / seconds if seconds else None,
        "req_per_cpu_s": reqs / cpu_s if cpu_s > 0 else None,
        "cpu_us_per_req": cpu_s * 1e6 / reqs if reqs else None,
        "peak_rss_kib": int(hwm), "pids": int(npids),
        # same definitions as benchlib.cmd_record
        "foreign_cpu_util": (max(0, int(b1) - int(b0) - (int(t1) - int(t0))) /
                             max(1, int(w1) - int(w0))),
        "upstream_conns": int(a1) - int(a0) - 1,
        "data_bytes_per_resp": h["bytes_data"] / reqs if reqs and "bytes_data" in h else None,
    }
    problems = check_h2load(h, mode)
    if lat.get("log_bad_rows"):
        problems.append(f"{lat['log_bad_rows']} non-2xx/failed streams in the request log")
    # up to CONNS x STREAMS requests are in flight to the origin at once: each may need its
    # own upstream connection; far more new ones than that means no upstream reuse
    in_flight = int(conns) * int(streams)
    if rec["upstream_conns"] > 2 * in_flight:
        problems.append(f"{rec['upstream_conns']} new upstream connections for {in_flight} "
                        f"streams in flight (no reuse?)")
    if rec["data_bytes_per_resp"] is not None and rec["data_bytes_per_resp"] < int(body_bytes):
        problems.append(f"only {rec['data_bytes_per_resp']:.1f} DATA bytes/response < body {body_bytes}")
    notes = []
    if rec["cpu_util"] is not None and rec["cpu_util"] < 0.8:
        notes.append(f"proxy used only {rec['cpu_util']:.0%} of its CPU: the bottleneck "
                     f"was elsewhere (h2load/origin CPU busy? proxy waiting?)")
    if rec["foreign_cpu_util"] > 0.1:
        notes.append(f"{rec['foreign_cpu_util']:.0%} of the proxy CPU went to other processes")
    rec["problems"] = problems
    rec["notes"] = notes
    with open(out, "a") as f:
        f.write(json.dumps(rec) + "\n")
    p99 = rec.get("p99_ms")
    msg = (f"  {proxy:<9} {mode:<4} {conns:>3}c x{streams:>3}m {body:<5} r{rnd}: "
           f"{rec['rps'] or 0:>9.0f} req/s  "
           + (f"p99 {p99:7.2f} ms  " if p99 is not None else f"mean {h.get('mean_ms', float('nan')):6.2f} ms  ")
           + f"cpu {cpu_s:6.2f} s  {rec['req_per_cpu_s'] or 0:>8.0f} req/cpu-s")
    if problems:
        msg += "  !! " + "; ".join(problems)
    if notes:
        msg += "  (note: " + "; ".join(notes) + ")"
    print(msg, flush=True)
    return 0


def _fmt(v, fmt):
    return fmt.format(v) if v is not None else "-"


def markdown(summary, meta):
    """A table for bench/RESULTS.md: one row per proxy and scenario, then the ratios."""
    lat_src = ("p50/p99 from h2load --log-file (per request: start to end of response); "
               "mean from h2load's `time for request`" if meta["latency_log"] else
               "h2load gives no percentiles without --log-file (LATENCY_LOG=0): mean only")
    title = {"h2": "h2 over TLS (ALPN)", "h2c": "h2c prior knowledge"}
    v = meta["versions"]
    versions = "; ".join(
        {"sentinel": f"{v['sentinel'] or 'sentinel'} ({v['sentinel_build']} build)",
         "nginx": v["nginx"].replace("nginx version: ", ""),
         "haproxy": " ".join(v["haproxy"].split()[:3])}[p] for p in meta["proxies"])
    lines = [
        f"## {meta['timestamp'][:4]}-{meta['timestamp'][4:6]}-{meta['timestamp'][6:8]}, "
        f"HTTP/2 downstream, `{meta['command']}`",
        "",
        f"Commit {meta['git']}; {versions}; {meta['versions']['h2load']}. "
        f"`h2load -t1 -c<conns> -m{meta['streams']} -D{meta['duration_s']}` on CPU "
        f"{meta['cpus']['load_and_origin']} with the origin; each proxy alone on CPU "
        f"{meta['cpus']['proxy']} (1 worker), HTTP/1.1 keep-alive to the origin; "
        f"median of {meta['rounds']} interleaved round(s). Latency: {lat_src}.",
        "",
        "| scenario | proxy | req/s | p50 ms | p99 ms | mean ms | req per proxy CPU-s | "
        "CPU-µs/req | proxy cpu% | noise% |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summary:
        scen = f"{title.get(s['mode'], s['mode'])}, {s['conns']}c x {meta['streams']} streams, {s['body']}"
        for p, m in s["median"].items():
            bad = " !!" if m["problems"] else ""
            lines.append(
                f"| {scen} | {p}{bad} | {_fmt(m['rps'], '{:,.0f}')} | {_fmt(m.get('p50_ms'), '{:.2f}')} | "
                f"{_fmt(m.get('p99_ms'), '{:.2f}')} | {_fmt(m.get('mean_ms'), '{:.2f}')} | "
                f"{_fmt(m['req_per_cpu_s'], '{:,.0f}')} | {_fmt(m['cpu_us_per_req'], '{:.1f}')} | "
                f"{_fmt(m['cpu_util'], '{:.0%}')} | {_fmt(m['foreign_cpu_util'], '{:.0%}')} |")
        for name, rat in s["ratios"].items():
            lines.append(
                f"| {scen} | **{name}** | {_fmt(rat['rps'], '{:.2f}x')} | | "
                f"{_fmt(rat['p99_ms'], '{:.2f}x')} | | **{_fmt(rat['req_per_cpu_s'], '{:.2f}x')}** | | | |")
    return "\n".join(lines) + "\n"


def cmd_report(args):
    raw, meta_path, out, md_out = args
    with open(meta_path) as f:
        meta = json.load(f)
    streams = meta["streams"]
    # benchlib's tables, with the HTTP/2 scenario titles and h2load's mean as one more column
    benchlib.MODE_TITLE.update({
        "h2": f"h2 over TLS (ALPN h2), {streams} streams per connection, ",
        "h2c": f"h2c prior knowledge (cleartext), {streams} streams per connection, ",
    })
    if not any(k == "mean_ms" for k, _, _ in benchlib.COLS):
        i = next(i for i, (k, _, _) in enumerate(benchlib.COLS) if k == "p99_ms")
        benchlib.COLS.insert(i + 1, ("mean_ms", "mean ms", "{:>8.2f}"))
    rc = benchlib.cmd_report([raw, meta_path, out])
    with open(out) as f:
        report = json.load(f)
    print()
    print("latency: " + ("p50/p99 = percentiles of h2load --log-file (each request, from its start "
                         "to the end of its response); mean = h2load's 'time for request' mean"
                         if meta["latency_log"] else
                         "h2load prints only min/max/mean/sd ('time for request'); "
                         "p50/p99 need LATENCY_LOG=1"))
    md = markdown(report["summary"], meta)
    with open(md_out, "w") as f:
        f.write(md)
    print()
    print(f"---- markdown for bench/RESULTS.md (also in {md_out}) ----")
    print(md)
    if rc:
        print("INVALID: some run(s) had failed/errored requests, non-2xx responses or no h2 "
              "(rows marked !!): their figures do not count.")
    return rc


def cmd_sentinel_build(args):
    d = os.path.dirname(os.path.realpath(args[0]))
    while d != "/" and not os.path.isfile(os.path.join(d, "CMakeCache.txt")):
        d = os.path.dirname(d)
    cache = os.path.join(d, "CMakeCache.txt")
    if not os.path.isfile(cache):
        print("unknown")
        return 0
    build, san = "", False
    with open(cache) as f:
        for line in f:
            if line.startswith("CMAKE_BUILD_TYPE:STRING="):
                build = line.split("=", 1)[1].strip()
            elif line.startswith("SENTINEL_SANITIZE:BOOL=ON"):
                san = True
    print((build or "unknown") + ("+sanitizers" if san else ""))
    return 0


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    fn = {"probe": cmd_probe, "record": cmd_record, "report": cmd_report,
          "sentinel-build": cmd_sentinel_build}[cmd]
    sys.exit(fn(args) or 0)


if __name__ == "__main__":
    main()
