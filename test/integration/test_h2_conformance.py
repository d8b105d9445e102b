"""HTTP/2 conformance at the frame level: h2spec 2.6.0's 146 default cases (groups "generic",
"http2" and "hpack") rebuilt with raw sockets, hyperframe parsing and hand-made HPACK
(test/support/h2_frames.py), against the real `sentinel` binary: h2c with prior knowledge on
a plain `http` listener whose one route proxies to test/support/origin.py.

One test per h2spec case. Each method is tagged with `@h2spec(ID, DESCRIPTION)`, where ID
is h2spec's group/section/number (e.g. "http2/6.5/1") and DESCRIPTION is h2spec's own text;
`test_h2spec_case_map_is_complete` checks that the tags cover H2SPEC_CASES exactly once, so
the mapping can be audited from `-v` output (each docstring starts with the ID).

Each case sends what h2spec sends and passes on what h2spec accepts, read through h2spec's
verifiers (spec/verifier.go):
- connection error: a GOAWAY with the expected code, or the connection closed. Stricter than
  h2spec's loop in one way: a GOAWAY with any other code fails at once.
- stream error: an RST_STREAM (on the stream under test) or a GOAWAY with an expected code,
  or the connection closed; any other code on that stream fails at once.
- connection close: frames (GOAWAY included) may come first, then the close.
- a frame of a type (HEADERS, PING, SETTINGS ACK, DATA of a length): the first such frame.
  Where h2spec only waits for "a HEADERS frame" of a request that is valid, the response
  must also be :status 200 (Sentinel proxies it to the origin, which answers 200).
Every wait times out after one quiet period of SENTINEL_H2_TIMEOUT seconds (default 2, as
h2spec's -o 2). A fresh connection per test; one Sentinel and one origin per class.

Sentinel-specific checks beyond h2spec are at the end (`test_sentinel_*`).

SENTINEL_H2_TARGET=HOST:PORT runs the h2spec cases against an already running h2c server
instead (e.g. nghttpd, to check the suite itself); Sentinel-specific tests are then skipped.

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_h2_conformance
"""

import json
import os
import sys
import unittest

from harness import (IntegrationTest, SUPPORT, connect, free_port, http_request, render,
                     ResponseReader)

