"""Admin endpoints beyond metrics: GET /config shows the active config with secrets redacted,
POST /drain fails readiness and stops keeping connections alive while traffic is still
served, and admin paths are never reachable from a traffic listener."""

import os
import unittest

from harness import (IntegrationTest, KeepAliveClient, free_port, http_request, metric_value, parse_metrics,
                     render, wait_until)

CONFIG = r"""
admin { listen "127.0.0.1:@admin@"; bearer-token "${SENTINEL_TEST_ADMIN_TOKEN}" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { match { path "/ready" }; respond 200 { body "ready\n" } }
    route "all" { upstream "api" }
}
upstreams { upstream "api" { endpoint "@origin@" } }
"""

TOKEN = "t0ken-never-shown"


class AdminTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        os.environ["SENTINEL_TEST_ADMIN_TOKEN"] = TOKEN
        self.addCleanup(os.environ.pop, "SENTINEL_TEST_ADMIN_TOKEN", None)
        self.origin = self.start_origin("a")
        self.port, self.admin = free_port(), free_port()
        self.s = self.start_sentinel(render(CONFIG, port=self.port, admin=self.admin,
                                            origin=self.origin.address),
                                     port=self.port, ready_path="/ready")  # admin needs the token

    def call_admin(self, method, path):
        return http_request(self.admin, method, path, host="127.0.0.1",
                            headers=[("Authorization", "Bearer " + TOKEN), ("Content-Length", "0")])

    def test_config_is_redacted(self):
        r = self.call_admin("GET", "/config")
        self.assertEqual(r.status, 200, r)
        body = r.body.decode()
        self.assertIn("upstream api", body)
        self.assertIn(self.origin.address, body)
        self.assertNotIn(TOKEN, body)
        self.assertIn("<redacted>", body)
        self.assertIn("config hash", body)
        self.assertEqual(http_request(self.admin, "GET", "/config", host="127.0.0.1").status, 401)

    def test_drain(self):
        self.assertEqual(self.call_admin("GET", "/readyz").status, 200)
        with KeepAliveClient(self.port) as c:
            self.assertEqual(c.request("GET", "/x").status, 200)
            self.assertEqual(self.call_admin("GET", "/drain").status, 405)
            r = self.call_admin("POST", "/drain")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(self.call_admin("GET", "/readyz").status, 503)
            # The idle keep-alive connection is closed; new requests are still served, each
            # on a connection that closes after the response.
            def active():
                m = parse_metrics(self.call_admin("GET", "/metrics").body.decode())
                return metric_value(m, "sentinel_downstream_connections_active")
            wait_until(lambda: active() == 0, 5, what="the idle connection closed")
        r = http_request(self.port, "GET", "/y")
        self.assertEqual(r.status, 200, r)
        self.assertEqual((r.header("Connection") or "").lower(), "close")

    def test_admin_paths_not_on_traffic_listener(self):
        for path in ("/metrics", "/config", "/upstreams", "/readyz"):
            r = http_request(self.port, "GET", path)
            self.assertEqual(r.header("X-Origin"), "a", "%s answered by Sentinel itself" % path)


if __name__ == "__main__":
    unittest.main()
