#!/usr/bin/env python3
"""Checks that Grafana dashboards and Prometheus rules only name metrics Sentinel exposes.

    check_metric_names.py --sentinel BIN --rules RULES.yml DASHBOARD.json...
    check_metric_names.py --metrics-file DUMP --rules RULES.yml DASHBOARD.json...

With --sentinel it starts BIN on a small config (a listener, an upstream, the admin server,
all on free loopback ports), reads GET /metrics and stops it; every family is registered at
start-up, so the dump lists them all. Each dashboard must parse as JSON. Every
`sentinel_...` name in the files (histogram suffixes _bucket/_sum/_count stripped) must be a
family of the dump, and every recording-rule name a dashboard uses (level:metric:op) must be
recorded in the rules file. Exit 0 when all is well, 1 with a list of problems otherwise."""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

# A metric name not part of a recording-rule name (those contain colons).
METRIC = re.compile(r"(?<![\w:])sentinel_[a-z0-9_]+(?![\w:])")
RECORDED = re.compile(r"(?<![\w:])[a-z_]+:[a-z0-9_]+:[a-z0-9_]+(?![\w:])")
RECORD_LINE = re.compile(r"^\s*-?\s*record:\s*(\S+)\s*$", re.M)

CONFIG = """
system { workers 1 }
admin { listen "127.0.0.1:%(admin)d" }
listeners { listener "public" { listen "127.0.0.1:%(port)d" } }
routes { route "api" { upstream "api" } }
upstreams { upstream "api" { endpoint "127.0.0.1:%(closed)d" } }
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape_sentinel(binary):
    ports = {"admin": free_port(), "port": free_port(), "closed": free_port()}
    with tempfile.TemporaryDirectory(prefix="sentinel-metric-names-") as tmp:
        path = os.path.join(tmp, "sentinel.kdl")
        with open(path, "w") as f:
            f.write(CONFIG % ports)
        log = open(os.path.join(tmp, "sentinel.log"), "wb")
        proc = subprocess.Popen([binary, "run", "-c", path], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=tmp)
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    url = "http://127.0.0.1:%d/metrics" % ports["admin"]
                    with urllib.request.urlopen(url, timeout=2) as r:
                        return r.read().decode()
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log.flush()
                        with open(os.path.join(tmp, "sentinel.log")) as f:
                            sys.exit("sentinel did not serve /metrics:\n" + f.read()[-2000:])
                    time.sleep(0.05)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()


def families(text):
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def base_name(name, exposed):
    if name in exposed:
        return name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in exposed:
            return name[: -len(suffix)]
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--sentinel", help="sentinel binary to start and scrape")
    src.add_argument("--metrics-file", help="a saved /metrics answer")
    ap.add_argument("--rules", required=True, help="Prometheus rules file (recording-rule names)")
    ap.add_argument("dashboards", nargs="+")
    args = ap.parse_args()

    if args.sentinel:
        text = scrape_sentinel(os.path.abspath(args.sentinel))
    else:
        with open(args.metrics_file) as f:
            text = f.read()
    exposed = families(text)
    if len(exposed) < 10:
        sys.exit("the metrics dump lists only %d families: not a Sentinel /metrics answer?" % len(exposed))
    with open(args.rules) as f:
        rules_text = f.read()
    recorded = set(RECORD_LINE.findall(rules_text))

    problems, used = [], set()
    for path in [args.rules] + args.dashboards:
        with open(path) as f:
            text_of_file = f.read()
        if path.endswith(".json"):
            try:
                doc = json.loads(text_of_file)
            except ValueError as e:
                problems.append("%s: not valid JSON: %s" % (path, e))
                continue
            names = [v.get("name") for v in doc.get("templating", {}).get("list", [])]
            if "datasource" not in names:
                problems.append("%s: no datasource variable" % path)
            for name in sorted(set(RECORDED.findall(text_of_file))):
                if name not in recorded:
                    problems.append("%s: recording rule %s is not in %s" % (path, name, args.rules))
        for name in sorted(set(METRIC.findall(text_of_file))):
            base = base_name(name, exposed)
            used.add(base)
            if base not in exposed:
                problems.append("%s: %s is not exposed by Sentinel" % (path, name))

    print("%d families exposed, %d referenced, %d recording rules" % (len(exposed), len(used), len(recorded)))
    for p in problems:
        print("PROBLEM: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
