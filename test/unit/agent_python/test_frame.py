"""Frame codec of the Python SDK: layout, every validation rule of frame.cpp, and that the two
codecs have not drifted apart (types, wording)."""

import asyncio
import os
import re
import struct
import unittest

from agent_test_support import REPO, sa, pb

F = sa.FrameType
PROXY, AGENT = sa.Sender.PROXY, sa.Sender.AGENT
S = sa.frame.DecodeStatus

PROXY_SENDS = [F.HELLO, F.REQUEST_HEADERS, F.REQUEST_BODY, F.RESPONSE_HEADERS, F.RESPONSE_BODY,
               F.REQUEST_COMPLETE, F.WEBSOCKET_FRAME, F.CANCEL]
AGENT_SENDS = [F.HELLO_ACK, F.HEALTH, F.DECISION]
EITHER = [F.PING, F.PONG, F.DRAIN]
STREAM_EVENTS = [F.REQUEST_HEADERS, F.REQUEST_BODY, F.RESPONSE_HEADERS, F.RESPONSE_BODY,
                 F.REQUEST_COMPLETE, F.WEBSOCKET_FRAME, F.CANCEL]


def stream_of(t):
    return 0 if t < 0x10 else 7


def raw(length, type_byte, flags, stream_id, payload=b""):
    return struct.pack(">IBBI", length, type_byte, flags, stream_id) + payload


class LayoutTest(unittest.TestCase):
    def test_header_is_big_endian_length_type_flags_stream(self):
        data = sa.encode_frame(F.REQUEST_BODY, 0x01020304, b"abc", flags=sa.FLAG_END_STREAM)
        self.assertEqual(data, b"\x00\x00\x00\x03\x11\x01\x01\x02\x03\x04abc")
        self.assertEqual(sa.frame.HEADER_SIZE, 10)

    def test_constants_match_frame_hpp(self):
        self.assertEqual(sa.DEFAULT_MAX_FRAME_SIZE, 1 << 20)
        self.assertEqual(sa.MAX_FRAME_SIZE_LIMIT, 16 << 20)
        self.assertEqual(sa.PROTOCOL_VERSION, 1)
        self.assertEqual(sa.FLAG_END_STREAM, 1)

    def test_types_match_frame_hpp(self):
        with open(os.path.join(REPO, "agents", "protocol", "frame.hpp")) as f:
            cpp = {name.upper(): int(value, 16)
                   for name, value in re.findall(r"^\s+(\w+) = 0x([0-9a-fA-F]+),", f.read(), re.M)}
        self.assertEqual(cpp, {t.name: int(t) for t in F})

    def test_reasons_match_frame_cpp(self):
        with open(os.path.join(REPO, "agents", "protocol", "frame.cpp")) as f:
            cpp = dict(re.findall(r'case decode_status::(\w+): return "([^"]*)";', f.read()))
        for status in S:
            self.assertEqual(cpp[status.name.lower()], status.value)

    def test_every_type_round_trips_in_its_direction(self):
        for t in F:
            receivers = [AGENT] if t in PROXY_SENDS else [PROXY] if t in AGENT_SENDS else [PROXY, AGENT]
            for receiver in receivers:
                data = sa.encode_frame(t, stream_of(t), b"xyz")
                frame, consumed = sa.decode_frame(data + b"trailing", receiver)
                self.assertEqual(consumed, len(data))
                self.assertEqual((frame.type, frame.stream_id, frame.flags), (t, stream_of(t), 0))

    def test_messages_round_trip(self):
        msg = pb.RequestHeaders(method="POST", path="/x", route="r", content_length=-1)
        msg.headers.add(name="A", value=b"\xff\x00")
        frame, _ = sa.decode_frame(sa.encode_frame(F.REQUEST_HEADERS, 3, msg, flags=1), AGENT)
        self.assertTrue(frame.end_stream)
        self.assertEqual(sa.parse_payload(frame), msg)

    def test_empty_payload_is_the_default_message(self):
        frame, _ = sa.decode_frame(sa.encode_frame(F.DECISION, 1, b""), PROXY)
        self.assertEqual(sa.parse_payload(frame), pb.Decision())

    def test_unknown_fields_are_ignored(self):
        payload = pb.Ping(nonce=5).SerializeToString() + b"\xf8\x07\x01"  # field 127 varint
        frame, _ = sa.decode_frame(sa.encode_frame(F.PING, 0, payload), AGENT)
        self.assertEqual(sa.parse_payload(frame).nonce, 5)

    def test_unparseable_payload(self):
        frame, _ = sa.decode_frame(raw(4, F.DECISION, 0, 1, b"\x12\x05ab"), PROXY)
        with self.assertRaises(sa.ProtocolError) as cm:
            sa.parse_payload(frame)
        self.assertEqual(cm.exception.reason, "unparseable payload")


