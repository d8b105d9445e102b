"""HTTP/2 to upstreams (`protocol "h2"`, docs/architecture/http2.md): gRPC end to end with
python3-grpcio (unary, large messages, client, server and full-duplex bidirectional streaming,
status and metadata in trailers, over h2c and over TLS with ALPN h2), and plain HTTP through
test/support/h2_origin.py: HTTP/1.1 and HTTP/2 clients to an h2 upstream, bodies both ways,
trailers, multiplexing on few connections, a refused stream retried.

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_h2_upstream
"""
import json
import os
import queue
import subprocess
import unittest
from concurrent import futures

import grpc

from harness import PYTHON, SUPPORT, IntegrationTest, free_port, http_request, render, spawn, wait_until

H2_ORIGIN = os.path.join(SUPPORT, "h2_origin.py")
MAKE_CERTS = os.path.join(SUPPORT, "make-certs.sh")

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ok\n" } }
    route "grpc" { match { path-prefix "/test.Echo/" }; upstream "grpc" }
    route "grpc-tls" { match { path-prefix "/tls.Echo/" }; rewrite { strip-prefix "/tls.Echo/"; add-prefix "/test.Echo/" }; upstream "grpc-tls" }
    route "h2" { match { path-prefix "/" }; upstream "h2" }
}
upstreams {
    upstream "grpc" { endpoint "127.0.0.1:@grpc@"; protocol "h2" }
    upstream "grpc-tls" {
        endpoint "127.0.0.1:@grpc_tls@"
        protocol "h2"
        tls { ca "@certs@/ca.pem" }
    }
    upstream "h2" { endpoint "127.0.0.1:@h2@"; protocol "h2" }
}
"""


def echo_handlers():
    def unary(request, context):
        context.set_trailing_metadata((("x-trailer", "t1"),))
        meta = dict(context.invocation_metadata())
        context.send_initial_metadata((("x-seen", meta.get("x-client", "")),))
        return request

    def client_stream(requests, context):
        return b"".join(requests)

    def server_stream(request, context):
        for i in range(int(request)):
            yield b"part-%d" % i

    def bidi(requests, context):
        for r in requests:
            yield r

    def fail(request, context):
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")

    return grpc.method_handlers_generic_handler("test.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
    })


class H2UpstreamTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        certs = os.path.join(cls.class_workdir, "certs")
        subprocess.run(["sh", MAKE_CERTS, certs], check=True, timeout=120, stdin=subprocess.DEVNULL,
                       capture_output=True)
        cls.grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        cls.grpc_server.add_generic_rpc_handlers((echo_handlers(),))
        grpc_port = cls.grpc_server.add_insecure_port("127.0.0.1:0")
        with open(os.path.join(certs, "site.key"), "rb") as k, open(os.path.join(certs, "site.pem"), "rb") as c:
            creds = grpc.ssl_server_credentials(((k.read(), c.read()),))
        grpc_tls_port = cls.grpc_server.add_secure_port("127.0.0.1:0", creds)
        cls.grpc_server.start()
        cls.addClassCleanup(cls.grpc_server.stop, None)
        origin = spawn([PYTHON, H2_ORIGIN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        cls._class_procs.append(origin)
        h2_port = int(origin.stdout.readline().decode().split()[1])
        cls.port, cls.admin = free_port(), free_port()
        cls.s = cls.class_sentinel(render(CONFIG, admin=cls.admin, port=cls.port, grpc=grpc_port,
                                          grpc_tls=grpc_tls_port, h2=h2_port, certs=certs),
                                   port=cls.port, admin_port=cls.admin, ready_path="/ready")
        cls.channel = grpc.insecure_channel("127.0.0.1:%d" % cls.port)
        cls.addClassCleanup(cls.channel.close)

    # -- gRPC ----------------------------------------------------------------------------

    def test_grpc_unary_with_metadata_and_trailers(self):
        call = self.channel.unary_unary("/test.Echo/Unary")
        response, info = call.with_call(b"hello grpc", metadata=(("x-client", "c1"),), timeout=10)
        self.assertEqual(response, b"hello grpc")
        self.assertEqual(dict(info.initial_metadata()).get("x-seen"), "c1")
        self.assertEqual(dict(info.trailing_metadata()).get("x-trailer"), "t1")
        self.assertEqual(info.code(), grpc.StatusCode.OK)

    def test_grpc_large_messages(self):
        big = os.urandom(3 * 1024 * 1024)
        channel = grpc.insecure_channel("127.0.0.1:%d" % self.port, options=[
            ("grpc.max_send_message_length", 8 << 20), ("grpc.max_receive_message_length", 8 << 20)])
        try:
            self.assertEqual(channel.unary_unary("/test.Echo/Unary")(big, timeout=30), big)
        finally:
            channel.close()

    def test_grpc_client_and_server_streaming(self):
        parts = [b"a" * 1000, b"b" * 70000, b"c"]
        self.assertEqual(self.channel.stream_unary("/test.Echo/ClientStream")(iter(parts), timeout=10), b"".join(parts))
        got = list(self.channel.unary_stream("/test.Echo/ServerStream")(b"50", timeout=10))
        self.assertEqual(got, [b"part-%d" % i for i in range(50)])

    def test_grpc_bidirectional_ping_pong(self):
        # Each request waits for the previous answer: only a full-duplex proxy passes.
        answers = queue.Queue()
        seen = []

        def requests():
            for i in range(5):
                yield b"ping-%d" % i
                seen.append(answers.get(timeout=5))

        for r in self.channel.stream_stream("/test.Echo/Bidi")(requests(), timeout=20):
            answers.put(r)
        self.assertEqual(seen, [b"ping-%d" % i for i in range(5)])

    def test_grpc_error_status_reaches_the_client(self):
        with self.assertRaises(grpc.RpcError) as e:
            self.channel.unary_unary("/test.Echo/Fail")(b"x", timeout=10)
        self.assertEqual(e.exception.code(), grpc.StatusCode.NOT_FOUND)
        self.assertEqual(e.exception.details(), "no such thing")

    def test_grpc_over_tls_upstream_with_alpn_h2(self):
        response = self.channel.unary_unary("/tls.Echo/Unary")(b"over tls", timeout=10)
        self.assertEqual(response, b"over tls")
        got = list(self.channel.unary_stream("/tls.Echo/ServerStream")(b"3", timeout=10))
        self.assertEqual(got, [b"part-0", b"part-1", b"part-2"])

    # -- plain HTTP to an h2 upstream ----------------------------------------------------

    def curl(self, *args):
        p = subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_http1_client_to_h2_upstream(self):
        url = "http://127.0.0.1:%d" % self.port
        out = self.curl("--http1.1", "-D", "-", url + "/bytes/100000")
        head, _, body = out.partition(b"\r\n\r\n")
        self.assertIn(b"HTTP/1.1 200", head)
        self.assertEqual(len(body), 100000)
        # The upstream saw a proper HTTP/2 request: pseudo-headers, no connection fields.
        seen = dict((k, v) for k, v in json.loads(self.curl("--http1.1", url + "/headers")))
        self.assertEqual(seen[":method"], "GET")
        self.assertEqual(seen[":scheme"], "http")
        self.assertEqual(seen[":authority"], "127.0.0.1:%d" % self.port)
        self.assertEqual(seen[":path"], "/headers")
        self.assertEqual(seen["x-forwarded-for"], "127.0.0.1")
        self.assertNotIn("connection", seen)
        self.assertNotIn("host", seen)

    def test_bodies_and_trailers_both_ways(self):
        data = os.urandom(500000)
        src = os.path.join(self.workdir, "body")
        with open(src, "wb") as f:
            f.write(data)
        url = "http://127.0.0.1:%d/echo" % self.port
        # HTTP/1.1 client, chunked upload: the body arrives whole, the origin's trailers come
        # back as the chunked trailer section.
        p = subprocess.run(["curl", "-sS", "--http1.1", "-H", "Transfer-Encoding: chunked", "--raw", "-D", "-",
                            "--data-binary", "@" + src, url], capture_output=True, timeout=60)
        self.assertIn(b"transfer-encoding: chunked", p.stdout.lower())
        self.assertIn(b"x-echo-bytes: 500000", p.stdout)
        # HTTP/2 client: body and trailers as HTTP/2.
        out = os.path.join(self.workdir, "out")
        self.curl("--http2-prior-knowledge", "--data-binary", "@" + src, "-o", out, url)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_streams_share_few_upstream_connections(self):
        before = self.s.metric("sentinel_upstream_pool_connections_created_total")
        p = subprocess.run(["h2load", "-n", "1000", "-c", "2", "-m", "20",
                            "http://127.0.0.1:%d/bytes/1000" % self.port], capture_output=True, timeout=120)
        out = p.stdout.decode()
        self.assertIn("1000 succeeded, 0 failed, 0 errored", out, out)
        created = self.s.metric("sentinel_upstream_pool_connections_created_total") - before
        # 2 workers, up to 40 streams at once: a handful of multiplexed connections, not 40.
        self.assertLessEqual(created, 4, out)

    def test_a_refused_stream_is_retried_on_a_fresh_connection(self):
        out = self.curl("--http1.1", "http://127.0.0.1:%d/refuse-once" % self.port)
        self.assertEqual(out, b"second try\n")


HEALTH_CONFIG = r"""
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 }
    route "h2c" { match { path-prefix "/h2c/" }; rewrite { strip-prefix "/h2c/"; add-prefix "/" }; upstream "h2c" }
    route "tls" { match { path-prefix "/tls/" }; rewrite { strip-prefix "/tls/"; add-prefix "/" }; upstream "tls" }
}
upstreams {
    // Start down: only checks that really speak HTTP/2 (over TLS for "tls") bring them up.
    upstream "h2c" {
        endpoint "127.0.0.1:@h2c@"; protocol "h2"
        health-check { http "/bytes/1"; interval "300ms"; timeout "300ms"; healthy 1; initial-state "unhealthy" }
    }
    upstream "tls" {
        endpoint "127.0.0.1:@tls@"; protocol "h2"; tls { ca "@certs@/ca.pem" }
        health-check { http "/bytes/1"; interval "300ms"; timeout "300ms"; healthy 1; initial-state "unhealthy" }
    }
    upstream "missing" {
        endpoint "127.0.0.1:@h2c@"; protocol "h2"
        health-check { http "/missing"; interval "300ms"; timeout "300ms"; unhealthy 2 }
    }
    upstream "no-alpn" {
        endpoint "127.0.0.1:@h1@"; protocol "h2"; tls { ca "@certs@/ca.pem" }
        health-check { http "/bytes/1"; interval "300ms"; timeout "300ms"; unhealthy 2 }
    }
}
"""


class H2UpstreamHealthTest(IntegrationTest):

    def origin(self, *args):
        p = spawn([PYTHON, H2_ORIGIN, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (p.kill(), p.wait()))
        return int(p.stdout.readline().decode().split()[1])

    def test_http_checks_speak_http2_over_h2c_and_tls(self):
        certs = os.path.join(self.workdir, "certs")
        subprocess.run(["sh", MAKE_CERTS, certs], check=True, timeout=120, stdin=subprocess.DEVNULL,
                       capture_output=True)
        h2c, tls = self.origin(), self.origin("--tls", certs)
        h1 = self.origin("--tls", certs, "--alpn", "http/1.1")
        port, admin = free_port(), free_port()
        s = self.start_sentinel(render(HEALTH_CONFIG, port=port, admin=admin, h2c=h2c, tls=tls, h1=h1,
                                       certs=certs), port=port, admin_port=admin, ready_path="/ready")

        def healthy(upstream, origin_port):
            return s.metric("sentinel_upstream_endpoint_healthy", upstream=upstream,
                            endpoint="127.0.0.1:%d" % origin_port)
        wait_until(lambda: healthy("h2c", h2c) == 1 and healthy("tls", tls) == 1, 10,
                   what="HTTP/2 checks to bring both initially unhealthy upstreams up")
        self.assertEqual(http_request(port, "GET", "/h2c/bytes/3").body, bytes(range(3)))
        self.assertEqual(http_request(port, "GET", "/tls/bytes/3").body, bytes(range(3)))

        # The failures name their reason: the status, or an upstream that did not select h2.
        wait_until(lambda: healthy("missing", h2c) == 0 and healthy("no-alpn", h1) == 0, 10,
                   what="the failing checks to mark their endpoints down")
        err = s.output()[1]
        self.assertIn('upstream "missing" endpoint 127.0.0.1:%d is now DOWN (2 consecutive failures: '
                      'status 404)' % h2c, err)
        self.assertIn('upstream "no-alpn" endpoint 127.0.0.1:%d is now DOWN (2 consecutive failures: '
                      'the server did not select h2 in ALPN)' % h1, err)
        self.assertNotIn('upstream "h2c" endpoint 127.0.0.1:%d is now DOWN' % h2c, err)


class H2UpstreamConfigTest(IntegrationTest):

    def check(self, config):
        path = os.path.join(self.workdir, "c.kdl")
        with open(path, "w") as f:
            f.write(config)
        from harness import SENTINEL_BIN
        return subprocess.run([SENTINEL_BIN, "validate", path], capture_output=True, timeout=30)

    def test_protocol_names_are_checked(self):
        p = self.check('upstreams { upstream "u" { endpoint "127.0.0.1:1"; protocol "h3" } }\n')
        self.assertNotEqual(p.returncode, 0)
        self.assertIn(b"h2", p.stderr + p.stdout)


if __name__ == "__main__":
    unittest.main()
