"""Proxy basics through curl and raw sockets: forwarding, X-Forwarded-*, X-Request-Id,
hop-by-hop removal, header operations, route matching, 404, `respond`, `builtin "status"`."""

import json
import os
import re
import unittest

from harness import (IntegrationTest, KeepAliveClient, ResponseReader, connect, curl,
                     free_port, header_of, http_request, render)

CONFIG = r"""
system { workers 2 }
listeners {
    listener "public" { listen "127.0.0.1:@port@"; protocol "http" }
    listener "trusted" { listen "127.0.0.1:@tport@"; protocol "http"; trusted-proxies "127.0.0.0/8" }
}
routes {
    route "hello" { match { path "/hello" }; respond 200 { body "hi\n"; header "content-type" "text/plain" } }
    route "forbidden" { match { path "/forbidden" }; respond 403 { body "nope\n" } }
    route "status" { match { path "/status" }; builtin "status" }
    route "api-host" {
        priority 100
        match { host "api.example.com"; path-prefix "/v1/" }
        upstream "b"
        response-headers { set "X-Route" "api-host" }
    }
    route "wild" {
        priority 90
        match { host "*.example.com" }
        upstream "b"
        response-headers { set "X-Route" "wild" }
    }
    route "exact" { match { path "/exact" }; upstream "b"; response-headers { set "X-Route" "exact" } }
    route "post-only" {
        match { path "/post-only"; method "POST" }
        upstream "b"
        response-headers { set "X-Route" "post-only" }
    }
    route "hdrops" {
        match { path-prefix "/hdrops/" }
        upstream "a"
        request-headers { set "X-Env" "prod"; add "X-A" "1"; remove "X-Debug" }
        response-headers { set "X-Served-By" "sentinel"; add "X-Extra" "1"; remove "X-Origin-Connection" }
    }
    route "upgrades" { match { path-prefix "/ws/" }; upstream "a"; allow-upgrade #true }
    route "default" {
        match { path-prefix "/demo/" "/echo" "/headers" "/bytes/" "/chunked/" "/response-headers" "/sink" }
        upstream "a"
        response-headers { set "X-Route" "default" }
    }
}
upstreams {
    upstream "a" { endpoint "@a@" }
    upstream "b" { endpoint "@b@" }
}
"""


class ProxyBasicsTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.class_origin("a")
        cls.b = cls.class_origin("b")
        cls.port = free_port()
        cls.tport = free_port()
        cls.s = cls.class_sentinel(render(CONFIG, port=cls.port, tport=cls.tport,
                                          a=cls.a.address, b=cls.b.address), port=cls.port,
                                   ready_path="/hello")
        cls.s.wait_ready(cls.tport)

    def url(self, path, port=None):
        return "http://127.0.0.1:%d%s" % (port or self.port, path)

    def demo(self, path="/demo/x", headers=(), port=None, host="test.local"):
        """GET through the proxy; returns (response, origin's view of the request)."""
        r = http_request(port or self.port, "GET", path, host=host, headers=headers, close=False)
        self.assertEqual(r.status, 200, r)
        return r, r.json()

    @staticmethod
    def seen(view, name):
        return [v for k, v in view["headers"] if k.lower() == name.lower()]

    # -- forwarding -----------------------------------------------------------------------

    def test_get_through_curl(self):
        rc, status, headers, body, err = curl(self.url("/demo/hello?x=1&y=2"))
        self.assertEqual(rc, 0, err)
        self.assertEqual(status, 200)
        view = json.loads(body)
        self.assertEqual(view["origin"], "a")
        self.assertEqual(view["method"], "GET")
        self.assertEqual(view["target"], "/demo/hello?x=1&y=2")
        self.assertEqual(header_of(headers, "X-Route"), "default")

    def test_post_through_curl(self):
        rc, status, headers, body, err = curl(self.url("/echo"), "--data-binary", "hello, origin")
        self.assertEqual((rc, status, body), (0, 200, b"hello, origin"), err)

    def test_post_one_mib_content_length_and_chunked(self):
        payload = os.urandom(1024 * 1024)
        path = os.path.join(self.workdir, "payload.bin")
        with open(path, "wb") as f:
            f.write(payload)
        rc, status, _, body, err = curl(self.url("/echo"), "-H", "Expect:",
                                        "--data-binary", "@" + path)
        self.assertEqual((rc, status), (0, 200), err)
        self.assertEqual(body, payload, "content-length body not echoed byte-exact")
        rc, status, _, body, err = curl(self.url("/echo"), "-H", "Expect:", "-H",
                                        "Transfer-Encoding: chunked", "--data-binary", "@" + path)
        self.assertEqual((rc, status), (0, 200), err)
        self.assertEqual(body, payload, "chunked body not echoed byte-exact")

    def test_post_with_expect_100_continue(self):
        payload = b"z" * (2 * 1024 * 1024)
        path = os.path.join(self.workdir, "payload.bin")
        with open(path, "wb") as f:
            f.write(payload)
        rc, status, _, body, err = curl(self.url("/echo"), "-H", "Expect: 100-continue",
                                        "--expect100-timeout", "10", "--data-binary", "@" + path)
        self.assertEqual((rc, status), (0, 200), err)
        self.assertEqual(len(body), len(payload))
        self.assertEqual(body, payload)

    def test_head_request(self):
        r = http_request(self.port, "HEAD", "/bytes/1000")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-length"), "1000")
        self.assertEqual(r.body, b"")
        # The connection must still be in sync after a bodiless HEAD answer.
        with KeepAliveClient(self.port) as c:
            self.assertEqual(c.request("HEAD", "/bytes/1000").body, b"")
            self.assertEqual(c.request("GET", "/bytes/10").body, b"ABCDEFGHIJ")

    def test_http10_client(self):
        # HTTP/1.0 needs no Host; the request goes upstream as HTTP/1.1, which does, so
        # Sentinel has to supply one (RFC 9112 §3.2). No keep-alive was asked: close after.
        s = connect(self.port)
        self.addCleanup(s.close)
        s.sendall(b"GET /demo/old HTTP/1.0\r\nUser-Agent: old-client\r\n\r\n")
        reader = ResponseReader(s, 10)
        r = reader.read_response()
        self.assertEqual(r.status, 200, "HTTP/1.0 request without Host: %r" % r)
        view = r.json()
        self.assertEqual(len(self.seen(view, "Host")), 1, view["headers"])
        self.assertEqual(reader.read_until_eof(5), b"")

    def test_http10_client_gets_chunked_body_decoded(self):
        # An HTTP/1.0 client cannot read chunked: the payload is sent as is, ended by close.
        s = connect(self.port)
        self.addCleanup(s.close)
        s.sendall(b"GET /chunked/100000 HTTP/1.0\r\nHost: old.test\r\n\r\n")
        reader = ResponseReader(s, 10)
        r = reader.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("Transfer-Encoding"))
        self.assertEqual(len(r.body), 100000)
        self.assertEqual(reader.read_until_eof(5), b"")

    def test_http10_client_with_host(self):
        s = connect(self.port)
        self.addCleanup(s.close)
        s.sendall(b"GET /demo/old HTTP/1.0\r\nHost: old.test\r\n\r\n")
        reader = ResponseReader(s, 10)
        r = reader.read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.seen(r.json(), "Host"), ["old.test"])
        self.assertEqual(reader.read_until_eof(5), b"")

    # -- X-Forwarded-* --------------------------------------------------------------------

    def test_xff_set_to_peer(self):
        _, view = self.demo()
        self.assertEqual(self.seen(view, "X-Forwarded-For"), ["127.0.0.1"])

    def test_xff_from_untrusted_peer_is_replaced(self):
        _, view = self.demo(headers=[("X-Forwarded-For", "1.2.3.4")])
        self.assertEqual(self.seen(view, "X-Forwarded-For"), ["127.0.0.1"],
                         "a spoofed X-Forwarded-For from an untrusted peer survived")

    def test_xff_from_trusted_peer_is_appended(self):
        _, view = self.demo(headers=[("X-Forwarded-For", "1.2.3.4")], port=self.tport)
        values = self.seen(view, "X-Forwarded-For")
        joined = ", ".join(values)
        self.assertEqual(re.sub(r"\s+", "", joined), "1.2.3.4,127.0.0.1", values)

    def test_x_forwarded_proto_and_host(self):
        _, view = self.demo(host="shop.test")
        self.assertEqual(self.seen(view, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(self.seen(view, "X-Forwarded-Host"), ["shop.test"])

    def test_x_forwarded_proto_host_from_untrusted_peer_replaced(self):
        _, view = self.demo(host="shop.test", headers=[("X-Forwarded-Proto", "https"),
                                                        ("X-Forwarded-Host", "evil.test")])
        self.assertEqual(self.seen(view, "X-Forwarded-Proto"), ["http"])
        self.assertEqual(self.seen(view, "X-Forwarded-Host"), ["shop.test"])

    # -- X-Request-Id ---------------------------------------------------------------------

    def test_request_id_generated_and_returned(self):
        r1, v1 = self.demo()
        r2, v2 = self.demo()
        rid1 = r1.header("X-Request-Id")
        self.assertTrue(rid1, "no X-Request-Id returned to the client: %r" % r1)
        self.assertEqual(self.seen(v1, "X-Request-Id"), [rid1], "origin saw a different id")
        self.assertNotEqual(rid1, r2.header("X-Request-Id"), "ids are not unique")
        self.assertLessEqual(len(rid1), 128)

    def test_request_id_safe_value_kept(self):
        rid = "abc-123_DEF.4"
        r, v = self.demo(headers=[("X-Request-Id", rid)])
        self.assertEqual(self.seen(v, "X-Request-Id"), [rid])
        self.assertEqual(r.header("X-Request-Id"), rid)

    def test_request_id_unsafe_value_replaced(self):
        bad = 'a"b<script>c'
        r, v = self.demo(headers=[("X-Request-Id", bad)])
        seen = self.seen(v, "X-Request-Id")
        self.assertEqual(len(seen), 1, seen)
        self.assertNotEqual(seen[0], bad)
        self.assertTrue(seen[0])
        self.assertEqual(r.header("X-Request-Id"), seen[0])

    def test_request_id_long_value_replaced(self):
        long_id = "a" * 1000
        r, v = self.demo(headers=[("X-Request-Id", long_id)])
        seen = self.seen(v, "X-Request-Id")
        self.assertEqual(len(seen), 1, seen)
        self.assertNotEqual(seen[0], long_id)
        self.assertLessEqual(len(seen[0]), 128)
        self.assertEqual(r.header("X-Request-Id"), seen[0])

    # -- hop-by-hop -----------------------------------------------------------------------

    def test_hop_by_hop_request_headers_removed(self):
        r, view = self.demo("/demo/hop", headers=[
            ("Connection", "keep-alive, X-Hop-Custom, Upgrade"),
            ("X-Hop-Custom", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Upgrade", "websocket"),
            ("X-End-To-End", "kept"),
        ])
        names = {k.lower() for k, _ in view["headers"]}
        for hop in ("x-hop-custom", "keep-alive", "te", "upgrade"):
            self.assertNotIn(hop, names, "hop-by-hop %r reached the origin: %r"
                             % (hop, view["headers"]))
        for value in self.seen(view, "Connection"):
            self.assertNotIn("x-hop-custom", value.lower())
            self.assertNotIn("upgrade", value.lower())
        self.assertEqual(self.seen(view, "X-End-To-End"), ["kept"])

    def test_upgrade_relayed_when_route_allows_it(self):
        # The origin answers 200 (it does not switch protocols); what matters is that the
        # upgrade request reached it intact on a route with allow-upgrade.
        _, view = self.demo("/ws/chat", headers=[("Connection", "Upgrade"), ("Upgrade", "foo/2")])
        self.assertEqual(self.seen(view, "Upgrade"), ["foo/2"], view["headers"])
        self.assertIn("upgrade", ",".join(self.seen(view, "Connection")).lower())

    def test_websocket_upgrade_not_relayed_by_allow_upgrade(self):
        # WebSocket takes the route's `websocket` (test_websocket.py); allow-upgrade alone
        # forwards the handshake as a plain request.
        _, view = self.demo("/ws/chat", headers=[("Connection", "Upgrade"),
                                                 ("Upgrade", "websocket"),
                                                 ("Sec-WebSocket-Version", "13"),
                                                 ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")])
        self.assertEqual(self.seen(view, "Upgrade"), [], view["headers"])
        self.assertNotIn("upgrade", ",".join(self.seen(view, "Connection")).lower())
        self.assertEqual(self.seen(view, "Sec-WebSocket-Key"), ["dGhlIHNhbXBsZSBub25jZQ=="])

    def test_h2c_upgrade_never_relayed(self):
        _, view = self.demo("/ws/h2c", headers=[("Connection", "Upgrade, HTTP2-Settings"),
                                                ("Upgrade", "h2c"),
                                                ("HTTP2-Settings", "AAMAAABkAAQCAAAAAAIAAAAA")])
        names = {k.lower() for k, _ in view["headers"]}
        self.assertNotIn("upgrade", names, view["headers"])
        self.assertNotIn("http2-settings", names, view["headers"])

    def test_hop_by_hop_response_headers_removed(self):
        r = http_request(self.port, "GET",
                         "/response-headers?Connection=X-Resp-Hop&X-Resp-Hop=1"
                         "&Keep-Alive=timeout%3D5&X-Resp-Kept=1")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(r.header("X-Resp-Hop"), r)
        self.assertIsNone(r.header("Keep-Alive"), r)
        self.assertEqual(r.header("X-Resp-Kept"), "1", r)

    # -- header operations ----------------------------------------------------------------

    def test_request_header_operations(self):
        _, view = self.demo("/hdrops/x", headers=[("X-Env", "dev"), ("X-A", "0"),
                                                  ("X-Debug", "1")])
        self.assertEqual(self.seen(view, "X-Env"), ["prod"])
        a = self.seen(view, "X-A")
        self.assertEqual(sorted(v.strip() for v in ",".join(a).split(",")), ["0", "1"], a)
        self.assertEqual(self.seen(view, "X-Debug"), [])

    def test_response_header_operations(self):
        r, _ = self.demo("/hdrops/y")
        self.assertEqual(r.header_values("X-Served-By"), ["sentinel"], r)
        self.assertEqual(r.header_values("X-Extra"), ["1"], r)
        self.assertEqual(r.header_values("X-Origin-Connection"), [], r)
        self.assertEqual(r.header("X-Origin"), "a")

    # -- routing --------------------------------------------------------------------------

    def route_of(self, path, host="test.local", method="GET"):
        r = http_request(self.port, method, path, host=host)
        return r.status, r.header("X-Route"), r.header("X-Origin")

    def test_route_by_host_and_prefix_with_priority(self):
        self.assertEqual(self.route_of("/v1/items", "api.example.com"), (200, "api-host", "b"))
        self.assertEqual(self.route_of("/other", "api.example.com"), (200, "wild", "b"))
        self.assertEqual(self.route_of("/v1/items", "www.example.com"), (200, "wild", "b"))

    def test_host_match_ignores_port_and_case(self):
        self.assertEqual(self.route_of("/v1/a", "api.example.com:%d" % self.port),
                         (200, "api-host", "b"))
        self.assertEqual(self.route_of("/v1/a", "API.Example.COM"), (200, "api-host", "b"))

    def test_wildcard_does_not_match_bare_domain(self):
        self.assertEqual(self.route_of("/v1/items", "example.com")[0], 404)

    def test_exact_path(self):
        self.assertEqual(self.route_of("/exact"), (200, "exact", "b"))
        self.assertEqual(self.route_of("/exact/more")[0], 404)
        self.assertEqual(self.route_of("/exactly")[0], 404)

    def test_method_match(self):
        self.assertEqual(self.route_of("/post-only", method="POST"), (200, "post-only", "b"))
        self.assertEqual(self.route_of("/post-only", method="GET")[0], 404)

    def test_dot_segments_routed_and_forwarded_normalised(self):
        # /hello/../exact must route as /exact (route "exact", header X-Route) and reach the
        # origin as /exact, never as the raw path.
        r = http_request(self.port, "GET", "/hello/../exact?q=1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Route"), "exact")
        self.assertEqual(r.json()["target"], "/exact?q=1")
        for path in ("/../etc/passwd", "/a/%2e%2e/exact", "/demo/../../x"):
            self.assertLocalReply(http_request(self.port, "GET", path), 400)

    def test_no_route_404(self):
        r = http_request(self.port, "GET", "/nowhere")
        self.assertLocalReply(r, 404)
        rc, status, headers, body, err = curl(self.url("/nowhere/else"))
        self.assertEqual(status, 404)

    # -- local answers --------------------------------------------------------------------

    def test_respond_fixed(self):
        rc, status, headers, body, err = curl(self.url("/hello"))
        self.assertEqual((rc, status, body), (0, 200, b"hi\n"), err)
        self.assertEqual(header_of(headers, "content-type"), "text/plain")
        self.assertEqual(header_of(headers, "content-length"), "3")
        rc, status, headers, body, err = curl(self.url("/forbidden"))
        self.assertEqual((status, body), (403, b"nope\n"))

    def test_builtin_status(self):
        rc, status, headers, body, err = curl(self.url("/status"))
        self.assertEqual((rc, status), (0, 200), err)
        ctype = header_of(headers, "content-type") or ""
        self.assertTrue("html" in ctype or "json" in ctype, ctype)
        self.assertIn(b"sentinel", body.lower())

    def test_keep_alive_across_routes(self):
        with KeepAliveClient(self.port) as c:
            self.assertEqual(c.request("GET", "/hello").body, b"hi\n")
            self.assertEqual(c.request("GET", "/demo/1").status, 200)
            self.assertEqual(c.request("GET", "/nowhere").status, 404)
            self.assertEqual(c.request("POST", "/echo", body=b"abc").body, b"abc")


if __name__ == "__main__":
    unittest.main()
