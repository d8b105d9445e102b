"""TLS towards upstreams: verification against a configured CA (by name, by IP SAN, with an
explicit `sni`), the failures that must be 502 + a log line naming the upstream, the
endpoint and the reason (untrusted CA, wrong name, expired certificate, missing client
certificate), `insecure-skip-verify` and its warning at load, client certificates, pooled
TLS connections reused like plain ones, idle TLS connections the origin closes, session
resumption after the pool dropped connections (TLS 1.3 and 1.2), and a reload that changes
`tls` never reusing a connection made with the old settings.

The origins are in-process TLS servers (Python's ssl + http.server, one thread per
connection, keep-alive HTTP/1.1) that count TCP connections, completed handshakes and
resumed sessions; the certificates come from test/support/make-certs.sh."""

import http.server
import os
import socketserver
import ssl
import subprocess
import threading
import time
import unittest

from harness import (SUPPORT, IntegrationTest, KeepAliveClient, free_port, http_request,
                     metric_value, render, wait_until)

MAKE_CERTS = os.path.join(SUPPORT, "make-certs.sh")


def make_certs(directory):
    subprocess.run(["sh", MAKE_CERTS, directory], check=True, timeout=120,
                   stdin=subprocess.DEVNULL, capture_output=True)
    return directory


# ---- a TLS origin ------------------------------------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response has a Content-Length

    def setup(self):
        origin = self.server.origin
        origin._add("connections")
        self.request.settimeout(origin.idle_timeout)
        try:
            self.request = origin.ctx.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            origin._failed(e)
            raise
        origin._established(self.request)
        super().setup()

    def do_GET(self):
        origin = self.server.origin
        origin._add("requests")
        body = "%s\n" % origin.name
        cert = self.request.getpeercert()
        if cert:
            subject = ",".join("%s=%s" % kv for rdn in cert.get("subject", ()) for kv in rdn)
            body += "client=%s\n" % subject
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("X-Origin", origin.name)
        self.end_headers()
        self.wfile.write(data)

    def finish(self):
        super().finish()
        self.request.close()  # the TLS socket; socketserver only closes the raw one

    def log_message(self, *args):
        pass


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # failed handshakes and resets are counted, not printed


class TLSOrigin:
    """A TLS HTTP/1.1 origin on 127.0.0.1. `leaf`: which make-certs.sh certificate it serves;
    `client_ca`: ask for a client certificate signed by the test CA ("optional": accept
    connections without one, else require it); `max_version`: cap the
    protocol (TLS 1.2 resumption); `idle_timeout`: close keep-alive connections idle that long."""

    def __init__(self, name, cert_dir, leaf="site", client_ca=False, max_version=None, idle_timeout=30.0):
        self.name = name
        self.idle_timeout = idle_timeout
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(os.path.join(cert_dir, leaf + ".pem"), os.path.join(cert_dir, leaf + ".key"))
        if client_ca:
            ctx.verify_mode = ssl.CERT_OPTIONAL if client_ca == "optional" else ssl.CERT_REQUIRED
            ctx.load_verify_locations(os.path.join(cert_dir, "ca.pem"))
        if max_version is not None:
            ctx.maximum_version = max_version
        ctx.sni_callback = self._on_sni
        self.ctx = ctx
        self.lock = threading.Lock()
        self.counts = {}
        self.server_names = []  # SNI of each handshake (None: none sent)
        self.versions = []
        self.failures = []
        self.server = _Server(("127.0.0.1", 0), _Handler)
        self.server.origin = self
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def _add(self, key, n=1):
        with self.lock:
            self.counts[key] = self.counts.get(key, 0) + n

    def _on_sni(self, sslobj, server_name, ctx):
        with self.lock:
            self.server_names.append(server_name)

    def _failed(self, e):
        with self.lock:
            self.failures.append(repr(e))
        self._add("handshake_failures")

    def _established(self, sock):
        self._add("handshakes")
        if sock.session_reused:
            self._add("resumed")
        with self.lock:
            self.versions.append(sock.version())

    def count(self, key):
        with self.lock:
            return self.counts.get(key, 0)

    def reset(self):
        with self.lock:
            self.counts.clear()
            self.server_names.clear()
            self.versions.clear()
            self.failures.clear()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# ---- the shared proxy --------------------------------------------------------------------------

