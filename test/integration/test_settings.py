"""Settings that have no other home in the suite, each shown to change behaviour (a key that
is accepted but ignored is the bug class we exist to prevent): admin bearer-token, upstream
pool max-idle and idle-timeout, graceful-shutdown, workers."""

import signal
import socket
import time
import unittest

from harness import (IntegrationTest, KeepAliveClient, connect, free_port, http_request,
                     render, wait_until)

POOL_CONFIG = r"""
system { workers 1 }
listeners { listener "p" { listen "127.0.0.1:@port@" } }
routes { route "all" { match { path-prefix "/" }; upstream "a" } }
upstreams { upstream "a" { endpoint "@a@"; pool { max-idle @max_idle@; idle-timeout "@idle@" } } }
"""


class SettingsTest(IntegrationTest):

    def sentinel(self, text, port, **kw):
        return self.start_sentinel(text, port=port, ready_path="/healthz", **kw)

    def test_bearer_token_guards_admin(self):
        port, admin = free_port(), free_port()
        config = render(r"""
listeners { listener "p" { listen "127.0.0.1:@port@" } }
admin { listen "127.0.0.1:@admin@"; bearer-token "s3cret" }
routes { route "r" { match { path-prefix "/" }; respond 200 { body "ok\n" } } }
""", port=port, admin=admin)
        self.sentinel(config, port)
        def get(headers):
            return http_request(admin, "GET", "/metrics", host="127.0.0.1", headers=headers)
        self.assertEqual(get([]).status, 401)
        self.assertEqual(get([("Authorization", "Bearer wrong")]).status, 401)
        self.assertEqual(get([("Authorization", "Bearer s3cret")]).status, 200)
        post = http_request(admin, "POST", "/reload", host="127.0.0.1",
                            headers=[("Content-Length", "0")])
        self.assertEqual(post.status, 401, "an unauthenticated reload was accepted")

    def pool_run(self, max_idle, idle):
        origin = self.start_origin("a")
        port = free_port()
        self.sentinel(render(POOL_CONFIG, port=port, a=origin.address, max_idle=max_idle,
                             idle=idle), port)
        origin.reset_stats()
        return origin, port

    def test_max_idle_zero_disables_reuse(self):
        origin, port = self.pool_run(0, "60s")
        with KeepAliveClient(port) as c:
            for _ in range(20):
                self.assertEqual(c.request("GET", "/demo/x").status, 200)
        self.assertEqual(origin.stats()["connections_used"], 20)

    def test_max_idle_keeps_connections(self):
        origin, port = self.pool_run(8, "60s")
        with KeepAliveClient(port) as c:
            for _ in range(20):
                self.assertEqual(c.request("GET", "/demo/x").status, 200)
        self.assertEqual(origin.stats()["connections_used"], 1)

    def test_idle_timeout_closes_pooled_connections(self):
        origin, port = self.pool_run(8, "300ms")
        self.assertEqual(http_request(port, "GET", "/demo/x").status, 200)
        # The pooled connection is closed by Sentinel once idle past 300 ms (the origin sees
        # it close); the next request needs a new one.
        wait_until(lambda: origin.stats()["connections_open"] == 0, 10, interval=0.05,
                   what="the idle upstream connection to be closed")
        self.assertEqual(http_request(port, "GET", "/demo/x").status, 200)
        self.assertEqual(origin.stats()["connections_used"], 2)

    def test_graceful_shutdown_bounds_the_drain(self):
        origin = self.start_origin("a")
        port = free_port()
        config = render(r"""
system { workers 1; graceful-shutdown "1s" }
listeners { listener "p" { listen "127.0.0.1:@port@" } }
routes { route "all" { match { path-prefix "/" }; upstream "a" } }
upstreams { upstream "a" { endpoint "@a@" } }
""", port=port, a=origin.address)
        s = self.sentinel(config, port)
        slow = connect(port, timeout=15)
        self.addCleanup(slow.close)
        slow.sendall(b"GET /slow?delay=8 HTTP/1.1\r\nHost: t\r\n\r\n")
        wait_until(lambda: origin.stats()["active_requests"] == 1, 10, what="the slow request")
        start = time.monotonic()
        s.signal(signal.SIGTERM)
        code = s.stop(timeout=6, expect_code=None, send_sigterm=False)
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 5, "graceful-shutdown \"1s\" did not bound the drain")
        self.assertGreaterEqual(elapsed, 0.9, "the in-flight request was not given its grace")
        self.assertEqual(code, 0)

    def test_upstream_connect_timeout_504(self):
        # An endpoint whose accept queue is full: the kernel drops our SYNs, so the connect
        # neither succeeds nor fails until upstream-connect gives up (504, counted).
        blackhole = socket.socket()
        self.addCleanup(blackhole.close)
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(0)
        fillers = []
        for _ in range(8):  # fill the (tiny) backlog; later SYNs go unanswered
            f = socket.socket()
            f.setblocking(False)
            f.connect_ex(blackhole.getsockname())
            fillers.append(f)
            self.addCleanup(f.close)
        port, admin = free_port(), free_port()
        config = render(r"""
system { workers 1 }
listeners { listener "p" { listen "127.0.0.1:@port@" } }
admin { listen "127.0.0.1:@admin@" }
timeouts { upstream-connect "300ms" }
routes {
    route "ok" { match { path "/healthz" }; respond 200 { body "ok\n" } }
    route "all" { match { path-prefix "/" }; upstream "hole" }
}
upstreams { upstream "hole" { endpoint "127.0.0.1:@hole@" } }
""", port=port, admin=admin, hole=blackhole.getsockname()[1])
        s = self.sentinel(config, port, admin_port=admin)
        t0 = time.monotonic()
        r = http_request(port, "GET", "/x", timeout=10)
        elapsed = time.monotonic() - t0
        self.assertLocalReply(r, 504)
        self.assertGreaterEqual(elapsed, 0.29)
        self.assertLess(elapsed, 2.0)
        self.assertEqual(s.metric("sentinel_timeouts_total", kind="upstream_connect"), 1)
        self.assertEqual(s.metric("sentinel_local_replies_total", reason="upstream_connect_timeout"), 1)

    def test_workers_setting(self):
        port, admin = free_port(), free_port()
        config = render(r"""
system { workers 3 }
listeners { listener "p" { listen "127.0.0.1:@port@" } }
admin { listen "127.0.0.1:@admin@" }
routes { route "r" { match { path-prefix "/" }; respond 200 { body "ok\n" } } }
""", port=port, admin=admin)
        s = self.sentinel(config, port, admin_port=admin)
        self.assertEqual(s.metric("sentinel_workers"), 3)


if __name__ == "__main__":
    unittest.main()
