"""GET /metrics: the labelled families (per listener, route, method, status class and
upstream) move with traffic on two listeners and two routes, keep their totals across a
reload that reorders the config, and the exposition stays well-formed with every family
announced (HELP and TYPE) even at zero."""

import os
import re
import unittest

from harness import (IntegrationTest, KeepAliveClient, closed_port, free_port, http_request,
                     metric_value, parse_metrics, render, wait_until)

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners {
    listener "front" { listen "127.0.0.1:@front@" }
    listener "back" { listen "127.0.0.1:@back@" }
}
routes {
    route "fixed" { match { path "/fixed" }; respond 200 { body "fixed\n" } }
    route "api" { match { path-prefix "/api" }; upstream "api" }
    route "dead" { match { path-prefix "/dead" }; upstream "dead" }
}
upstreams {
    upstream "api" { endpoint "@origin@" }
    upstream "dead" { endpoint "127.0.0.1:@closed@" }
}
"""

# The same ids in another order, so snapshot indices change while ids do not.
RELOADED = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners {
    listener "back" { listen "127.0.0.1:@back@" }
    listener "front" { listen "127.0.0.1:@front@" }
}
routes {
    route "dead" { match { path-prefix "/dead" }; upstream "dead" }
    route "api" { match { path-prefix "/api" }; upstream "api" }
    route "fixed" { match { path "/fixed" }; respond 200 { body "fixed\n" } }
}
upstreams {
    upstream "dead" { endpoint "127.0.0.1:@closed@" }
    upstream "api" { endpoint "@origin@" }
}
"""

NAME = re.compile(r"^sentinel_[a-z0-9_]+$")


class MetricsTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.origin = self.start_origin("api")
        self.values = dict(admin=free_port(), front=free_port(), back=free_port(),
                           origin=self.origin.address, closed=closed_port())
        self.s = self.start_sentinel(render(CONFIG, **self.values), port=self.values["front"],
                                     admin_port=self.values["admin"], ready_path="/fixed")
        self.front, self.back = self.values["front"], self.values["back"]
        self.base = self.quiet_metrics()  # after the readiness probes are counted
        self.rounds = 0

    def quiet_metrics(self):
        """A scrape once two in a row count the same requests: the readiness probes (how many
        depends on timing) are recorded a moment after their responses were read."""
        last = []

        def same_as_last():
            m = self.s.metrics()
            total = metric_value(m, "sentinel_http_requests_total")
            quiet = bool(last) and last[-1] == total
            last.append(total)
            return m if quiet else None
        return wait_until(same_as_last, 5, interval=0.05, what="the request count to settle")

    def delta(self, m, name, **labels):
        return metric_value(m, name, **labels) - metric_value(self.base, name, **labels)

    def raw(self):
        r = self.s.admin_get("/metrics")
        self.assertEqual(r.status, 200)
        self.assertTrue(r.header("Content-Type", "").startswith("text/plain; version=0.0.4"), r)
        return r.body.decode()

    REQUESTS_PER_ROUND = 12

    def traffic(self):
        for _ in range(3):
            self.assertEqual(http_request(self.front, "GET", "/fixed").status, 200)
        for i in range(4):
            self.assertEqual(http_request(self.back, "GET", "/api/item/%d" % i).status, 200)
        for _ in range(2):
            self.assertEqual(http_request(self.back, "POST", "/api/post", body=b"x" * 100,
                                          headers=[("Content-Length", "100")]).status, 200)
        self.assertEqual(http_request(self.front, "GET", "/nowhere").status, 404)
        self.assertEqual(http_request(self.front, "BREW", "/fixed").status, 200)
        self.assertEqual(http_request(self.back, "GET", "/dead/x").status, 502)
        self.rounds += 1
        return self.settle()

    def settle(self):
        """A request is counted after its response is written, so the client can read the
        response before the worker has recorded it: wait until every request of every
        traffic() round is counted (and return the scrape taken after that)."""
        wait_until(lambda: self.delta(self.s.metrics(), "sentinel_http_requests_total")
                   == self.REQUESTS_PER_ROUND * self.rounds, 5,
                   what="%d rounds of traffic to be counted" % self.rounds)
        return self.s.metrics()

    def test_exposition_well_formed_and_family_count(self):
        text = self.raw()
        helps, types = {}, {}
        for line in text.splitlines():
            if line.startswith("# HELP "):
                name = line.split()[2]
                self.assertNotIn(name, helps, "duplicate HELP " + name)
                helps[name] = line
            elif line.startswith("# TYPE "):
                _, _, name, kind = line.split()
                self.assertNotIn(name, types, "duplicate TYPE " + name)
                self.assertIn(name, helps, "TYPE without HELP " + name)
                types[name] = kind
            else:
                self.assertTrue(line and not line.startswith("#"), repr(line))
                # name{labels} value: no timestamp after the value
                self.assertRegex(line, r'^[a-z_0-9]+(\{.*\})? \S+$')
        self.assertEqual(set(helps), set(types))
        for name, kind in types.items():
            self.assertRegex(name, NAME)
            if kind == "counter":
                self.assertTrue(name.endswith("_total"), name)
        count = len(types)
        print("\nsentinel_* metric families: %d" % count)
        out = os.environ.get("SENTINEL_METRIC_FAMILIES_OUT")
        if out:
            with open(out, "w") as f:
                f.write("\n".join(sorted(types)) + "\n")
        self.assertGreaterEqual(count, 60, sorted(types))
        # Labelled families exist before any traffic: every configured id at zero.
        m = parse_metrics(text)
        for listener in ("front", "back"):
            self.assertIn(("sentinel_http_request_bytes_total", frozenset({"listener": listener}.items())), m)
        for upstream in ("api", "dead"):
            key = ("sentinel_upstream_connect_duration_seconds_count", frozenset({"upstream": upstream}.items()))
            self.assertEqual(m.get(key), 0.0)
        for route in ("api", "dead", ""):
            key = ("sentinel_http_request_duration_seconds_count", frozenset({"route": route}.items()))
            self.assertEqual(m.get(key), 0.0, route)

    def test_families_move_per_listener_route_and_upstream(self):
        m = self.traffic()
        self.assertEqual(self.delta(m, "sentinel_http_requests_total", listener="front", route="fixed", method="GET", status_class="2xx"), 3)
        self.assertEqual(self.delta(m, "sentinel_http_requests_total", listener="front", route="fixed", method="other", status_class="2xx"), 1)
        self.assertEqual(self.delta(m, "sentinel_http_requests_total", listener="back", route="api", method="GET", status_class="2xx"), 4)
        self.assertEqual(self.delta(m, "sentinel_http_requests_total", listener="back", route="api", method="POST", status_class="2xx"), 2)
        self.assertEqual(self.delta(m, "sentinel_http_requests_total", listener="front", route="", status_class="4xx"), 1)
        self.assertEqual(self.delta(m, "sentinel_http_requests_total", listener="back", route="dead", status_class="5xx"), 1)
        self.assertEqual(self.delta(m, "sentinel_http_requests_total", listener="back", route="fixed"), 0)
        # Raw paths never become label values.
        self.assertFalse(any("/api/item" in v for (_, ls) in m for _, v in ls))

        self.assertEqual(metric_value(m, "sentinel_http_request_duration_seconds_count", route="api"), 6)
        self.assertEqual(self.delta(m, "sentinel_http_request_duration_seconds_count", route="fixed"), 4)
        self.assertEqual(metric_value(m, "sentinel_http_request_duration_seconds_bucket", route="api", le="+Inf"), 6)
        self.assertGreater(metric_value(m, "sentinel_http_request_duration_seconds_sum", route="api"), 0)

        self.assertGreater(metric_value(m, "sentinel_http_request_bytes_total", listener="back"), 200 + 6 * 20)
        self.assertGreater(metric_value(m, "sentinel_http_response_bytes_total", listener="front"), 4 * 40)
        self.assertGreater(metric_value(m, "sentinel_http_response_bytes_total", listener="back"), 6 * 40)

        self.assertEqual(metric_value(m, "sentinel_upstream_response_header_duration_seconds_count", upstream="api"), 6)
        self.assertEqual(metric_value(m, "sentinel_upstream_request_duration_seconds_count", upstream="api"), 6)
        connects = metric_value(m, "sentinel_upstream_connect_duration_seconds_count", upstream="api")
        self.assertGreaterEqual(connects, 1)
        self.assertLessEqual(connects, 6)
        self.assertEqual(metric_value(m, "sentinel_upstream_responses_total", upstream="api", status_class="2xx"), 6)
        self.assertEqual(metric_value(m, "sentinel_upstream_try_failures_total", upstream="dead",
                                      reason="connect_failure"), 1)
        self.assertEqual(metric_value(m, "sentinel_upstream_connect_duration_seconds_count", upstream="dead"), 0)

        # Connection gauges by listener and protocol.
        with KeepAliveClient(self.back) as c:
            self.assertEqual(c.request("GET", "/fixed").status, 200)
            wait_until(lambda: self.s.metric("sentinel_downstream_connections_active", listener="back",
                                             protocol="http") == 1, 5, what="one open connection on back")
            self.assertEqual(self.s.metric("sentinel_downstream_connections_active", listener="front"), 0)
            self.assertEqual(self.s.metric("sentinel_downstream_connections_active", protocol="https"), 0)
        wait_until(lambda: self.s.metric("sentinel_downstream_connections_active") == 0, 5,
                   what="connections_active back to 0")

    def test_totals_survive_a_reload_that_reorders_ids(self):
        before = self.traffic()
        self.s.write_config(render(RELOADED, **self.values))
        r = self.s.admin_post("/reload")
        self.assertEqual(r.status, 200, r)
        after = self.traffic()
        for labels in (dict(listener="front", route="fixed"), dict(listener="back", route="api"),
                       dict(listener="back", route="dead"), dict(listener="front", route="")):
            self.assertEqual(self.delta(after, "sentinel_http_requests_total", **labels),
                             2 * self.delta(before, "sentinel_http_requests_total", **labels), labels)
        for name, labels in (("sentinel_http_request_duration_seconds_count", dict(route="api")),
                             ("sentinel_upstream_request_duration_seconds_count", dict(upstream="api")),
                             ("sentinel_http_request_bytes_total", dict(listener="back"))):
            self.assertGreaterEqual(self.delta(after, name, **labels), 2 * self.delta(before, name, **labels) - 1,
                                    (name, labels))
        self.assertEqual(metric_value(after, "sentinel_routes"), 3)
        self.assertEqual(metric_value(after, "sentinel_config_reloads_total", result="success"), 1)


if __name__ == "__main__":
    unittest.main()
