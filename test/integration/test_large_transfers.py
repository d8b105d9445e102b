"""1 GiB through the proxy both ways, byte-exact, while Sentinel's peak RSS (VmHWM) stays
under 64 MiB: bodies must stream with backpressure, never be buffered whole."""

import sys
import time
import unittest

from harness import (IntegrationTest, PatternChecker, ResponseReader, connect, free_port,
                     pattern_stream, render, request_bytes, sanitizer_build)

GIB = 1024 * 1024 * 1024
HWM_LIMIT_KIB = 64 * 1024
SANITIZED = sanitizer_build()

CONFIG = r"""
system { workers 2 }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
limits { max-body "2GiB" }
routes { route "all" { match { path-prefix "/" }; upstream "a" } }
upstreams { upstream "a" { endpoint "@a@" } }
"""


class LargeTransfersTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.class_origin("a")
        cls.port = free_port()
        cls.s = cls.class_sentinel(render(CONFIG, port=cls.port, a=cls.a.address),
                                   port=cls.port)

    def assertHwm(self, what):
        hwm = self.s.hwm_kib()
        sys.stderr.write("[sentinel VmHWM %d KiB after %s] " % (hwm, what))
        if SANITIZED:
            return  # ASan/TSan shadow memory: the RSS bound only means something without it
        self.assertLess(hwm, HWM_LIMIT_KIB, "sentinel VmHWM %d KiB after %s" % (hwm, what))

    def test_download_1gib(self):
        chk = PatternChecker()
        t0 = time.monotonic()
        with connect(self.port, timeout=120) as s:
            s.sendall(request_bytes("GET", "/bytes/%d" % GIB, "a"))
            r = ResponseReader(s, 120).read_response(body_sink=chk)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("content-length"), str(GIB))
        self.assertEqual(chk.count, GIB)
        self.assertTrue(chk.ok, "download differs from the pattern at byte %s" % chk.first_bad)
        self.assertHwm("1 GiB download (%.1fs)" % (time.monotonic() - t0))

    def test_download_chunked_256mib(self):
        n = 256 * 1024 * 1024 + 13
        chk = PatternChecker()
        with connect(self.port, timeout=120) as s:
            s.sendall(request_bytes("GET", "/chunked/%d" % n, "a"))
            r = ResponseReader(s, 120).read_response(body_sink=chk)
        self.assertEqual(r.status, 200, r)
        self.assertEqual((chk.count, chk.ok), (n, True), chk.first_bad)
        self.assertHwm("256 MiB chunked download")

    def upload(self, chunked):
        headers = [("Transfer-Encoding", "chunked")] if chunked else [("Content-Length", str(GIB))]
        t0 = time.monotonic()
        with connect(self.port, timeout=120) as s:
            s.sendall(request_bytes("POST", "/sink?pattern=1", "a", headers))
            for piece in pattern_stream(GIB):
                if chunked:
                    s.sendall(b"%x\r\n" % len(piece))
                    s.sendall(piece)
                    s.sendall(b"\r\n")
                else:
                    s.sendall(piece)
            if chunked:
                s.sendall(b"0\r\n\r\n")
            r = ResponseReader(s, 120).read_response()
        self.assertEqual(r.status, 200, r)
        result = r.json()
        self.assertEqual(result["received"], GIB, result)
        self.assertTrue(result["pattern_ok"], "upload corrupted on the way: %r" % result)
        self.assertHwm("1 GiB %s upload (%.1fs)" % ("chunked" if chunked else "content-length",
                                                    time.monotonic() - t0))

    def test_upload_1gib_content_length(self):
        self.upload(chunked=False)

    def test_upload_1gib_chunked(self):
        self.upload(chunked=True)


if __name__ == "__main__":
    unittest.main()
