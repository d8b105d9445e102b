"""Upstream trouble: slow origin → 504 at upstream-response-header, origin down → 502,
origin statuses passed through, and a client that vanishes mid-upload makes Sentinel drop
the upstream connection (the origin counts an aborted upload)."""

import time
import unittest

from harness import (IntegrationTest, ResponseReader, closed_port, connect, free_port,
                     http_request, render, request_bytes, wait_until)

CONFIG = r"""
system { workers 2 }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
limits { max-body "100MiB" }
timeouts { upstream-response-header "500ms"; upstream-connect "1s"; upstream-body-idle "500ms" }
routes {
    route "hello" { match { path "/hello" }; respond 200 { body "hi\n" } }
    route "down" { match { path-prefix "/down" }; upstream "down" }
    route "all" { match { path-prefix "/" }; upstream "a" }
}
upstreams {
    upstream "a" { endpoint "@a@" }
    upstream "down" { endpoint "127.0.0.1:@closed@" }
}
"""


class UpstreamFailuresTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.class_origin("a")
        cls.port = free_port()
        cls.s = cls.class_sentinel(render(CONFIG, port=cls.port, a=cls.a.address,
                                          closed=closed_port()), port=cls.port,
                                   ready_path="/hello")

    def test_slow_upstream_504(self):
        t0 = time.monotonic()
        r = http_request(self.port, "GET", "/slow?delay=3", timeout=10)
        elapsed = time.monotonic() - t0
        self.assertLocalReply(r, 504)
        self.assertGreaterEqual(elapsed, 0.4, "504 after %.2fs, before the 500ms timeout" % elapsed)
        self.assertLess(elapsed, 2.5, "504 after %.2fs (upstream-response-header 500ms)" % elapsed)

    def test_fast_enough_upstream_200(self):
        r = http_request(self.port, "GET", "/slow?delay=0.1", timeout=10)
        self.assertEqual(r.status, 200, r)

    def test_upstream_body_idle_aborts_response(self):
        # The head and 1000 bytes arrive, then the origin stalls for 5s: Sentinel must give
        # up after upstream-body-idle and close the client connection (the status is gone,
        # so closing early is the only way to say the body is incomplete).
        s = connect(self.port, timeout=10)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendall(request_bytes("GET", "/stall?after=1000&delay=5", "a"))
        reader = ResponseReader(s, 10)
        with self.assertRaises((ConnectionError, OSError)) as ctx:
            reader.read_response()
        elapsed = time.monotonic() - t0
        self.assertNotIsInstance(ctx.exception, TimeoutError,
                                 "connection still open after 10s of upstream silence")
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 3.0, "stalled body cut after %.2fs (upstream-body-idle 500ms)"
                        % elapsed)

    def test_upstream_down_502(self):
        t0 = time.monotonic()
        r = http_request(self.port, "GET", "/down/x", timeout=10)
        self.assertLocalReply(r, 502)
        self.assertLess(time.monotonic() - t0, 2.0)

    def test_origin_error_status_passed_through(self):
        for code in (404, 500, 503):
            r = http_request(self.port, "GET", "/status/%d" % code)
            self.assertEqual(r.status, code, r)
            self.assertEqual(r.header("X-Origin"), "a", "status %d not from the origin" % code)
            self.assertEqual(r.body, b"status %d\n" % code)

    def test_upstream_closes_after_response(self):
        # /close answers with Connection: close; the next request must get a fresh
        # upstream connection, not a dead pooled one.
        for _ in range(3):
            r = http_request(self.port, "GET", "/close")
            self.assertEqual(r.status, 200, r)
            r = http_request(self.port, "GET", "/demo/after-close")
            self.assertEqual(r.status, 200, r)

    def _abort_upload(self, head, first_piece):
        before = self.a.stats()["aborted_uploads"]
        s = connect(self.port)
        s.sendall(head + first_piece)
        # Wait until the origin is inside the request, so the abort happens mid-body.
        wait_until(lambda: self.a.stats()["active_uploads"] >= 1, 10,
                   what="the upload to reach the origin (streamed, not buffered)")
        s.close()
        wait_until(lambda: self.a.stats()["aborted_uploads"] > before, 10,
                   what="the origin to see the upstream connection closed mid-upload")

    def test_client_abort_mid_upload_content_length(self):
        self._abort_upload(request_bytes("POST", "/sink", "a",
                                         [("Content-Length", str(10 * 1024 * 1024))]),
                           b"u" * (1024 * 1024))

    def test_client_abort_mid_upload_chunked(self):
        piece = b"u" * 65536
        self._abort_upload(request_bytes("POST", "/sink", "a",
                                         [("Transfer-Encoding", "chunked")]),
                           b"".join(b"10000\r\n" + piece + b"\r\n" for _ in range(16)))

    def test_proxy_usable_after_failures(self):
        r = http_request(self.port, "GET", "/slow?delay=2", timeout=10)
        self.assertEqual(r.status, 504)
        r = http_request(self.port, "GET", "/demo/ok")
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
