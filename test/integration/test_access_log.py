"""Access log: one JSON line per request with the documented fields; none without the block."""

import json
import os
import signal
import socket
import ssl
import subprocess
import unittest

from harness import (SUPPORT, IntegrationTest, ResponseReader, closed_port, connect, free_port,
                     http_request, render, request_bytes, wait_until)

FIELDS = ("method", "path", "status", "bytes_sent", "duration_ms", "upstream", "request_id",
          "route", "client")

CONFIG = r"""
system { workers 2 }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
timeouts { upstream-response-header "300ms" }
routes {
    route "hello" { match { path "/hello" }; respond 200 { body "hi\n" } }
    route "down" { match { path "/down" }; upstream "down" }
    route "retried" { match { path-prefix "/retried/" }; upstream "half-down"; retry { attempts 2 } }
    route "app" { match { path-prefix "/" }; upstream "a" }
}
upstreams {
    upstream "a" { endpoint "@a@" }
    upstream "down" { endpoint "127.0.0.1:@closed@" }
    upstream "half-down" { endpoint "127.0.0.1:@closed@"; endpoint "@a@" }
}
@observability@
"""

MAKE_CERTS = os.path.join(SUPPORT, "make-certs.sh")


def read_lines(path):
    if not os.path.exists(path):
        return []
    with open(path, "rb") as f:
        return [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]


