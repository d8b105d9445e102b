"""WebSocket proxying over HTTP/1.1 (route `websocket`, docs/architecture/websocket.md): a real
python3-websockets client and echo origin (test/support/ws_origin.py) through Sentinel, and a
raw-socket fake origin for what a real server would never send. Covers the echo both ways
(text, binary, fragmented, large), every handshake refusal (400, 426 with the version header),
an upstream 101 with the wrong Sec-WebSocket-Accept (502, upstream connection closed), routes
without `websocket` (no tunnel, with or without allow-upgrade), the idle timeout, the per-route
cap across workers (503) with its gauge, and tunnels surviving a reload that lowers the cap.

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_websocket
"""
import asyncio
import os
import socket
import subprocess
import threading
import time
import unittest

import websockets

from harness import (IntegrationTest, PYTHON, ResponseReader, connect, free_port, request_bytes,
                     spawn, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
WS_ORIGIN = os.path.join(HERE, "..", "support", "ws_origin.py")
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3; its accept value is ACCEPT
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ok\n" } }
    route "ws" { match { path "/ws" }; upstream "echo"; websocket #true }
    route "idle" { match { path "/idle" }; upstream "echo"; websocket #true { idle-timeout "600ms" } }
    route "capped" { match { path "/capped" }; upstream "echo"; websocket #true { max-connections 2 } }
    route "plain" { match { path "/plain" }; upstream "echo" }
    route "other-upgrades" { match { path "/other" }; upstream "echo"; allow-upgrade #true }
    route "fake" { match { path-prefix "/fake/" }; upstream "fake"; websocket #true }
    route "fake-plain" { match { path-prefix "/fake-plain/" }; upstream "fake"; allow-upgrade #true }
}
upstreams {
    upstream "echo" { endpoint "127.0.0.1:@origin@" }
    upstream "fake" { endpoint "127.0.0.1:@fake@" }
}
"""


def run(coro, timeout=20):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class FakeOrigin:
    """A raw HTTP/1.1 server for answers no WebSocket library would give. It records every
    request head by path; /fake/bad-accept and /fake/no-upgrade answer a 101 that fails the
    checks, then note whether the proxy closed the connection; anything else gets a 200."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.heads = {}       # path → request head text
        self.after_101 = {}   # path → "closed" | "open"
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        with conn:
            conn.settimeout(5)
            data = b""
            try:
                while b"\r\n\r\n" not in data:
                    chunk = conn.recv(4096)
                    if not chunk:
                        return
                    data += chunk
            except OSError:
                return
            head = data.split(b"\r\n\r\n")[0].decode("latin-1")
            path = head.split(" ")[1]
            with self.lock:
                self.heads[path] = head
            if path in ("/fake/bad-accept", "/fake/no-upgrade"):
                fields = ("Upgrade: websocket\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n"
                          if path == "/fake/bad-accept" else "Upgrade: foo\r\nSec-WebSocket-Accept: %s\r\n" % ACCEPT)
                conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n%s\r\n" % fields).encode())
                try:
                    state = "closed" if conn.recv(1) == b"" else "open"
                except socket.timeout:
                    state = "open"
                except OSError:
                    state = "closed"  # reset
                with self.lock:
                    self.after_101[path] = state
                return
            body = b"plain\n"
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (len(body), body))

    def head(self, path):
        with self.lock:
            return self.heads.get(path)

    def stop(self):
        self.sock.close()


def handshake_headers(**replace):
    """The fields of a valid handshake; a keyword (underscores for dashes) replaces one, None
    removes it."""
    fields = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Key": KEY,
              "Sec-WebSocket-Version": "13"}
    for name, value in replace.items():
        name = name.replace("_", "-")
        if value is None:
            fields.pop(name, None)
        else:
            fields[name] = value
    return list(fields.items())


class WebSocketTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        origin = spawn([PYTHON, WS_ORIGIN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        cls._class_procs.append(origin)
        cls.origin_port = int(origin.stdout.readline().decode().split()[1])  # "listening <port>": ready
        cls.fake = FakeOrigin()
        cls.addClassCleanup(cls.fake.stop)
        cls.port, cls.admin = free_port(), free_port()
        cls.config_text = (CONFIG.replace("@admin@", str(cls.admin)).replace("@port@", str(cls.port))
                           .replace("@origin@", str(cls.origin_port)).replace("@fake@", str(cls.fake.port)))
        cls.s = cls.class_sentinel(cls.config_text, port=cls.port, admin_port=cls.admin, ready_path="/ready")

    def url(self, path):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def refused(self, route, reason):
        return self.s.metric("sentinel_websocket_upgrades_refused_total", route=route, reason=reason)

    def raw(self, path, headers, method="GET", version="HTTP/1.1"):
        with connect(self.port) as s:
            s.sendall(request_bytes(method, path, "test.local", headers, version=version))
            return ResponseReader(s, 10).read_response(method)

    # -- tunnels -------------------------------------------------------------------------

    def test_echo_text_binary_fragmented_and_large_both_ways(self):
        async def talk():
            async with websockets.connect(self.url("/ws"), max_size=None) as ws:
                await ws.send("hello through sentinel")
                self.assertEqual(await ws.recv(), "hello through sentinel")
                await ws.send(b"\x00\x01\x02\xffbinary")
                self.assertEqual(await ws.recv(), b"\x00\x01\x02\xffbinary")
                # A fragmented message (three frames) comes back whole from the origin.
                await ws.send(["frag-1 ", "frag-2 ", "frag-3"])
                self.assertEqual(await ws.recv(), "frag-1 frag-2 frag-3")
                await ws.send([b"\x01" * 70000, b"\x02" * 5, b"\x03"])
                self.assertEqual(await ws.recv(), b"\x01" * 70000 + b"\x02" * 5 + b"\x03")
                big = os.urandom(3 * 1024 * 1024)
                await ws.send(big)
                self.assertEqual(await ws.recv(), big)
                pong = await ws.ping()
                await asyncio.wait_for(pong, 5)
        run(talk())

    def test_101_carries_the_upstream_accept_and_request_id(self):
        with connect(self.port) as s:
            s.sendall(request_bytes("GET", "/ws", "test.local", handshake_headers()))
            head = b""
            while b"\r\n\r\n" not in head:  # a 101 ends HTTP on this connection: read the head only
                chunk = s.recv(4096)
                self.assertTrue(chunk, head)
                head += chunk
        lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
        self.assertTrue(lines[0].startswith("HTTP/1.1 101 "), lines)
        fields = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        self.assertEqual(fields.get("sec-websocket-accept"), ACCEPT, lines)
        self.assertEqual(fields.get("upgrade", "").lower(), "websocket", lines)
        self.assertIn("upgrade", fields.get("connection", "").lower(), lines)
        self.assertTrue(fields.get("x-request-id"), lines)

    # -- handshake refusals --------------------------------------------------------------

    def check_refusal(self, reason, status, path, **kw):
        before = self.refused("fake", reason)
        resp = self.raw(path, kw.pop("headers"), **kw)
        self.assertLocalReply(resp, status)
        self.assertEqual(resp.header("Connection"), "close", resp)
        self.assertIsNone(self.fake.head(path), "a refused handshake reached the upstream")
        self.assertEqual(self.refused("fake", reason), before + 1)
        return resp

    def test_missing_key_is_400(self):
        self.check_refusal("key", 400, "/fake/no-key", headers=handshake_headers(Sec_WebSocket_Key=None))

    def test_key_of_the_wrong_length_is_400(self):
        self.check_refusal("key", 400, "/fake/short-key", headers=handshake_headers(Sec_WebSocket_Key="c2hvcnQ="))
        self.check_refusal("key", 400, "/fake/long-key",
                           headers=handshake_headers(Sec_WebSocket_Key="MDEyMzQ1Njc4OWFiY2RlZmdoaWo="))

    def test_version_8_is_426_naming_13(self):
        resp = self.check_refusal("unsupported_version", 426, "/fake/v8",
                                  headers=handshake_headers(Sec_WebSocket_Version="8"))
        self.assertEqual(resp.header("Sec-WebSocket-Version"), "13", resp)

    def test_missing_or_malformed_version_is_400(self):
        self.check_refusal("version", 400, "/fake/no-version", headers=handshake_headers(Sec_WebSocket_Version=None))
        self.check_refusal("version", 400, "/fake/bad-version",
                           headers=handshake_headers(Sec_WebSocket_Version="13, 8"))

    def test_post_is_400(self):
        self.check_refusal("method", 400, "/fake/post", method="POST", headers=handshake_headers())

    def test_http_1_0_is_400(self):
        self.check_refusal("http_version", 400, "/fake/http10", version="HTTP/1.0", headers=handshake_headers())

    def test_missing_connection_upgrade_is_400(self):
        self.check_refusal("connection", 400, "/fake/no-connection", headers=handshake_headers(Connection=None))
        self.check_refusal("connection", 400, "/fake/keep-alive",
                           headers=handshake_headers(Connection="keep-alive"))

    # -- the upstream's 101 --------------------------------------------------------------

    def check_bad_101(self, path):
        before = self.refused("fake", "upstream_handshake")
        bad = self.s.metric("sentinel_upstream_bad_responses_total")
        resp = self.raw(path, handshake_headers())
        self.assertLocalReply(resp, 502)
        self.assertEqual(self.refused("fake", "upstream_handshake"), before + 1)
        self.assertEqual(self.s.metric("sentinel_upstream_bad_responses_total"), bad + 1)
        head = self.fake.head(path)
        self.assertIn("Sec-WebSocket-Key: %s" % KEY, head)
        self.assertIn("Upgrade: websocket", head)
        wait_until(lambda: self.fake.after_101.get(path), 10, what="the fake origin's verdict")
        self.assertEqual(self.fake.after_101[path], "closed", "the upstream connection stayed open")

    def test_wrong_accept_from_upstream_is_502_and_closes_it(self):
        self.check_bad_101("/fake/bad-accept")

    def test_101_without_websocket_upgrade_is_502(self):
        self.check_bad_101("/fake/no-upgrade")

    # -- routes without `websocket` ------------------------------------------------------

    def test_route_without_websocket_forwards_a_plain_request(self):
        # allow-upgrade alone does not relay WebSocket: the origin sees a plain GET, no tunnel.
        before = self.refused("fake-plain", "not_enabled")
        resp = self.raw("/fake-plain/x", handshake_headers())
        self.assertEqual(resp.status, 200, resp)
        self.assertEqual(resp.body, b"plain\n")
        lines = self.fake.head("/fake-plain/x").lower().split("\r\n")
        self.assertFalse([l for l in lines if l.startswith("upgrade:")], lines)
        tokens = [t.strip() for l in lines if l.startswith("connection:") for t in l[11:].split(",")]
        self.assertNotIn("upgrade", tokens)
        self.assertIn("sec-websocket-key: " + KEY.lower(), lines)  # end-to-end fields pass as they are
        self.assertEqual(self.refused("fake-plain", "not_enabled"), before + 1)

    def test_real_client_gets_no_tunnel_without_websocket(self):
        async def attempt(path):
            with self.assertRaises(websockets.InvalidStatusCode) as caught:
                async with websockets.connect(self.url(path)):
                    pass
            return caught.exception.status_code
        # The echo origin answers a GET without Upgrade with 426.
        self.assertEqual(run(attempt("/plain")), 426)
        self.assertEqual(run(attempt("/other")), 426)
        self.assertGreaterEqual(self.refused("plain", "not_enabled"), 1)
        self.assertGreaterEqual(self.refused("other-upgrades", "not_enabled"), 1)

    def test_other_upgrade_still_relayed_with_allow_upgrade(self):
        resp = self.raw("/fake-plain/other", [("Upgrade", "foo/1"), ("Connection", "Upgrade")])
        self.assertEqual(resp.status, 200, resp)
        head = self.fake.head("/fake-plain/other")
        self.assertIn("Upgrade: foo/1", head)
        self.assertIn("Connection: upgrade", head)

    # -- idle timeout and cap ------------------------------------------------------------

    def test_idle_tunnel_is_closed_and_activity_keeps_it_open(self):
        fired = self.s.metric("sentinel_timeouts_total", kind="websocket_idle")

        async def talk():
            async with websockets.connect(self.url("/idle"), ping_interval=None) as ws:
                # Traffic every 200 ms for 1.5 s: past the 600 ms idle time, still open.
                for i in range(8):
                    if i:
                        await asyncio.sleep(0.2)
                    await ws.send("keep %d" % i)
                    self.assertEqual(await ws.recv(), "keep %d" % i)
                start = time.monotonic()  # the last byte moved just now
                with self.assertRaises(websockets.ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
                return time.monotonic() - start
        idle = run(talk())
        self.assertGreaterEqual(idle, 0.5)
        self.assertLess(idle, 5.0)
        wait_until(lambda: self.s.metric("sentinel_timeouts_total", kind="websocket_idle") >= fired + 1, 5,
                   what="the websocket_idle timeout count")

    def test_cap_per_route_across_workers_and_the_gauge(self):
        def active():
            return self.s.metric("sentinel_websocket_connections_active", route="capped")
        before = self.refused("capped", "max_connections")

        async def talk():
            # Several connections: SO_REUSEPORT spreads them over both workers, and the cap
            # (2) holds across them.
            first = await websockets.connect(self.url("/capped"))
            second = await websockets.connect(self.url("/capped"))
            try:
                wait_until(lambda: active() == 2, 5, what="gauge at 2")
                for _ in range(3):
                    with self.assertRaises(websockets.InvalidStatusCode) as caught:
                        await websockets.connect(self.url("/capped"))
                    self.assertEqual(caught.exception.status_code, 503)
                await first.send("still here")
                self.assertEqual(await first.recv(), "still here")
                await first.close()
                await asyncio.get_running_loop().run_in_executor(
                    None, lambda: wait_until(lambda: active() == 1, 5, what="gauge back to 1"))
                third = await websockets.connect(self.url("/capped"))
                await third.send("third")
                self.assertEqual(await third.recv(), "third")
                await third.close()
            finally:
                await second.close()
        run(talk())
        self.assertEqual(self.refused("capped", "max_connections"), before + 3)
        wait_until(lambda: active() == 0, 5, what="gauge back to 0")


class WebSocketReloadTest(IntegrationTest):
    """A reload keeps open tunnels relaying, and their count: lowering max-connections to the
    number already open refuses the next one at once."""

    def test_open_tunnels_survive_a_reload_and_still_count(self):
        origin = spawn([PYTHON, WS_ORIGIN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (origin.kill(), origin.wait()))
        origin_port = int(origin.stdout.readline().decode().split()[1])
        port, admin = free_port(), free_port()
        text = (CONFIG.replace("@admin@", str(admin)).replace("@port@", str(port))
                .replace("@origin@", str(origin_port)).replace("@fake@", str(free_port())))
        s = self.start_sentinel(text, port=port, admin_port=admin, ready_path="/ready")
        url = "ws://127.0.0.1:%d/ws" % port

        def reload(new_text):
            ok = s.metric("sentinel_config_reloads_total", result="success")
            s.write_config(new_text)
            s.reload_sighup()
            wait_until(lambda: s.metric("sentinel_config_reloads_total", result="success") == ok + 1, 10,
                       what="the reload")

        async def talk():
            ws = await websockets.connect(url, ping_interval=None)
            await ws.send("before")
            self.assertEqual(await ws.recv(), "before")
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, reload, text.replace(
                'route "ws" { match { path "/ws" }; upstream "echo"; websocket #true }',
                'route "ws" { match { path "/ws" }; upstream "echo"; websocket #true { max-connections 1 } }'))
            await ws.send("after")
            self.assertEqual(await ws.recv(), "after")
            with self.assertRaises(websockets.InvalidStatusCode) as caught:
                await websockets.connect(url)
            self.assertEqual(caught.exception.status_code, 503)
            await ws.close()
            await loop.run_in_executor(None, lambda: wait_until(
                lambda: s.metric("sentinel_websocket_connections_active", route="ws") == 0, 5, what="gauge 0"))
            again = await websockets.connect(url)
            await again.send("again")
            self.assertEqual(await again.recv(), "again")
            await again.close()
        run(talk(), timeout=40)


if __name__ == "__main__":
    unittest.main()
