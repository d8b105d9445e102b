"""Config reload: SIGHUP and admin `POST /reload` switch routes, upstreams and listeners
live; a broken file or a restart-only change (system.workers) is refused and the old config
keeps serving; reload outcomes are counted in /metrics."""

import signal
import unittest

from harness import (IntegrationTest, KeepAliveClient, can_connect, connection_refused,
                     free_port, http_request, metric_series, metric_value, render, wait_until)

TEMPLATE = r"""
system { workers @workers@ }
admin { listen "127.0.0.1:@admin@" }
listeners {
    listener "main" { listen "127.0.0.1:@port@" }
@extra_listener@
}
routes {
    route "probe" { match { path "/probe" }; respond 200 { body "@name@" } }
    route "only-@name@" { match { path "/only-@name@" }; respond 200 { body "@name@ only" } }
    route "app" { match { path-prefix "/demo/" }; upstream "app" }
}
upstreams { upstream "app" { endpoint "@upstream@" } }
"""

# Line 4 has a node the schema does not know.
BROKEN = """\
listeners {
    listener "main" { listen "127.0.0.1:@port@" }
}
bogus-section { whatever 1 }
"""


def success_count(s):
    return metric_value(s.metrics(), "sentinel_config_reloads_total", result="success")


def failure_count(s):
    return metric_value(s.metrics(), "sentinel_config_reloads_total", result="failure")


def config_hash(s):
    series = metric_series(s.metrics(), "sentinel_config_info")
    hashes = [dict(ls).get("hash") for ls, v in series.items() if v == 1]
    return hashes[0] if len(hashes) == 1 else None


class ReloadTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.a = self.start_origin("a")
        self.b = self.start_origin("b")
        self.port = free_port()
        self.admin = free_port()
        self.port2 = free_port()
        self.s = self.start_sentinel(self.config("A"), port=self.port, admin_port=self.admin,
                                     ready_path="/probe")

    def config(self, name, upstream=None, workers=2, second_listener=False):
        extra = ('    listener "second" { listen "127.0.0.1:%d" }' % self.port2
                 if second_listener else "")
        return render(TEMPLATE, name=name, workers=workers, admin=self.admin, port=self.port,
                      extra_listener=extra, upstream=(upstream or self.a).address)

    def probe(self, port=None):
        return http_request(port or self.port, "GET", "/probe").body.decode()

    def wait_probe(self, expected, port=None):
        wait_until(lambda: self.probe(port) == expected, 5,
                   what="/probe to answer %r after the reload" % expected)

    # -- SIGHUP -------------------------------------------------------------------------------

    def test_sighup_switches_routes(self):
        self.assertEqual(self.probe(), "A")
        self.assertEqual(http_request(self.port, "GET", "/only-A").status, 200)
        ok_before = success_count(self.s)
        self.s.write_config(self.config("B"))
        self.s.reload_sighup()
        self.wait_probe("B")
        r = http_request(self.port, "GET", "/only-B")
        self.assertEqual((r.status, r.body), (200, b"B only"))
        self.assertEqual(http_request(self.port, "GET", "/only-A").status, 404)
        wait_until(lambda: success_count(self.s) == ok_before + 1, 5,
                   what="sentinel_config_reloads_total{result=\"success\"} to count the reload")

    def test_sighup_with_broken_config_keeps_old(self):
        fail_before = failure_count(self.s)
        hash_before = config_hash(self.s)
        broken = render(BROKEN, port=self.port)
        self.s.write_config(broken)
        self.s.reload_sighup()
        wait_until(lambda: failure_count(self.s) == fail_before + 1, 5,
                   what="the failed reload to be counted")
        self.assertEqual(self.probe(), "A")
        self.assertEqual(http_request(self.port, "GET", "/demo/still").status, 200)
        self.assertEqual(config_hash(self.s), hash_before)
        self.assertEqual(self.s.proc.poll(), None, "sentinel died on a broken reload")
        # validate reports where the problem is.
        path = self.write_file("broken.kdl", broken)
        p = self.run_sentinel_cli("validate", path)
        self.assertEqual(p.returncode, 1, p)
        self.assertRegex((p.stdout + p.stderr).decode(), r"broken\.kdl:4:\d+")

    # -- admin ----------------------------------------------------------------------------------

    def test_admin_reload_and_metrics(self):
        ok_before, fail_before = success_count(self.s), failure_count(self.s)
        hash_a = config_hash(self.s)
        self.assertTrue(hash_a, "no sentinel_config_info{hash=...} 1 series")

        self.s.write_config(self.config("B"))
        r = self.s.admin_post("/reload")
        self.assertTrue(200 <= r.status < 300, r)
        self.wait_probe("B")
        self.assertEqual(success_count(self.s), ok_before + 1)
        hash_b = config_hash(self.s)
        self.assertTrue(hash_b and hash_b != hash_a, (hash_a, hash_b))

        self.s.write_config(render(BROKEN, port=self.port))
        r = self.s.admin_post("/reload")
        self.assertFalse(200 <= r.status < 300, "broken reload answered %r" % r)
        self.assertEqual(failure_count(self.s), fail_before + 1)
        self.assertEqual(success_count(self.s), ok_before + 1)
        self.assertEqual(config_hash(self.s), hash_b)
        self.assertEqual(self.probe(), "B")

        self.s.write_config(self.config("C"))
        r = self.s.admin_post("/reload")
        self.assertTrue(200 <= r.status < 300, r)
        self.wait_probe("C")
        self.assertEqual(success_count(self.s), ok_before + 2)

    def test_admin_health_endpoints(self):
        self.assertEqual(self.s.admin_get("/healthz").status, 200)
        self.assertEqual(self.s.admin_get("/readyz").status, 200)
        m = self.s.metrics()
        for name in ("sentinel_config_reloads_total", "sentinel_config_info",
                     "sentinel_downstream_connections_active", "sentinel_http_requests_total"):
            self.assertTrue(any(n == name for n, _ in m), "/metrics lacks %s" % name)

    # -- upstreams and listeners ------------------------------------------------------------------

    def test_reload_switches_upstream(self):
        self.assertEqual(http_request(self.port, "GET", "/demo/x").header("X-Origin"), "a")
        self.s.write_config(self.config("B", upstream=self.b))
        self.assertTrue(200 <= self.s.admin_post("/reload").status < 300)
        wait_until(lambda: http_request(self.port, "GET", "/demo/x").header("X-Origin") == "b",
                   5, what="requests to go to the new upstream")

    def test_reload_adds_and_removes_listener(self):
        self.assertTrue(connection_refused(self.port2))
        self.s.write_config(self.config("B", second_listener=True))
        self.assertTrue(200 <= self.s.admin_post("/reload").status < 300)
        wait_until(lambda: can_connect(self.port2) and self.probe(self.port2) == "B", 5,
                   what="the added listener to answer")
        self.s.write_config(self.config("C", second_listener=False))
        self.assertTrue(200 <= self.s.admin_post("/reload").status < 300)
        wait_until(lambda: connection_refused(self.port2), 5,
                   what="the removed listener to stop accepting")
        self.assertEqual(self.probe(), "C")

    def test_reload_moves_listener_to_new_address(self):
        port3 = free_port()
        moved = self.config("M").replace('listen "127.0.0.1:%d"' % self.port,
                                          'listen "127.0.0.1:%d"' % port3)
        self.s.write_config(moved)
        r = self.s.admin_post("/reload")
        self.assertTrue(200 <= r.status < 300, r)
        wait_until(lambda: can_connect(port3) and self.probe(port3) == "M", 5,
                   what="the listener to answer on its new address")
        wait_until(lambda: connection_refused(self.port), 5,
                   what="the listener's old address to stop accepting")

    def test_requests_counted_in_metrics(self):
        before = metric_value(self.s.metrics(), "sentinel_http_requests_total")
        for i in range(10):
            self.assertEqual(http_request(self.port, "GET", "/demo/%d" % i).status, 200)
        wait_until(lambda: metric_value(self.s.metrics(), "sentinel_http_requests_total")
                   >= before + 10, 5, what="sentinel_http_requests_total to count 10 requests")

    def test_keepalive_connection_survives_reload(self):
        with KeepAliveClient(self.port) as c:
            self.assertEqual(c.request("GET", "/demo/1").status, 200)
            self.s.write_config(self.config("B", upstream=self.b))
            self.assertTrue(200 <= self.s.admin_post("/reload").status < 300)
            self.wait_probe("B")
            r = c.request("GET", "/demo/2")
            self.assertEqual(r.status, 200, r)

    def test_reload_changing_workers_needs_restart(self):
        fail_before = failure_count(self.s)
        self.s.write_config(self.config("W", workers=1))
        r = self.s.admin_post("/reload")
        self.assertFalse(200 <= r.status < 300, "a workers change was accepted live: %r" % r)
        self.assertEqual(failure_count(self.s), fail_before + 1)
        self.assertEqual(self.probe(), "A")
        out, err = self.s.output()
        text = r.body.decode(errors="replace") + out + err
        self.assertIn("needs restart: system.workers", text,
                      "reload answer: %r; log tail: %r" % (r.body, err[-1500:]))

    def test_reload_changing_workers_via_sighup_keeps_serving(self):
        fail_before = failure_count(self.s)
        self.s.write_config(self.config("W", workers=1))
        self.s.signal(signal.SIGHUP)
        wait_until(lambda: failure_count(self.s) == fail_before + 1, 5,
                   what="the refused reload to be counted")
        self.assertEqual(self.probe(), "A")
        out, err = self.s.output()
        self.assertIn("needs restart: system.workers", out + err)


if __name__ == "__main__":
    unittest.main()
