"""Checks test/support/origin.py itself (no Sentinel needed): the other modules trust its
counters, so they must be right."""

import os
import shutil
import tempfile
import unittest

from harness import (KeepAliveClient, Origin, PatternChecker, ResponseReader, connect,
                     http_request, pattern_stream, request_bytes, wait_until)


class OriginTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.mkdtemp(prefix="origin-test-")
        cls.control = os.path.join(cls.dir, "control.json")
        cls.o = Origin(cls.dir, name="t", control_file=cls.control)

    @classmethod
    def tearDownClass(cls):
        cls.o.stop()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def test_demo_echoes_request(self):
        r = http_request(self.o.port, "GET", "/demo/x?a=1", headers=[("X-Test", "1")])
        view = r.json()
        self.assertEqual((view["method"], view["path"], view["origin"]), ("GET", "/demo/x", "t"))
        self.assertIn(["X-Test", "1"], view["headers"])

    def test_keepalive_counts(self):
        self.o.reset_stats()
        with KeepAliveClient(self.o.port) as c:
            for _ in range(10):
                self.assertEqual(c.request("GET", "/healthz").status, 200)
        st = self.o.stats()
        self.assertEqual((st["requests_total"], st["connections_total"], st["connections_used"],
                          st["max_requests_per_connection"]), (10, 1, 1, 10))

    def test_echo_both_framings(self):
        r = http_request(self.o.port, "POST", "/echo", body=b"hello")
        self.assertEqual(r.body, b"hello")
        with connect(self.o.port) as s:
            s.sendall(request_bytes("POST", "/echo", "t", [("Transfer-Encoding", "chunked")])
                      + b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
            r = ResponseReader(s).read_response()
        self.assertEqual((r.header("transfer-encoding"), r.body), ("chunked", b"abcde"))

    def test_bytes_and_chunked_pattern(self):
        for path in ("/bytes/1000003", "/chunked/1000003"):
            chk = PatternChecker()
            with connect(self.o.port) as s:
                s.sendall(request_bytes("GET", path, "t"))
                r = ResponseReader(s).read_response(body_sink=chk)
            self.assertEqual((r.status, chk.count, chk.ok), (200, 1000003, True), path)

    def test_sink_pattern_and_abort(self):
        n = 3 * 1024 * 1024 + 5
        with connect(self.o.port) as s:
            s.sendall(request_bytes("POST", "/sink?pattern=1", "t", [("Content-Length", str(n))]))
            for p in pattern_stream(n):
                s.sendall(p)
            r = ResponseReader(s).read_response()
        self.assertEqual(r.json(), {"received": n, "framing": "length", "pattern_ok": True})
        before = self.o.stats()["aborted_uploads"]
        s = connect(self.o.port)
        s.sendall(request_bytes("POST", "/sink", "t", [("Content-Length", "100000")]) + b"x" * 10)
        wait_until(lambda: self.o.stats()["active_uploads"] == 1, 5)
        s.close()
        wait_until(lambda: self.o.stats()["aborted_uploads"] == before + 1, 5)

    def test_rejects_smuggling_shapes(self):
        for raw in (b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: t\r\nX: a\r\n b\r\n\r\n",
                    b"GET / HTTP/1.1\r\n\r\n"):
            with connect(self.o.port) as s:
                s.sendall(raw)
                reader = ResponseReader(s)
                self.assertEqual(reader.read_response().status, 400, raw)
                self.assertEqual(reader.read_until_eof(), b"")

    def test_status_close_and_control_file(self):
        self.assertEqual(http_request(self.o.port, "GET", "/status/503").status, 503)
        with connect(self.o.port) as s:
            s.sendall(request_bytes("GET", "/close", "t"))
            reader = ResponseReader(s)
            self.assertEqual(reader.read_response().header("connection"), "close")
            self.assertEqual(reader.read_until_eof(), b"")
        with open(self.control, "w") as f:
            f.write('{"healthz_status": 503}')
        self.assertEqual(http_request(self.o.port, "GET", "/healthz").status, 503)
        os.unlink(self.control)
        self.assertEqual(http_request(self.o.port, "GET", "/healthz").status, 200)


if __name__ == "__main__":
    unittest.main()
