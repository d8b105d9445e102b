"""The admin server's view of upstreams: GET /upstreams (JSON) and the per-endpoint metric
families follow the live endpoint state — health, breaker, ejection, backups."""

import json
import unittest

from harness import IntegrationTest, closed_port, free_port, http_request, render, wait_until

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { match { path "/ready" }; respond 200 }
    route "dead" { match { path-prefix "/dead" }; upstream "dead" }
    route "all" { upstream "api" }
}
upstreams {
    upstream "api" {
        endpoint "@a@" weight=3
        endpoint "@b@" backup=#true
        load-balancing "weighted-round-robin"
    }
    upstream "dead" {
        endpoint "127.0.0.1:@closed@"
        circuit-breaker { failures 2; open-for "1m" }
        backup-upstream "api"
    }
}
"""


class UpstreamStatusTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.a = self.start_origin("a")
        self.b = self.start_origin("b")
        self.port, self.admin = free_port(), free_port()
        self.s = self.start_sentinel(render(CONFIG, port=self.port, admin=self.admin, a=self.a.address,
                                            b=self.b.address, closed=closed_port()),
                                     port=self.port, admin_port=self.admin, ready_path="/ready")

    def upstreams(self):
        r = self.s.admin_get("/upstreams")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("Content-Type"), "application/json")
        return {u["id"]: u for u in json.loads(r.body)["upstreams"]}

    def test_upstreams_document(self):
        u = self.upstreams()
        self.assertEqual(sorted(u), ["api", "dead"])
        api = u["api"]
        self.assertEqual(api["load_balancing"], "weighted-round-robin")
        eps = {e["address"]: e for e in api["endpoints"]}
        self.assertEqual(eps[self.a.address]["weight"], 3)
        self.assertFalse(eps[self.a.address]["backup"])
        self.assertTrue(eps[self.b.address]["backup"])
        for e in eps.values():
            self.assertTrue(e["healthy"] and e["available"], e)
            self.assertEqual(e["breaker"], "closed")
        self.assertEqual(u["dead"]["backup_upstream"], "api")

    def test_breaker_opens_and_backup_upstream_serves(self):
        # Two connect failures open the breaker of the only "dead" endpoint; from then on its
        # requests go to the backup upstream "api" (origin a: b is a backup endpoint there).
        statuses = [http_request(self.port, "GET", "/dead/%d" % i).status for i in range(2)]
        self.assertEqual(statuses, [502, 502])
        r = http_request(self.port, "GET", "/dead/after")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Origin"), "a")
        dead = self.upstreams()["dead"]["endpoints"][0]
        self.assertEqual(dead["breaker"], "open")
        self.assertFalse(dead["available"])
        m = self.s.metrics()
        key = ("sentinel_upstream_endpoint_breaker_state",
               frozenset({"upstream": "dead", "endpoint": dead["address"], "state": "open"}.items()))
        self.assertEqual(m.get(key), 1.0)
        key = ("sentinel_upstream_endpoint_available",
               frozenset({"upstream": "dead", "endpoint": dead["address"]}.items()))
        self.assertEqual(m.get(key), 0.0)

    def test_families_present_and_in_flight_counts(self):
        m = self.s.metrics()
        names = {name for name, _ in m}
        for family in ("sentinel_upstream_endpoint_healthy", "sentinel_upstream_endpoint_ejected",
                       "sentinel_upstream_endpoint_in_flight_requests",
                       "sentinel_upstream_endpoint_latency_ewma_seconds",
                       "sentinel_upstream_in_flight_requests", "sentinel_upstream_open_connections"):
            self.assertIn(family, names)
        # A request in flight shows up, then goes away.
        import threading
        t = threading.Thread(target=lambda: http_request(self.port, "GET", "/slow?delay=1", timeout=10))
        t.start()
        self.addCleanup(t.join)
        wait_until(lambda: self.upstreams()["api"]["in_flight"] == 1, 5, what="request in flight")
        t.join()
        wait_until(lambda: self.upstreams()["api"]["in_flight"] == 0, 5, what="request finished")
        a = {e["address"]: e for e in self.upstreams()["api"]["endpoints"]}[self.a.address]
        self.assertGreater(a["latency_ewma_ms"], 500, a)  # the 1 s answer is the peak
        # Its connection went back to the pool; the 100 ms sweep publishes the idle count.
        wait_until(lambda: self.s.metric("sentinel_upstream_pool_idle_connections") >= 1, 5,
                   what="the idle pooled connection counted")


if __name__ == "__main__":
    unittest.main()