sys.path.insert(0, SUPPORT)
import h2_frames as h  # noqa: E402
from h2_frames import (CLOSED, COMPRESSION_ERROR, DATA, FLAG_END_HEADERS, FLAG_END_STREAM,  # noqa: E402
                       FLAG_PADDED, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, GOAWAY, HEADERS,
                       PING, PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM, SETTINGS,
                       SETTINGS_ENABLE_PUSH, SETTINGS_HEADER_TABLE_SIZE,
                       SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_CONCURRENT_STREAMS,
                       SETTINGS_MAX_FRAME_SIZE, SETTINGS_MAX_HEADER_LIST_SIZE, STREAM_CLOSED,
                       CANCEL, NO_ERROR, RawH2Conn, continuation_frame, data_frame,
                       goaway_frame, headers_frame, ping_frame, priority_frame,
                       push_promise_frame, raw_frame, rst_stream_frame, settings_frame,
                       window_update_frame)

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes { route "all" { match { path-prefix "/" }; upstream "origin" } }
upstreams { upstream "origin" { endpoint "@origin@" } }
"""

EXTERNAL = os.environ.get("SENTINEL_H2_TARGET")

# h2spec's DummyString(c.MaxHeaderLen): --max-header-length defaults to 4000.
DUMMY = "x" * 4000


def dummy_headers(n):
    return [("x-dummy%d" % i, DUMMY) for i in range(n)]


# h2spec 2.6.0, default run (`h2spec -o 2`, strict cases off): 44 generic + 94 http2 + 8 hpack.
H2SPEC_CASES = [
    # -- Generic tests for HTTP/2 server
    ("generic/1/1", "Sends a client connection preface"),
    ("generic/2/1", "Sends a PRIORITY frame on idle stream"),
    ("generic/2/2", "Sends a WINDOW_UPDATE frame on half-closed (remote) stream"),
    ("generic/2/3", "Sends a PRIORITY frame on half-closed (remote) stream"),
    ("generic/2/4", "Sends a RST_STREAM frame on half-closed (remote) stream"),
    ("generic/2/5", "Sends a PRIORITY frame on closed stream"),
    ("generic/3.1/1", "Sends a DATA frame"),
    ("generic/3.1/2", "Sends multiple DATA frames"),
    ("generic/3.1/3", "Sends a DATA frame with padding"),
    ("generic/3.2/1", "Sends a HEADERS frame"),
    ("generic/3.2/2", "Sends a HEADERS frame with padding"),
    ("generic/3.2/3", "Sends a HEADERS frame with priority"),
    ("generic/3.3/1", "Sends a PRIORITY frame with priority 1"),
    ("generic/3.3/2", "Sends a PRIORITY frame with priority 256"),
    ("generic/3.3/3", "Sends a PRIORITY frame with stream dependency"),
    ("generic/3.3/4", "Sends a PRIORITY frame with exclusive"),
    ("generic/3.3/5", "Sends a PRIORITY frame for an idle stream, then send a HEADER frame for a lower stream ID"),
    ("generic/3.4/1", "Sends a RST_STREAM frame"),
    ("generic/3.5/1", "Sends a SETTINGS frame"),
    ("generic/3.7/1", "Sends a PING frame"),
    ("generic/3.8/1", "Sends a GOAWAY frame"),
    ("generic/3.9/1", "Sends a WINDOW_UPDATE frame with stream ID 0"),
    ("generic/3.9/2", "Sends a WINDOW_UPDATE frame with stream ID 1"),
    ("generic/3.10/1", "Sends a CONTINUATION frame"),
    ("generic/3.10/2", "Sends multiple CONTINUATION frames"),
    ("generic/4/1", "Sends a GET request"),
    ("generic/4/2", "Sends a HEAD request"),
    ("generic/4/3", "Sends a POST request"),
    ("generic/4/4", "Sends a POST request with trailers"),
    ("generic/5/1", "Sends a indexed header field representation"),
    ("generic/5/2", "Sends a literal header field with indexing - indexed name"),
    ("generic/5/3", "Sends a literal header field with indexing - indexed name (with Huffman coding)"),
    ("generic/5/4", "Sends a literal header field with indexing - new name"),
    ("generic/5/5", "Sends a literal header field with indexing - new name (with Huffman coding)"),
    ("generic/5/6", "Sends a literal header field without indexing - indexed name"),
    ("generic/5/7", "Sends a literal header field without indexing - indexed name (with Huffman coding)"),
    ("generic/5/8", "Sends a literal header field without indexing - new name"),
    ("generic/5/9", "Sends a literal header field without indexing - new name (huffman encoded)"),
    ("generic/5/10", "Sends a literal header field never indexed - indexed name"),
    ("generic/5/11", "Sends a literal header field never indexed - indexed name (huffman encoded)"),
    ("generic/5/12", "Sends a literal header field never indexed - new name"),
    ("generic/5/13", "Sends a literal header field never indexed - new name (huffman encoded)"),
    ("generic/5/14", "Sends a dynamic table size update"),
    ("generic/5/15", "Sends multiple dynamic table size update"),
    # -- Hypertext Transfer Protocol Version 2 (HTTP/2)
    ("http2/3.5/1", "Sends client connection preface"),
    ("http2/3.5/2", "Sends invalid connection preface"),
    ("http2/4.1/1", "Sends a frame with unknown type"),
    ("http2/4.1/2", "Sends a frame with undefined flag"),
    ("http2/4.1/3", "Sends a frame with reserved field bit"),
    ("http2/4.2/1", "Sends a DATA frame with 2^14 octets in length"),
    ("http2/4.2/2", "Sends a large size DATA frame that exceeds the SETTINGS_MAX_FRAME_SIZE"),
    ("http2/4.2/3", "Sends a large size HEADERS frame that exceeds the SETTINGS_MAX_FRAME_SIZE"),
    ("http2/4.3/1", "Sends invalid header block fragment"),
    ("http2/4.3/2", "Sends a PRIORITY frame while sending the header blocks"),
    ("http2/4.3/3", "Sends a HEADERS frame to another stream while sending the header blocks"),
    ("http2/5.1/1", "idle: Sends a DATA frame"),
    ("http2/5.1/2", "idle: Sends a RST_STREAM frame"),
    ("http2/5.1/3", "idle: Sends a WINDOW_UPDATE frame"),
    ("http2/5.1/4", "idle: Sends a CONTINUATION frame"),
    ("http2/5.1/5", "half closed (remote): Sends a DATA frame"),
    ("http2/5.1/6", "half closed (remote): Sends a HEADERS frame"),
    ("http2/5.1/7", "half closed (remote): Sends a CONTINUATION frame"),
    ("http2/5.1/8", "closed: Sends a DATA frame after sending RST_STREAM frame"),
    ("http2/5.1/9", "closed: Sends a HEADERS frame after sending RST_STREAM frame"),
    ("http2/5.1/10", "closed: Sends a CONTINUATION frame after sending RST_STREAM frame"),
    ("http2/5.1/11", "closed: Sends a DATA frame"),
    ("http2/5.1/12", "closed: Sends a HEADERS frame"),
    ("http2/5.1/13", "closed: Sends a CONTINUATION frame"),
    ("http2/5.1.1/1", "Sends even-numbered stream identifier"),
    ("http2/5.1.1/2", "Sends stream identifier that is numerically smaller than previous"),
    ("http2/5.1.2/1", "Sends HEADERS frames that causes their advertised concurrent stream limit to be exceeded"),
    ("http2/5.3.1/1", "Sends HEADERS frame that depends on itself"),
    ("http2/5.3.1/2", "Sends PRIORITY frame that depend on itself"),
    ("http2/5.4.1/1", "Sends an invalid PING frame for connection close"),
    ("http2/5.5/1", "Sends an unknown extension frame"),
    ("http2/5.5/2", "Sends an unknown extension frame in the middle of a header block"),
    ("http2/6.1/1", "Sends a DATA frame with 0x0 stream identifier"),
    ("http2/6.1/2", "Sends a DATA frame on the stream that is not in \"open\" or \"half-closed (local)\" state"),
    ("http2/6.1/3", "Sends a DATA frame with invalid pad length"),
    ("http2/6.2/1", "Sends a HEADERS frame without the END_HEADERS flag, and a PRIORITY frame"),
    ("http2/6.2/2", "Sends a HEADERS frame to another stream while sending a HEADERS frame"),
    ("http2/6.2/3", "Sends a HEADERS frame with 0x0 stream identifier"),
    ("http2/6.2/4", "Sends a HEADERS frame with invalid pad length"),
    ("http2/6.3/1", "Sends a PRIORITY frame with 0x0 stream identifier"),
    ("http2/6.3/2", "Sends a PRIORITY frame with a length other than 5 octets"),
    ("http2/6.4/1", "Sends a RST_STREAM frame with 0x0 stream identifier"),
    ("http2/6.4/2", "Sends a RST_STREAM frame on a idle stream"),
    ("http2/6.4/3", "Sends a RST_STREAM frame with a length other than 4 octets"),
    ("http2/6.5/1", "Sends a SETTINGS frame with ACK flag and payload"),
    ("http2/6.5/2", "Sends a SETTINGS frame with a stream identifier other than 0x0"),
    ("http2/6.5/3", "Sends a SETTINGS frame with a length other than a multiple of 6 octets"),
    ("http2/6.5.2/1", "SETTINGS_ENABLE_PUSH (0x2): Sends the value other than 0 or 1"),
    ("http2/6.5.2/2", "SETTINGS_INITIAL_WINDOW_SIZE (0x4): Sends the value above the maximum flow control window size"),
    ("http2/6.5.2/3", "SETTINGS_MAX_FRAME_SIZE (0x5): Sends the value below the initial value"),
    ("http2/6.5.2/4", "SETTINGS_MAX_FRAME_SIZE (0x5): Sends the value above the maximum allowed frame size"),
    ("http2/6.5.2/5", "Sends a SETTINGS frame with unknown identifier"),
    ("http2/6.5.3/1", "Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE"),
    ("http2/6.5.3/2", "Sends a SETTINGS frame without ACK flag"),
    ("http2/6.7/1", "Sends a PING frame"),
    ("http2/6.7/2", "Sends a PING frame with ACK"),
    ("http2/6.7/3", "Sends a PING frame with a stream identifier field value other than 0x0"),
    ("http2/6.7/4", "Sends a PING frame with a length field value other than 8"),
    ("http2/6.8/1", "Sends a GOAWAY frame with a stream identifier other than 0x0"),
    ("http2/6.9/1", "Sends a WINDOW_UPDATE frame with a flow control window increment of 0"),
    ("http2/6.9/2", "Sends a WINDOW_UPDATE frame with a flow control window increment of 0 on a stream"),
    ("http2/6.9/3", "Sends a WINDOW_UPDATE frame with a length other than 4 octets"),
    ("http2/6.9.1/1", "Sends SETTINGS frame to set the initial window size to 1 and sends HEADERS frame"),
    ("http2/6.9.1/2", "Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1"),
    ("http2/6.9.1/3", "Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1 on a stream"),
    ("http2/6.9.2/1", "Changes SETTINGS_INITIAL_WINDOW_SIZE after sending HEADERS frame"),
    ("http2/6.9.2/2", "Sends a SETTINGS frame for window size to be negative"),
    ("http2/6.9.2/3", "Sends a SETTINGS_INITIAL_WINDOW_SIZE settings with an exceeded maximum window size value"),
    ("http2/6.10/1", "Sends multiple CONTINUATION frames preceded by a HEADERS frame"),
    ("http2/6.10/2", "Sends a CONTINUATION frame followed by any frame other than CONTINUATION"),
    ("http2/6.10/3", "Sends a CONTINUATION frame with 0x0 stream identifier"),
    ("http2/6.10/4", "Sends a CONTINUATION frame preceded by a HEADERS frame with END_HEADERS flag"),
    ("http2/6.10/5", "Sends a CONTINUATION frame preceded by a CONTINUATION frame with END_HEADERS flag"),
    ("http2/6.10/6", "Sends a CONTINUATION frame preceded by a DATA frame"),
    ("http2/7/1", "Sends a GOAWAY frame with unknown error code"),
    ("http2/7/2", "Sends a RST_STREAM frame with unknown error code"),
    ("http2/8.1/1", "Sends a second HEADERS frame without the END_STREAM flag"),
    ("http2/8.1.2/1", "Sends a HEADERS frame that contains the header field name in uppercase letters"),
    ("http2/8.1.2.1/1", "Sends a HEADERS frame that contains a unknown pseudo-header field"),
    ("http2/8.1.2.1/2", "Sends a HEADERS frame that contains the pseudo-header field defined for response"),
    ("http2/8.1.2.1/3", "Sends a HEADERS frame that contains a pseudo-header field as trailers"),
    ("http2/8.1.2.1/4", "Sends a HEADERS frame that contains a pseudo-header field that appears in a header block after a regular header field"),
    ("http2/8.1.2.2/1", "Sends a HEADERS frame that contains the connection-specific header field"),
    ("http2/8.1.2.2/2", "Sends a HEADERS frame that contains the TE header field with any value other than \"trailers\""),
    ("http2/8.1.2.3/1", "Sends a HEADERS frame with empty \":path\" pseudo-header field"),
    ("http2/8.1.2.3/2", "Sends a HEADERS frame that omits \":method\" pseudo-header field"),
    ("http2/8.1.2.3/3", "Sends a HEADERS frame that omits \":scheme\" pseudo-header field"),
    ("http2/8.1.2.3/4", "Sends a HEADERS frame that omits \":path\" pseudo-header field"),
    ("http2/8.1.2.3/5", "Sends a HEADERS frame with duplicated \":method\" pseudo-header field"),
    ("http2/8.1.2.3/6", "Sends a HEADERS frame with duplicated \":scheme\" pseudo-header field"),
    ("http2/8.1.2.3/7", "Sends a HEADERS frame with duplicated \":path\" pseudo-header field"),
    ("http2/8.1.2.6/1", "Sends a HEADERS frame with the \"content-length\" header field which does not equal the DATA frame payload length"),
    ("http2/8.1.2.6/2", "Sends a HEADERS frame with the \"content-length\" header field which does not equal the sum of the multiple DATA frames payload length"),
    ("http2/8.2/1", "Sends a PUSH_PROMISE frame"),
    # -- HPACK: Header Compression for HTTP/2
    ("hpack/2.3.3/1", "Sends a indexed header field representation with invalid index"),
    ("hpack/2.3.3/2", "Sends a literal header field representation with invalid index"),
    ("hpack/4.2/1", "Sends a dynamic table size update at the end of header block"),
    ("hpack/5.2/1", "Sends a Huffman-encoded string literal representation with padding longer than 7 bits"),
    ("hpack/5.2/2", "Sends a Huffman-encoded string literal representation padded by zero"),
    ("hpack/5.2/3", "Sends a Huffman-encoded string literal representation containing the EOS symbol"),
    ("hpack/6.1/1", "Sends a indexed header field representation with index 0"),
    ("hpack/6.3/1", "Sends a dynamic table size update larger than the value of SETTINGS_HEADER_TABLE_SIZE"),
]


def h2spec(case_id, description):
    """Tags a test with its h2spec case; the docstring starts with both."""
    def deco(fn):
        fn.h2spec_id = case_id
        fn.h2spec_description = description
        extra = ("\n\n" + fn.__doc__) if fn.__doc__ else ""
        fn.__doc__ = "h2spec %s: %s%s" % (case_id, description, extra)
        return fn
    return deco


class H2SpecConformance(IntegrationTest):
    """h2spec's cases against an h2c (prior knowledge) listener proxying to origin.py."""

    @classmethod
    def setUpClass(cls):
        if EXTERNAL:
            host, _, port = EXTERNAL.rpartition(":")
            cls.host, cls.port, cls.external = host or "127.0.0.1", int(port), True
            return
        super().setUpClass()
        cls.external = False
        cls.host = "127.0.0.1"
        cls.origin = cls.class_origin("origin")
        cls.port = free_port()
        cls.admin = free_port()
        cls.sentinel = cls.class_sentinel(
            render(CONFIG, port=cls.port, admin=cls.admin, origin=cls.origin.address),
            port=cls.port, admin_port=cls.admin)

    def setUp(self):
        if not self.external:
            super().setUp()

    # -- helpers -----------------------------------------------------------------------------

    def conn(self, handshake=True, **kw):
        c = RawH2Conn(self.port, host=self.host, **kw)
        self.addCleanup(c.close)
        if handshake:
            c.handshake()
        return c

    def ok(self, c, stream_id=1):
        """h2spec VerifyHeadersFrame for a valid request, plus :status 200."""
        return c.expect_headers(stream_id, status=200)

    def common_block(self, c, method="GET", extra=()):
        return c.request_block(method, "/", extra)

    def send_common_plus(self, c, rep, prepend=False):
        """h2spec's HPACK cases: CommonHeaders through the stateful encoder, a raw
        representation appended (or prepended), one HEADERS with END_STREAM|END_HEADERS."""
        block = self.common_block(c)
        block = (rep + block) if prepend else (block + rep)
        c.send(headers_frame(1, block, end_stream=True))

    def open_and_close_stream(self, c):
        """HEADERS(1, END_STREAM) then h2spec's VerifyStreamClose."""
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.expect_stream_close()

    def skip_if_external(self):
        if self.external:
            self.skipTest("Sentinel-specific (SENTINEL_H2_TARGET is set)")

    # -- the map ------------------------------------------------------------------------------

    def test_h2spec_case_map_is_complete(self):
        """Every h2spec 2.6.0 default case maps to exactly one test here, with its text."""
        self.assertEqual(len(H2SPEC_CASES), 146)
        self.assertEqual(len({cid for cid, _ in H2SPEC_CASES}), 146)
        tagged = {}
        for name in dir(self):
            fn = getattr(type(self), name, None)
            cid = getattr(fn, "h2spec_id", None)
            if cid is None:
                continue
            self.assertTrue(name.startswith("test_"), name)
            self.assertNotIn(cid, tagged, "%s tagged twice (%s, %s)" % (cid, tagged.get(cid), name))
            tagged[cid] = name
            self.assertEqual(fn.h2spec_description, dict(H2SPEC_CASES).get(cid),
                             "%s: description differs from the case table" % name)
        missing = [cid for cid, _ in H2SPEC_CASES if cid not in tagged]
        extra = sorted(set(tagged) - {cid for cid, _ in H2SPEC_CASES})
        self.assertEqual(missing, [], "h2spec cases without a test")
        self.assertEqual(extra, [], "tests tagged with unknown h2spec cases")
        counts = {g: sum(1 for cid, _ in H2SPEC_CASES if cid.startswith(g + "/"))
                  for g in ("generic", "http2", "hpack")}
        self.assertEqual(counts, {"generic": 44, "http2": 94, "hpack": 8})

    # =========================================================================================
    # generic: Generic tests for HTTP/2 server
    # =========================================================================================

    @h2spec("generic/1/1", "Sends a client connection preface")
    def test_generic_1_1_client_connection_preface(self):
        """The first frame the server sends is a SETTINGS frame without ACK."""
        c = self.conn(handshake=False)
        c.send_preface()
        ev = c.read_event()
        self.assertFalse(ev is CLOSED or ev is h.TIMEOUT, "no frame after the preface: %s" % ev)
        self.assertEqual(ev.type, SETTINGS, "first frame: %s" % h.describe(ev))
        self.assertNotIn("ACK", ev.flags, "first frame: %s" % h.describe(ev))

    @h2spec("generic/2/1", "Sends a PRIORITY frame on idle stream")
    def test_generic_2_1_priority_on_idle_stream(self):
        c = self.conn()
        c.send(priority_frame(1, 0, 255))
        c.send(ping_frame(b"\0" * 8))
        c.expect_ping_ack(b"\0" * 8)

    @h2spec("generic/2/2", "Sends a WINDOW_UPDATE frame on half-closed (remote) stream")
    def test_generic_2_2_window_update_on_half_closed_remote(self):
        """INITIAL_WINDOW_SIZE 0 keeps the response from finishing; WINDOW_UPDATE(1) lets
        exactly one octet of it through."""
        c = self.conn()
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 0)]))
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.send(window_update_frame(1, 1))
        c.expect_frame(DATA, lambda f: f.stream_id == 1 and len(f.data) == 1,
                       "DATA of 1 octet on stream 1")

    @h2spec("generic/2/3", "Sends a PRIORITY frame on half-closed (remote) stream")
    def test_generic_2_3_priority_on_half_closed_remote(self):
        c = self.conn()
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 0)]))
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.send(priority_frame(1, 0, 255))
        c.send(window_update_frame(1, 1))
        c.expect_frame(DATA, lambda f: f.stream_id == 1 and len(f.data) == 1,
                       "DATA of 1 octet on stream 1")

    @h2spec("generic/2/4", "Sends a RST_STREAM frame on half-closed (remote) stream")
    def test_generic_2_4_rst_stream_on_half_closed_remote(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.send(rst_stream_frame(1, CANCEL))
        c.send(ping_frame(b"\0" * 8))
        c.expect_ping_ack_or_close(b"\0" * 8)

    @h2spec("generic/2/5", "Sends a PRIORITY frame on closed stream")
    def test_generic_2_5_priority_on_closed_stream(self):
        c = self.conn()
        self.open_and_close_stream(c)
        c.send(priority_frame(1, 0, 255))
        c.send(ping_frame(b"\0" * 8))
        c.expect_ping_ack(b"\0" * 8)

    @h2spec("generic/3.1/1", "Sends a DATA frame")
    def test_generic_3_1_1_data_frame(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False))
        c.send(data_frame(1, b"test", end_stream=True))
        self.ok(c)

    @h2spec("generic/3.1/2", "Sends multiple DATA frames")
    def test_generic_3_1_2_multiple_data_frames(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False))
        c.send(data_frame(1, b"test") + data_frame(1, b"test", end_stream=True))
        self.ok(c)

    @h2spec("generic/3.1/3", "Sends a DATA frame with padding")
    def test_generic_3_1_3_data_frame_with_padding(self):
        """As h2spec (WriteDataPadded with AllowIllegalWrites): the six padding octets are
        "padded", not zeros; RFC 9113 §6.1 lets a receiver skip checking them."""
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False))
        c.send(raw_frame(DATA, FLAG_END_STREAM | FLAG_PADDED, 1, b"\x06" + b"test" + b"padded"))
        self.ok(c)

    @h2spec("generic/3.2/1", "Sends a HEADERS frame")
    def test_generic_3_2_1_headers_frame(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        self.ok(c)

    @h2spec("generic/3.2/2", "Sends a HEADERS frame with padding")
    def test_generic_3_2_2_headers_frame_with_padding(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True, pad=8))
        self.ok(c)

    @h2spec("generic/3.2/3", "Sends a HEADERS frame with priority")
    def test_generic_3_2_3_headers_frame_with_priority(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True, priority=(0, 255, False)))
        self.ok(c)

    @h2spec("generic/3.3/1", "Sends a PRIORITY frame with priority 1")
    def test_generic_3_3_1_priority_weight_1(self):
        c = self.conn()
        c.send(priority_frame(1, 0, 0))
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        self.ok(c)

    @h2spec("generic/3.3/2", "Sends a PRIORITY frame with priority 256")
    def test_generic_3_3_2_priority_weight_256(self):
        c = self.conn()
        c.send(priority_frame(1, 0, 255))
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        self.ok(c)

    @h2spec("generic/3.3/3", "Sends a PRIORITY frame with stream dependency")
    def test_generic_3_3_3_priority_with_dependency(self):
        c = self.conn()
        c.send(priority_frame(3, 1, 0))
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        self.ok(c)

    @h2spec("generic/3.3/4", "Sends a PRIORITY frame with exclusive")
    def test_generic_3_3_4_priority_exclusive(self):
        c = self.conn()
        c.send(priority_frame(1, 0, 0, exclusive=True))
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        self.ok(c)

    @h2spec("generic/3.3/5", "Sends a PRIORITY frame for an idle stream, then send a HEADER frame for a lower stream ID")
    def test_generic_3_3_5_priority_idle_then_lower_stream(self):
        c = self.conn()
        c.send(priority_frame(3, 0, 255))
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        self.ok(c)

    @h2spec("generic/3.4/1", "Sends a RST_STREAM frame")
    def test_generic_3_4_1_rst_stream(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False))
        c.send(rst_stream_frame(1, CANCEL))
        c.send(ping_frame(b"\0" * 8))
        c.expect_ping_ack_or_close(b"\0" * 8)

    @h2spec("generic/3.5/1", "Sends a SETTINGS frame")
    def test_generic_3_5_1_settings(self):
        c = self.conn()
        c.send(settings_frame([(SETTINGS_HEADER_TABLE_SIZE, 4096), (SETTINGS_ENABLE_PUSH, 1),
                               (SETTINGS_MAX_CONCURRENT_STREAMS, 100),
                               (SETTINGS_INITIAL_WINDOW_SIZE, 65535),
                               (SETTINGS_MAX_FRAME_SIZE, 16384),
                               (SETTINGS_MAX_HEADER_LIST_SIZE, 100)]))
        c.expect_settings_ack()

    @h2spec("generic/3.7/1", "Sends a PING frame")
    def test_generic_3_7_1_ping(self):
        c = self.conn()
        c.send(ping_frame(b"h2spec\0\0"))
        c.expect_ping_ack(b"h2spec\0\0")

    @h2spec("generic/3.8/1", "Sends a GOAWAY frame")
    def test_generic_3_8_1_goaway(self):
        """After the client's GOAWAY(NO_ERROR) with no stream open, the server closes."""
        c = self.conn()
        c.send(goaway_frame(0, NO_ERROR, b"h2spec"))
        c.expect_close()

    @h2spec("generic/3.9/1", "Sends a WINDOW_UPDATE frame with stream ID 0")
    def test_generic_3_9_1_window_update_stream_0(self):
        c = self.conn()
        c.send(window_update_frame(0, 1))
        c.send(ping_frame(b"\0" * 8))
        c.expect_frame(PING)

    @h2spec("generic/3.9/2", "Sends a WINDOW_UPDATE frame with stream ID 1")
    def test_generic_3_9_2_window_update_stream_1(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.send(window_update_frame(1, 1))
        self.ok(c)

    @h2spec("generic/3.10/1", "Sends a CONTINUATION frame")
    def test_generic_3_10_1_continuation(self):
        c = self.conn()
        block = self.common_block(c)
        c.send(headers_frame(1, block[:5], end_stream=True, end_headers=False))
        c.send(continuation_frame(1, block[5:], end_headers=True))
        self.ok(c)

    @h2spec("generic/3.10/2", "Sends multiple CONTINUATION frames")
    def test_generic_3_10_2_multiple_continuations(self):
        c = self.conn()
        block = self.common_block(c)
        self.assertGreater(len(block), 10)
        c.send(headers_frame(1, block[:5], end_stream=True, end_headers=False))
        c.send(continuation_frame(1, block[5:10], end_headers=False))
        c.send(continuation_frame(1, block[10:], end_headers=True))
        self.ok(c)

    @h2spec("generic/4/1", "Sends a GET request")
    def test_generic_4_1_get(self):
        """Also reads the whole response: the origin's JSON page for GET /."""
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        headers, body, _ = c.read_response(1)
        self.assertEqual(h.header_value(headers, ":status"), "200", headers)
        if not self.external:
            page = json.loads(body)
            self.assertEqual((page["method"], page["path"]), ("GET", "/"), page)

    @h2spec("generic/4/2", "Sends a HEAD request")
    def test_generic_4_2_head(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "HEAD"), end_stream=True))
        self.ok(c)

    @h2spec("generic/4/3", "Sends a POST request")
    def test_generic_4_3_post(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False))
        c.send(data_frame(1, b"test", end_stream=True))
        self.ok(c)

    @h2spec("generic/4/4", "Sends a POST request with trailers")
    def test_generic_4_4_post_with_trailers(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST", [("trailer", "x-test")]),
                             end_stream=False))
        c.send(data_frame(1, b"test", end_stream=False))
        c.send(headers_frame(1, c.encode_headers([("x-test", "ok")]), end_stream=True))
        self.ok(c)

    # generic/5: a representation appended to CommonHeaders (h2spec's bytes).

    @h2spec("generic/5/1", "Sends a indexed header field representation")
    def test_generic_5_1_indexed(self):
        """0xba: static index 58 (user-agent, empty value)."""
        c = self.conn()
        self.send_common_plus(c, b"\xba")
        self.ok(c)

    @h2spec("generic/5/2", "Sends a literal header field with indexing - indexed name")
    def test_generic_5_2_literal_incremental_indexed_name(self):
        c = self.conn()
        self.send_common_plus(c, b"\x40\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4")
        self.ok(c)

    @h2spec("generic/5/3", "Sends a literal header field with indexing - indexed name (with Huffman coding)")
    def test_generic_5_3_literal_incremental_indexed_name_huffman(self):
        c = self.conn()
        self.send_common_plus(c, b"\x40\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63")
        self.ok(c)

    @h2spec("generic/5/4", "Sends a literal header field with indexing - new name")
    def test_generic_5_4_literal_incremental_new_name(self):
        c = self.conn()
        self.send_common_plus(c, b"\x40\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63")
        self.ok(c)

    @h2spec("generic/5/5", "Sends a literal header field with indexing - new name (with Huffman coding)")
    def test_generic_5_5_literal_incremental_new_name_huffman(self):
        c = self.conn()
        self.send_common_plus(c, b"\x40\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4")
        self.ok(c)

    @h2spec("generic/5/6", "Sends a literal header field without indexing - indexed name")
    def test_generic_5_6_literal_without_indexing_indexed_name(self):
        c = self.conn()
        self.send_common_plus(c, b"\x00\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63")
        self.ok(c)

    @h2spec("generic/5/7", "Sends a literal header field without indexing - indexed name (with Huffman coding)")
    def test_generic_5_7_literal_without_indexing_indexed_name_huffman(self):
        c = self.conn()
        self.send_common_plus(c, b"\x00\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4")
        self.ok(c)

    @h2spec("generic/5/8", "Sends a literal header field without indexing - new name")
    def test_generic_5_8_literal_without_indexing_new_name(self):
        c = self.conn()
        self.send_common_plus(c, b"\x00\x06\x78\x2d\x74\x65\x73\x74\x06\x68\x32\x73\x70\x65\x63")
        self.ok(c)

    @h2spec("generic/5/9", "Sends a literal header field without indexing - new name (huffman encoded)")
    def test_generic_5_9_literal_without_indexing_new_name_huffman(self):
        c = self.conn()
        self.send_common_plus(c, b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4")
        self.ok(c)

    @h2spec("generic/5/10", "Sends a literal header field never indexed - indexed name")
    def test_generic_5_10_literal_never_indexed_indexed_name(self):
        c = self.conn()
        self.send_common_plus(c, b"\x10\x0a\x75\x73\x65\x72\x2d\x61\x67\x65\x6e\x74\x06\x68\x32\x73\x70\x65\x63")
        self.ok(c)

    @h2spec("generic/5/11", "Sends a literal header field never indexed - indexed name (huffman encoded)")
    def test_generic_5_11_literal_never_indexed_indexed_name_huffman(self):
        c = self.conn()
        self.send_common_plus(c, b"\x10\x87\xb5\x05\xb1\x61\xcc\x5a\x93\x84\x9c\x48\xac\xa4")
        self.ok(c)

    @h2spec("generic/5/12", "Sends a literal header field never indexed - new name")
    def test_generic_5_12_literal_never_indexed_new_name(self):
        """h2spec sends the Huffman bytes here too (its two "new name" cases are identical)."""
        c = self.conn()
        self.send_common_plus(c, b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4")
        self.ok(c)

    @h2spec("generic/5/13", "Sends a literal header field never indexed - new name (huffman encoded)")
    def test_generic_5_13_literal_never_indexed_new_name_huffman(self):
        c = self.conn()
        self.send_common_plus(c, b"\x10\x85\xf2\xb2\x4a\x84\xff\x84\x9c\x48\xac\xa4")
        self.ok(c)

    @h2spec("generic/5/14", "Sends a dynamic table size update")
    def test_generic_5_14_dynamic_table_size_update(self):
        """A size update to 0 at the start of the block."""
        c = self.conn()
        self.send_common_plus(c, b"\x20", prepend=True)
        self.ok(c)

    @h2spec("generic/5/15", "Sends multiple dynamic table size update")
    def test_generic_5_15_multiple_dynamic_table_size_updates(self):
        """Two size updates (0, then 4096) at the start of the block."""
        c = self.conn()
        self.send_common_plus(c, b"\x20\x3f\xe1\x1f", prepend=True)
        self.ok(c)

    # =========================================================================================
    # http2: Hypertext Transfer Protocol Version 2 (HTTP/2)
    # =========================================================================================

    # -- 3.5 HTTP/2 Connection Preface

    @h2spec("http2/3.5/1", "Sends client connection preface")
    def test_http2_3_5_1_client_connection_preface(self):
        c = self.conn(handshake=False)
        c.send_preface()
        c.expect_frame(SETTINGS, lambda f: "ACK" not in f.flags, "SETTINGS without ACK")

    @h2spec("http2/3.5/2", "Sends invalid connection preface")
    def test_http2_3_5_2_invalid_connection_preface(self):
        """Whatever comes back first (an HTTP/1.1 error on this listener is fine), the
        connection must then close."""
        c = self.conn(handshake=False)
        c.send(b"INVALID CONNECTION PREFACE\r\n\r\n")
        c.expect_close()

    # -- 4.1 Frame Format

    @h2spec("http2/4.1/1", "Sends a frame with unknown type")
    def test_http2_4_1_1_unknown_frame_type(self):
        c = self.conn()
        c.send(raw_frame(0x16, 0, 0, b"\0" * 8))
        c.send(ping_frame(b"\0" * 8))
        c.expect_frame(PING)

    @h2spec("http2/4.1/2", "Sends a frame with undefined flag")
    def test_http2_4_1_2_undefined_flag(self):
        c = self.conn()
        c.send(raw_frame(PING, 0x16, 0, b"\0" * 8))
        c.expect_frame(PING)

    @h2spec("http2/4.1/3", "Sends a frame with reserved field bit")
    def test_http2_4_1_3_reserved_bit(self):
        c = self.conn()
        c.send(raw_frame(PING, 0x16, 0, b"\0" * 8, reserved=True))
        c.expect_frame(PING)

    # -- 4.2 Frame Size

    @h2spec("http2/4.2/1", "Sends a DATA frame with 2^14 octets in length")
    def test_http2_4_2_1_data_2_14_octets(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False))
        c.send(data_frame(1, b"x" * 16384, end_stream=True))
        self.ok(c)

    @h2spec("http2/4.2/2", "Sends a large size DATA frame that exceeds the SETTINGS_MAX_FRAME_SIZE")
    def test_http2_4_2_2_data_exceeds_max_frame_size(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False))
        c.send(data_frame(1, b"x" * 16385, end_stream=True))
        c.expect_stream_error(FRAME_SIZE_ERROR, stream_id=1)

    @h2spec("http2/4.2/3", "Sends a large size HEADERS frame that exceeds the SETTINGS_MAX_FRAME_SIZE")
    def test_http2_4_2_3_headers_exceeds_max_frame_size(self):
        """Five 4000-octet headers (literal, no Huffman): one ~20 KB HEADERS frame."""
        c = self.conn()
        block = c.encode_headers(c.common_headers() + dummy_headers(5), huffman=False)
        self.assertGreater(len(block), 16384)
        c.send(headers_frame(1, block, end_stream=True))
        c.expect_connection_error(FRAME_SIZE_ERROR)

    # -- 4.3 Header Compression and Decompression

    @h2spec("http2/4.3/1", "Sends invalid header block fragment")
    def test_http2_4_3_1_invalid_header_block_fragment(self):
        """A literal with incremental indexing cut after its first octet (0x40)."""
        c = self.conn()
        c.send(b"\x00\x00\x01\x01\x05\x00\x00\x00\x01\x40")
        c.expect_connection_error(COMPRESSION_ERROR)

    @h2spec("http2/4.3/2", "Sends a PRIORITY frame while sending the header blocks")
    def test_http2_4_3_2_priority_inside_header_block(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False, end_headers=False))
        c.send(priority_frame(1, 0, 255))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1))))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/4.3/3", "Sends a HEADERS frame to another stream while sending the header blocks")
    def test_http2_4_3_3_headers_other_stream_inside_header_block(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False, end_headers=False))
        c.send(headers_frame(3, self.common_block(c), end_stream=True))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1))))
        c.expect_connection_error(PROTOCOL_ERROR)

    # -- 5.1 Stream States

    @h2spec("http2/5.1/1", "idle: Sends a DATA frame")
    def test_http2_5_1_1_idle_data(self):
        c = self.conn()
        c.send(data_frame(1, b"test", end_stream=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/5.1/2", "idle: Sends a RST_STREAM frame")
    def test_http2_5_1_2_idle_rst_stream(self):
        c = self.conn()
        c.send(rst_stream_frame(1, CANCEL))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/5.1/3", "idle: Sends a WINDOW_UPDATE frame")
    def test_http2_5_1_3_idle_window_update(self):
        c = self.conn()
        c.send(window_update_frame(1, 100))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/5.1/4", "idle: Sends a CONTINUATION frame")
    def test_http2_5_1_4_idle_continuation(self):
        c = self.conn()
        c.send(continuation_frame(1, self.common_block(c), end_headers=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/5.1/5", "half closed (remote): Sends a DATA frame")
    def test_http2_5_1_5_half_closed_remote_data(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.send(data_frame(1, b"test", end_stream=True))
        c.expect_stream_error(STREAM_CLOSED, stream_id=1)

    @h2spec("http2/5.1/6", "half closed (remote): Sends a HEADERS frame")
    def test_http2_5_1_6_half_closed_remote_headers(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.expect_stream_error(STREAM_CLOSED, stream_id=1)

    @h2spec("http2/5.1/7", "half closed (remote): Sends a CONTINUATION frame")
    def test_http2_5_1_7_half_closed_remote_continuation(self):
        c = self.conn()
        block = self.common_block(c)
        c.send(headers_frame(1, block, end_stream=True))
        c.send(continuation_frame(1, block, end_headers=True))
        c.expect_stream_error(STREAM_CLOSED, PROTOCOL_ERROR, stream_id=1)

    @h2spec("http2/5.1/8", "closed: Sends a DATA frame after sending RST_STREAM frame")
    def test_http2_5_1_8_closed_data_after_rst(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False))
        c.send(rst_stream_frame(1, CANCEL))
        c.send(data_frame(1, b"test", end_stream=True))
        c.expect_stream_error(STREAM_CLOSED, stream_id=1)

    @h2spec("http2/5.1/9", "closed: Sends a HEADERS frame after sending RST_STREAM frame")
    def test_http2_5_1_9_closed_headers_after_rst(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False))
        c.send(rst_stream_frame(1, CANCEL))
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.expect_stream_error(STREAM_CLOSED, stream_id=1)

    @h2spec("http2/5.1/10", "closed: Sends a CONTINUATION frame after sending RST_STREAM frame")
    def test_http2_5_1_10_closed_continuation_after_rst(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False))
        c.send(rst_stream_frame(1, CANCEL))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1))))
        c.expect_stream_error(STREAM_CLOSED, PROTOCOL_ERROR, stream_id=1)

    @h2spec("http2/5.1/11", "closed: Sends a DATA frame")
    def test_http2_5_1_11_closed_data(self):
        """After the response ended. h2spec versions differ between VerifyConnectionError and
        VerifyStreamError here; RFC 9113 §6.1 makes it a stream error, §5.1 allows a
        connection error: STREAM_CLOSED either way."""
        c = self.conn()
        self.open_and_close_stream(c)
        c.send(data_frame(1, b"test", end_stream=True))
        c.expect_stream_error(STREAM_CLOSED, stream_id=1)

    @h2spec("http2/5.1/12", "closed: Sends a HEADERS frame")
    def test_http2_5_1_12_closed_headers(self):
        c = self.conn()
        self.open_and_close_stream(c)
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.expect_connection_error(STREAM_CLOSED)

    @h2spec("http2/5.1/13", "closed: Sends a CONTINUATION frame")
    def test_http2_5_1_13_closed_continuation(self):
        c = self.conn()
        self.open_and_close_stream(c)
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1))))
        c.expect_connection_error(STREAM_CLOSED, PROTOCOL_ERROR)

    # -- 5.1.1 Stream Identifiers

    @h2spec("http2/5.1.1/1", "Sends even-numbered stream identifier")
    def test_http2_5_1_1_1_even_stream_id(self):
        c = self.conn()
        c.send(headers_frame(2, self.common_block(c), end_stream=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/5.1.1/2", "Sends stream identifier that is numerically smaller than previous")
    def test_http2_5_1_1_2_smaller_stream_id(self):
        c = self.conn()
        c.send(headers_frame(5, self.common_block(c), end_stream=True))
        c.send(headers_frame(3, self.common_block(c), end_stream=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    # -- 5.1.2 Stream Concurrency

    @h2spec("http2/5.1.2/1", "Sends HEADERS frames that causes their advertised concurrent stream limit to be exceeded")
    def test_http2_5_1_2_1_concurrent_stream_limit(self):
        """INITIAL_WINDOW_SIZE 0 keeps every response open; MAX_CONCURRENT_STREAMS + 1
        requests; the last one is refused."""
        c = self.conn()
        limit = c.server_settings.get(SETTINGS_MAX_CONCURRENT_STREAMS)
        if limit is None:
            self.skipTest("no SETTINGS_MAX_CONCURRENT_STREAMS advertised (h2spec skips too)")
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 0)]))
        block = self.common_block(c)
        frames = b"".join(headers_frame(1 + 2 * i, block, end_stream=True)
                          for i in range(limit + 1))
        c.send(frames)
        c.expect_stream_error(PROTOCOL_ERROR, REFUSED_STREAM, stream_id=1 + 2 * limit)

    # -- 5.3.1 Stream Dependencies

    @h2spec("http2/5.3.1/1", "Sends HEADERS frame that depends on itself")
    def test_http2_5_3_1_1_headers_depends_on_itself(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True, priority=(1, 255, False)))
        c.expect_stream_error(PROTOCOL_ERROR, stream_id=1)

    @h2spec("http2/5.3.1/2", "Sends PRIORITY frame that depend on itself")
    def test_http2_5_3_1_2_priority_depends_on_itself(self):
        c = self.conn()
        c.send(priority_frame(1, 1, 255))
        c.expect_stream_error(PROTOCOL_ERROR, stream_id=1)

    # -- 5.4.1 Connection Error Handling

    @h2spec("http2/5.4.1/1", "Sends an invalid PING frame for connection close")
    def test_http2_5_4_1_1_invalid_ping_closes_connection(self):
        """PING on stream 3: after its GOAWAY the server MUST close the TCP connection."""
        c = self.conn()
        c.send(raw_frame(PING, 0, 3, b"\0" * 8))
        c.expect_close()

    # -- 5.5 Extending HTTP/2

    @h2spec("http2/5.5/1", "Sends an unknown extension frame")
    def test_http2_5_5_1_unknown_extension_frame(self):
        c = self.conn()
        c.send(raw_frame(0x16, 0, 0, b"\0" * 8))
        c.send(ping_frame(b"\0" * 8))
        c.expect_frame(PING)

    @h2spec("http2/5.5/2", "Sends an unknown extension frame in the middle of a header block")
    def test_http2_5_5_2_unknown_extension_frame_in_header_block(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True, end_headers=False))
        c.send(raw_frame(0x16, 0, 0, b"\0" * 8))
        c.expect_connection_error(PROTOCOL_ERROR)

    # -- 6.1 DATA

    @h2spec("http2/6.1/1", "Sends a DATA frame with 0x0 stream identifier")
    def test_http2_6_1_1_data_stream_0(self):
        c = self.conn()
        c.send(data_frame(0, b"test", end_stream=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.1/2", "Sends a DATA frame on the stream that is not in \"open\" or \"half-closed (local)\" state")
    def test_http2_6_1_2_data_on_half_closed_remote(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=True))
        c.send(data_frame(1, b"test", end_stream=True))
        c.expect_stream_error(STREAM_CLOSED, stream_id=1)

    @h2spec("http2/6.1/3", "Sends a DATA frame with invalid pad length")
    def test_http2_6_1_3_data_invalid_pad_length(self):
        """Frame length 5, pad length 6."""
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST", [("content-length", "4")]),
                             end_stream=False))
        c.send(b"\x00\x00\x05\x00\x09\x00\x00\x00\x01" + b"\x06\x54\x65\x73\x74")
        c.expect_connection_error(PROTOCOL_ERROR)

    # -- 6.2 HEADERS

    @h2spec("http2/6.2/1", "Sends a HEADERS frame without the END_HEADERS flag, and a PRIORITY frame")
    def test_http2_6_2_1_headers_then_priority(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False, end_headers=False))
        c.send(priority_frame(1, 0, 255))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1))))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.2/2", "Sends a HEADERS frame to another stream while sending a HEADERS frame")
    def test_http2_6_2_2_headers_to_other_stream(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False, end_headers=False))
        c.send(headers_frame(3, self.common_block(c), end_stream=True))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1))))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.2/3", "Sends a HEADERS frame with 0x0 stream identifier")
    def test_http2_6_2_3_headers_stream_0(self):
        c = self.conn()
        c.send(headers_frame(0, self.common_block(c), end_stream=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.2/4", "Sends a HEADERS frame with invalid pad length")
    def test_http2_6_2_4_headers_invalid_pad_length(self):
        """Frame length len(block)+1, pad length len(block)+2."""
        c = self.conn()
        block = self.common_block(c)
        c.send(raw_frame(HEADERS, FLAG_END_STREAM | FLAG_END_HEADERS | FLAG_PADDED, 1,
                         bytes([len(block) + 2]) + block))
        c.expect_stream_error(PROTOCOL_ERROR, stream_id=1)

    # -- 6.3 PRIORITY

    @h2spec("http2/6.3/1", "Sends a PRIORITY frame with 0x0 stream identifier")
    def test_http2_6_3_1_priority_stream_0(self):
        c = self.conn()
        c.send(priority_frame(0, 0, 255))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.3/2", "Sends a PRIORITY frame with a length other than 5 octets")
    def test_http2_6_3_2_priority_wrong_length(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.send(b"\x00\x00\x04\x02\x00\x00\x00\x00\x01" + b"\x80\x00\x00\x01")
        c.expect_stream_error(FRAME_SIZE_ERROR, stream_id=1)

    # -- 6.4 RST_STREAM

    @h2spec("http2/6.4/1", "Sends a RST_STREAM frame with 0x0 stream identifier")
    def test_http2_6_4_1_rst_stream_stream_0(self):
        c = self.conn()
        c.send(rst_stream_frame(0, CANCEL))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.4/2", "Sends a RST_STREAM frame on a idle stream")
    def test_http2_6_4_2_rst_stream_idle(self):
        c = self.conn()
        c.send(rst_stream_frame(1, CANCEL))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.4/3", "Sends a RST_STREAM frame with a length other than 4 octets")
    def test_http2_6_4_3_rst_stream_wrong_length(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.send(b"\x00\x00\x03\x03\x00\x00\x00\x00\x01" + b"\x00\x00\x00")
        c.expect_stream_error(FRAME_SIZE_ERROR, stream_id=1)

    # -- 6.5 SETTINGS

    @h2spec("http2/6.5/1", "Sends a SETTINGS frame with ACK flag and payload")
    def test_http2_6_5_1_settings_ack_with_payload(self):
        c = self.conn()
        c.send(b"\x00\x00\x01\x04\x01\x00\x00\x00\x00" + b"\x00")
        c.expect_connection_error(FRAME_SIZE_ERROR)

    @h2spec("http2/6.5/2", "Sends a SETTINGS frame with a stream identifier other than 0x0")
    def test_http2_6_5_2_settings_nonzero_stream(self):
        c = self.conn()
        c.send(b"\x00\x00\x06\x04\x00\x00\x00\x00\x01" + b"\x00\x03\x00\x00\x00\x64")
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.5/3", "Sends a SETTINGS frame with a length other than a multiple of 6 octets")
    def test_http2_6_5_3_settings_bad_length(self):
        """As h2spec: the header says 9 octets and 8 follow, so the length alone must be
        judged."""
        c = self.conn()
        c.send(b"\x00\x00\x09\x04\x00\x00\x00\x00\x00" + b"\x00\x03\x00\x00\x00\x64\x00\x02")
        c.expect_stream_error(PROTOCOL_ERROR, FRAME_SIZE_ERROR)

    # -- 6.5.2 Defined SETTINGS Parameters

    @h2spec("http2/6.5.2/1", "SETTINGS_ENABLE_PUSH (0x2): Sends the value other than 0 or 1")
    def test_http2_6_5_2_1_enable_push_2(self):
        c = self.conn()
        c.send(settings_frame([(SETTINGS_ENABLE_PUSH, 2)]))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.5.2/2", "SETTINGS_INITIAL_WINDOW_SIZE (0x4): Sends the value above the maximum flow control window size")
    def test_http2_6_5_2_2_initial_window_size_too_large(self):
        c = self.conn()
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 2147483648)]))
        c.expect_connection_error(FLOW_CONTROL_ERROR)

    @h2spec("http2/6.5.2/3", "SETTINGS_MAX_FRAME_SIZE (0x5): Sends the value below the initial value")
    def test_http2_6_5_2_3_max_frame_size_too_small(self):
        c = self.conn()
        c.send(settings_frame([(SETTINGS_MAX_FRAME_SIZE, 16383)]))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.5.2/4", "SETTINGS_MAX_FRAME_SIZE (0x5): Sends the value above the maximum allowed frame size")
    def test_http2_6_5_2_4_max_frame_size_too_large(self):
        c = self.conn()
        c.send(settings_frame([(SETTINGS_MAX_FRAME_SIZE, 16777216)]))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.5.2/5", "Sends a SETTINGS frame with unknown identifier")
    def test_http2_6_5_2_5_unknown_setting(self):
        c = self.conn()
        c.send(settings_frame([(0xFF, 1)]))
        c.send(ping_frame(b"\0" * 8))
        c.expect_frame(PING)

    # -- 6.5.3 Settings Synchronization

    @h2spec("http2/6.5.3/1", "Sends multiple values of SETTINGS_INITIAL_WINDOW_SIZE")
    def test_http2_6_5_3_1_multiple_initial_window_sizes(self):
        """INITIAL_WINDOW_SIZE 100 then 1 in one frame: the last one wins, so the first DATA
        of the response is one octet."""
        c = self.conn()
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 100),
                               (SETTINGS_INITIAL_WINDOW_SIZE, 1)]))
        c.expect_frame(SETTINGS)
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.expect_frame(DATA, lambda f: f.wire_length == 1, "DATA of length 1")

    @h2spec("http2/6.5.3/2", "Sends a SETTINGS frame without ACK flag")
    def test_http2_6_5_3_2_settings_acked(self):
        c = self.conn()
        c.send(settings_frame([(SETTINGS_ENABLE_PUSH, 0)]))
        c.expect_settings_ack()

    # -- 6.7 PING

    @h2spec("http2/6.7/1", "Sends a PING frame")
    def test_http2_6_7_1_ping(self):
        c = self.conn()
        c.send(ping_frame(b"h2spec\0\0"))
        c.expect_matching(lambda f: f.type == PING and "ACK" in f.flags
                          and bytes(f.opaque_data) == b"h2spec\0\0",
                          "PING(ACK) echoing b'h2spec'")

    @h2spec("http2/6.7/2", "Sends a PING frame with ACK")
    def test_http2_6_7_2_ping_with_ack_not_answered(self):
        """A PING with ACK must not be answered; the PING after it must be."""
        c = self.conn()
        c.send(ping_frame(b"invalid\0", ack=True))
        c.send(ping_frame(b"h2spec\0\0"))

        def match(f):
            if f.type == PING and bytes(f.opaque_data) == b"invalid\0":
                raise AssertionError("the server answered a PING with ACK: %s" % c.history())
            return f.type == PING and "ACK" in f.flags and bytes(f.opaque_data) == b"h2spec\0\0"
        c.expect_matching(match, "PING(ACK) echoing b'h2spec' only")

    @h2spec("http2/6.7/3", "Sends a PING frame with a stream identifier field value other than 0x0")
    def test_http2_6_7_3_ping_nonzero_stream(self):
        c = self.conn()
        c.send(b"\x00\x00\x08\x06\x00\x00\x00\x00\x01" + b"\0" * 8)
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.7/4", "Sends a PING frame with a length field value other than 8")
    def test_http2_6_7_4_ping_wrong_length(self):
        c = self.conn()
        c.send(b"\x00\x00\x06\x06\x00\x00\x00\x00\x00" + b"\0" * 6)
        c.expect_connection_error(FRAME_SIZE_ERROR)

    # -- 6.8 GOAWAY

    @h2spec("http2/6.8/1", "Sends a GOAWAY frame with a stream identifier other than 0x0")
    def test_http2_6_8_1_goaway_nonzero_stream(self):
        c = self.conn()
        c.send(b"\x00\x00\x08\x07\x00\x00\x00\x00\x01" + b"\0" * 8)
        c.expect_connection_error(PROTOCOL_ERROR)

    # -- 6.9 WINDOW_UPDATE

    @h2spec("http2/6.9/1", "Sends a WINDOW_UPDATE frame with a flow control window increment of 0")
    def test_http2_6_9_1_window_update_zero(self):
        c = self.conn()
        c.send(window_update_frame(0, 0))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.9/2", "Sends a WINDOW_UPDATE frame with a flow control window increment of 0 on a stream")
    def test_http2_6_9_2_window_update_zero_on_stream(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False))
        c.send(window_update_frame(1, 0))
        c.expect_stream_error(PROTOCOL_ERROR, stream_id=1)

    @h2spec("http2/6.9/3", "Sends a WINDOW_UPDATE frame with a length other than 4 octets")
    def test_http2_6_9_3_window_update_wrong_length(self):
        c = self.conn()
        c.send(b"\x00\x00\x03\x08\x00\x00\x00\x00\x00" + b"\x00\x00\x01")
        c.expect_connection_error(FRAME_SIZE_ERROR)

    # -- 6.9.1 The Flow-Control Window

    @h2spec("http2/6.9.1/1", "Sends SETTINGS frame to set the initial window size to 1 and sends HEADERS frame")
    def test_http2_6_9_1_1_initial_window_1(self):
        c = self.conn()
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 1)]))
        c.expect_frame(SETTINGS)
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.expect_frame(DATA, lambda f: f.wire_length == 1, "DATA of length 1")

    @h2spec("http2/6.9.1/2", "Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1")
    def test_http2_6_9_1_2_connection_window_overflow(self):
        """h2spec insists on the GOAWAY here: a bare close fails."""
        c = self.conn()
        c.send(window_update_frame(0, 2147483647) + window_update_frame(0, 2147483647))
        c.expect_frame(GOAWAY, lambda f: f.error_code == FLOW_CONTROL_ERROR,
                       "GOAWAY(FLOW_CONTROL_ERROR)", fail_on_goaway=False)

    @h2spec("http2/6.9.1/3", "Sends multiple WINDOW_UPDATE frames increasing the flow control window to above 2^31-1 on a stream")
    def test_http2_6_9_1_3_stream_window_overflow(self):
        """h2spec insists on an RST_STREAM(FLOW_CONTROL_ERROR) for stream 1."""
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=False))
        c.send(window_update_frame(1, 2147483647) + window_update_frame(1, 2147483647))
        c.expect_frame(RST_STREAM, lambda f: f.stream_id == 1 and f.error_code == FLOW_CONTROL_ERROR,
                       "RST_STREAM(FLOW_CONTROL_ERROR) on stream 1")

    # -- 6.9.2 Initial Flow-Control Window Size

    @h2spec("http2/6.9.2/1", "Changes SETTINGS_INITIAL_WINDOW_SIZE after sending HEADERS frame")
    def test_http2_6_9_2_1_change_initial_window_after_headers(self):
        c = self.conn()
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 0)]))
        c.expect_frame(SETTINGS)
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 1)]))
        c.expect_frame(SETTINGS)
        c.expect_frame(DATA, lambda f: f.wire_length == 1, "DATA of length 1")

    @h2spec("http2/6.9.2/2", "Sends a SETTINGS frame for window size to be negative")
    def test_http2_6_9_2_2_negative_window(self):
        """Window 3, response DATA uses it, window set to 2 (now -1), WINDOW_UPDATE +2: the
        next DATA is exactly one octet."""
        c = self.conn()
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 3)]))
        c.expect_frame(SETTINGS)
        c.send(headers_frame(1, self.common_block(c), end_stream=True))
        c.expect_frame(DATA)
        c.send(settings_frame([(SETTINGS_INITIAL_WINDOW_SIZE, 2)]))
        c.expect_frame(SETTINGS)
        c.send(window_update_frame(1, 2))
        c.expect_frame(DATA, lambda f: f.wire_length == 1, "DATA of length 1")

    @h2spec("http2/6.9.2/3", "Sends a SETTINGS_INITIAL_WINDOW_SIZE settings with an exceeded maximum window size value")
    def test_http2_6_9_2_3_initial_window_size_exceeds_maximum(self):
        c = self.conn()
        c.send(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00" + b"\x00\x04\x80\x00\x00\x00")
        c.expect_connection_error(FLOW_CONTROL_ERROR)

    # -- 6.10 CONTINUATION

    @h2spec("http2/6.10/1", "Sends multiple CONTINUATION frames preceded by a HEADERS frame")
    def test_http2_6_10_1_multiple_continuations(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True, end_headers=False))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1)), end_headers=False))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1)), end_headers=True))
        self.ok(c)

    @h2spec("http2/6.10/2", "Sends a CONTINUATION frame followed by any frame other than CONTINUATION")
    def test_http2_6_10_2_continuation_then_data(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False, end_headers=False))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1)), end_headers=False))
        c.send(data_frame(1, b"test", end_stream=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.10/3", "Sends a CONTINUATION frame with 0x0 stream identifier")
    def test_http2_6_10_3_continuation_stream_0(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True, end_headers=False))
        c.send(continuation_frame(0, c.encode_headers(dummy_headers(1)), end_headers=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.10/4", "Sends a CONTINUATION frame preceded by a HEADERS frame with END_HEADERS flag")
    def test_http2_6_10_4_continuation_after_end_headers(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True, end_headers=True))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1)), end_headers=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.10/5", "Sends a CONTINUATION frame preceded by a CONTINUATION frame with END_HEADERS flag")
    def test_http2_6_10_5_continuation_after_continuation_end_headers(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c), end_stream=True, end_headers=False))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1)), end_headers=True))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1)), end_headers=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    @h2spec("http2/6.10/6", "Sends a CONTINUATION frame preceded by a DATA frame")
    def test_http2_6_10_6_continuation_after_data(self):
        """Two connections: h2spec's own sequence (HEADERS without END_HEADERS, DATA,
        CONTINUATION, CONTINUATION on stream 0), and the literal reading of the case
        (a complete HEADERS, DATA, then a CONTINUATION on the same stream)."""
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False, end_headers=False))
        c.send(data_frame(1, b"test", end_stream=True))
        c.send(continuation_frame(1, c.encode_headers(dummy_headers(1)), end_headers=False))
        c.send(continuation_frame(0, c.encode_headers(dummy_headers(1)), end_headers=True))
        c.expect_connection_error(PROTOCOL_ERROR)

        c2 = self.conn()
        c2.send(headers_frame(1, self.common_block(c2, "POST"), end_stream=False))
        c2.send(data_frame(1, b"test", end_stream=False))
        c2.send(continuation_frame(1, c2.encode_headers(dummy_headers(1)), end_headers=True))
        c2.expect_connection_error(PROTOCOL_ERROR)

    # -- 7 Error Codes

    @h2spec("http2/7/1", "Sends a GOAWAY frame with unknown error code")
    def test_http2_7_1_goaway_unknown_error_code(self):
        c = self.conn()
        c.send(goaway_frame(0, 0xff))
        c.expect_close()

    @h2spec("http2/7/2", "Sends a RST_STREAM frame with unknown error code")
    def test_http2_7_2_rst_stream_unknown_error_code(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False))
        c.send(rst_stream_frame(1, 0xff))
        c.send(ping_frame(b"\0" * 8))
        c.expect_frame(PING)

    # -- 8.1 HTTP Request/Response Exchange

    @h2spec("http2/8.1/1", "Sends a second HEADERS frame without the END_STREAM flag")
    def test_http2_8_1_1_second_headers_without_end_stream(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False))
        c.send(data_frame(1, b"test", end_stream=False))
        c.send(headers_frame(1, c.encode_headers([("x-test", "ok")]), end_stream=False))
        c.expect_stream_error(PROTOCOL_ERROR, stream_id=1)

    # -- 8.1.2 HTTP Header Fields

    def malformed(self, headers):
        """A request with these header fields (in order, stateful encoder) and END_STREAM;
        a malformed request is a stream error PROTOCOL_ERROR (RFC 9113 §8.1.1)."""
        c = self.conn()
        c.send(headers_frame(1, c.encode_headers(headers), end_stream=True))
        c.expect_stream_error(PROTOCOL_ERROR, stream_id=1)
        return c

    @h2spec("http2/8.1.2/1", "Sends a HEADERS frame that contains the header field name in uppercase letters")
    def test_http2_8_1_2_1_uppercase_header_name(self):
        self.malformed(self._common() + [("X-TEST", "ok")])

    def _common(self, method="GET", path="/"):
        return [(":method", method), (":scheme", "http"), (":path", path),
                (":authority", "%s:%d" % (self.host, self.port))]

    # -- 8.1.2.1 Pseudo-Header Fields

    @h2spec("http2/8.1.2.1/1", "Sends a HEADERS frame that contains a unknown pseudo-header field")
    def test_http2_8_1_2_1_1_unknown_pseudo_header(self):
        self.malformed(self._common() + [(":test", "ok")])

    @h2spec("http2/8.1.2.1/2", "Sends a HEADERS frame that contains the pseudo-header field defined for response")
    def test_http2_8_1_2_1_2_response_pseudo_header_in_request(self):
        self.malformed(self._common() + [(":status", "200")])

    @h2spec("http2/8.1.2.1/3", "Sends a HEADERS frame that contains a pseudo-header field as trailers")
    def test_http2_8_1_2_1_3_pseudo_header_in_trailers(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST"), end_stream=False))
        c.send(data_frame(1, b"test", end_stream=False))
        c.send(headers_frame(1, c.encode_headers([(":method", "POST")]), end_stream=False))
        c.expect_stream_error(PROTOCOL_ERROR, stream_id=1)

    @h2spec("http2/8.1.2.1/4", "Sends a HEADERS frame that contains a pseudo-header field that appears in a header block after a regular header field")
    def test_http2_8_1_2_1_4_pseudo_header_after_regular(self):
        self.malformed([("x-test", "ok")] + self._common())

    # -- 8.1.2.2 Connection-Specific Header Fields

    @h2spec("http2/8.1.2.2/1", "Sends a HEADERS frame that contains the connection-specific header field")
    def test_http2_8_1_2_2_1_connection_header(self):
        self.malformed(self._common() + [("connection", "keep-alive")])

    @h2spec("http2/8.1.2.2/2", "Sends a HEADERS frame that contains the TE header field with any value other than \"trailers\"")
    def test_http2_8_1_2_2_2_te_not_trailers(self):
        self.malformed(self._common() + [("trailers", "test"), ("te", "trailers, deflate")])

    # -- 8.1.2.3 Request Pseudo-Header Fields

    @h2spec("http2/8.1.2.3/1", "Sends a HEADERS frame with empty \":path\" pseudo-header field")
    def test_http2_8_1_2_3_1_empty_path(self):
        self.malformed(self._common(path=""))

    @h2spec("http2/8.1.2.3/2", "Sends a HEADERS frame that omits \":method\" pseudo-header field")
    def test_http2_8_1_2_3_2_missing_method(self):
        self.malformed([f for f in self._common() if f[0] != ":method"])

    @h2spec("http2/8.1.2.3/3", "Sends a HEADERS frame that omits \":scheme\" pseudo-header field")
    def test_http2_8_1_2_3_3_missing_scheme(self):
        self.malformed([f for f in self._common() if f[0] != ":scheme"])

    @h2spec("http2/8.1.2.3/4", "Sends a HEADERS frame that omits \":path\" pseudo-header field")
    def test_http2_8_1_2_3_4_missing_path(self):
        self.malformed([f for f in self._common() if f[0] != ":path"])

    @h2spec("http2/8.1.2.3/5", "Sends a HEADERS frame with duplicated \":method\" pseudo-header field")
    def test_http2_8_1_2_3_5_duplicate_method(self):
        self.malformed(self._common() + [(":method", "GET")])

    @h2spec("http2/8.1.2.3/6", "Sends a HEADERS frame with duplicated \":scheme\" pseudo-header field")
    def test_http2_8_1_2_3_6_duplicate_scheme(self):
        self.malformed(self._common() + [(":scheme", "http")])

    @h2spec("http2/8.1.2.3/7", "Sends a HEADERS frame with duplicated \":path\" pseudo-header field")
    def test_http2_8_1_2_3_7_duplicate_path(self):
        self.malformed(self._common() + [(":path", "/")])

    # -- 8.1.2.6 Malformed Requests and Responses

    @h2spec("http2/8.1.2.6/1", "Sends a HEADERS frame with the \"content-length\" header field which does not equal the DATA frame payload length")
    def test_http2_8_1_2_6_1_content_length_mismatch(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST", [("content-length", "1")]),
                             end_stream=False))
        c.send(data_frame(1, b"test", end_stream=True))
        c.expect_stream_error(PROTOCOL_ERROR, stream_id=1)

    @h2spec("http2/8.1.2.6/2", "Sends a HEADERS frame with the \"content-length\" header field which does not equal the sum of the multiple DATA frames payload length")
    def test_http2_8_1_2_6_2_content_length_mismatch_multiple_data(self):
        c = self.conn()
        c.send(headers_frame(1, self.common_block(c, "POST", [("content-length", "1")]),
                             end_stream=False))
        c.send(data_frame(1, b"test", end_stream=False) + data_frame(1, b"test", end_stream=True))
        c.expect_stream_error(PROTOCOL_ERROR, stream_id=1)

    # -- 8.2 Server Push

    @h2spec("http2/8.2/1", "Sends a PUSH_PROMISE frame")
    def test_http2_8_2_1_push_promise_from_client(self):
        c = self.conn()
        c.send(push_promise_frame(1, 3, self.common_block(c), end_headers=True))
        c.expect_connection_error(PROTOCOL_ERROR)

    # =========================================================================================
    # hpack: HPACK: Header Compression for HTTP/2 (decoding errors are COMPRESSION_ERROR)
    # =========================================================================================

    @h2spec("hpack/2.3.3/1", "Sends a indexed header field representation with invalid index")
    def test_hpack_2_3_3_1_indexed_invalid_index(self):
        """Index 70: past the 61 static entries and the one dynamic entry (:authority)."""
        c = self.conn()
        self.send_common_plus(c, b"\xc6")
        c.expect_connection_error(COMPRESSION_ERROR)

    @h2spec("hpack/2.3.3/2", "Sends a literal header field representation with invalid index")
    def test_hpack_2_3_3_2_literal_invalid_index(self):
        """Literal with incremental indexing, name index 70, empty value."""
        c = self.conn()
        self.send_common_plus(c, b"\x7f\x07\x00")
        c.expect_connection_error(COMPRESSION_ERROR)

    @h2spec("hpack/4.2/1", "Sends a dynamic table size update at the end of header block")
    def test_hpack_4_2_1_table_size_update_at_end(self):
        c = self.conn()
        self.send_common_plus(c, b"\x21")
        c.expect_connection_error(COMPRESSION_ERROR)

    @h2spec("hpack/5.2/1", "Sends a Huffman-encoded string literal representation with padding longer than 7 bits")
    def test_hpack_5_2_1_huffman_padding_too_long(self):
        c = self.conn()
        self.send_common_plus(c, b"\x00\x85\xf2\xb2\x4a\x84\xff\x84\x49\x50\x9f\xff")
        c.expect_connection_error(COMPRESSION_ERROR)

    @h2spec("hpack/5.2/2", "Sends a Huffman-encoded string literal representation padded by zero")
    def test_hpack_5_2_2_huffman_zero_padding(self):
        c = self.conn()
        self.send_common_plus(c, b"\x00\x85\xf2\xb2\x4a\x84\xff\x83\x49\x50\x90")
        c.expect_connection_error(COMPRESSION_ERROR)

    @h2spec("hpack/5.2/3", "Sends a Huffman-encoded string literal representation containing the EOS symbol")
    def test_hpack_5_2_3_huffman_eos(self):
        c = self.conn()
        self.send_common_plus(c, b"\x00\x85\xf2\xb2\x4a\x87\xff\xff\xff\xfd\x25\x42\x7f")
        c.expect_connection_error(COMPRESSION_ERROR)

    @h2spec("hpack/6.1/1", "Sends a indexed header field representation with index 0")
    def test_hpack_6_1_1_indexed_index_0(self):
        c = self.conn()
        self.send_common_plus(c, b"\x80")
        c.expect_connection_error(COMPRESSION_ERROR)

    @h2spec("hpack/6.3/1", "Sends a dynamic table size update larger than the value of SETTINGS_HEADER_TABLE_SIZE")
    def test_hpack_6_3_1_table_size_update_too_large(self):
        c = self.conn()
        limit = c.server_settings.get(SETTINGS_HEADER_TABLE_SIZE, 4096)
        self.send_common_plus(c, h.hpack_table_size_update(limit + 1), prepend=True)
        c.expect_connection_error(COMPRESSION_ERROR)

    # =========================================================================================
    # Sentinel's own contract (not h2spec)
    # =========================================================================================

    def test_sentinel_server_settings(self):
        """The server's SETTINGS: MAX_CONCURRENT_STREAMS 100, INITIAL_WINDOW_SIZE 65536,
        MAX_FRAME_SIZE 16384, MAX_HEADER_LIST_SIZE 32768, ENABLE_CONNECT_PROTOCOL 1."""
        self.skip_if_external()
        c = self.conn()
        s = c.server_settings
        want = {SETTINGS_MAX_CONCURRENT_STREAMS: 100, SETTINGS_INITIAL_WINDOW_SIZE: 65536,
                SETTINGS_MAX_FRAME_SIZE: 16384, SETTINGS_MAX_HEADER_LIST_SIZE: 32768,
                h.SETTINGS_ENABLE_CONNECT_PROTOCOL: 1}
        got = {k: s.get(k) for k in want}
        self.assertEqual(got, want, "server SETTINGS: %r" % s)

    def test_sentinel_http1_and_h2c_share_the_listener(self):
        """HTTP/1.1 still works on the listener that takes prior-knowledge h2c, and both reach
        the origin with the request as sent (method, path, query)."""
        self.skip_if_external()
        r = http_request(self.port, "GET", "/demo/h1?x=1")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["path"], "/demo/h1", r)
        status, headers, body = h.h2_get(self.port, "/demo/h2?x=2")
        self.assertEqual(status, 200, (headers, body[:300]))
        page = json.loads(body)
        self.assertEqual((page["method"], page["path"], page["query"]),
                         ("GET", "/demo/h2", {"x": ["2"]}), page)

    def test_sentinel_many_streams_on_one_connection(self):
        """Twenty concurrent streams on one connection, each answered with its own page."""
        self.skip_if_external()
        with h.H2Client(self.port) as c:
            sids = {c.start("GET", "/demo/s%d" % i): i for i in range(20)}
            c.wait(list(sids), timeout=20)
            for sid, i in sids.items():
                r = c.responses[sid]
                self.assertEqual(r["status"], 200, (sid, r))
                self.assertEqual(json.loads(bytes(r["body"]))["path"], "/demo/s%d" % i)


