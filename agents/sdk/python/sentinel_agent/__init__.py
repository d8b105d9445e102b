"""Sentinel agent SDK for Python (protocol v1, agents/protocol/PROTOCOL.md).

    import sentinel_agent as sa

    class Deny(sa.Agent):
        name = "deny-admin"
        async def on_request_headers(self, stream, req):
            if req.path.startswith("/admin"):
                return sa.block(403, "no\\n")
            return sa.allow().set_request_header("x-checked", "1")

    if __name__ == "__main__":
        raise SystemExit(sa.main(Deny))

See agents/sdk/python/README.md.
"""

from . import sentinel_agent_v1_pb2 as pb
from .decisions import (Decision, allow, block, config_error, config_to_dict, header, header_bytes,
                        header_values, headers_dict, need_more_body, node_args, node_props, redirect,
                        value_of)
from .frame import (DEFAULT_MAX_FRAME_SIZE, FLAG_END_STREAM, MAX_FRAME_SIZE_LIMIT, PROTOCOL_VERSION,
                    Frame, FrameDecoder, FrameError, FrameType, ProtocolError, Sender, decode_frame,
                    encode_frame, parse_payload)
from .runner import arg_parser, main, run, run_from_args, serve, write_ready_file
from .server import CONNECTION_CLOSED, NO_ANSWER, Agent, AgentServer, Connection, Stream

# Shorthands for Capabilities fields.
REQUEST_HEADERS = pb.REQUEST_HEADERS
REQUEST_BODY = pb.REQUEST_BODY
RESPONSE_HEADERS = pb.RESPONSE_HEADERS
RESPONSE_BODY = pb.RESPONSE_BODY
REQUEST_COMPLETE = pb.REQUEST_COMPLETE
WEBSOCKET_FRAME = pb.WEBSOCKET_FRAME
BODY_NONE = pb.BODY_NONE
BODY_BUFFER = pb.BODY_BUFFER
BODY_STREAM = pb.BODY_STREAM
HEALTHY = pb.Health.HEALTHY
DEGRADED = pb.Health.DEGRADED
UNHEALTHY = pb.Health.UNHEALTHY

__all__ = [
    "pb", "Decision", "allow", "block", "redirect", "need_more_body", "config_error", "config_to_dict",
    "header", "header_bytes", "header_values", "headers_dict", "node_args", "node_props", "value_of",
    "DEFAULT_MAX_FRAME_SIZE", "FLAG_END_STREAM", "MAX_FRAME_SIZE_LIMIT", "PROTOCOL_VERSION", "Frame",
    "FrameDecoder", "FrameError", "FrameType", "ProtocolError", "Sender", "decode_frame", "encode_frame",
    "parse_payload", "arg_parser", "main", "run", "run_from_args", "serve", "write_ready_file",
    "CONNECTION_CLOSED", "NO_ANSWER", "Agent", "AgentServer", "Connection", "Stream",
    "REQUEST_HEADERS", "REQUEST_BODY", "RESPONSE_HEADERS", "RESPONSE_BODY", "REQUEST_COMPLETE",
    "WEBSOCKET_FRAME", "BODY_NONE", "BODY_BUFFER", "BODY_STREAM", "HEALTHY", "DEGRADED", "UNHEALTHY",
]