class DecodeRulesTest(unittest.TestCase):
    def status(self, data, receiver=AGENT, limit=sa.DEFAULT_MAX_FRAME_SIZE):
        try:
            frame, consumed = sa.decode_frame(data, receiver, limit)
        except sa.FrameError as e:
            return e.status
        return "ok" if frame is not None else "need_more"

    def test_need_more(self):
        data = raw(3, F.REQUEST_BODY, 0, 1, b"abc")
        for cut in range(len(data)):
            self.assertEqual(self.status(data[:cut]), "need_more", cut)
        self.assertEqual(self.status(data), "ok")

    def test_too_large_is_refused_from_the_header_alone(self):
        self.assertEqual(self.status(raw(101, F.REQUEST_BODY, 0, 1), limit=100), S.TOO_LARGE)
        self.assertEqual(self.status(raw(100, F.REQUEST_BODY, 0, 1, b"x" * 100), limit=100), "ok")
        self.assertEqual(self.status(raw(0xFFFFFFFF, F.PING, 0, 0)), S.TOO_LARGE)

    def test_unknown_types(self):
        known = {int(t) for t in F}
        for b in range(256):
            if b not in known:
                self.assertEqual(self.status(raw(0, b, 0, 0 if b < 0x10 else 1)), S.UNKNOWN_TYPE, hex(b))
                self.assertIsNone(sa.frame.type_info(b))

    def test_direction(self):
        for t in AGENT_SENDS:
            self.assertEqual(self.status(raw(0, t, 0, stream_of(t)), AGENT), S.WRONG_SENDER, t.name)
            self.assertEqual(self.status(raw(0, t, 0, stream_of(t)), PROXY), "ok", t.name)
        for t in PROXY_SENDS:
            self.assertEqual(self.status(raw(0, t, 0, stream_of(t)), PROXY), S.WRONG_SENDER, t.name)
            self.assertEqual(self.status(raw(0, t, 0, stream_of(t)), AGENT), "ok", t.name)
        for t in EITHER:
            for receiver in (PROXY, AGENT):
                self.assertEqual(self.status(raw(0, t, 0, 0), receiver), "ok", t.name)

    def test_stream_zero_for_connection_frames_only(self):
        for t in F:
            receiver = PROXY if t in AGENT_SENDS else AGENT
            bad = 1 if t < 0x10 else 0
            self.assertEqual(self.status(raw(0, t, 0, bad), receiver), S.BAD_STREAM, t.name)
        self.assertEqual(self.status(raw(0, F.CANCEL, 0, 0xFFFFFFFF)), "ok")

    def test_reserved_flags(self):
        for t in F:
            receiver = PROXY if t in AGENT_SENDS else AGENT
            for bit in range(1, 8):
                self.assertEqual(self.status(raw(0, t, 1 << bit, stream_of(t)), receiver), S.BAD_FLAGS,
                                 (t.name, bit))

    def test_end_stream_only_on_stream_events(self):
        for t in F:
            receiver = PROXY if t in AGENT_SENDS else AGENT
            expected = "ok" if t in STREAM_EVENTS else S.BAD_FLAGS
            self.assertEqual(self.status(raw(0, t, sa.FLAG_END_STREAM, stream_of(t)), receiver), expected, t.name)

    def test_checks_run_in_frame_cpp_order(self):
        # too large beats an unknown type; unknown type beats stream; direction beats stream;
        # stream beats flags.
        self.assertEqual(self.status(raw(200, 0x7E, 0x80, 0), limit=100), S.TOO_LARGE)
        self.assertEqual(self.status(raw(0, 0x7E, 0x80, 0)), S.UNKNOWN_TYPE)
        self.assertEqual(self.status(raw(0, F.DECISION, 0x80, 0)), S.WRONG_SENDER)
        self.assertEqual(self.status(raw(0, F.REQUEST_BODY, 0x80, 0)), S.BAD_STREAM)

    def test_bad_header_is_refused_before_the_payload_arrives(self):
        self.assertEqual(self.status(raw(50, F.DECISION, 0, 1)), S.WRONG_SENDER)


