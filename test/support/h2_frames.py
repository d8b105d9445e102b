"""Raw HTTP/2 for Sentinel's frame-level tests (test_h2_conformance, test_h2_abuse).

Standard library plus Debian's python3-h2 stack (h2 4.1, hyperframe 6, hpack 4); run with
/usr/bin/python3. Three layers:

- Frame builders (`raw_frame`, `data_frame`, `headers_frame`, ...) that serialise with
  struct and never validate, so a test can send exactly the bytes it wants: wrong lengths,
  stream 0, reserved bits, bad padding, unknown types.
- HPACK pieces (`hpack_int`, `hpack_literal`, `hpack_indexed`, ...) for header blocks that an
  encoder would never produce (invalid indices, table size updates at the end, bombs).
- `RawH2Conn`: a socket speaking h2c with prior knowledge. It parses what the server sends
  with hyperframe (a malformed server frame fails the test), decodes response header blocks
  with hpack, answers DATA with WINDOW_UPDATEs the way h2spec's client does, and offers the
  verifications h2spec uses (connection error, stream error, connection close, a frame of a
  given type, a response) as `expect_*` methods that raise AssertionError with everything
  that was received.

`h2_get` / `H2Client` are a well-behaved client built on h2's state machine, for the
"other connections keep working" checks.
"""

import os
import socket
import struct
import time

import h2.config
import h2.connection
import h2.events
import hpack
import hyperframe.frame as hf

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 §6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
FRAME_NAMES = {DATA: "DATA", HEADERS: "HEADERS", PRIORITY: "PRIORITY", RST_STREAM: "RST_STREAM",
               SETTINGS: "SETTINGS", PUSH_PROMISE: "PUSH_PROMISE", PING: "PING",
               GOAWAY: "GOAWAY", WINDOW_UPDATE: "WINDOW_UPDATE", CONTINUATION: "CONTINUATION"}

# Flags.
FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1
FLAG_END_HEADERS = 0x4
FLAG_PADDED = 0x8
FLAG_PRIORITY = 0x20

# Error codes (RFC 9113 §7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xa
ENHANCE_YOUR_CALM = 0xb
INADEQUATE_SECURITY = 0xc
HTTP_1_1_REQUIRED = 0xd
ERROR_NAMES = {NO_ERROR: "NO_ERROR", PROTOCOL_ERROR: "PROTOCOL_ERROR",
               INTERNAL_ERROR: "INTERNAL_ERROR", FLOW_CONTROL_ERROR: "FLOW_CONTROL_ERROR",
               SETTINGS_TIMEOUT: "SETTINGS_TIMEOUT", STREAM_CLOSED: "STREAM_CLOSED",
               FRAME_SIZE_ERROR: "FRAME_SIZE_ERROR", REFUSED_STREAM: "REFUSED_STREAM",
               CANCEL: "CANCEL", COMPRESSION_ERROR: "COMPRESSION_ERROR",
               CONNECT_ERROR: "CONNECT_ERROR", ENHANCE_YOUR_CALM: "ENHANCE_YOUR_CALM",
               INADEQUATE_SECURITY: "INADEQUATE_SECURITY",
               HTTP_1_1_REQUIRED: "HTTP_1_1_REQUIRED"}

# SETTINGS identifiers (RFC 9113 §6.5.2, RFC 8441).
SETTINGS_HEADER_TABLE_SIZE = 0x1
SETTINGS_ENABLE_PUSH = 0x2
SETTINGS_MAX_CONCURRENT_STREAMS = 0x3
SETTINGS_INITIAL_WINDOW_SIZE = 0x4
SETTINGS_MAX_FRAME_SIZE = 0x5
SETTINGS_MAX_HEADER_LIST_SIZE = 0x6
SETTINGS_ENABLE_CONNECT_PROTOCOL = 0x8

DEFAULT_WINDOW = 65535  # h2spec's spec.DefaultWindowSize

