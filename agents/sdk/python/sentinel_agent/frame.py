"""Frame codec of the agent protocol (PROTOCOL.md §2), the Python twin of agents/protocol/frame.cpp.

Every frame is a 10-byte header (u32 BE payload length, u8 type, u8 flags, u32 BE stream id)
followed by a protobuf payload. No I/O here: the server, the tests' fake proxy and the test
agent all feed it bytes. The header checks are the ones frame.cpp makes, in the same order,
so both implementations refuse the same frames with the same reason.
"""

import asyncio
import enum
import struct

from . import sentinel_agent_v1_pb2 as pb

PROTOCOL_VERSION = 1
HEADER_SIZE = 10
# Payload limit when the peer states none (max_frame_size 0), and the largest either side may state.
DEFAULT_MAX_FRAME_SIZE = 1 << 20
MAX_FRAME_SIZE_LIMIT = 16 << 20
FLAG_END_STREAM = 0x01  # proxy: no further event on this stream
MAX_STREAM_ID = 0xFFFFFFFF

_HEADER = struct.Struct(">IBBI")


class FrameType(enum.IntEnum):
    # connection level, stream 0
    HELLO = 0x01
    HELLO_ACK = 0x02
    PING = 0x03
    PONG = 0x04
    HEALTH = 0x05
    DRAIN = 0x06
    # stream level, stream id >= 1
    REQUEST_HEADERS = 0x10
    REQUEST_BODY = 0x11
    RESPONSE_HEADERS = 0x12
    RESPONSE_BODY = 0x13
    REQUEST_COMPLETE = 0x14
    WEBSOCKET_FRAME = 0x15
    CANCEL = 0x16
    DECISION = 0x20


class Sender(enum.Enum):
    """Who may send a frame type; also names the receiving side in decode calls."""
    PROXY = "proxy"
    AGENT = "agent"
    EITHER = "either"


_SENDER = {
    FrameType.HELLO: Sender.PROXY,
    FrameType.HELLO_ACK: Sender.AGENT,
    FrameType.PING: Sender.EITHER,
    FrameType.PONG: Sender.EITHER,
    FrameType.HEALTH: Sender.AGENT,
    FrameType.DRAIN: Sender.EITHER,
    FrameType.REQUEST_HEADERS: Sender.PROXY,
    FrameType.REQUEST_BODY: Sender.PROXY,
    FrameType.RESPONSE_HEADERS: Sender.PROXY,
    FrameType.RESPONSE_BODY: Sender.PROXY,
    FrameType.REQUEST_COMPLETE: Sender.PROXY,
    FrameType.WEBSOCKET_FRAME: Sender.PROXY,
    FrameType.CANCEL: Sender.PROXY,
    FrameType.DECISION: Sender.AGENT,
}

# The payload message of each frame type (PROTOCOL.md §2 table).
MESSAGE_TYPES = {
    FrameType.HELLO: pb.Hello,
    FrameType.HELLO_ACK: pb.HelloAck,
    FrameType.PING: pb.Ping,
    FrameType.PONG: pb.Ping,
    FrameType.HEALTH: pb.Health,
    FrameType.DRAIN: pb.Drain,
    FrameType.REQUEST_HEADERS: pb.RequestHeaders,
    FrameType.REQUEST_BODY: pb.BodyChunk,
    FrameType.RESPONSE_HEADERS: pb.ResponseHeaders,
    FrameType.RESPONSE_BODY: pb.BodyChunk,
    FrameType.REQUEST_COMPLETE: pb.RequestComplete,
    FrameType.WEBSOCKET_FRAME: pb.WebSocketFrame,
    FrameType.CANCEL: pb.Cancel,
    FrameType.DECISION: pb.Decision,
}

# END_STREAM marks the proxy's last event on a stream; only stream events can carry it.
_MAY_END_STREAM = frozenset({
    FrameType.REQUEST_HEADERS, FrameType.REQUEST_BODY, FrameType.RESPONSE_HEADERS,
    FrameType.RESPONSE_BODY, FrameType.REQUEST_COMPLETE, FrameType.WEBSOCKET_FRAME,
    FrameType.CANCEL,
})


