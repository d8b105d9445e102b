"""HTTP/2 downstream (docs/architecture/http2.md) with real clients: curl (--http2 over TLS with
ALPN, --http2-prior-knowledge for h2c), nghttp, h2load, and python3-h2 for what needs frame-level
control (flow control, GOAWAY on drain, RFC 8441 WebSocket). The origin is test/support/origin.py
(HTTP/1.1), and test/support/ws_origin.py for WebSocket.

Frame-level conformance (the h2spec case list) and the abuse guards have their own modules:
test_h2_conformance and test_h2_abuse.

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_http2
"""
import json
import os
import socket
import subprocess
import threading
import time
import unittest

import h2.config
import h2.connection
import h2.events
import h2.settings

from harness import PYTHON, SUPPORT, IntegrationTest, free_port, render, spawn, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
WS_ORIGIN = os.path.join(SUPPORT, "ws_origin.py")
MAKE_CERTS = os.path.join(SUPPORT, "make-certs.sh")

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
limits { max-body "1MiB" }
listeners {
    listener "plain" { listen "127.0.0.1:@port@" }
    listener "tls" {
        listen "127.0.0.1:@tls_port@"
        protocol "https"
        tls { certificate "@certs@/site.pem" key="@certs@/site.key" }
    }
    listener "h1only" { listen "127.0.0.1:@h1_port@"; http2 #false }
    listener "narrow" {
        listen "127.0.0.1:@narrow_port@"
        http2 #true { max-concurrent-streams 4; initial-window-size "16KiB" }
    }
}
observability { access-log { path "@log@"; fields "request-id" "method" "path" "status" "protocol" "route" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ok\n" } }
    route "fixed" { priority 100; match { path "/fixed" }; respond 203 { body "fixed body\n" } }
    route "ws" { priority 100; match { path "/ws" }; upstream "ws"; websocket #true }
    route "origin" { match { path-prefix "/" }; upstream "origin" }
}
upstreams {
    upstream "origin" { endpoint "127.0.0.1:@origin@" }
    upstream "ws" { endpoint "127.0.0.1:@ws_origin@" }
}
"""


def _accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def run_curl(*args):
    return subprocess.run(["curl", "-sS", *args], capture_output=True, timeout=60)


class H2Client:
    """A python3-h2 client on a raw socket: frame-level control for what curl cannot do."""

    def __init__(self, port, settings=None, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.events = []
        self.closed = False

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, until, timeout=10.0):
        """Reads and handles frames until `until(events)` holds or the connection closes."""
        deadline = time.monotonic() + timeout
        while not until(self.events):
            if self.closed:
                return False
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return False
            if not data:
                self.closed = True
                continue
            self.events.extend(self.conn.receive_data(data))
            self.flush()
        return True

    def request(self, path, method="GET", body=None, extra=()):
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", method), (":scheme", "http"), (":authority", "test.local"), (":path", path),
                   *extra]
        self.conn.send_headers(sid, headers, end_stream=body is None)
        if body is not None:
            self.conn.send_data(sid, body, end_stream=True)
        self.flush()
        return sid

    def of(self, sid, kind):
        return [e for e in self.events if isinstance(e, kind) and getattr(e, "stream_id", None) == sid]

    def ended(self, sid):
        return lambda ev: any(isinstance(e, (h2.events.StreamEnded, h2.events.StreamReset))
                              and e.stream_id == sid for e in ev)

    def body(self, sid):
        return b"".join(e.data for e in self.of(sid, h2.events.DataReceived))

    def status(self, sid):
        for e in self.of(sid, h2.events.ResponseReceived):
            return int(dict(e.headers)[":status"])
        return None

    def close(self):
        self.sock.close()


class Http2Test(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        certs = os.path.join(cls.class_workdir, "certs")
        subprocess.run(["sh", MAKE_CERTS, certs], check=True, timeout=120, stdin=subprocess.DEVNULL,
                       capture_output=True)
        cls.ca = os.path.join(certs, "ca.pem")
        cls.origin = cls.class_origin()
        ws = spawn([PYTHON, WS_ORIGIN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        cls._class_procs.append(ws)
        ws_port = int(ws.stdout.readline().decode().split()[1])
        cls.port, cls.tls_port, cls.h1_port, cls.narrow_port, cls.admin = (free_port() for _ in range(5))
        cls.log = os.path.join(cls.class_workdir, "access.log")
        cls.s = cls.class_sentinel(
            render(CONFIG, admin=cls.admin, port=cls.port, tls_port=cls.tls_port, h1_port=cls.h1_port,
                   narrow_port=cls.narrow_port, certs=certs, origin=cls.origin.port, ws_origin=ws_port,
                   log=cls.log),
            port=cls.port, admin_port=cls.admin, ready_path="/ready")

    def url(self, path, tls=False, port=None):
        if tls:
            return "https://localhost:%d%s" % (self.tls_port, path)
        return "http://127.0.0.1:%d%s" % (port or self.port, path)

    def curl2(self, *args):
        """curl over h2c prior knowledge: (http_version, status, body)."""
        p = run_curl("-s", "--http2-prior-knowledge", "-w", "\n%{http_version} %{http_code}", *args)
        body, _, tail = p.stdout.rpartition(b"\n")
        version, status = tail.decode().split()
        return version, int(status), body

    # -- negotiation ---------------------------------------------------------------------

    def test_h2c_prior_knowledge_proxies_to_the_http1_origin(self):
        version, status, body = self.curl2(self.url("/headers"))
        self.assertEqual((version, status), ("2", 200))
        seen = {k.lower(): v for k, v in json.loads(body)["headers"]}
        # The pipeline's forwarding rules applied to the h2 request.
        self.assertEqual(seen["x-forwarded-for"], "127.0.0.1")
        self.assertEqual(seen["x-forwarded-proto"], "http")
        self.assertEqual(seen["host"], "127.0.0.1:%d" % self.port)
        self.assertTrue(seen["x-request-id"])

    def test_alpn_h2_over_tls_and_http11_when_not_offered(self):
        p = run_curl("-s", "--cacert", self.ca, "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                 self.url("/headers", tls=True))
        self.assertEqual(p.stdout.decode(), "2 200")
        p = run_curl("-s", "--cacert", self.ca, "--http1.1", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                 self.url("/headers", tls=True))
        self.assertEqual(p.stdout.decode(), "1.1 200")
        # X-Forwarded-Proto comes from the TLS connection the stream rides on.
        p = run_curl("-s", "--cacert", self.ca, "--http2", self.url("/headers", tls=True))
        seen = {k.lower(): v for k, v in json.loads(p.stdout)["headers"]}
        self.assertEqual(seen["x-forwarded-proto"], "https")

    def test_http1_clients_are_unaffected_on_a_listener_with_http2(self):
        p = run_curl("-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", self.url("/headers"))
        self.assertEqual(p.stdout.decode(), "1.1 200")

    def test_http2_false_serves_http1_only(self):
        p = run_curl("-s", "-o", "/dev/null", "-w", "%{http_version} %{http_code}", self.url("/headers", port=self.h1_port))
        self.assertEqual(p.stdout.decode(), "1.1 200")
        # The preface is then an HTTP/1.1 request line for version 2.0: 505, closed.
        with socket.create_connection(("127.0.0.1", self.h1_port), timeout=5) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            reply = s.recv(4096)
        self.assertTrue(reply.startswith(b"HTTP/1.1 505 "), reply)

    # -- the request pipeline on streams -------------------------------------------------

    def test_local_answers_and_limits_apply_to_streams(self):
        self.assertEqual(self.curl2(self.url("/fixed"))[1:], (203, b"fixed body\n"))
        # max-body (1MiB) refuses a declared body before reading it: 413, then RST_STREAM
        # NO_ERROR asks the client to stop sending (RFC 9113 §8.1).
        c = H2Client(self.port)
        try:
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", "test.local"),
                                      (":path", "/echo"), ("content-length", "2000000")])
            c.conn.send_data(sid, b"x" * 1000)
            c.flush()
            c.pump(c.ended(sid))
            self.assertEqual(c.status(sid), 413)
            c.pump(lambda ev: any(isinstance(e, h2.events.StreamReset) and e.stream_id == sid for e in ev), timeout=3)
            resets = [e.error_code for e in c.events if isinstance(e, h2.events.StreamReset)]
            self.assertEqual(resets, [0], c.events)
        finally:
            c.close()
        _, status, _ = self.curl2(self.url("/a/../../etc/passwd"), "--path-as-is")
        self.assertEqual(status, 400)

    def test_request_bodies_with_and_without_content_length(self):
        data = os.urandom(300 * 1000)
        src = os.path.join(self.workdir, "body.bin")
        with open(src, "wb") as f:
            f.write(data)
        out = os.path.join(self.workdir, "out.bin")
        _, status, _ = self.curl2("-X", "POST", "--data-binary", "@" + src, "-o", out, self.url("/echo"))
        self.assertEqual(status, 200)
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)
        # No content-length: the stream's DATA reach the origin re-framed as chunked.
        p = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-X", "POST", "-H", "Transfer-Encoding: chunked",
                            "--data-binary", "@-", "-o", out, "-w", "%{http_code}", self.url("/echo")],
                           input=data, capture_output=True, timeout=30)
        self.assertEqual(p.stdout, b"200")
        with open(out, "rb") as f:
            self.assertEqual(f.read(), data)

    def test_large_and_chunked_responses(self):
        out = os.path.join(self.workdir, "big.bin")
        for path in ("/bytes/5000000", "/chunked/3000000"):
            _, status, _ = self.curl2("-o", out, self.url(path))
            self.assertEqual(status, 200)
            self.assertEqual(os.path.getsize(out), int(path.rsplit("/", 1)[1]))

    def test_head_and_no_content_answers_have_no_body(self):
        c = H2Client(self.port)
        try:
            sid = c.request("/bytes/1000", method="HEAD")
            self.assertTrue(c.pump(c.ended(sid)))
            self.assertEqual(c.status(sid), 200)
            self.assertEqual(c.body(sid), b"")
        finally:
            c.close()

    def test_nghttp_multiplexes_many_streams_on_one_connection(self):
        p = subprocess.run(["nghttp", "-ns", "-m", "30", self.url("/bytes/20000")], capture_output=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr[-2000:])
        p = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "32", self.url("/bytes/100")],
                           capture_output=True, timeout=120)
        out = p.stdout.decode()
        self.assertIn("2000 succeeded, 0 failed, 0 errored", out, out)
        self.assertIn("2000 2xx", out, out)

    def test_access_log_and_metrics_show_http2(self):
        before = self.s.metric("sentinel_http2_streams_total")
        _, status, _ = self.curl2("-H", "x-request-id: h2-log-check", self.url("/headers"))
        self.assertEqual(status, 200)

        def logged():
            with open(self.log) as f:
                return [json.loads(l) for l in f if "h2-log-check" in l]
        wait_until(lambda: logged(), 5, what="access log line")
        line = logged()[0]
        self.assertEqual((line["protocol"], line["status"], line["route"]), ("HTTP/2", 200, "origin"))
        self.assertGreaterEqual(self.s.metric("sentinel_http2_streams_total"), before + 1)
        self.assertGreaterEqual(self.s.metric("sentinel_http2_connections_total"), 1)

    # -- flow control --------------------------------------------------------------------

    def test_a_client_that_does_not_read_holds_the_upstream_back(self):
        # The client opens no window beyond the initial 65,535 bytes and never reads more: the
        # stream gets exactly that, and the rest stays in the origin (bounded buffering), not
        # in Sentinel.
        rss_before = self.rss()
        c = H2Client(self.port)
        c.conn.local_settings = h2.settings.Settings(client=True, initial_values={
            h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
        try:
            sid = c.request("/bytes/60000000")
            c.pump(lambda ev: False, timeout=1.5)  # read what comes, acknowledge nothing
            received = len(c.body(sid))
            self.assertLessEqual(received, 65535)
            self.assertGreater(received, 0)
            self.assertLess(self.rss() - rss_before, 16 * 1024, "Sentinel buffered the response")
            # Opening the window lets the rest flow.
            c.conn.increment_flow_control_window(1 << 20, stream_id=sid)
            c.conn.increment_flow_control_window(1 << 20)
            c.flush()
            c.pump(lambda ev: len(c.body(sid)) > received + 500000, timeout=10)
            self.assertGreater(len(c.body(sid)), received + 500000)
        finally:
            c.close()

    def test_an_upstream_that_does_not_read_holds_the_client_back(self):
        # The origin accepts and never reads: the request body fills the socket buffers, the
        # pipeline stops reading, Sentinel stops opening the stream's window, and the client
        # can send no more. Nothing piles up in Sentinel.
        sink = socket.socket()
        sink.bind(("127.0.0.1", 0))
        sink.listen(4)
        self.addCleanup(sink.close)
        port, admin = free_port(), free_port()
        config = render(CONFIG, admin=admin, port=port, tls_port=free_port(), h1_port=free_port(),
                        narrow_port=free_port(), certs=os.path.join(self.class_workdir, "certs"),
                        origin=sink.getsockname()[1], ws_origin=1, log=os.path.join(self.workdir, "a.log"))
        s = self.start_sentinel(config.replace('max-body "1MiB"', 'max-body "1GiB"'), port=port,
                                admin_port=admin, ready_path="/ready")
        rss_before = self.rss(s)
        c = H2Client(port)
        try:
            c.pump(lambda ev: any(isinstance(e, h2.events.SettingsAcknowledged) for e in ev))
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "POST"), (":scheme", "http"), (":authority", "test.local"),
                                      (":path", "/upload"), ("content-length", str(1 << 30))])
            c.flush()
            sent, stalled_since, chunk = 0, None, b"u" * 16384
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                room = min(c.conn.local_flow_control_window(sid), len(chunk))
                if room > 0:
                    c.conn.send_data(sid, chunk[:room])
                    c.flush()
                    sent += room
                    stalled_since = None
                    continue
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 1.5:
                    break
                c.pump(lambda ev: c.conn.local_flow_control_window(sid) > 0, timeout=0.2)
            self.assertIsNotNone(stalled_since, "the client was never held back (sent %d bytes)" % sent)
            self.assertLess(sent, 64 << 20, "sent %d bytes into an origin that reads nothing" % sent)
            self.assertLess(self.rss(s) - rss_before, 8 * 1024, "Sentinel buffered the request body")
        finally:
            c.close()

    def test_upstream_chunked_trailers_reach_the_client_as_http2_trailers(self):
        origin = socket.socket()
        origin.bind(("127.0.0.1", 0))
        origin.listen(4)
        self.addCleanup(origin.close)

        def serve():
            conn, _ = origin.accept()
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/grpc\r\nTransfer-Encoding: chunked\r\n"
                             b"Connection: close\r\n\r\n5\r\nhello\r\n0\r\nGrpc-Status: 0\r\n"
                             b"Grpc-Message: fine\r\n\r\n")
        threading.Thread(target=serve, daemon=True).start()
        port, admin = free_port(), free_port()
        config = render(CONFIG, admin=admin, port=port, tls_port=free_port(), h1_port=free_port(),
                        narrow_port=free_port(), certs=os.path.join(self.class_workdir, "certs"),
                        origin=origin.getsockname()[1], ws_origin=1, log=os.path.join(self.workdir, "a.log"))
        self.start_sentinel(config, port=port, admin_port=admin, ready_path="/ready")
        c = H2Client(port)
        try:
            sid = c.request("/svc/Method", method="POST", body=b"\x00\x00\x00\x00\x00",
                            extra=[("content-type", "application/grpc"), ("te", "trailers")])
            self.assertTrue(c.pump(c.ended(sid)), c.events)
            self.assertEqual(c.status(sid), 200)
            self.assertEqual(c.body(sid), b"hello")
            trailers = [dict(e.headers) for e in c.events if isinstance(e, h2.events.TrailersReceived)]
            self.assertEqual(trailers, [{"grpc-status": "0", "grpc-message": "fine"}], c.events)
        finally:
            c.close()

    def rss(self, s=None):
        s = s or self.s
        with open("/proc/%d/status" % s.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def test_streams_beyond_the_announced_limit_end_the_connection(self):
        before = self.s.metric("sentinel_http2_abuse_total", kind="too_many_streams")
        c = H2Client(self.narrow_port)
        try:
            c.pump(lambda ev: any(isinstance(e, h2.events.SettingsAcknowledged) for e in ev))
            self.assertEqual(c.conn.remote_settings.max_concurrent_streams, 4)
            # python-h2 would queue a fifth stream; go around its check.
            c.conn.remote_settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS] = 100
            c.conn.remote_settings.acknowledge()
            for _ in range(5):
                c.request("/slow?delay=1")
            c.pump(lambda ev: any(isinstance(e, h2.events.ConnectionTerminated) for e in ev), timeout=5)
            goaway = [e for e in c.events if isinstance(e, h2.events.ConnectionTerminated)]
            self.assertTrue(goaway, c.events)
            self.assertEqual(goaway[0].error_code, 1)  # PROTOCOL_ERROR (RFC 9113 §5.1.2)
        finally:
            c.close()
        wait_until(lambda: self.s.metric("sentinel_http2_abuse_total", kind="too_many_streams") == before + 1, 5,
                   what="too_many_streams counted")
        # Other connections are unaffected.
        self.assertEqual(self.curl2(self.url("/fixed", port=self.narrow_port))[1], 203)

    # -- drain ---------------------------------------------------------------------------

    def test_drain_sends_goaway_and_open_streams_finish(self):
        port, admin = free_port(), free_port()
        s = self.start_sentinel(render(CONFIG, admin=admin, port=port, tls_port=free_port(), h1_port=free_port(),
                                       narrow_port=free_port(), certs=os.path.join(self.class_workdir, "certs"),
                                       origin=self.origin.port, ws_origin=1, log=os.path.join(self.workdir, "a.log")),
                                port=port, admin_port=admin, ready_path="/ready")
        c = H2Client(port)
        try:
            sid = c.request("/slow?delay=1")
            wait_until(lambda: s.metric("sentinel_http2_streams_total") >= 1, 5, what="stream started")
            self.assertEqual(s.admin_post("/drain").status, 200)
            c.pump(lambda ev: any(isinstance(e, h2.events.ConnectionTerminated) for e in ev), timeout=5)
            goaway = [e for e in c.events if isinstance(e, h2.events.ConnectionTerminated)]
            self.assertTrue(goaway, c.events)
            self.assertEqual(goaway[0].error_code, 0)
            self.assertGreaterEqual(goaway[0].last_stream_id, sid)
            # After GOAWAY python-h2 takes no more frames: read the rest of the stream raw.
            data = b""
            c.sock.settimeout(5)
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    break
                data += chunk
            heads = self._frame_heads(data)
            ended = [h for h in heads if h[1] & 0x1 and int.from_bytes(h[2:6], "big") == sid]
            self.assertTrue(ended or c.ended(sid)(c.events), "the in-flight stream did not finish: %r" % heads)
        finally:
            c.close()

    def test_idle_connection_gets_goaway_and_a_removed_listener_refuses_new_streams(self):
        port, other, admin = free_port(), free_port(), free_port()
        config = render(CONFIG, admin=admin, port=port, tls_port=free_port(), h1_port=free_port(),
                        narrow_port=other, certs=os.path.join(self.class_workdir, "certs"),
                        origin=self.origin.port, ws_origin=1, log=os.path.join(self.workdir, "a.log"))
        config = config.replace("limits {", 'timeouts { keepalive-idle "700ms" }\nlimits {')
        s = self.start_sentinel(config, port=port, admin_port=admin, ready_path="/ready")
        # keepalive-idle with no stream running: GOAWAY(NO_ERROR), then the close.
        c = H2Client(port)
        try:
            sid = c.request("/bytes/10")
            self.assertTrue(c.pump(c.ended(sid)))
            self.assertTrue(c.pump(lambda ev: any(isinstance(e, h2.events.ConnectionTerminated) for e in ev),
                                   timeout=5), c.events)
            goaway = [e for e in c.events if isinstance(e, h2.events.ConnectionTerminated)][0]
            self.assertEqual((goaway.error_code, goaway.last_stream_id), (0, sid))
        finally:
            c.close()
        # A reload removes the listener this connection came in on: its next stream is refused
        # (REFUSED_STREAM: safe to retry) and the connection drains.
        c = H2Client(other)
        try:
            sid = c.request("/bytes/10")
            self.assertTrue(c.pump(c.ended(sid)))
            s.write_config(config.replace('http2 #true { max-concurrent-streams 4; initial-window-size "16KiB" }',
                                          "http2 #true").replace('listener "narrow" {', 'listener "narrow2" {')
                           .replace("127.0.0.1:%d" % other, "127.0.0.1:%d" % free_port()))
            s.reload_sighup()
            wait_until(lambda: not _accepts(other), 10, what="the old listener closed")
            sid = c.request("/bytes/10")
            self.assertTrue(c.pump(c.ended(sid)), c.events)
            resets = [e.error_code for e in c.events if isinstance(e, h2.events.StreamReset) and e.stream_id == sid]
            self.assertEqual(resets, [7], c.events)  # REFUSED_STREAM
            self.assertTrue(c.pump(lambda ev: any(isinstance(e, h2.events.ConnectionTerminated) for e in ev)),
                            c.events)
        finally:
            c.close()

    @staticmethod
    def _frame_heads(data):
        """type, flags and stream id of each frame in `data` (9-byte heads), as bytes."""
        out, i = [], 0
        while i + 9 <= len(data):
            length = int.from_bytes(data[i:i + 3], "big")
            out.append(data[i + 3:i + 9])
            i += 9 + length
        return out

    # -- RFC 8441 ------------------------------------------------------------------------

    def test_websocket_over_http2_extended_connect(self):
        c = H2Client(self.port)
        try:
            c.pump(lambda ev: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in ev))
            settings = [e for e in c.events if isinstance(e, h2.events.RemoteSettingsChanged)][0]
            self.assertEqual(settings.changed_settings[8].new_value, 1)  # ENABLE_CONNECT_PROTOCOL
            sid = c.conn.get_next_available_stream_id()
            c.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                      (":path", "/ws"), (":authority", "test.local"),
                                      ("sec-websocket-version", "13")])
            c.flush()
            c.pump(lambda ev: c.status(sid) is not None)
            self.assertEqual(c.status(sid), 200, c.events)
            # A masked text frame "hello h2" through the tunnel; the origin echoes it unmasked.
            payload = b"hello h2"
            mask = b"\x01\x02\x03\x04"
            frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
            c.conn.send_data(sid, frame)
            c.flush()
            c.pump(lambda ev: len(c.body(sid)) >= 2 + len(payload))
            self.assertEqual(c.body(sid), bytes([0x81, len(payload)]) + payload)
        finally:
            c.close()
        wait_until(lambda: self.s.metric("sentinel_websocket_connections_active", route="ws") == 0, 5,
                   what="the tunnel closed with the stream")

    def test_extended_connect_with_a_bad_version_gets_the_websocket_refusal(self):
        c = H2Client(self.port)
        try:
            sid = c.conn.get_next_available_stream_id()
            c.pump(lambda ev: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in ev))
            c.conn.send_headers(sid, [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "http"),
                                      (":path", "/ws"), (":authority", "test.local"),
                                      ("sec-websocket-version", "8")], end_stream=True)
            c.flush()
            c.pump(c.ended(sid))
            self.assertEqual(c.status(sid), 426)
        finally:
            c.close()


if __name__ == "__main__":
    unittest.main()
