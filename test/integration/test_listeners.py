"""Listener features: PROXY protocol v1/v2 (only when enabled), IPv6 binding, and reload
when the config file changes (`watch-config`)."""

import socket
import struct
import unittest

from harness import (IntegrationTest, ResponseReader, connect, free_port, http_request,
                     render, wait_until)

CONFIG = r"""
system { workers 1; watch-config #true }
listeners {
    listener "plain" { listen "127.0.0.1:@port@" }
    listener "pp" { listen "127.0.0.1:@pport@"; proxy-protocol #true }
    listener "pp-trusted" { listen "127.0.0.1:@tport@"; proxy-protocol #true; trusted-proxies "10.0.0.0/8" }
    listener "v6" { listen "[::1]:@v6port@" }
}
routes {
    route "marker" { match { path "/marker" }; respond 200 { body "@marker@\n" } }
    route "demo" { match { path-prefix "/" }; upstream "a" }
}
upstreams { upstream "a" { endpoint "@a@" } }
"""


def v2_header(src, dst, sport, dport):
    sig = b"\r\n\r\n\x00\r\nQUIT\n"
    addresses = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


class ListenersTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.class_origin("a")
        cls.ports = dict(port=free_port(), pport=free_port(), tport=free_port(),
                         v6port=free_port())
        cls.s = cls.class_sentinel(cls.config("one"), port=cls.ports["port"], ready_path="/marker")

    @classmethod
    def config(cls, marker):
        return render(CONFIG, a=cls.a.address, marker=marker, **cls.ports)

    def exchange(self, port, preface, host="127.0.0.1"):
        s = connect(port, host=host)
        self.addCleanup(s.close)
        s.sendall(preface + b"GET /demo/pp HTTP/1.1\r\nHost: t\r\nX-Forwarded-For: 10.9.9.9\r\n\r\n")
        return ResponseReader(s, 10).read_response()

    def forwarded_for(self, response):
        return [v for k, v in response.json()["headers"] if k.lower() == "x-forwarded-for"]

    def test_proxy_v1_sets_client_address(self):
        r = self.exchange(self.ports["pport"], b"PROXY TCP4 192.0.2.7 198.51.100.1 4321 80\r\n")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.forwarded_for(r), ["192.0.2.7"])

    def test_proxy_v2_sets_client_address(self):
        r = self.exchange(self.ports["pport"], v2_header("203.0.113.5", "198.51.100.1", 1000, 80))
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.forwarded_for(r), ["203.0.113.5"])

    def test_proxy_address_decides_trust(self):
        # The address from the PROXY header (10.1.2.3, trusted) extends the chain.
        r = self.exchange(self.ports["tport"], b"PROXY TCP4 10.1.2.3 198.51.100.1 4321 80\r\n")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(", ".join(self.forwarded_for(r)).replace(" ", ""), "10.9.9.9,10.1.2.3")

    def test_missing_or_bad_proxy_header_closes(self):
        for preface in (b"", b"PROXY TCP4 999.0.0.1 1.1.1.1 1 2\r\n"):
            s = connect(self.ports["pport"])
            self.addCleanup(s.close)
            s.sendall(preface + b"GET /demo/x HTTP/1.1\r\nHost: t\r\n\r\n")
            s.settimeout(5)
            data = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except ConnectionResetError:
                pass
            self.assertEqual(data, b"", "a connection without a valid PROXY header was served")

    def test_proxy_header_not_accepted_where_disabled(self):
        s = connect(self.ports["port"])
        self.addCleanup(s.close)
        s.sendall(b"PROXY TCP4 192.0.2.7 198.51.100.1 4321 80\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
        self.assertEqual(ResponseReader(s, 10).read_response().status, 400)

    def test_ipv6_listener(self):
        s = connect(self.ports["v6port"], host="::1")
        self.addCleanup(s.close)
        s.sendall(b"GET /demo/v6 HTTP/1.1\r\nHost: t\r\n\r\n")
        r = ResponseReader(s, 10).read_response()
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.forwarded_for(r), ["::1"])

    def test_watch_config_reloads_on_change(self):
        self.s.write_config(self.config("two"))

        def changed():
            return http_request(self.ports["port"], "GET", "/marker").body == b"two\n"
        wait_until(changed, 15, interval=0.1, what="the edited config file to take effect")
        self.s.write_config(self.config("one"))
        wait_until(lambda: http_request(self.ports["port"], "GET", "/marker").body == b"one\n",
                   15, interval=0.1, what="the restored config to take effect")


if __name__ == "__main__":
    unittest.main()
