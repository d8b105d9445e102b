"""Reload under load: wrk drives a listener that exists in both configs while 50 reloads
alternate two configs (different routes, upstreams, and a second listener added/removed).
No request may fail, and each reload must take effect."""

import os
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

from harness import (IntegrationTest, KeepAliveClient, can_connect, connection_refused,
                     free_port, http_request, metric_value, render, spawn, wait_until)

WRK = "/usr/bin/wrk"
RELOADS = 50
PER_PHASE = 200  # load requests that must pass through each configuration

TEMPLATE = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners {
    listener "main" { listen "127.0.0.1:@port@" }
@extra_listener@
}
routes {
    route "probe" { match { path "/probe" }; respond 200 { body "@name@" } }
    route "load-@name@" { match { path-prefix "/demo/" }; upstream "@upstream_id@" }
}
upstreams { upstream "@upstream_id@" { endpoint "@upstream@" } }
"""


class PythonLoad:
    """Fallback load generator when wrk is missing: keep-alive clients in threads."""

    def __init__(self, port, path, connections=8):
        self.stop_event = threading.Event()
        self.ok = 0
        self.errors = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.run, args=(port, path), daemon=True)
                        for _ in range(connections)]
        for t in self.threads:
            t.start()

    def run(self, port, path):
        c = None
        while not self.stop_event.is_set():
            try:
                if c is None:
                    c = KeepAliveClient(port, timeout=5)
                r = c.request("GET", path)
                with self.lock:
                    if 200 <= r.status < 400:
                        self.ok += 1
                    else:
                        self.errors.append(r.status)
            except Exception as e:  # noqa: BLE001 - counted
                with self.lock:
                    self.errors.append(repr(e))
                if c:
                    c.close()
                c = None
        if c:
            c.close()

    def finish(self):
        self.stop_event.set()
        for t in self.threads:
            t.join(10)
        return self.ok, self.errors


class ReloadUnderLoadTest(IntegrationTest):

    def config(self, variant):
        x = variant == "X"
        extra = ('    listener "second" { listen "127.0.0.1:%d" }' % self.port2) if x else ""
        origin = self.a if x else self.b
        return render(TEMPLATE, name=variant, admin=self.admin, port=self.port,
                      extra_listener=extra, upstream_id="up-a" if x else "up-b",
                      upstream=origin.address)

    def test_fifty_reloads_under_load(self):
        self.a = self.start_origin("a")
        self.b = self.start_origin("b")
        self.port, self.port2, self.admin = free_port(), free_port(), free_port()
        s = self.start_sentinel(self.config("X"), port=self.port, admin_port=self.admin,
                                ready_path="/probe")
        ok_before = metric_value(s.metrics(), "sentinel_config_reloads_total", result="success")

        use_wrk = os.access(WRK, os.X_OK)
        if use_wrk:
            wrk_out = os.path.join(self.workdir, "wrk.out")
            with open(wrk_out, "wb") as out:
                wrk = spawn([WRK, "-t2", "-c8", "-d300s", "--timeout", "5s",
                             "http://127.0.0.1:%d/demo/load" % self.port],
                            stdout=out, stderr=subprocess.STDOUT)
            self.addCleanup(lambda: wrk.poll() is None and wrk.kill())
            # wrk is running once the origin sees its requests.
            wait_until(lambda: self.a.stats()["requests_total"] > 100, 10,
                       what="wrk traffic to reach the origin")
        else:
            load = PythonLoad(self.port, "/demo/load")

        t0 = time.monotonic()
        try:
            for i in range(RELOADS):
                variant = "Y" if i % 2 == 0 else "X"
                s.write_config(self.config(variant))
                r = s.admin_post("/reload")
                self.assertTrue(200 <= r.status < 300, "reload %d answered %r" % (i, r))
                expected_origin = "a" if variant == "X" else "b"
                wait_until(lambda: http_request(self.port, "GET", "/probe").body
                           == variant.encode(), 5,
                           what="reload %d (%s) to switch /probe" % (i, variant))
                wait_until(lambda: http_request(self.port, "GET", "/demo/check")
                           .header("X-Origin") == expected_origin, 5,
                           what="reload %d (%s) to switch the upstream" % (i, variant))
                # Let load flow through this configuration before the next reload, so every
                # switch happens under traffic and not in a lull.
                target = self.a if variant == "X" else self.b
                floor = target.stats()["requests_total"] + PER_PHASE
                wait_until(lambda: target.stats()["requests_total"] >= floor, 10,
                           what="reload %d: %d load requests through the new upstream"
                           % (i, PER_PHASE))
                if variant == "X":
                    wait_until(lambda: can_connect(self.port2) and
                               http_request(self.port2, "GET", "/probe").body == b"X", 5,
                               what="reload %d to open the second listener" % i)
                else:
                    wait_until(lambda: connection_refused(self.port2), 5,
                               what="reload %d to close the second listener" % i)
        finally:
            if use_wrk:
                if wrk.poll() is None:
                    wrk.send_signal(signal.SIGINT)
                wrk.wait(timeout=15)
        elapsed = time.monotonic() - t0

        self.assertEqual(metric_value(s.metrics(), "sentinel_config_reloads_total",
                                      result="success"), ok_before + RELOADS)
        if use_wrk:
            with open(wrk_out) as f:
                report = f.read()
            m = re.search(r"(\d+) requests in", report)
            self.assertTrue(m, "no wrk summary:\n%s" % report)
            requests = int(m.group(1))
            self.assertGreater(requests, RELOADS * PER_PHASE, report)
            sys.stderr.write("\nwrk during %d reloads: %s\n" % (RELOADS, m.group(0)))
            self.assertNotIn("Non-2xx or 3xx responses", report,
                             "requests failed during reloads:\n%s" % report)
            self.assertNotIn("Socket errors", report,
                             "connections failed during reloads:\n%s" % report)
        else:
            ok, errors = load.finish()
            self.assertGreater(ok, RELOADS * PER_PHASE)
            self.assertEqual(errors[:10], [], "%d failed requests during reloads" % len(errors))
        # Both upstreams served load traffic.
        self.assertGreater(self.a.stats()["requests_total"], 100)
        self.assertGreater(self.b.stats()["requests_total"], 100)
        s.stop(expect_code=0)
        self.assertLess(elapsed, 150, "%d reloads took %.1fs" % (RELOADS, elapsed))


if __name__ == "__main__":
    unittest.main()