CONFIG = r"""
system { workers 2 }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
admin { listen "127.0.0.1:@admin@" }
timeouts { upstream-connect "2s"; upstream-response-header "5s" }
routes {
    route "ready" { match { path "/ready" }; respond 200 { body "ready\n" } }
@routes@
}
upstreams {
    upstream "verified" { endpoint "localhost:@site@"; tls { ca "@certs@/ca.pem" } }
    upstream "system-ca" { endpoint "localhost:@site@"; tls }
    upstream "wrong-name" { endpoint "localhost:@site@"; tls { ca "@certs@/ca.pem"; sni "other.test" } }
    upstream "wildcard" { endpoint "127.0.0.1:@site@"; tls { ca "@certs@/ca.pem"; sni "api.example.test" } }
    upstream "expired" { endpoint "localhost:@expired@"; tls { ca "@certs@/ca.pem" } }
    upstream "by-ip" { endpoint "127.0.0.1:@site@"; tls { ca "@certs@/ca.pem" } }
    upstream "insecure" { endpoint "127.0.0.1:@other@"; tls { insecure-skip-verify #true } }
    upstream "mtls" {
        endpoint "localhost:@mtls@"
        tls { ca "@certs@/ca.pem"; certificate "@certs@/client.pem" key="@certs@/client.key" }
    }
    upstream "mtls-no-cert" { endpoint "localhost:@mtls@"; tls { ca "@certs@/ca.pem" } }
    upstream "tls13-only" { endpoint "localhost:@tls12@"; tls { ca "@certs@/ca.pem"; min-version "1.3" } }
    upstream "pooled" { endpoint "localhost:@pooled@"; tls { ca "@certs@/ca.pem" } }
    upstream "idle-close" { endpoint "localhost:@idle@"; tls { ca "@certs@/ca.pem" } }
    upstream "resume13" { endpoint "localhost:@resume13@"; tls { ca "@certs@/ca.pem" }; pool { max-idle 0 } }
    upstream "resume12" { endpoint "localhost:@resume12@"; tls { ca "@certs@/ca.pem" }; pool { max-idle 0 } }
}
"""

UPSTREAMS = ["verified", "system-ca", "wrong-name", "wildcard", "expired", "by-ip", "insecure", "mtls",
             "mtls-no-cert", "tls13-only", "pooled", "idle-close", "resume13", "resume12"]


def route_lines(names):
    return "\n".join('    route "%s" { match { path-prefix "/%s/" }; upstream "%s" }' % (n, n, n) for n in names)


class UpstreamTLSTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = make_certs(os.path.join(cls.class_workdir, "certs"))
        cls.origins = {
            "site": TLSOrigin("site", cls.certs),
            "expired": TLSOrigin("expired", cls.certs, leaf="expired"),
            "other": TLSOrigin("other", cls.certs, leaf="other"),
            "mtls": TLSOrigin("mtls", cls.certs, client_ca=True),
            "tls12": TLSOrigin("tls12", cls.certs, max_version=ssl.TLSVersion.TLSv1_2),
            "pooled": TLSOrigin("pooled", cls.certs),
            "idle": TLSOrigin("idle", cls.certs, idle_timeout=0.5),
            "resume13": TLSOrigin("resume13", cls.certs),
            "resume12": TLSOrigin("resume12", cls.certs, max_version=ssl.TLSVersion.TLSv1_2),
        }
        for o in cls.origins.values():
            cls.addClassCleanup(o.stop)
        cls.port = free_port()
        cls.admin = free_port()
        values = {name: o.port for name, o in cls.origins.items()}
        cfg = render(CONFIG, port=cls.port, admin=cls.admin, certs=cls.certs,
                     routes=route_lines(UPSTREAMS), **values)
        cls.s = cls.class_sentinel(cfg, port=cls.port, admin_port=cls.admin, ready_path="/ready")

    def setUp(self):
        super().setUp()
        for o in self.origins.values():
            o.reset()

    def get(self, upstream, path="x"):
        return http_request(self.port, "GET", "/%s/%s" % (upstream, path), timeout=15)

    def stderr(self):
        return self.s.output()[1]

    def log_lines(self, *needles):
        return [line for line in self.stderr().splitlines() if all(n in line for n in needles)]

    def assert_tls_failure_logged(self, upstream, *needles):
        lines = wait_until(lambda: self.log_lines('upstream "%s"' % upstream, *needles), 5,
                           what="a log line naming upstream %s and %r" % (upstream, needles))
        return lines[-1]

    # -- verification

    def test_verified_with_ca(self):
        r = self.get("verified")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"site\n")
        self.assertEqual(self.origins["site"].server_names, ["localhost"])

    def test_system_ca_rejects_test_ca(self):
        before = self.s.metric("sentinel_upstream_tls_handshake_failures_total")
        r = self.get("system-ca")
        self.assertLocalReply(r, 502)
        line = self.assert_tls_failure_logged("system-ca", "TLS handshake failed", "localhost")
        self.assertIn("certificate", line)
        self.assertIn("127.0.0.1:%d" % self.origins["site"].port, line)
        self.assertEqual(self.origins["site"].count("requests"), 0)
        self.assertGreaterEqual(self.s.metric("sentinel_upstream_tls_handshake_failures_total"), before + 1)

    def test_wrong_name(self):
        r = self.get("wrong-name")
        self.assertLocalReply(r, 502)
        line = self.assert_tls_failure_logged("wrong-name", "hostname mismatch")
        self.assertIn("expected other.test", line)
        self.assertIn("localhost", line.split("expected other.test", 1)[1])
        self.assertEqual(self.origins["site"].server_names, ["other.test"])

    def test_wildcard_sni_on_ip_endpoint(self):
        r = self.get("wildcard")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.origins["site"].server_names, ["api.example.test"])

    def test_expired_certificate(self):
        r = self.get("expired")
        self.assertLocalReply(r, 502)
        self.assert_tls_failure_logged("expired", "TLS handshake failed", "expired")
        self.assertEqual(self.origins["expired"].count("requests"), 0)

    def test_ip_endpoint_verified_against_ip_san(self):
        r = self.get("by-ip")
        self.assertEqual(r.status, 200, r)
        # RFC 6066: no SNI for an address.
        self.assertEqual(self.origins["site"].server_names, [None])

    def test_insecure_skip_verify(self):
        # other.pem names other.test and nothing trusts it without the CA: accepted anyway.
        r = self.get("insecure")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"other\n")
        self.assertTrue(self.log_lines('upstream "insecure"', "insecure-skip-verify"),
                        "no warning at load:\n" + self.stderr()[-3000:])

    def test_min_version_refused_by_tls12_origin(self):
        r = self.get("tls13-only")
        self.assertLocalReply(r, 502)
        self.assert_tls_failure_logged("tls13-only", "TLS handshake failed")

    # -- client certificates

    def test_client_certificate(self):
        r = self.get("mtls")
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"client=commonName=test-client", r.body)

    def test_missing_client_certificate(self):
        r = self.get("mtls-no-cert")
        self.assertLocalReply(r, 502)
        self.assertEqual(self.origins["mtls"].count("requests"), 0)
        wait_until(lambda: self.origins["mtls"].count("handshake_failures") >= 1, 5,
                   what="the origin to refuse the handshake")
        # TLS 1.3: the refusal is an alert after our side of the handshake ended; still a
        # handshake failure (and a connect failure for retries and health).
        # Which line depends on whether the origin's alert outran its reset; both say why.
        line = self.assert_tls_failure_logged("mtls-no-cert", "TLS handshake failed")
        self.assertTrue("certificate required" in line or "asked for a client certificate" in line, line)

    # -- pooling and resumption

    def test_pooled_connections_reused(self):
        origin = self.origins["pooled"]
        with KeepAliveClient(self.port) as c:
            for i in range(20):
                r = c.request("GET", "/pooled/%d" % i)
                self.assertEqual(r.status, 200, r)
                if i in (5, 12):
                    time.sleep(0.35)  # idle past a sweep: the idle watch is armed, then disarmed
        self.assertEqual(origin.count("requests"), 20)
        self.assertEqual(origin.count("connections"), 1,
                         "20 sequential requests opened %d TLS connections" % origin.count("connections"))
        self.assertEqual(origin.count("handshakes"), 1)

    def test_idle_connection_closed_by_origin(self):
        # The origin closes keep-alive connections idle 0.5s: the idle watch notices, so the
        # next request takes a new connection instead of failing on the dead one.
        origin = self.origins["idle"]
        stale_before = self.s.metric("sentinel_upstream_stale_connection_retries_total")
        with KeepAliveClient(self.port) as c:
            self.assertEqual(c.request("GET", "/idle-close/1").status, 200)
            time.sleep(1.2)
            r = c.request("GET", "/idle-close/2")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(origin.count("connections"), 2)
        self.assertEqual(self.s.metric("sentinel_upstream_stale_connection_retries_total"), stale_before,
                         "the closed idle TLS connection was still taken from the pool")

    def check_resumption(self, upstream, origin_name, version, n=10):
        origin = self.origins[origin_name]
        resumed_before = self.s.metric("sentinel_upstream_tls_handshakes_total", resumed="true")
        for i in range(n):
            r = self.get(upstream, str(i))
            self.assertEqual(r.status, 200, r)
        self.assertEqual(origin.count("connections"), n, "max-idle 0: one connection per request")
        self.assertEqual(set(origin.versions), {version})
        resumed = origin.count("resumed")
        self.assertGreaterEqual(resumed, n - 1,
                                "%s: only %d of %d reconnects resumed a session" % (version, resumed, n - 1))
        self.assertGreaterEqual(self.s.metric("sentinel_upstream_tls_handshakes_total", resumed="true"),
                                resumed_before + n - 1)
        return resumed

    def test_resumption_tls13(self):
        self.check_resumption("resume13", "resume13", "TLSv1.3")

    def test_resumption_tls12(self):
        self.check_resumption("resume12", "resume12", "TLSv1.2")