class AccessLogTest(IntegrationTest):

    def start(self, with_log, settings="", extra="", admin=False):
        self.a = self.start_origin("a")
        self.port = free_port()
        self.admin = free_port() if admin else None
        self.log_path = os.path.join(self.workdir, "access.log")
        obs = ('observability { access-log { format "json"; path "%s"; %s } }' % (self.log_path, settings)
               if with_log else "")
        if admin:
            obs += '\nadmin { listen "127.0.0.1:%d" }' % self.admin
        return self.start_sentinel(render(CONFIG, port=self.port, a=self.a.address,
                                          closed=closed_port(), observability=obs + "\n" + extra),
                                   port=self.port, admin_port=self.admin,
                                   ready_path="/hello")

    def entries(self):
        out = []
        for ln in read_lines(self.log_path):
            try:
                out.append(json.loads(ln))
            except ValueError:
                self.fail("access log line is not JSON: %r" % ln)
        return out

    def entries_for(self, resp):
        rid = resp.header("X-Request-Id")
        self.assertTrue(rid, "response without X-Request-Id: %r" % resp)
        return [e for e in self.entries() if e.get("request_id") == rid]

    def wait_entry(self, resp):
        wait_until(lambda: self.entries_for(resp), 10,
                   what="an access log line for request %s" % resp.header("X-Request-Id"))
        found = self.entries_for(resp)
        self.assertEqual(len(found), 1, "expected one line per request: %r" % found)
        e = found[0]
        for f in FIELDS:
            self.assertIn(f, e, "access log entry lacks %r: %r" % (f, e))
        return e

    def test_one_json_line_per_request(self):
        self.start(with_log=True)
        r1 = http_request(self.port, "GET", "/demo/get?q=1")
        r2 = http_request(self.port, "POST", "/echo", body=b"x" * 1000)
        r3 = http_request(self.port, "GET", "/status/404")
        self.assertEqual((r1.status, r2.status, r3.status), (200, 200, 404))
        get, post, notfound = self.wait_entry(r1), self.wait_entry(r2), self.wait_entry(r3)

        self.assertEqual(get["method"], "GET")
        self.assertTrue(get["path"].startswith("/demo/get"), get)
        self.assertEqual(get["status"], 200)
        self.assertEqual(get["route"], "app")
        self.assertGreaterEqual(get["bytes_sent"], len(r1.body))
        self.assertIsInstance(get["duration_ms"], (int, float))
        self.assertGreaterEqual(get["duration_ms"], 0)
        self.assertIn("127.0.0.1", str(get["client"]))
        self.assertTrue(get["upstream"], get)

        self.assertEqual(post["method"], "POST")
        self.assertEqual(post["path"], "/echo")
        self.assertEqual(post["status"], 200)
        self.assertGreaterEqual(post["bytes_sent"], 1000)

        self.assertEqual(notfound["status"], 404)
        self.assertEqual(notfound["path"], "/status/404")

    def test_byte_counts_are_per_request_on_keep_alive(self):
        self.start(with_log=True)
        s = connect(self.port)
        self.addCleanup(s.close)
        reader = ResponseReader(s, 10)
        head = b"GET /demo/ka HTTP/1.1\r\nHost: t\r\n\r\n"
        responses = []
        for _ in range(3):
            s.sendall(head)
            responses.append(reader.read_response())
        for r in responses:
            e = self.wait_entry(r)
            self.assertEqual(e["bytes_received"], len(head), e)
            self.assertEqual(e["bytes_sent"], len(r.raw_head) + len(r.body), e)

    def test_sigusr1_reopens_the_log(self):
        s = self.start(with_log=True)
        first = http_request(self.port, "GET", "/demo/before")
        self.wait_entry(first)
        rotated = self.log_path + ".1"
        os.rename(self.log_path, rotated)  # what logrotate does
        s.signal(signal.SIGUSR1)
        # Lines may still go to the renamed file until the writer has reopened: poll until a
        # request's line lands in a new file at the configured path.
        def reopened():
            r = http_request(self.port, "GET", "/demo/after")
            return os.path.exists(self.log_path)
        wait_until(reopened, 10, interval=0.1, what="a new access log file after SIGUSR1")
        after = http_request(self.port, "GET", "/demo/after-reopen")
        self.wait_entry(after)
        with open(rotated) as f:
            self.assertIn(first.header("X-Request-Id"), f.read())

    def test_slow_request_duration(self):
        self.start(with_log=True)
        r = http_request(self.port, "GET", "/slow?delay=0.15")
        self.assertEqual(r.status, 200)
        e = self.wait_entry(r)
        self.assertGreaterEqual(e["duration_ms"], 120, e)
        self.assertLess(e["duration_ms"], 5000, e)

    def test_local_reply_logged(self):
        self.start(with_log=True)
        r = http_request(self.port, "GET", "/hello")
        self.assertEqual(r.status, 200)
        e = self.wait_entry(r)
        self.assertEqual(e["route"], "hello")
        self.assertEqual(e["status"], 200)
        self.assertEqual(e["path"], "/hello")

    def test_errors_logged(self):
        self.start(with_log=True)
        s = connect(self.port)
        self.addCleanup(s.close)
        s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        bad = ResponseReader(s, 5).read_response()
        down = http_request(self.port, "GET", "/down")
        slow = http_request(self.port, "GET", "/slow?delay=2")
        self.assertEqual((bad.status, down.status, slow.status), (400, 502, 504))
        self.assertEqual(self.wait_entry(bad)["status"], 400)
        e = self.wait_entry(down)
        self.assertEqual((e["status"], e["route"]), (502, "down"))
        self.assertTrue(e["upstream"], e)
        e = self.wait_entry(slow)
        self.assertEqual((e["status"], e["route"]), (504, "app"))
        self.assertGreaterEqual(e["duration_ms"], 250, e)

    def test_no_block_no_log(self):
        s = self.start(with_log=False)
        for i in range(5):
            self.assertEqual(http_request(self.port, "GET", "/demo/nolog%d" % i).status, 200)
        s.stop(expect_code=0)
        self.assertFalse(os.path.exists(self.log_path))
        out, err = s.output()
        for ln in (out + err).splitlines():
            self.assertNotIn("/demo/nolog", ln, "a request was logged without access-log: %r" % ln)

    # -- fields, sampling -----------------------------------------------------------------

    def test_default_fields_leave_out_the_query(self):
        self.start(with_log=True)
        r = http_request(self.port, "GET", "/demo/q?token=secret")
        e = self.wait_entry(r)
        self.assertNotIn("query", e, "query strings carry secrets: not logged by default")
        self.assertNotIn("secret", json.dumps(e))
        self.assertEqual(e["path"], "/demo/q")
        for key in ("ts", "listener", "host", "bytes_received", "user_agent"):
            self.assertIn(key, e)
        for key in ("tls_version", "retries", "upstream_connect_ms", "upstream_header_ms", "trace_id"):
            self.assertNotIn(key, e)

    def test_selected_fields_in_order(self):
        self.start(with_log=True,
                   settings='fields "request-id" "status" "query" "retries" "upstream-connect-duration" '
                            '"upstream-header-duration" "route"')
        r = http_request(self.port, "GET", "/demo/q?a=1&b=two")
        self.assertEqual(r.status, 200)
        line = wait_until(lambda: [ln for ln in read_lines(self.log_path) if r.header("X-Request-Id") in ln], 10,
                          what="the access log line")[0]
        e = json.loads(line)
        self.assertEqual(list(e), ["request_id", "status", "query", "retries", "upstream_connect_ms",
                                   "upstream_header_ms", "route"], line)
        self.assertEqual((e["query"], e["retries"], e["route"]), ("a=1&b=two", 0, "app"))
        self.assertGreaterEqual(e["upstream_header_ms"], e["upstream_connect_ms"])
        # A local reply has no upstream timings: the keys are left out, not zero.
        r = http_request(self.port, "GET", "/hello")
        e = json.loads(wait_until(lambda: [ln for ln in read_lines(self.log_path)
                                           if r.header("X-Request-Id") in ln], 10, what="hello line")[0])
        self.assertEqual(list(e), ["request_id", "status", "query", "retries", "route"], e)

    def test_unknown_field_is_a_config_error(self):
        path = os.path.join(self.workdir, "bad.kdl")
        with open(path, "w") as f:
            f.write('observability { access-log { fields "status" "user-agnet" } }\n')
        from harness import SENTINEL_BIN
        p = subprocess.run([SENTINEL_BIN, "validate", path], capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode()
        self.assertNotEqual(p.returncode, 0, out)
        self.assertIn("user-agnet", out)
        self.assertIn('did you mean "user-agent"', out)

    def test_retries_field(self):
        self.start(with_log=True, settings='fields "request-id" "status" "retries" "upstream"')
        responses = [http_request(self.port, "GET", "/retried/%d" % i) for i in range(6)]
        self.assertEqual([r.status for r in responses], [200] * 6)
        entries = [self.wait_entry_raw(r) for r in responses]
        # Round robin over a closed port and the origin: about half the requests start on the
        # closed one and are retried once on the origin.
        self.assertEqual(sorted({e["retries"] for e in entries}), [0, 1], entries)
        for e in entries:
            self.assertEqual(e["upstream"], self.a.address, e)

    def wait_entry_raw(self, resp):
        rid = resp.header("X-Request-Id")
        found = wait_until(lambda: [e for e in self.entries() if e.get("request_id") == rid], 10,
                           what="an access log line for %s" % rid)
        self.assertEqual(len(found), 1, found)
        return found[0]

    def keep_alive_requests(self, paths):
        s = connect(self.port)
        self.addCleanup(s.close)
        reader = ResponseReader(s, 10)
        out = []
        for p in paths:
            s.sendall(request_bytes("GET", p, host="t"))
            out.append(reader.read_response())
        return out

    def test_sampling(self):
        self.start(with_log=True, settings="sample-percent 10", admin=True)
        # The successful readiness probe is one request; its line (or its sampled-out count)
        # may still be in the worker's 100 ms batch: wait for it before counting.
        wait_until(lambda: self.seen() >= 1, 5, what="the readiness probe logged or sampled out")
        base = self.seen()
        n = 1000
        ok = self.keep_alive_requests(["/hello"] * n)
        self.assertEqual({r.status for r in ok}, {200})
        errors = self.keep_alive_requests(["/down"] * 20)
        self.assertEqual({r.status for r in errors}, {502})
        total = base + n + len(errors)
        # Lines are flushed at least every 100 ms; sampled-out requests are counted.
        wait_until(lambda: self.seen() == total, 10, what="logged + sampled-out = requests")
        entries = self.entries()
        logged_ok = [e for e in entries if e["status"] == 200]
        logged_errors = [e for e in entries if e["status"] == 502]
        # Binomial(1000, 0.1): mean 100, standard deviation 9.5; 50..160 is over five of them.
        self.assertGreater(len(logged_ok), 50, len(logged_ok))
        self.assertLess(len(logged_ok), 160, len(logged_ok))
        self.assertEqual(len(logged_errors), len(errors), "errors are always logged")

    def test_sampling_errors_too_when_asked(self):
        self.start(with_log=True, settings="sample-percent 1; always-log-errors #false", admin=True)
        wait_until(lambda: self.seen() >= 1, 5, what="the readiness probe logged or sampled out")
        base = self.seen()
        self.keep_alive_requests(["/down"] * 50)
        wait_until(lambda: self.seen() == base + 50, 10, what="50 requests logged or sampled out")
        self.assertLess(len([e for e in self.entries() if e["status"] == 502]), 10)

    def seen(self):
        """Requests logged or sampled out so far."""
        return len(read_lines(self.log_path)) + self.metric("sentinel_access_log_sampled_out_total")

    def metric(self, name, **labels):
        from harness import metric_value, parse_metrics
        import urllib.request
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.admin, timeout=5) as f:
            return metric_value(parse_metrics(f.read().decode()), name, **labels)


