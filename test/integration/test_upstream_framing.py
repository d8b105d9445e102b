"""Hostile upstream responses (DESIGN §1 rule 4 applies to both sides): bad framing or a
broken head becomes a 502 — never relayed, never a desync of the client connection — and a
truncated body closes the client connection instead of leaving it reusable."""

import unittest

from harness import (IntegrationTest, KeepAliveClient, PATTERN, ResponseReader, connect,
                     free_port, http_request, render, request_bytes)

CONFIG = r"""
system { workers 2 }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes { route "all" { match { path-prefix "/" }; upstream "a" } }
upstreams { upstream "a" { endpoint "@a@" } }
"""


class UpstreamFramingTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.class_origin("a")
        cls.port = free_port()
        cls.s = cls.class_sentinel(render(CONFIG, port=cls.port, a=cls.a.address),
                                   port=cls.port)

    def assert_502_and_usable(self, kind):
        r = http_request(self.port, "GET", "/raw/" + kind)
        self.assertLocalReply(r, 502, "upstream /raw/%s: %r" % (kind, r))
        # The proxy is unharmed.
        self.assertEqual(http_request(self.port, "GET", "/demo/after-%s" % kind).status, 200)

    def test_both_content_length_and_chunked_is_502(self):
        self.assert_502_and_usable("cl-te")

    def test_conflicting_content_lengths_is_502(self):
        self.assert_502_and_usable("two-cl")

    def test_non_http_answer_is_502(self):
        self.assert_502_and_usable("garbage")

    def test_bad_status_code_is_502(self):
        self.assert_502_and_usable("bad-status")

    def test_cr_in_header_value_is_502(self):
        self.assert_502_and_usable("bad-header")

    def test_upstream_closes_without_answer_is_502(self):
        self.assert_502_and_usable("empty")

    def test_truncated_body_closes_client_connection(self):
        s = connect(self.port)
        self.addCleanup(s.close)
        s.sendall(request_bytes("GET", "/raw/truncated", "a"))
        reader = ResponseReader(s, 10)
        try:
            r = reader.read_response()
        except ConnectionError:
            return  # head and 500 bytes, then a close: the client knows it is incomplete
        except OSError:
            return
        self.fail("a truncated upstream body was delivered as a complete response: %r" % r)

    def test_close_delimited_body_relayed_whole(self):
        with KeepAliveClient(self.port) as c:
            r = c.request("GET", "/raw/close-delimited")
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.body, PATTERN * 100)

    def test_early_hints_then_final_response(self):
        with KeepAliveClient(self.port) as c:
            r = c.request("GET", "/raw/early-hints")  # the reader skips interim answers
            self.assertEqual((r.status, r.body), (200, b"final"), r)
            # The connection is still in sync.
            self.assertEqual(c.request("GET", "/demo/next").status, 200)


if __name__ == "__main__":
    unittest.main()
