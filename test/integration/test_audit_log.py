"""Audit log (one JSON line per security decision, with the request id and the reason) and the
rate-limited error/event log (a flood of identical failures → a few lines + one summary)."""

import json
import os
import re
import signal
import socket
import ssl
import subprocess

from harness import (SUPPORT, IntegrationTest, ResponseReader, connect, free_port, http_request,
                     render, wait_until)

MAKE_CERTS = os.path.join(SUPPORT, "make-certs.sh")

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners {
    listener "public" { listen "127.0.0.1:@port@" }
    listener "mtls" {
        listen "127.0.0.1:@mtls@"
        protocol "https"
        tls { certificate "@certs@/site.pem" key="@certs@/site.key"; client-auth "required"; client-ca "@certs@/ca.pem" }
    }
    listener "tls" {
        listen "127.0.0.1:@tls@"
        protocol "https"
        tls { certificate "@certs@/site.pem" key="@certs@/site.key" }
    }
}
routes {
    route "ready" { match { path "/ready" }; respond 200 { body "ready\n" } }
    // Sentinel's own https listener with the system CA: the test CA is unknown, so every
    // request fails upstream certificate verification.
    route "bad-tls" { match { path-prefix "/bad-tls/" }; upstream "bad-tls" }
    route "app" { match { path-prefix "/" }; respond 200 { body "app\n" } }
}
upstreams {
    upstream "bad-tls" { endpoint "127.0.0.1:@tls@"; tls { sni "localhost" }; pool { max-idle 0 } }
}
observability {
    @audit@
    @errorlog@
}
"""


def make_certs(directory):
    subprocess.run(["sh", MAKE_CERTS, directory], check=True, timeout=120,
                   stdin=subprocess.DEVNULL, capture_output=True)
    return directory


def read_json_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        lines = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    return [json.loads(ln) for ln in lines]


class LogsTestBase(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.certs = make_certs(os.path.join(cls.class_workdir, "certs"))

    def start(self, audit=True, errorlog=""):
        self.port, self.admin, self.mtls, self.tls = free_port(), free_port(), free_port(), free_port()
        self.audit_path = os.path.join(self.workdir, "audit.log")
        cfg = render(CONFIG, port=self.port, admin=self.admin, mtls=self.mtls, tls=self.tls,
                     certs=self.certs, audit=('audit-log { path "%s" }' % self.audit_path) if audit else "",
                     errorlog=errorlog)
        self.s = self.start_sentinel(cfg, port=self.port, admin_port=self.admin, ready_path="/ready")
        return self.s

    def audit_entries(self):
        return read_json_lines(self.audit_path)

    def wait_audit(self, pred, what):
        return wait_until(lambda: [e for e in self.audit_entries() if pred(e)], 10, what=what)

    def raw(self, data):
        s = connect(self.port)
        self.addCleanup(s.close)
        s.sendall(data)
        return ResponseReader(s, 10).read_response()


class AuditLogTest(LogsTestBase):

    def test_smuggling_attempt(self):
        self.start()
        before = self.s.metric("sentinel_audit_events_total", reason="request_smuggling")
        r = self.raw(b"POST /x HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        self.assertEqual(r.status, 400)
        rid = r.header("X-Request-Id")
        self.assertTrue(rid)
        [e] = self.wait_audit(lambda e: e.get("request_id") == rid, "an audit entry for the smuggling attempt")
        self.assertEqual(e["decision"], "blocked", e)
        self.assertEqual(e["reason"], "request_smuggling", e)
        self.assertIn("Content-Length and Transfer-Encoding", e["details"], e)
        self.assertEqual(e["listener"], "public", e)
        self.assertEqual(e["client"], "127.0.0.1", e)
        self.assertTrue(e["ts"].endswith("Z"), e)
        self.assertEqual(self.s.metric("sentinel_audit_events_total", reason="request_smuggling"), before + 1)

    def test_malformed_and_oversized_requests(self):
        self.start()
        r = self.raw(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        self.assertEqual(r.status, 400)
        rid = r.header("X-Request-Id")
        [e] = self.wait_audit(lambda e: e.get("request_id") == rid, "an audit entry for a duplicate Host")
        self.assertEqual((e["reason"], e["details"]), ("malformed_request", "several Host fields"), e)
        r = self.raw(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"x" * 40000 + b"\r\n\r\n")
        self.assertEqual(r.status, 431)
        rid = r.header("X-Request-Id")
        [e] = self.wait_audit(lambda e: e.get("request_id") == rid, "an audit entry for a 431")
        self.assertEqual(e["reason"], "headers_too_large", e)

    def test_path_traversal(self):
        self.start()
        before = self.s.metric("sentinel_audit_events_total", reason="path_traversal")
        r = self.raw(b"GET /static/../../etc/passwd HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(r.status, 400)
        rid = r.header("X-Request-Id")
        [e] = self.wait_audit(lambda e: e.get("request_id") == rid, "an audit entry for the traversal")
        self.assertEqual(e["reason"], "path_traversal", e)
        self.assertEqual(e["details"], "/static/../../etc/passwd", e)
        self.assertEqual(e["method"], "GET", e)
        self.assertEqual(self.s.metric("sentinel_audit_events_total", reason="path_traversal"), before + 1)
        # A clean request is no security decision.
        ok = http_request(self.port, "GET", "/static/a/../b")
        self.assertEqual(ok.status, 200)

    def test_missing_client_certificate(self):
        self.start()
        before = self.s.metric("sentinel_audit_events_total", reason="client_certificate")
        ctx = ssl.create_default_context(cafile=os.path.join(self.certs, "ca.pem"))
        with socket.create_connection(("127.0.0.1", self.mtls), timeout=10) as raw:
            try:
                with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                    # TLS 1.3: the client finishes first; the refusal arrives on the first read.
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    data = tls.recv(100)
                    self.assertFalse(data.startswith(b"HTTP/"), data)
            except (ssl.SSLError, ConnectionError):
                pass
        [e] = self.wait_audit(lambda e: e.get("reason") == "client_certificate",
                              "an audit entry for the missing client certificate")
        self.assertEqual(e["listener"], "mtls", e)
        self.assertEqual(e["client"], "127.0.0.1", e)
        self.assertNotIn("request_id", e, "no request was read: %r" % e)
        self.assertTrue(e["details"], e)
        wait_until(lambda: self.s.metric("sentinel_audit_events_total", reason="client_certificate") == before + 1,
                   5, what="the client_certificate audit counter")

    def test_counted_without_an_audit_log(self):
        s = self.start(audit=False)
        r = self.raw(b"GET /../x HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(r.status, 400)
        wait_until(lambda: s.metric("sentinel_audit_events_total", reason="path_traversal") == 1, 5,
                   what="the audit counter without an audit log")
        self.assertFalse(os.path.exists(self.audit_path))

    def test_sigusr1_reopens_the_audit_log(self):
        s = self.start()
        self.raw(b"GET /../one HTTP/1.1\r\nHost: t\r\n\r\n")
        self.wait_audit(lambda e: e.get("details") == "/../one", "the first audit entry")
        rotated = self.audit_path + ".1"
        os.rename(self.audit_path, rotated)
        s.signal(signal.SIGUSR1)

        def reopened():
            self.raw(b"GET /../two HTTP/1.1\r\nHost: t\r\n\r\n")
            return os.path.exists(self.audit_path)
        wait_until(reopened, 10, interval=0.1, what="a new audit log after SIGUSR1")
        self.raw(b"GET /../three HTTP/1.1\r\nHost: t\r\n\r\n")
        self.wait_audit(lambda e: e.get("details") == "/../three", "an entry in the reopened audit log")
        with open(rotated) as f:
            self.assertIn("/../one", f.read())


TLS_FAILURE = 'upstream "bad-tls": TLS handshake failed'


class EventLogTest(LogsTestBase):

    def flood(self, n):
        for i in range(n):
            r = http_request(self.port, "GET", "/bad-tls/%d" % i)
            self.assertEqual(r.status, 502, r)

    def test_repeated_failures_are_rate_limited(self):
        s = self.start(audit=False)
        n = 100
        self.flood(n)

        def summary():
            return [ln for ln in s.output()[1].splitlines() if "suppressed similar messages" in ln]
        # The summary comes once the second of the flood is over (worker housekeeping).
        wait_until(summary, 10, what="a 'suppressed similar messages' line")
        err = s.output()[1].splitlines()
        written = [ln for ln in err if TLS_FAILURE in ln and "suppressed" not in ln]
        suppressed = sum(int(re.search(r"count=(\d+)", ln).group(1)) for ln in summary())
        self.assertGreaterEqual(len(written), 1)
        self.assertLessEqual(len(written), 20, "the flood was not rate-limited:\n" + "\n".join(written[:30]))
        self.assertIn("reason=", written[0])
        self.assertIn("certificate", written[0])
        self.assertEqual(len(written) + suppressed, n, "every failure is written or counted")
        self.assertEqual(s.metric("sentinel_log_suppressed_lines_total"), suppressed)
        self.assertEqual(s.metric("sentinel_upstream_tls_handshake_failures_total"), n)

    def test_json_error_log(self):
        s = self.start(audit=False, errorlog='error-log { format "json"; level "info"; repeat-limit 2 }')
        self.flood(10)
        wait_until(lambda: any("suppressed similar messages" in ln for ln in s.output()[1].splitlines()), 10,
                   what="a JSON summary line")
        entries = []
        for ln in s.output()[1].splitlines():
            if ln.startswith("{"):
                entries.append(json.loads(ln))
        tls = [e for e in entries if e.get("msg") == TLS_FAILURE]
        self.assertTrue(tls, entries)
        self.assertEqual(tls[0]["level"], "warn")
        self.assertIn("certificate", tls[0]["reason"])
        self.assertEqual(tls[0]["endpoint"], "127.0.0.1:%d" % self.tls)
        summaries = [e for e in entries if e.get("msg") == "suppressed similar messages"]
        self.assertEqual(summaries[0]["message"], TLS_FAILURE)
        self.assertEqual(len(tls) + sum(int(e["count"]) for e in summaries), 10)


if __name__ == "__main__":
    import unittest
    unittest.main()
