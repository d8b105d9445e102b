"""Hostile bytes against the real binary: the process never crashes or hangs, every
connection ends (with a 4xx or a close), and a well-formed request still works afterwards."""

import random
import socket
import unittest

from harness import IntegrationTest, free_port, http_request, render

CONFIG = r"""
system { workers 2 }
listeners { listener "p" { listen "127.0.0.1:@port@" } }
limits { max-header-bytes "4KiB"; max-request-line "1KiB" }
timeouts { client-header "1s"; client-body-idle "1s" }
routes {
    route "hello" { match { path "/hello" }; respond 200 { body "hi\n" } }
    route "app" { match { path-prefix "/" }; upstream "a" }
}
upstreams { upstream "a" { endpoint "@a@" } }
"""

FRAGMENTS = [b"GET ", b"POST ", b"/", b"/a/../b", b"%2e", b" HTTP/1.1", b" HTTP/1.0", b" HTTP/2.0",
             b"\r\n", b"\n", b"\r", b"Host: x", b"Content-Length: 5", b"Content-Length: -1",
             b"Transfer-Encoding: chunked", b"Transfer-Encoding: gzip", b"0\r\n\r\n",
             b"ffffffffffffffffff\r\n", b":", b" ", b"\t", b"\x00", b"\x80\xff", b"Expect: 100-continue",
             b"Connection: close", b"Upgrade: h2c", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"]


class GarbageTest(IntegrationTest):

    def test_random_inputs_never_hurt_the_process(self):
        a = self.start_origin("a")
        port = free_port()
        s = self.start_sentinel(render(CONFIG, port=port, a=a.address), port=port, ready_path="/hello")
        rng = random.Random(20261127)  # fixed seed: a failure reproduces
        for i in range(600):
            if rng.random() < 0.3:
                payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2000)))
            else:
                payload = b"".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 30)))
            with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
                c.sendall(payload)
                c.shutdown(socket.SHUT_WR)
                received = b""
                try:
                    while True:
                        chunk = c.recv(65536)
                        if not chunk:
                            break
                        received += chunk
                except ConnectionResetError:
                    pass
                except socket.timeout:
                    self.fail("connection %d hung; payload %r" % (i, payload[:200]))
            if received and payload.startswith(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"):
                # h2c prior knowledge (docs/architecture/http2.md): the answer is HTTP/2, starting
                # with the server's SETTINGS frame.
                self.assertEqual(received[3:5], b"\x04\x00", (payload[:200], received[:200]))
            elif received:
                self.assertTrue(received.startswith(b"HTTP/1.1 "), (payload[:200], received[:200]))
            self.assertIsNone(s.proc.poll(), "sentinel died on payload %r" % payload[:200])
        self.assertEqual(http_request(port, "GET", "/hello").status, 200)


if __name__ == "__main__":
    unittest.main()
