"""HTTP/2 abuse protection on the real `sentinel` binary (h2c with prior knowledge on an
`http` listener, test/support/origin.py behind it), with raw frames from
test/support/h2_frames.py.

One test per abuse kind. Each sends its attack on one connection and asserts:
- that connection gets GOAWAY(ENHANCE_YOUR_CALM) and is closed (a bare close is accepted
  when the server shut the socket before the GOAWAY could be read);
- `sentinel_http2_abuse_total{kind=KIND}` went up by exactly 1;
- a connection opened while the attack was being processed, and another opened after it,
  both get 200 through the proxy.

The kinds and their triggers (per connection): rapid_reset (1000 HEADERS+RST_STREAM pairs:
burst 100, 10/s), continuation_flood (more than 32 CONTINUATION frames in one header block),
settings_flood and ping_flood (burst 100, 10/s), empty_frames (zero-length DATA without
END_STREAM: burst 100, 10/s), hpack_bomb (a block decoding past max-header-list-size at more
than 8x its compressed size), too_many_streams (streams beyond the acknowledged
MAX_CONCURRENT_STREAMS: GOAWAY(PROTOCOL_ERROR) from nghttp2, counted).

Also: a large header block that is not a bomb gets 431 on its stream and the connection
stays usable; POST /drain and SIGTERM send GOAWAY(NO_ERROR) with the last processed stream and
let the stream in flight finish with 200.

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_h2_abuse
"""

import random
import signal
import string
import sys
import time
import unittest

from harness import SUPPORT, IntegrationTest, free_port, render, wait_until

sys.path.insert(0, SUPPORT)
import h2_frames as h  # noqa: E402
from h2_frames import (CANCEL, CLOSED, DATA, ENHANCE_YOUR_CALM, GOAWAY, HEADERS,  # noqa: E402
                       NO_ERROR, PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM,
                       SETTINGS_INITIAL_WINDOW_SIZE, H2Client, RawH2Conn, continuation_frame,
                       data_frame, h2_get, headers_frame, hpack_indexed, hpack_literal,
                       ping_frame, plain_block, rst_stream_frame, settings_frame)

CONFIG = r"""
system { workers 2; graceful-shutdown "20s" }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes { route "all" { match { path-prefix "/" }; upstream "origin" } }
upstreams { upstream "origin" { endpoint "@origin@" } }
"""

ABUSE = "sentinel_http2_abuse_total"
REFUSED = "sentinel_http2_streams_refused_total"
MAX_STREAMS = 100          # the listener default (max-concurrent-streams)
MAX_HEADER_LIST = 32 * 1024  # the listener default (max-header-list-size)


def request_fields(authority, method="GET", path="/"):
    return [(":method", method), (":scheme", "http"), (":path", path), (":authority", authority)]


class H2AbuseBase(IntegrationTest):

    def raw(self, handshake=True, **kw):
        c = RawH2Conn(self.port, **kw)
        self.addCleanup(c.close)
        if handshake:
            c.handshake()
        return c

    def block(self, c, method="GET", path="/", extra=()):
        """Literals without indexing: no dynamic-table state to keep in step."""
        return plain_block(request_fields(c.authority, method, path) + list(extra))

    def abuse(self, kind):
        return self.sentinel.metric(ABUSE, kind=kind)

    def refused(self):
        return self.sentinel.metric(REFUSED)

    def assert_metric_rises_by(self, read, before, by, what):
        """`read()` reaches before+by within 5 s and is still there a moment later (a
        second count of the same event would show)."""
        try:
            wait_until(lambda: read() >= before + by, 5, what=what)
        except AssertionError:
            self.fail("%s: %s went %s → %s, expected +%s" % (what, what, before, read(), by))
        time.sleep(0.3)
        self.assertEqual(read(), before + by, "%s counted more than once" % what)

    def assert_proxy_ok(self, label):
        status, headers, body = h2_get(self.port, "/demo/%s" % label)
        self.assertEqual(status, 200, "%s: %r %r" % (label, headers, body[:200]))