class AccessLogTLSTest(IntegrationTest):

    def test_tls_version_field(self):
        certs = os.path.join(self.workdir, "certs")
        subprocess.run(["sh", MAKE_CERTS, certs], check=True, timeout=120,
                       stdin=subprocess.DEVNULL, capture_output=True)
        port, tls_port = free_port(), free_port()
        log = os.path.join(self.workdir, "access.log")
        cfg = """
listeners {
    listener "plain" { listen "127.0.0.1:%d" }
    listener "secure" {
        listen "127.0.0.1:%d"
        protocol "https"
        tls { certificate "%s/site.pem" key="%s/site.key"; max-version "1.3" }
    }
}
routes { route "hello" { match { path-prefix "/" }; respond 200 { body "hi\\n" } } }
observability { access-log { path "%s"; fields "request-id" "listener" "tls-version" "status" } }
""" % (port, tls_port, certs, certs, log)
        self.start_sentinel(cfg, port=port, ready_path="/")
        ids = {}
        for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
            ctx = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
            ctx.minimum_version = ctx.maximum_version = version
            with socket.create_connection(("127.0.0.1", tls_port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="localhost") as s:
                    s.sendall(b"GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                    r = ResponseReader(s, 10).read_response()
            self.assertEqual(r.status, 200)
            ids[r.header("X-Request-Id")] = "TLSv1.2" if version == ssl.TLSVersion.TLSv1_2 else "TLSv1.3"
        plain = http_request(port, "GET", "/p")

        def entries():
            return {e["request_id"]: e for e in map(json.loads, read_lines(log))}
        wait_until(lambda: len(entries()) >= 3, 10, what="three access log lines")
        got = entries()
        for rid, version in ids.items():
            self.assertEqual(got[rid]["tls_version"], version, got[rid])
            self.assertEqual(got[rid]["listener"], "secure")
        self.assertNotIn("tls_version", got[plain.header("X-Request-Id")], "plain HTTP has no TLS version")


if __name__ == "__main__":
    unittest.main()