# Per-read timeout of the expect_* waits: h2spec's default (-o 2). SENTINEL_H2_TIMEOUT
# raises it for slow builds (sanitizers).
WAIT = float(os.environ.get("SENTINEL_H2_TIMEOUT", "2.0"))


def error_name(code):
    return ERROR_NAMES.get(code, "0x%x" % code)


# ---- frame builders (no validation on purpose) -------------------------------------------

def raw_frame(ftype, flags, stream_id, payload=b"", length=None, reserved=False):
    """A frame with exactly these header fields; `length` may lie about the payload."""
    if length is None:
        length = len(payload)
    sid = (stream_id & 0x7fffffff) | (0x80000000 if reserved else 0)
    return struct.pack(">I", length)[1:] + struct.pack(">BBI", ftype, flags, sid) + bytes(payload)


def _padded(payload, pad):
    """(flags, payload) with a PADDED prefix: pad is the pad length (zeros appended)."""
    if pad is None:
        return 0, payload
    return FLAG_PADDED, bytes([pad]) + payload + b"\0" * pad


def data_frame(stream_id, data=b"", end_stream=False, pad=None):
    flags, payload = _padded(bytes(data), pad)
    return raw_frame(DATA, flags | (FLAG_END_STREAM if end_stream else 0), stream_id, payload)


def priority_fields(depends_on=0, weight=255, exclusive=False):
    """The 5 priority octets; `weight` is the wire field (h2spec's Weight; 0 = priority 1)."""
    return struct.pack(">IB", (depends_on & 0x7fffffff) | (0x80000000 if exclusive else 0),
                       weight)


def headers_frame(stream_id, block, end_stream=False, end_headers=True, pad=None,
                  priority=None):
    """priority: None or (depends_on, weight_field, exclusive)."""
    flags = (FLAG_END_STREAM if end_stream else 0) | (FLAG_END_HEADERS if end_headers else 0)
    payload = bytes(block)
    if priority is not None:
        flags |= FLAG_PRIORITY
        payload = priority_fields(*priority) + payload
    pflags, payload = _padded(payload, pad)
    return raw_frame(HEADERS, flags | pflags, stream_id, payload)


def priority_frame(stream_id, depends_on=0, weight=255, exclusive=False):
    return raw_frame(PRIORITY, 0, stream_id, priority_fields(depends_on, weight, exclusive))


def rst_stream_frame(stream_id, code=CANCEL):
    return raw_frame(RST_STREAM, 0, stream_id, struct.pack(">I", code))


def settings_frame(settings=(), ack=False, stream_id=0):
    payload = b"".join(struct.pack(">HI", k, v) for k, v in settings)
    return raw_frame(SETTINGS, FLAG_ACK if ack else 0, stream_id, payload)


def push_promise_frame(stream_id, promised_id, block, end_headers=True):
    return raw_frame(PUSH_PROMISE, FLAG_END_HEADERS if end_headers else 0, stream_id,
                     struct.pack(">I", promised_id & 0x7fffffff) + bytes(block))


def ping_frame(data=b"\0" * 8, ack=False, stream_id=0):
    return raw_frame(PING, FLAG_ACK if ack else 0, stream_id, bytes(data))


def goaway_frame(last_stream_id=0, code=NO_ERROR, debug=b"", stream_id=0):
    return raw_frame(GOAWAY, 0, stream_id,
                     struct.pack(">II", last_stream_id & 0x7fffffff, code) + bytes(debug))


def window_update_frame(stream_id, increment):
    return raw_frame(WINDOW_UPDATE, 0, stream_id, struct.pack(">I", increment & 0x7fffffff))


def continuation_frame(stream_id, block, end_headers=True):
    return raw_frame(CONTINUATION, FLAG_END_HEADERS if end_headers else 0, stream_id,
                     bytes(block))


# ---- HPACK pieces (RFC 7541 §5, §6) ----------------------------------------------------------