class H2Abuse(H2AbuseBase):
    """One Sentinel for every attack: each attack must leave it serving."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = cls.class_origin("origin")
        cls.port = free_port()
        cls.admin = free_port()
        cls.sentinel = cls.class_sentinel(
            render(CONFIG, port=cls.port, admin=cls.admin, origin=cls.origin.address),
            port=cls.port, admin_port=cls.admin)

    def attack(self, kind, send_attack, code=None):
        """Runs one attack connection through `send_attack(conn)` and checks the verdict
        (GOAWAY with `code`, ENHANCE_YOUR_CALM by default), the metric, and a bystander opened
        during the attack plus one opened after it."""
        code = ENHANCE_YOUR_CALM if code is None else code
        before = self.abuse(kind)
        c = self.raw()
        send_attack(c)
        # A connection opened while the attack is being processed.
        with H2Client(self.port) as bystander:
            status, headers, body = bystander.request("GET", "/demo/during-%s" % kind)
            self.assertEqual(status, 200, "bystander during %s: %r %r" % (kind, headers, body[:200]))
            ev = c.expect_connection_error(code)
            if ev is not CLOSED:
                c.expect_close()
            # Still usable after the attacker was thrown out.
            status, headers, body = bystander.request("GET", "/demo/bystander-after-%s" % kind)
            self.assertEqual(status, 200, "bystander after %s: %r %r" % (kind, headers, body[:200]))
        self.assert_metric_rises_by(lambda: self.abuse(kind), before, 1,
                                    '%s{kind="%s"}' % (ABUSE, kind))
        self.assert_proxy_ok("after-%s" % kind)
        return ev

    # -- the kinds ----------------------------------------------------------------------------

    def test_rapid_reset(self):
        """1000 HEADERS+RST_STREAM(CANCEL) pairs back to back on requests whose responses
        cannot have completed (the origin holds /slow for 5 s)."""
        def send(c):
            block = self.block(c, "GET", "/slow?delay=5")
            burst = b"".join(headers_frame(sid, block, end_stream=True) + rst_stream_frame(sid, CANCEL)
                             for sid in range(1, 2000, 2))
            c.send(burst)
        self.attack("rapid_reset", send)

    def test_continuation_flood(self):
        """One header block in a HEADERS frame and 64 non-empty CONTINUATION frames, none
        with END_HEADERS."""
        def send(c):
            frames = [headers_frame(1, self.block(c), end_stream=True, end_headers=False)]
            frames += [continuation_frame(1, hpack_literal("x-c%d" % i, "v"), end_headers=False)
                       for i in range(64)]
            c.send(b"".join(frames))
        self.attack("continuation_flood", send)

    def test_settings_flood(self):
        """500 SETTINGS frames back to back."""
        def send(c):
            c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 65535)]) * 500)
        self.attack("settings_flood", send)

    def test_ping_flood(self):
        """500 PING frames back to back."""
        def send(c):
            c.send(b"".join(ping_frame(i.to_bytes(8, "big")) for i in range(500)))
        self.attack("ping_flood", send)

    def test_empty_frames(self):
        """A POST, then 500 zero-length DATA frames without END_STREAM."""
        def send(c):
            c.send(headers_frame(1, self.block(c, "POST", "/sink"), end_stream=False))
            c.send(data_frame(1, b"", end_stream=False) * 500)
        self.attack("empty_frames", send)

    def bomb_block(self, c, path, references, insert=True):
        """Request fields as literals, then (insert) one 4000-octet header with incremental
        indexing, then `references` indexed references to it (dynamic index 62)."""
        block = self.block(c, "GET", path)
        if insert:
            block += hpack_literal("x-bomb", "b" * 4000, indexing="incremental")
        return block + hpack_indexed(62) * references

    def test_hpack_bomb(self):
        """The contract's example in one header block: insert one 4000-octet header into the
        dynamic table, reference it 100 times (~4.2 KB that decode to ~400 KB: 97x)."""
        def send(c):
            bomb = self.bomb_block(c, "/demo/bomb", 100)
            self.assertGreater(101 * (6 + 4000), 8 * len(bomb))
            c.send(headers_frame(1, bomb, end_stream=True))
        self.attack("hpack_bomb", send)

    def test_hpack_bomb_references_only(self):
        """A first request inserts the 4000-octet header (a normal 200); the next block only
        references it 100 times: ~140 octets that decode to ~400 KB."""
        def send(c):
            c.send(headers_frame(1, self.block(c, "GET", "/demo/insert")
                                 + hpack_literal("x-bomb", "b" * 4000, indexing="incremental"),
                                 end_stream=True))
            head, _, _ = c.read_response(1)
            self.assertEqual(h.header_value(head, ":status"), "200", head)
            bomb = self.bomb_block(c, "/demo/bomb", 100, insert=False)
            self.assertLess(len(bomb), 200)
            c.send(headers_frame(3, bomb, end_stream=True))
        self.attack("hpack_bomb", send)

    def test_hpack_bomb_more_references(self):
        """The same bomb with 1000 references in one block: ~5 KB that decode to ~4 MB
        (800x). More references must not turn a bomb into a mere 431."""
        def send(c):
            bomb = self.bomb_block(c, "/demo/bigger-bomb", 1000)
            self.assertGreater(1001 * (6 + 4000), 8 * len(bomb))
            c.send(headers_frame(1, bomb, end_stream=True))
        self.attack("hpack_bomb", send)

    def test_too_many_streams(self):
        """100 streams held open at the origin, then 150 more HEADERS after the client
        acknowledged SETTINGS_MAX_CONCURRENT_STREAMS=100: a client that breaks the limit it
        acknowledged loses the connection, GOAWAY(PROTOCOL_ERROR) from nghttp2 (RFC 9113
        §5.1.2 makes it a stream error and §5.4.2 lets an endpoint treat a stream error as a
        connection error), counted as too_many_streams. (Streams opened before the client
        could see the limit get REFUSED_STREAM instead: nghttp2's pending-settings check.)"""
        def send(c):
            slow = self.block(c, "GET", "/slow?delay=3")
            held = b"".join(headers_frame(1 + 2 * i, slow, end_stream=True)
                            for i in range(MAX_STREAMS))
            fast = self.block(c, "GET", "/demo/extra")
            extra = b"".join(headers_frame(1 + 2 * i, fast, end_stream=True)
                             for i in range(MAX_STREAMS, MAX_STREAMS + 150))
            c.send(held + extra)
        self.attack("too_many_streams", send, code=PROTOCOL_ERROR)

    # -- limits that are not abuse ------------------------------------------------------------

    def test_large_header_block_gets_431_and_connection_stays_usable(self):
        """One 40 KB header value of random characters, as a literal without Huffman, in a
        HEADERS frame and two CONTINUATIONs: over max-header-list-size (32 KiB) but about 1x
        its compressed size, so not a bomb: 431 on that stream, no GOAWAY, and the next
        request on the same connection gets 200."""
        bombs_before = self.abuse("hpack_bomb")
        origin_before = self.origin.stats()["requests_total"]
        c = self.raw()
        rnd = random.Random(431)
        value = "".join(rnd.choice(string.ascii_letters + string.digits) for _ in range(40000))
        block = self.block(c, "GET", "/demo/big") + hpack_literal("x-big", value)
        self.assertGreater(len(block), MAX_HEADER_LIST)
        parts = [block[i:i + 16384] for i in range(0, len(block), 16384)]
        frames = [headers_frame(1, parts[0], end_stream=True, end_headers=False)]
        frames += [continuation_frame(1, p, end_headers=(i == len(parts) - 1))
                   for i, p in enumerate(parts[1:], start=1)]
        c.send(b"".join(frames))
        head, body, _ = c.read_response(1)
        self.assertEqual(h.header_value(head, ":status"), "431", (head, body[:200]))

        c.send(headers_frame(3, self.block(c, "GET", "/demo/after-431"), end_stream=True))
        head, body, _ = c.read_response(3)
        self.assertEqual(h.header_value(head, ":status"), "200", (head, body[:200]))
        self.assertFalse(any(e.type == GOAWAY for e in c.events),
                         "GOAWAY on a 431: %s" % c.history())
        self.assertEqual(self.abuse("hpack_bomb"), bombs_before, "a 431 counted as hpack_bomb")
        self.assertEqual(self.origin.stats()["requests_total"] - origin_before, 1,
                         "the 431 request reached the origin")


class H2GracefulDrain(H2AbuseBase):
    """POST /drain and SIGTERM: a Sentinel per test (a drain does not end)."""

    def setUp(self):
        super().setUp()
        self.origin = self.start_origin("origin")
        self.port = free_port()
        self.admin = free_port()
        self.sentinel = self.start_sentinel(
            render(CONFIG, port=self.port, admin=self.admin, origin=self.origin.address),
            port=self.port, admin_port=self.admin)

    def in_flight(self, delay):
        """An h2 connection with stream 1 waiting at the origin for `delay` seconds."""
        c = self.raw()
        c.send(headers_frame(1, self.block(c, "GET", "/slow?delay=%s" % delay), end_stream=True))
        wait_until(lambda: self.origin.stats()["active_requests"] >= 1, 10,
                   what="stream 1 to reach the origin")
        return c

    def finish(self, c):
        """Reads until the connection closes: (GOAWAYs, stream 1's status, body)."""
        goaways, state = [], {"status": None, "body": b"", "ended": False}

        def on(ev):
            if ev is CLOSED:
                return True
            if ev is h.TIMEOUT:
                return None
            if ev.type == GOAWAY:
                goaways.append(ev)
            if ev.stream_id == 1:
                if ev.type == RST_STREAM:
                    raise AssertionError("in-flight stream reset during the drain: %s"
                                         % c.history())
                if ev.type == HEADERS and ev.decoded is not None:
                    state["status"] = h.header_value(ev.decoded, ":status")
                if ev.type == DATA:
                    state["body"] += bytes(ev.data)
                if ev.type in (HEADERS, DATA) and "END_STREAM" in ev.flags:
                    state["ended"] = True
            return None
        c.timeout = 10.0
        c.loop(on, "the in-flight response, GOAWAY(NO_ERROR) and then the close", overall=30)
        return goaways, state

    def check_drained(self, c, goaways, state):
        self.assertTrue(goaways, "no GOAWAY: %s" % c.history())
        self.assertEqual([h.error_name(g.error_code) for g in goaways
                          if g.error_code != NO_ERROR], [], "GOAWAY with an error: %s" % c.history())
        # A first GOAWAY may announce 2^31-1 (RFC 9113 §6.8); the last names stream 1.
        self.assertEqual(goaways[-1].last_stream_id, 1, "last GOAWAY: %s" % c.history())
        self.assertTrue(state["ended"], "stream 1 did not finish: %s" % c.history())
        self.assertEqual(state["status"], "200", c.history())
        self.assertTrue(state["body"].startswith(b"slow response"), state["body"][:200])

    def test_admin_drain_sends_goaway_and_finishes_in_flight(self):
        c = self.in_flight(1.5)
        r = self.sentinel.admin_post("/drain")
        self.assertEqual(r.status, 200, r)
        goaways, state = self.finish(c)
        self.check_drained(c, goaways, state)
        # The listener stays open while drained: a new connection is still served.
        self.assert_proxy_ok("after-drain")

    def test_sigterm_sends_goaway_and_finishes_in_flight(self):
        c = self.in_flight(1.5)
        self.sentinel.signal(signal.SIGTERM)
        goaways, state = self.finish(c)
        self.check_drained(c, goaways, state)
        self.assertEqual(self.sentinel.stop(timeout=20, expect_code=0, send_sigterm=False), 0)


if __name__ == "__main__":
    unittest.main()