class EncodeTest(unittest.TestCase):
    def test_refuses_what_the_peer_would_refuse(self):
        with self.assertRaises(ValueError):
            sa.encode_frame(F.HELLO, 1)
        with self.assertRaises(ValueError):
            sa.encode_frame(F.DECISION, 0)
        with self.assertRaises(ValueError):
            sa.encode_frame(F.DECISION, 1, flags=sa.FLAG_END_STREAM)
        with self.assertRaises(ValueError):
            sa.encode_frame(F.REQUEST_BODY, 1, flags=0x02)
        with self.assertRaises(ValueError):
            sa.encode_frame(F.REQUEST_BODY, 1 << 32)
        with self.assertRaises(ValueError):
            sa.encode_frame(F.REQUEST_BODY, 1, b"x" * 11, max_payload=10)
        with self.assertRaises(ValueError):
            sa.encode_frame(0x7E, 1)
        self.assertEqual(len(sa.encode_frame(F.REQUEST_BODY, 1, b"x" * 10, max_payload=10)), 20)


class DecoderTest(unittest.TestCase):
    def test_byte_by_byte_and_batched(self):
        frames = [sa.encode_frame(F.REQUEST_HEADERS, 1, pb.RequestHeaders(path="/a")),
                  sa.encode_frame(F.REQUEST_BODY, 1, pb.BodyChunk(data=b"x" * 300, last=True), flags=1),
                  sa.encode_frame(F.PING, 0, pb.Ping(nonce=9))]
        data = b"".join(frames)
        decoder = sa.FrameDecoder(AGENT)
        got = []
        for i in range(len(data)):
            got.extend(decoder.feed(data[i:i + 1]))
        self.assertEqual([f.type for f in got], [F.REQUEST_HEADERS, F.REQUEST_BODY, F.PING])
        self.assertEqual(decoder.pending, 0)
        self.assertEqual(sa.FrameDecoder(AGENT).feed(data), got)

    def test_error_surfaces(self):
        decoder = sa.FrameDecoder(AGENT, max_payload=8)
        with self.assertRaises(sa.FrameError) as cm:
            decoder.feed(raw(9, F.REQUEST_BODY, 0, 1))
        self.assertEqual(cm.exception.status, S.TOO_LARGE)


class ReadFrameTest(unittest.TestCase):
    def read(self, data):
        async def go():
            reader = asyncio.StreamReader()
            reader.feed_data(data)
            reader.feed_eof()
            return await sa.frame.read_frame(reader, AGENT, 100)
        return asyncio.run(go())

    def test_clean_end(self):
        self.assertIsNone(self.read(b""))

    def test_whole_frame(self):
        frame = self.read(raw(2, F.REQUEST_BODY, 1, 4, b"hi"))
        self.assertEqual((frame.type, frame.flags, frame.stream_id, frame.payload), (F.REQUEST_BODY, 1, 4, b"hi"))

    def test_truncated(self):
        for data in (raw(2, F.REQUEST_BODY, 0, 4)[:5], raw(2, F.REQUEST_BODY, 0, 4, b"h")):
            with self.assertRaises(sa.ProtocolError) as cm:
                self.read(data)
            self.assertEqual(cm.exception.reason, "truncated frame")

    def test_invalid_header(self):
        with self.assertRaises(sa.FrameError):
            self.read(raw(101, F.REQUEST_BODY, 0, 4))


if __name__ == "__main__":
    unittest.main()