def hpack_int(value, prefix_bits, first=0):
    """An integer with an N-bit prefix; `first` holds the representation's high bits."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = bytearray([first | limit])
    value -= limit
    while value >= 128:
        out.append(0x80 | (value & 0x7f))
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_str(s, huffman=False):
    if isinstance(s, str):
        s = s.encode("latin-1")
    if huffman:
        enc = hpack.huffman.HuffmanEncoder(hpack.huffman_constants.REQUEST_CODES,
                                           hpack.huffman_constants.REQUEST_CODES_LENGTH)
        coded = enc.encode(s)
        return hpack_int(len(coded), 7, 0x80) + coded
    return hpack_int(len(s), 7, 0) + s


def hpack_indexed(index):
    """Indexed Header Field (§6.1)."""
    return hpack_int(index, 7, 0x80)


def hpack_literal(name, value, indexing="without", name_index=None, huffman=False):
    """Literal Header Field (§6.2): indexing is "incremental", "without" or "never"; the
    name is a literal unless name_index is given."""
    prefix, first = {"incremental": (6, 0x40), "without": (4, 0x00), "never": (4, 0x10)}[indexing]
    if name_index is not None:
        return hpack_int(name_index, prefix, first) + hpack_str(value, huffman)
    return bytes([first]) + hpack_str(name, huffman) + hpack_str(value, huffman)


def hpack_table_size_update(size):
    """Dynamic Table Size Update (§6.3)."""
    return hpack_int(size, 5, 0x20)


def plain_block(headers):
    """A header block of literals without indexing (leaves both dynamic tables alone)."""
    return b"".join(hpack_literal(n, v) for n, v in headers)


# ---- reading what the server sends -------------------------------------------------------

class _Marker:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


CLOSED = _Marker("connection closed")
TIMEOUT = _Marker("timeout")


def describe(ev):
    """One line for a received frame or marker."""
    if isinstance(ev, _Marker):
        return repr(ev)
    t = ev.type
    flags = ",".join(sorted(ev.flags)) if ev.flags else ""
    base = "%s(stream=%d%s" % (FRAME_NAMES.get(t, "type=0x%x" % t), ev.stream_id,
                               (", " + flags) if flags else "")
    if t == GOAWAY:
        return base + ", last=%d, %s, debug=%r)" % (ev.last_stream_id, error_name(ev.error_code),
                                                   bytes(ev.additional_data)[:100])
    if t == RST_STREAM:
        return base + ", %s)" % error_name(ev.error_code)
    if t in (HEADERS, CONTINUATION) and getattr(ev, "decoded", None) is not None:
        return base + ", %s)" % ", ".join("%s: %s" % (k.decode("latin-1"), v.decode("latin-1")[:60])
                                          for k, v in ev.decoded if k.startswith(b":"))
    if t == DATA:
        return base + ", length=%d)" % ev.wire_length
    if t == SETTINGS:
        return base + ", %r)" % dict(ev.settings)
    if t == PING:
        return base + ", %r)" % bytes(ev.opaque_data)
    if t == WINDOW_UPDATE:
        return base + ", +%d)" % ev.window_increment
    return base + ")"


class RawH2Conn:
    """One h2c connection with prior knowledge, driven frame by frame.

    Received frames are hyperframe objects with two extra attributes: `wire_length` (the
    length field) and, on the frame that ends a header block, `decoded` (list of
    (name, value) bytes pairs). `events` keeps every frame received, for failure messages.
    """

    def __init__(self, port, host="127.0.0.1", timeout=WAIT, auto_window_update=True,
                 connect_timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=connect_timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.port = port
        self.timeout = timeout
        self.authority = "%s:%d" % (host, port)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder(max_header_list_size=1 << 24)
        self.decoder.max_allowed_table_size = 1 << 16
        self.buf = bytearray()
        self.closed = False
        self.close_reason = None
        self.events = []
        self.server_settings = {}
        self.auto_window_update = auto_window_update
        self.windows = {0: DEFAULT_WINDOW}
        self._block = None  # (first frame, fragments) of a header block being received

    # -- sending

    def send(self, data):
        """Sends bytes; returns False (instead of raising) when the peer already closed."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            return False
        except socket.timeout:
            return False

    def send_preface(self, settings=((SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW),)):
        return self.send(PREFACE + settings_frame(settings))

    def handshake(self, settings=((SETTINGS_INITIAL_WINDOW_SIZE, DEFAULT_WINDOW),),
                  timeout=None):
        """h2spec's Conn.Handshake: preface + SETTINGS, then read until the server's SETTINGS
        (answered with an ACK) and the ACK of ours both arrived."""
        self.send_preface(settings)
        local = remote = False
        deadline = time.monotonic() + (timeout or max(self.timeout, 5.0))
        while not (local and remote):
            ev = self.read_event(deadline - time.monotonic())
            if ev is CLOSED or ev is TIMEOUT:
                raise AssertionError("HTTP/2 handshake failed: %s (received: %s)"
                                     % (ev, self.history()))
            if ev.type != SETTINGS:
                continue
            if "ACK" in ev.flags:
                local = True
            else:
                remote = True
                self.server_settings.update(dict(ev.settings))
                self.send(settings_frame(ack=True))
        return self

    def encode_headers(self, headers, huffman=True):
        """Stateful encoding with this connection's encoder (h2spec's EncodeHeaders)."""
        return self.encoder.encode(list(headers), huffman=huffman)

    def common_headers(self, method="GET", path="/"):
        """h2spec's CommonHeaders: :method, :scheme, :path, :authority (in that order)."""
        return [(":method", method), (":scheme", "http"), (":path", path),
                (":authority", self.authority)]

    def request_block(self, method="GET", path="/", extra=()):
        return self.encode_headers(self.common_headers(method, path) + list(extra))

    def send_request(self, stream_id, method="GET", path="/", extra=(), end_stream=True):
        return self.send(headers_frame(stream_id, self.request_block(method, path, extra),
                                       end_stream=end_stream))

    # -- receiving

    def _fill(self, timeout):
        if timeout <= 0:
            return None
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return None
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError) as e:
            self.closed = True
            self.close_reason = repr(e)
            return b""
        if not d:
            self.closed = True
            self.close_reason = "EOF"
            return b""
        self.buf += d
        return d

    def read_event(self, timeout=None):
        """The next frame, CLOSED, or TIMEOUT (nothing complete within `timeout` seconds)."""
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buf) >= 9:
                length = int.from_bytes(self.buf[0:3], "big")
                if len(self.buf) >= 9 + length:
                    return self._parse(length)
            if self.closed:
                return CLOSED
            d = self._fill(deadline - time.monotonic())
            if d is None:
                return TIMEOUT

    def _parse(self, length):
        header = bytes(self.buf[:9])
        body = bytes(self.buf[9:9 + length])
        del self.buf[:9 + length]
        try:
            frame, _ = hf.Frame.parse_frame_header(memoryview(header))
            frame.parse_body(memoryview(body))
        except Exception as e:  # noqa: BLE001 - any parse failure is the server's fault
            raise AssertionError("the server sent a malformed frame %r%r: %r (before it: %s)"
                                 % (header, body[:64], e, self.history()))
        frame.wire_length = length
        frame.decoded = None
        self.events.append(frame)
        t = frame.type
        if t in (HEADERS, PUSH_PROMISE):
            self._block = (frame, [bytes(frame.data)])
            if "END_HEADERS" in frame.flags:
                self._finish_block(frame)
        elif t == CONTINUATION and self._block is not None:
            self._block[1].append(bytes(frame.data))
            if "END_HEADERS" in frame.flags:
                self._finish_block(frame)
        elif t == DATA and self.auto_window_update:
            self._consume(frame.stream_id, length)
        return frame

    def _finish_block(self, last):
        first, fragments = self._block
        self._block = None
        try:
            decoded = self.decoder.decode(b"".join(fragments), raw=True)
        except Exception as e:  # noqa: BLE001
            raise AssertionError("cannot decode the server's header block: %r (frames: %s)"
                                 % (e, self.history()))
        first.decoded = decoded
        last.decoded = decoded

    def _consume(self, stream_id, n):
        # h2spec's updateWindowSize: top a window back up once it is used up.
        for sid in (stream_id, 0):
            w = self.windows.get(sid, DEFAULT_WINDOW) - n
            if w <= 0:
                incr = DEFAULT_WINDOW - w
                self.send(window_update_frame(sid, incr))
                w += incr
            self.windows[sid] = w

    def history(self, limit=40):
        evs = self.events[-limit:]
        s = ", ".join(describe(e) for e in evs) or "nothing"
        if self.closed:
            s += ", then %s (%s)" % (CLOSED, self.close_reason)
        return s

    # -- h2spec's verifications

    def loop(self, on_event, what, overall=30.0):
        """Feeds events to on_event until it returns a result; fails on TIMEOUT (one quiet
        per-read timeout, as h2spec's WaitEvent) or on `overall` seconds."""
        start = len(self.events)
        end = time.monotonic() + overall
        while True:
            ev = self.read_event(min(self.timeout, max(0.0, end - time.monotonic())))
            result = on_event(ev)
            if result is not None:
                return result
            if ev is TIMEOUT or ev is CLOSED:
                got = ", ".join(describe(e) for e in self.events[start:]) or "no frame"
                if ev is CLOSED:
                    got += ", then the connection closed (%s)" % self.close_reason
                else:
                    got += ", then nothing for %.1fs" % self.timeout
                raise AssertionError("expected %s; received %s" % (what, got))

    def expect_connection_error(self, *codes):
        """h2spec VerifyConnectionError: a GOAWAY with one of `codes`, or the connection
        closed. A GOAWAY with another code fails at once. Returns the GOAWAY or CLOSED."""
        names = "/".join(error_name(c) for c in codes)
        what = "GOAWAY(%s) or the connection closed" % names

        def on(ev):
            if ev is CLOSED:
                return ev
            if ev is not TIMEOUT and ev.type == GOAWAY:
                if ev.error_code in codes:
                    return ev
                raise AssertionError("expected %s; got %s (received: %s)"
                                     % (what, describe(ev), self.history()))
            return None
        return self.loop(on, what)

    def expect_stream_error(self, *codes, stream_id=None):
        """h2spec VerifyStreamError: RST_STREAM or GOAWAY with one of `codes`, or the
        connection closed. With stream_id, an RST_STREAM on that stream with another code
        fails at once (RST_STREAMs on other streams are only recorded)."""
        names = "/".join(error_name(c) for c in codes)
        what = "RST_STREAM(%s)%s, GOAWAY(%s) or the connection closed" % (
            names, "" if stream_id is None else " on stream %d" % stream_id, names)

        def on(ev):
            if ev is CLOSED:
                return ev
            if ev is TIMEOUT:
                return None
            if ev.type == GOAWAY or (ev.type == RST_STREAM and
                                     (stream_id is None or ev.stream_id == stream_id)):
                if ev.error_code in codes:
                    return ev
                raise AssertionError("expected %s; got %s (received: %s)"
                                     % (what, describe(ev), self.history()))
            return None
        return self.loop(on, what)

    def expect_close(self):
        """h2spec VerifyConnectionClose: frames (a GOAWAY too) are skipped until the
        connection closes."""
        return self.loop(lambda ev: ev if ev is CLOSED else None, "the connection closed")

    def expect_frame(self, ftype, pred=None, what=None, fail_on_goaway=True):
        """h2spec WaitEventByType (+ a check on the first frame of that type, as h2spec's
        callers do): the first frame of `ftype` must satisfy `pred`. Other frames are
        skipped; a GOAWAY (unless GOAWAY is awaited), a close or a quiet timeout fails."""
        what = what or FRAME_NAMES.get(ftype, str(ftype))

        def on(ev):
            if ev is CLOSED or ev is TIMEOUT:
                return None
            if ev.type == ftype:
                if pred is not None and not pred(ev):
                    raise AssertionError("expected %s; got %s (received: %s)"
                                         % (what, describe(ev), self.history()))
                return ev
            if ev.type == GOAWAY and fail_on_goaway:
                raise AssertionError("expected %s; got %s (received: %s)"
                                     % (what, describe(ev), self.history()))
            return None
        return self.loop(on, what)

    def expect_matching(self, pred, what):
        """Skips frames until one satisfies `pred` (which may itself raise); a GOAWAY that
        does not match, a close or a quiet timeout fails."""
        def on(ev):
            if ev is CLOSED or ev is TIMEOUT:
                return None
            if pred(ev):
                return ev
            if ev.type == GOAWAY:
                raise AssertionError("expected %s; got %s (received: %s)"
                                     % (what, describe(ev), self.history()))
            return None
        return self.loop(on, what)

    def expect_stream_close(self):
        """h2spec VerifyStreamClose: a DATA or HEADERS frame with END_STREAM, or an
        RST_STREAM(NO_ERROR)."""
        def on(ev):
            if ev is CLOSED or ev is TIMEOUT:
                return None
            if ev.type in (DATA, HEADERS) and "END_STREAM" in ev.flags:
                return ev
            if ev.type == RST_STREAM and ev.error_code == NO_ERROR:
                return ev
            return None
        return self.loop(on, "a stream to end (END_STREAM or RST_STREAM(NO_ERROR))")

    def expect_ping_ack(self, data=b"\0" * 8):
        """h2spec VerifyPingFrameWithAck: the first PING received is an ACK echoing `data`."""
        return self.expect_frame(PING, lambda f: "ACK" in f.flags and bytes(f.opaque_data) == data,
                                 "PING(ACK, %r)" % data)

    def expect_ping_ack_or_close(self, data=b"\0" * 8):
        """h2spec VerifyPingFrameOrConnectionClose."""
        what = "PING(ACK, %r) or the connection closed" % data

        def on(ev):
            if ev is CLOSED:
                return ev
            if ev is not TIMEOUT and ev.type == PING and "ACK" in ev.flags \
                    and bytes(ev.opaque_data) == data:
                return ev
            return None
        return self.loop(on, what)

    def expect_settings_ack(self):
        return self.expect_frame(SETTINGS, lambda f: "ACK" in f.flags, "SETTINGS(ACK)")

    def expect_headers(self, stream_id, status=None):
        """h2spec VerifyHeadersFrame: the first HEADERS received is on `stream_id`; with
        `status`, its :status must be that."""
        def pred(f):
            if f.stream_id != stream_id:
                return False
            return status is None or header_value(f.decoded, ":status") == str(status)
        return self.expect_frame(HEADERS, pred, "HEADERS on stream %d%s" % (
            stream_id, "" if status is None else " with :status %s" % status))

    def read_response(self, stream_id, overall=30.0):
        """Reads until `stream_id` ends: returns (headers, body, trailers). Frames of other
        streams are skipped; an RST_STREAM on it, a GOAWAY with an error, or a close fails."""
        state = {"headers": None, "body": bytearray(), "trailers": None}

        def on(ev):
            if ev is CLOSED or ev is TIMEOUT:
                return None
            if ev.type == GOAWAY and ev.error_code != NO_ERROR:
                raise AssertionError("connection error while reading stream %d: %s (received: %s)"
                                     % (stream_id, describe(ev), self.history()))
            if ev.stream_id != stream_id:
                return None
            if ev.type == RST_STREAM:
                raise AssertionError("stream %d reset: %s (received: %s)"
                                     % (stream_id, describe(ev), self.history()))
            if ev.type in (HEADERS, CONTINUATION) and ev.decoded is not None:
                status = header_value(ev.decoded, ":status")
                if state["headers"] is None or (status and status.startswith("1")):
                    state["headers"] = ev.decoded
                else:
                    state["trailers"] = ev.decoded
            if ev.type == DATA:
                state["body"] += bytes(ev.data)
            if ev.type in (HEADERS, DATA) and "END_STREAM" in ev.flags:
                if ev.type == HEADERS and "END_HEADERS" not in ev.flags:
                    return None  # the block ends in a CONTINUATION; END_STREAM already seen
                return (state["headers"], bytes(state["body"]), state["trailers"])
            if ev.type == CONTINUATION and "END_HEADERS" in ev.flags:
                first = next((e for e in reversed(self.events)
                              if e.type == HEADERS and e.stream_id == stream_id), None)
                if first is not None and "END_STREAM" in first.flags:
                    return (state["headers"], bytes(state["body"]), state["trailers"])
            return None
        return self.loop(on, "the end of stream %d" % stream_id, overall=overall)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def header_value(decoded, name):
    """The first value of `name` in a decoded block (bytes pairs), as str, or None."""
    if decoded is None:
        return None
    name = name.encode() if isinstance(name, str) else name
    for k, v in decoded:
        if k == name:
            return v.decode("latin-1")
    return None