# ---- reloads -----------------------------------------------------------------------------------

RELOAD_CONFIG = r"""
system { workers 1 }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
admin { listen "127.0.0.1:@admin@" }
routes {
    route "ready" { match { path "/ready" }; respond 200 { body "ready\n" } }
    route "all" { match { path-prefix "/" }; upstream "u" }
}
upstreams {
    upstream "u" { endpoint "localhost:@origin@"; @upstream_tls@ }
}
"""


class UpstreamTLSReloadTest(IntegrationTest):

    def test_reload_changing_tls_does_not_reuse_old_connections(self):
        certs = make_certs(os.path.join(self.workdir, "certs"))
        origin = TLSOrigin("r", certs, client_ca="optional")
        self.addCleanup(origin.stop)
        port, admin = free_port(), free_port()

        def config(tls):
            return render(RELOAD_CONFIG, port=port, admin=admin, origin=origin.port, upstream_tls=tls)

        plain_ca = 'tls { ca "%s/ca.pem" }' % certs
        s = self.start_sentinel(config(plain_ca), port=port, admin_port=admin, ready_path="/ready")

        def reload(text):
            before = s.metric("sentinel_config_reloads_total", result="success")
            s.write_config(text)
            s.reload_sighup()
            wait_until(lambda: s.metric("sentinel_config_reloads_total", result="success") > before, 10,
                       what="the reload")

        def request():
            r = http_request(port, "GET", "/x", timeout=10)
            self.assertEqual(r.status, 200, r)

        request()
        request()
        self.assertEqual(origin.count("connections"), 1)

        # Same settings: the context and its pooled connection carry over.
        reload(config(plain_ca + " "))
        request()
        self.assertEqual(origin.count("connections"), 1, "an unchanged tls block dropped the pool")

        # New settings (a client certificate now): a new connection, never the old one.
        reload(config('tls { ca "%s/ca.pem"; certificate "%s/client.pem" key="%s/client.key" }'
                      % (certs, certs, certs)))
        r = http_request(port, "GET", "/x", timeout=10)
        self.assertEqual(r.status, 200, r)
        self.assertIn(b"client=commonName=test-client", r.body)
        self.assertEqual(origin.count("connections"), 2)

        # tls removed: plain TCP to a TLS origin must not reuse the TLS connection (it fails).
        reload(config(""))
        r = http_request(port, "GET", "/x", timeout=10)
        self.assertNotEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()


HEALTH_CONFIG = r"""
system { workers 1 }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { match { path "/ready" }; respond 200 { body "ready\n" } }
    route "good" { match { path-prefix "/good" }; upstream "good" }
    route "bad" { match { path-prefix "/bad" }; upstream "bad" }
}
upstreams {
    upstream "good" {
        endpoint "localhost:@origin@"
        tls { ca "@certs@/ca.pem" }
        health-check { http "/healthz"; interval "200ms"; timeout "200ms"; unhealthy 2; healthy 1 }
    }
    upstream "bad" {
        endpoint "localhost:@origin@"
        tls { ca "@certs@/ca.pem"; sni "other.test" }
        health-check { http "/healthz"; interval "200ms"; timeout "200ms"; unhealthy 2 }
    }
}
"""


class UpstreamTLSHealthTest(IntegrationTest):

    def test_http_checks_speak_tls_and_verify(self):
        # HTTP health checks of a TLS upstream handshake and verify like proxied requests: the
        # "good" endpoint stays up (a plain-HTTP check would fail against a TLS origin), and
        # the name-mismatched "bad" one goes down with the verification error as the reason.
        certs = make_certs(os.path.join(self.workdir, "certs"))
        origin = TLSOrigin("h", certs)
        self.addCleanup(origin.stop)
        port = free_port()
        s = self.start_sentinel(render(HEALTH_CONFIG, port=port, origin=origin.port, certs=certs),
                                port=port, ready_path="/ready")
        wait_until(lambda: "is now DOWN" in s.output()[1], 10, what="the mismatched endpoint marked down")
        out = s.output()[1]
        self.assertIn('upstream "bad"', out)
        self.assertIn("hostname mismatch: expected other.test", out)
        self.assertNotIn('health: upstream "good" endpoint 127.0.0.1:%d is now DOWN' % origin.port, out)
        wait_until(lambda: origin.count("handshakes") >= 4, 10, what="TLS health checks")
        for _ in range(5):
            self.assertEqual(http_request(port, "GET", "/good/x", timeout=10).status, 200)
        self.assertEqual(http_request(port, "GET", "/bad/x", timeout=10).status, 503)