H2_OFF_CONFIG = r"""
system { workers 1 }
listeners { listener "public" { listen "127.0.0.1:@port@"; http2 #false } }
routes { route "all" { match { path-prefix "/" }; upstream "origin" } }
upstreams { upstream "origin" { endpoint "@origin@" } }
"""


@unittest.skipIf(EXTERNAL, "Sentinel-specific (SENTINEL_H2_TARGET is set)")
class H2cDisabled(IntegrationTest):
    """`http2 #false` on a listener: the preface is not taken as HTTP/2."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.origin = cls.class_origin("origin")
        cls.port = free_port()
        cls.sentinel = cls.class_sentinel(render(H2_OFF_CONFIG, port=cls.port,
                                                 origin=cls.origin.address), port=cls.port)

    def test_preface_gets_no_settings_when_http2_is_off(self):
        with connect(self.port) as s:
            s.sendall(h.PREFACE + settings_frame())
            reader = ResponseReader(s, 5.0)
            try:
                data = reader.read_until_eof(timeout=5.0)
            except ConnectionResetError:
                data = b""
        # An HTTP/1.1 error (505 for "HTTP/2.0", or 400) or a bare close; never a SETTINGS frame.
        self.assertFalse(len(data) >= 9 and data[3] == SETTINGS and data[:3] != b"HTT",
                         "a SETTINGS frame came back with http2 #false: %r" % data[:64])
        if data:
            self.assertTrue(data.startswith(b"HTTP/1.1 "), data[:200])

    def test_http1_still_served(self):
        r = http_request(self.port, "GET", "/demo/x")
        self.assertEqual(r.status, 200, r)


if __name__ == "__main__":
    unittest.main()
