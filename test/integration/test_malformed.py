"""Hostile and malformed HTTP/1.1 input over raw sockets (DESIGN §1 rule 4).

Every case sends the bad request followed by 16 KiB of unread junk, then expects: the right
status, a local reply (X-Request-Id, small body, no internals), and a clean close — reading
until EOF must succeed, so a proxy that close()s with unread input (RST) fails. Requests
rejected at the head never reach the origin."""

import time
import unittest

from harness import (IntegrationTest, ResponseReader, connect, free_port, http_request,
                     metric_value, render)

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
limits { max-request-line "1KiB"; max-header-bytes "4KiB"; max-headers 20; max-body "64KiB" }
routes { route "all" { match { path-prefix "/" }; upstream "a" } }
upstreams { upstream "a" { endpoint "@a@" } }
"""

JUNK = b"J" * (16 * 1024)


class MalformedTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.class_origin("a")
        cls.port = free_port()
        cls.admin = free_port()
        cls.s = cls.class_sentinel(render(CONFIG, port=cls.port, admin=cls.admin,
                                          a=cls.a.address), port=cls.port, admin_port=cls.admin)

    def exchange(self, raw, junk=True, timeout=10.0):
        """Sends raw (+ junk); returns (response, seconds to the response)."""
        s = connect(self.port, timeout=timeout)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendall(raw + (JUNK if junk else b""))
        reader = ResponseReader(s, timeout)
        resp = reader.read_response()
        elapsed = time.monotonic() - t0
        try:
            rest = reader.read_until_eof(timeout=10.0)
        except ConnectionResetError:
            self.fail("connection reset after the %d reply instead of a clean close "
                      "(no lingering close): %r" % (resp.status, resp))
        except OSError as e:
            self.fail("connection not closed after the %d reply: %r" % (resp.status, e))
        self.assertEqual(rest, b"", "bytes after the error reply: %r" % rest[:200])
        return resp, elapsed

    def check(self, raw, status, forwarded_ok=False, junk=True):
        before = self.a.stats()
        resp, elapsed = self.exchange(raw, junk=junk)
        self.assertLocalReply(resp, status, "sent %r\ngot %r" % (raw[:300], resp))
        after = self.a.stats()
        if not forwarded_ok:
            self.assertEqual(after["requests_total"], before["requests_total"],
                             "a malformed request reached the origin: %r" % raw[:300])
        self.assertEqual(after["bad_requests"], before["bad_requests"],
                         "the origin received something it rejects as malformed: %r" % raw[:300])
        return resp, elapsed

    # -- framing ---------------------------------------------------------------------------

    def test_content_length_and_transfer_encoding(self):
        self.check(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400)

    def test_transfer_encoding_and_content_length_reversed(self):
        self.check(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                   b"Content-Length: 5\r\n\r\n0\r\n\r\n", 400)

    def test_transfer_encoding_gzip(self):
        self.check(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc", 501)

    def test_conflicting_content_lengths(self):
        self.check(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                   b"Content-Length: 6\r\n\r\nabcdef", 400)

    def test_non_numeric_content_length(self):
        self.check(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5x\r\n\r\nabcde", 400)

    def test_bad_chunk_size(self):
        self.check(b"POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"zz\r\nhello\r\n0\r\n\r\n", 400, forwarded_ok=True)

    # -- request line ----------------------------------------------------------------------

    def test_http_2_0_request_line(self):
        self.check(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505)

    def test_raw_0x80_in_target(self):
        self.check(b"GET /a\x80b HTTP/1.1\r\nHost: a\r\n\r\n", 400)

    def test_request_line_too_long(self):
        self.check(b"GET /" + b"a" * 2000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414)

    # -- header fields ---------------------------------------------------------------------

    def test_obs_fold(self):
        self.check(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n  continued\r\n\r\n", 400)

    def test_space_before_colon(self):
        self.check(b"GET / HTTP/1.1\r\nHost: a\r\nX-Foo : bar\r\n\r\n", 400)

    def test_nul_in_header_value(self):
        self.check(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", 400)

    def test_missing_host(self):
        self.check(b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400)

    def test_two_hosts(self):
        self.check(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)

    # -- limits ----------------------------------------------------------------------------

    def test_header_block_too_large_many_lines(self):
        headers = b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 500) for i in range(10))
        self.check(b"GET / HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n", 431)

    def test_header_block_too_large_one_line(self):
        self.check(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 5000 + b"\r\n\r\n", 431)

    def test_too_many_headers(self):
        headers = b"".join(b"X-H%d: v\r\n" % i for i in range(30))
        self.check(b"GET / HTTP/1.1\r\nHost: a\r\n" + headers + b"\r\n", 431)

    def test_content_length_over_max_body_is_rejected_immediately(self):
        # Only a 16 KiB piece of the announced 65537 bytes is sent: the 413 must not wait
        # for the rest.
        _, elapsed = self.check(b"POST /sink HTTP/1.1\r\nHost: a\r\nContent-Length: 65537\r\n\r\n",
                                413)
        self.assertLess(elapsed, 2.0, "413 took %.2fs: it waited for the body" % elapsed)

    def test_chunked_body_over_max_body(self):
        chunk = b"c" * 8192
        body = b"".join(b"2000\r\n" + chunk + b"\r\n" for _ in range(10)) + b"0\r\n\r\n"
        self.check(b"POST /sink HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + body,
                   413, forwarded_ok=True, junk=False)

    def test_body_at_max_body_passes(self):
        body = b"b" * 65536
        r = http_request(self.port, "POST", "/sink", body=body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["received"], 65536)

    # -- pipelining ------------------------------------------------------------------------

    def test_pipelined_requests_answered_in_order(self):
        s = connect(self.port)
        self.addCleanup(s.close)
        s.sendall(b"GET /demo/first HTTP/1.1\r\nHost: a\r\n\r\n"
                  b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\nsecond"
                  b"GET /demo/third HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
        reader = ResponseReader(s, 10)
        r1 = reader.read_response()
        r2 = reader.read_response()
        r3 = reader.read_response()
        self.assertEqual((r1.status, r2.status, r3.status), (200, 200, 200))
        self.assertEqual(r1.json()["path"], "/demo/first")
        self.assertEqual(r2.body, b"second")
        self.assertEqual(r3.json()["path"], "/demo/third")
        self.assertEqual(reader.read_until_eof(), b"")

    def test_valid_request_after_malformed_on_new_connection(self):
        self.check(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400)
        r = http_request(self.port, "GET", "/demo/after")
        self.assertEqual(r.status, 200, r)

    def test_local_replies_counted(self):
        before = metric_value(self.s.metrics(), "sentinel_local_replies_total", default=0.0)
        self.exchange(b"GET / HTTP/2.0\r\nHost: a\r\n\r\n")
        self.exchange(b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n")
        after = metric_value(self.s.metrics(), "sentinel_local_replies_total", default=0.0)
        self.assertGreaterEqual(after - before, 2.0,
                                "sentinel_local_replies_total went %s → %s" % (before, after))


if __name__ == "__main__":
    unittest.main()
