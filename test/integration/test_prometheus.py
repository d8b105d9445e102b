"""End to end with a real Prometheus: it scrapes Sentinel's admin /metrics every second with
deploy/prometheus/sentinel-rules.yml loaded, and the recording rules (per-route request rate,
per-upstream error ratio) produce series with the expected labels from live traffic. Needs
the `prometheus` binary (Debian package prometheus, scripts/install-deps)."""

import json
import os
import shutil
import subprocess
import threading
import unittest
import urllib.parse
import urllib.request

from harness import (REPO, IntegrationTest, closed_port, free_port, http_request, render, spawn,
                     wait_until)

RULES = os.path.join(REPO, "deploy", "prometheus", "sentinel-rules.yml")

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { match { path "/ready" }; respond 200 }
    route "api" { match { path-prefix "/api" }; upstream "api" }
    route "dead" { match { path-prefix "/dead" }; upstream "dead" }
}
upstreams {
    upstream "api" { endpoint "@origin@" }
    upstream "dead" { endpoint "127.0.0.1:@closed@" }
}
"""

PROMETHEUS_CONFIG = """
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %(rules)s
scrape_configs:
  - job_name: sentinel
    static_configs:
      - targets: ['127.0.0.1:%(admin)d']
"""


class PrometheusTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.prometheus = shutil.which("prometheus")
        if not self.prometheus:
            self.fail("prometheus not found: run scripts/install-deps (package prometheus)")
        origin = self.start_origin("api")
        self.port, self.admin, self.web = free_port(), free_port(), free_port()
        self.s = self.start_sentinel(render(CONFIG, port=self.port, admin=self.admin, origin=origin.address,
                                            closed=closed_port()),
                                     port=self.port, admin_port=self.admin, ready_path="/ready")
        config = os.path.join(self.workdir, "prometheus.yml")
        with open(config, "w") as f:
            f.write(PROMETHEUS_CONFIG % {"rules": RULES, "admin": self.admin})
        self.prom_log = open(os.path.join(self.workdir, "prometheus.log"), "wb")
        self.addCleanup(self.prom_log.close)
        self.proc = spawn([self.prometheus, "--config.file=" + config,
                           "--storage.tsdb.path=" + os.path.join(self.workdir, "tsdb"),
                           "--web.listen-address=127.0.0.1:%d" % self.web, "--web.enable-lifecycle"],
                          stdout=self.prom_log, stderr=subprocess.STDOUT, cwd=self.workdir)
        self.addCleanup(self.stop_prometheus)
        wait_until(lambda: self.get("/-/ready", raw=True), 60, interval=0.2, what="prometheus ready")

    def stop_prometheus(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def log_tail(self):
        self.prom_log.flush()
        with open(os.path.join(self.workdir, "prometheus.log"), "rb") as f:
            return f.read().decode(errors="replace")[-3000:]

    def get(self, path, raw=False):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited with %s:\n%s" % (self.proc.returncode, self.log_tail()))
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.web, path), timeout=5) as r:
            body = r.read()
        return r.status == 200 if raw else json.loads(body)

    def query(self, expr):
        doc = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        self.assertEqual(doc["status"], "success", doc)
        return doc["data"]["result"]

    def test_recording_rules_from_live_traffic(self):
        stop = threading.Event()
        sent = {"ok": 0, "404": 0, "502": 0}

        def load():
            # A few hundred requests spread over the scrapes: some 404 (unrouted), some 502.
            i = 0
            while not stop.is_set() and i < 2000:
                i += 1
                if i % 10 == 0:
                    key, path, want = "502", "/dead/x", 502
                elif i % 7 == 0:
                    key, path, want = "404", "/nowhere", 404
                else:
                    key, path, want = "ok", "/api/item", 200
                if http_request(self.port, "GET", path).status == want:
                    sent[key] += 1
                stop.wait(0.01)

        t = threading.Thread(target=load, daemon=True)
        t.start()
        try:
            # The target is scraped and healthy.
            def target_up():
                r = self.query('up{job="sentinel"}')
                return r and r[0]["value"][1] == "1"
            wait_until(target_up, 60, interval=0.5, what="prometheus scraping sentinel")

            # A recording rule over the new per-route family, with the route label.
            def route_rate():
                r = self.query('route:sentinel_http_requests:rate5m{route="api"}')
                return r if r and float(r[0]["value"][1]) > 0 else None
            r = wait_until(route_rate, 90, interval=0.5, what="route:sentinel_http_requests:rate5m{route=\"api\"}")
            self.assertEqual(r[0]["metric"]["route"], "api")
            self.assertEqual(r[0]["metric"]["job"], "sentinel")

            def upstream_errors():
                r = self.query('upstream:sentinel_upstream_errors:ratio_rate5m{upstream="dead"}')
                return r if r and float(r[0]["value"][1]) > 0 else None
            r = wait_until(upstream_errors, 60, interval=0.5, what="upstream error ratio of \"dead\"")
            self.assertAlmostEqual(float(r[0]["value"][1]), 1.0, places=3)

            def p99():
                r = self.query('route:sentinel_http_request_duration_seconds:p99_5m{route="api"}')
                return r if r and r[0]["value"][1] not in ("NaN", "0") else None
            wait_until(p99, 60, interval=0.5, what="p99 latency of route api")

            # The SLO rules are another group, evaluated on its own tick: it may not have run
            # on the samples that fed the group above yet, so wait for it too.
            r = wait_until(lambda: self.query('job:sentinel_slo_availability_errors:ratio_rate5m > 0'), 60,
                           interval=0.5, what="availability error ratio above 0")
            self.assertEqual(r[0]["metric"]["job"], "sentinel")
        finally:
            stop.set()
            t.join(30)
        self.assertGreater(sent["ok"], 50)
        self.assertGreater(sent["404"], 5)
        self.assertGreater(sent["502"], 5)

        # Every rule evaluates without error against real Sentinel series.
        groups = self.get("/api/v1/rules")["data"]["groups"]
        self.assertEqual(len(groups), 4)
        bad = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"]
               if r.get("health") not in ("ok", "unknown")]
        self.assertEqual(bad, [])


if __name__ == "__main__":
    unittest.main()