# ---- a well-behaved client (h2's state machine) --------------------------------------------

class H2Client:
    """A correct h2c client on one connection: requests one after another or several at
    once; responses as (status, headers, body)."""

    def __init__(self, port, host="127.0.0.1", timeout=10.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.authority = "%s:%d" % (host, port)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.conn = h2.connection.H2Connection(config=cfg)
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())
        self.responses = {}
        self.done = set()
        self.reset = {}
        self.goaway = None
        self.closed = False

    def start(self, method="GET", path="/", headers=(), body=b""):
        sid = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", "http"), (":path", path),
                (":authority", self.authority)] + list(headers)
        if body:
            hdrs.append(("content-length", str(len(body))))
        self.conn.send_headers(sid, hdrs, end_stream=not body)
        if body:
            self.conn.send_data(sid, body, end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        self.responses[sid] = {"status": None, "headers": [], "body": bytearray()}
        return sid

    def pump(self, timeout):
        """Reads once (up to `timeout`) and processes the events; False once closed."""
        if self.closed:
            return False
        self.sock.settimeout(timeout)
        try:
            d = self.sock.recv(65536)
        except socket.timeout:
            return True
        except OSError:
            d = b""
        if not d:
            self.closed = True
            return False
        for ev in self.conn.receive_data(d):
            if isinstance(ev, h2.events.ResponseReceived):
                r = self.responses.setdefault(ev.stream_id, {"status": None, "headers": [],
                                                             "body": bytearray()})
                r["headers"] = ev.headers
                r["status"] = int(dict(ev.headers)[b":status"])
            elif isinstance(ev, h2.events.DataReceived):
                self.responses[ev.stream_id]["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                self.done.add(ev.stream_id)
            elif isinstance(ev, h2.events.StreamReset):
                self.reset[ev.stream_id] = ev.error_code
                self.done.add(ev.stream_id)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
        out = self.conn.data_to_send()
        if out:
            try:
                self.sock.sendall(out)
            except OSError:
                pass
        return True

    def wait(self, stream_ids, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while not set(stream_ids) <= self.done:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("streams %s not finished within %ss (done: %s, reset: %s)"
                                     % (sorted(set(stream_ids) - self.done), timeout or self.timeout,
                                        sorted(self.done), self.reset))
            if not self.pump(min(left, 1.0)):
                if not set(stream_ids) <= self.done:
                    raise AssertionError("connection closed with streams %s unfinished (goaway: %r)"
                                         % (sorted(set(stream_ids) - self.done), self.goaway))

    def request(self, method="GET", path="/", headers=(), body=b"", timeout=None):
        sid = self.start(method, path, headers, body)
        self.wait([sid], timeout)
        if sid in self.reset:
            raise AssertionError("stream %d reset with %s" % (sid, error_name(self.reset[sid])))
        r = self.responses[sid]
        return r["status"], r["headers"], bytes(r["body"])

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def h2_get(port, path="/", timeout=10.0):
    """One GET on a fresh h2c connection: (status, headers, body)."""
    with H2Client(port, timeout=timeout) as c:
        return c.request("GET", path, timeout=timeout)