def type_info(type_byte):
    """(sender, connection_level) of a type byte, or None for an unknown type."""
    try:
        t = FrameType(type_byte)
    except ValueError:
        return None
    return _SENDER[t], t < 0x10


def is_connection_level(frame_type):
    return int(frame_type) < 0x10


def type_name(type_byte):
    try:
        return FrameType(type_byte).name
    except ValueError:
        return "UNKNOWN(0x%02x)" % type_byte


class DecodeStatus(enum.Enum):
    """Why a header was refused; the same cases and wording as frame.cpp's decode_status."""
    TOO_LARGE = "frame larger than the negotiated limit"
    UNKNOWN_TYPE = "unknown frame type"
    WRONG_SENDER = "frame type not allowed in this direction"
    BAD_STREAM = "frame on the wrong stream"
    BAD_FLAGS = "invalid frame flags"


class ProtocolError(Exception):
    """The peer broke the protocol: the connection must be closed (PROTOCOL.md §2)."""

    def __init__(self, reason, detail=""):
        super().__init__("%s%s" % (reason, (": " + detail) if detail else ""))
        self.reason = reason
        self.detail = detail


class FrameError(ProtocolError):
    """A frame header failed validation; `status` says which rule."""

    def __init__(self, status, detail=""):
        super().__init__(status.value, detail)
        self.status = status


class Frame:
    __slots__ = ("type", "flags", "stream_id", "payload")

    def __init__(self, type, flags, stream_id, payload):
        self.type = type
        self.flags = flags
        self.stream_id = stream_id
        self.payload = payload

    @property
    def end_stream(self):
        return bool(self.flags & FLAG_END_STREAM)

    def __repr__(self):
        return "Frame(%s, flags=%#x, stream=%d, %d bytes)" % (
            type_name(self.type), self.flags, self.stream_id, len(self.payload))

    def __eq__(self, other):
        return (isinstance(other, Frame) and self.type == other.type and self.flags == other.flags
                and self.stream_id == other.stream_id and bytes(self.payload) == bytes(other.payload))


def decode_header(data, receiver, max_payload):
    """Validates the first HEADER_SIZE bytes of `data` as received by `receiver`.

    Returns (length, FrameType, flags, stream_id); raises FrameError. The header is checked
    before the payload arrives so a bad peer is refused at once, as frame.cpp does.
    """
    if len(data) < HEADER_SIZE:
        raise ValueError("a frame header is %d bytes" % HEADER_SIZE)
    length, type_byte, flags, stream_id = _HEADER.unpack_from(data)
    if length > max_payload:
        raise FrameError(DecodeStatus.TOO_LARGE, "%d > %d bytes" % (length, max_payload))
    info = type_info(type_byte)
    if info is None:
        raise FrameError(DecodeStatus.UNKNOWN_TYPE, "0x%02x" % type_byte)
    who, connection_level = info
    ftype = FrameType(type_byte)
    if who is not Sender.EITHER and who is receiver:
        raise FrameError(DecodeStatus.WRONG_SENDER, "%s sent to the %s" % (ftype.name, receiver.value))
    if connection_level != (stream_id == 0):
        raise FrameError(DecodeStatus.BAD_STREAM, "%s on stream %d" % (ftype.name, stream_id))
    if flags & ~FLAG_END_STREAM:
        raise FrameError(DecodeStatus.BAD_FLAGS, "reserved bits %#04x on %s" % (flags, ftype.name))
    if flags & FLAG_END_STREAM and ftype not in _MAY_END_STREAM:
        raise FrameError(DecodeStatus.BAD_FLAGS, "END_STREAM on %s" % ftype.name)
    return length, ftype, flags, stream_id


