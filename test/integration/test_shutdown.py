"""Graceful shutdown: SIGTERM lets in-flight requests finish, refuses new connections,
closes idle ones and exits 0 well before graceful-shutdown; a second SIGTERM exits at once."""

import signal
import threading
import time
import unittest

from harness import (IntegrationTest, KeepAliveClient, connection_refused, free_port,
                     http_request, render, wait_until)

CONFIG = r"""
system { workers 2; graceful-shutdown "10s" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "hello" { match { path "/hello" }; respond 200 { body "hi\n" } }
    route "all" { match { path-prefix "/" }; upstream "a" }
}
upstreams { upstream "a" { endpoint "@a@" } }
"""


class ShutdownTest(IntegrationTest):

    def setUp(self):
        super().setUp()
        self.a = self.start_origin("a")
        self.port = free_port()
        self.s = self.start_sentinel(render(CONFIG, port=self.port, a=self.a.address),
                                     port=self.port, ready_path="/hello")

    def start_slow(self, delay):
        result = {}

        def run():
            try:
                result["resp"] = http_request(self.port, "GET", "/slow?delay=%s" % delay,
                                              timeout=30)
            except Exception as e:  # noqa: BLE001 - reported by the test
                result["error"] = e
            result["done_at"] = time.monotonic()

        t = threading.Thread(target=run, daemon=True)
        t.start()
        wait_until(lambda: self.a.stats()["active_requests"] >= 1, 10,
                   what="the slow request to reach the origin")
        return t, result

    def test_sigterm_drains_in_flight_and_exits_0(self):
        t, result = self.start_slow(2)
        sigterm_at = time.monotonic()
        self.s.signal(signal.SIGTERM)
        wait_until(lambda: connection_refused(self.port), 2,
                   what="new connections to be refused after SIGTERM")
        self.assertNotIn("done_at", result, "in-flight request ended before its 2s delay")
        t.join(15)
        self.assertNotIn("error", result, "in-flight request failed during drain: %r"
                         % result.get("error"))
        r = result["resp"]
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"slow response after 2s\n")
        code = self.s.stop(timeout=12, expect_code=0, send_sigterm=False)
        self.assertEqual(code, 0)
        self.assertLess(time.monotonic() - sigterm_at, 9.0)

    def test_idle_connections_do_not_hold_shutdown(self):
        idle = KeepAliveClient(self.port)
        self.addCleanup(idle.close)
        self.assertEqual(idle.request("GET", "/hello").status, 200)
        t, result = self.start_slow(1)
        self.s.signal(signal.SIGTERM)
        t.join(15)
        self.assertIn("resp", result, "in-flight request failed during drain: %r" % result)
        self.assertEqual(result["resp"].status, 200, result["resp"])
        # The idle keep-alive connection must be closed by the drain, not waited out for
        # the whole 10s graceful-shutdown period.
        self.s.stop(timeout=12, expect_code=0, send_sigterm=False)
        self.assertLess(time.monotonic() - result["done_at"], 3.0,
                        "exit took %.1fs after the last in-flight request finished"
                        % (time.monotonic() - result["done_at"]))

    def test_in_flight_keepalive_response_says_close(self):
        # A keep-alive client must learn from the response that the connection ends, or it
        # would send its next request into a closing socket.
        c = KeepAliveClient(self.port)
        self.addCleanup(c.close)
        self.assertEqual(c.request("GET", "/demo/1").status, 200)
        result = {}
        t = threading.Thread(target=lambda: result.update(r=c.request("GET", "/slow?delay=1")),
                             daemon=True)
        t.start()
        wait_until(lambda: self.a.stats()["active_requests"] >= 1, 10,
                   what="the slow request to reach the origin")
        self.s.signal(signal.SIGTERM)
        t.join(15)
        self.assertIn("r", result, "in-flight keep-alive request failed during drain")
        self.assertEqual(result["r"].status, 200, result["r"])
        self.assertEqual((result["r"].header("connection") or "").lower(), "close", result["r"])
        self.assertEqual(c.reader.read_until_eof(5), b"")
        self.s.stop(timeout=12, expect_code=0, send_sigterm=False)

    def test_idle_server_exits_promptly(self):
        t0 = time.monotonic()
        self.s.stop(timeout=12, expect_code=0)
        self.assertLess(time.monotonic() - t0, 3.0)

    def test_second_sigterm_exits_at_once(self):
        t, result = self.start_slow(8)
        self.s.signal(signal.SIGTERM)
        wait_until(lambda: connection_refused(self.port), 2,
                   what="new connections to be refused after SIGTERM")
        t0 = time.monotonic()
        self.s.signal(signal.SIGTERM)
        try:
            self.s.stop(timeout=5, expect_code=None, send_sigterm=False)
        except AssertionError:
            self.fail("sentinel still running 5s after a second SIGTERM")
        self.assertLess(time.monotonic() - t0, 2.0)
        t.join(10)


if __name__ == "__main__":
    unittest.main()