def decode_frame(data, receiver, max_payload=DEFAULT_MAX_FRAME_SIZE):
    """Decodes the first frame of `data` (bytes-like) as received by `receiver`.

    Returns (Frame, consumed), or (None, 0) when `data` holds no complete frame yet (a bad
    header is refused even then). Raises FrameError. The payload is not parsed: see
    parse_payload.
    """
    if len(data) < HEADER_SIZE:
        return None, 0
    length, ftype, flags, stream_id = decode_header(data, receiver, max_payload)
    if len(data) - HEADER_SIZE < length:
        return None, 0
    payload = bytes(data[HEADER_SIZE:HEADER_SIZE + length])
    return Frame(ftype, flags, stream_id, payload), HEADER_SIZE + length


def encode_header(length, type_byte, flags, stream_id):
    """The 10 header bytes, unchecked (tests use it to build frames a peer must refuse)."""
    return _HEADER.pack(length, int(type_byte), flags, stream_id)


def encode_frame(frame_type, stream_id, payload=b"", flags=0, max_payload=MAX_FRAME_SIZE_LIMIT):
    """One frame: header + payload (bytes, or a protobuf message to serialise).

    Checks what decode_header would refuse, except the direction (either side encodes),
    so a bug here fails at the sender with a ValueError instead of at the peer.
    """
    ftype = FrameType(frame_type)
    if not isinstance(payload, (bytes, bytearray, memoryview)):
        payload = payload.SerializeToString()
    if len(payload) > max_payload:
        raise ValueError("%s payload of %d bytes exceeds the peer's limit of %d"
                         % (ftype.name, len(payload), max_payload))
    if not 0 <= stream_id <= MAX_STREAM_ID:
        raise ValueError("stream id %r out of range" % (stream_id,))
    if is_connection_level(ftype) != (stream_id == 0):
        raise ValueError("%s cannot use stream %d" % (ftype.name, stream_id))
    if flags & ~FLAG_END_STREAM or (flags & FLAG_END_STREAM and ftype not in _MAY_END_STREAM):
        raise ValueError("invalid flags %#04x for %s" % (flags, ftype.name))
    return _HEADER.pack(len(payload), int(ftype), flags, stream_id) + bytes(payload)


def parse_payload(frame):
    """The frame's payload parsed as the message its type names; ProtocolError if invalid.

    Unknown fields are kept and ignored (PROTOCOL.md §9).
    """
    message = MESSAGE_TYPES[frame.type]()
    try:
        message.ParseFromString(bytes(frame.payload))
    except Exception as e:  # google.protobuf.message.DecodeError, and RuntimeWarning-ish errors of upb
        raise ProtocolError("unparseable payload", "%s: %s" % (frame.type.name, e)) from None
    return message


class FrameDecoder:
    """Incremental decoder: feed() bytes as they arrive, get whole frames back."""

    def __init__(self, receiver, max_payload=DEFAULT_MAX_FRAME_SIZE):
        self.receiver = receiver
        self.max_payload = max_payload
        self._buf = bytearray()

    def feed(self, data):
        self._buf += data
        frames = []
        while True:
            frame, consumed = decode_frame(self._buf, self.receiver, self.max_payload)
            if frame is None:
                return frames
            del self._buf[:consumed]
            frames.append(frame)

    @property
    def pending(self):
        """Bytes received that do not make a whole frame yet."""
        return len(self._buf)


async def read_frame(reader, receiver, max_payload):
    """Reads one frame from an asyncio.StreamReader.

    Returns None on a clean end of stream between frames; raises ProtocolError on a bad
    header or a stream that ends inside a frame.
    """
    try:
        header = await reader.readexactly(HEADER_SIZE)
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise ProtocolError("truncated frame", "connection closed inside a frame header") from None
    length, ftype, flags, stream_id = decode_header(header, receiver, max_payload)
    try:
        payload = await reader.readexactly(length) if length else b""
    except asyncio.IncompleteReadError:
        raise ProtocolError("truncated frame", "connection closed inside a %s payload" % ftype.name) from None
    return Frame(ftype, flags, stream_id, payload)
