#!/usr/bin/python3
"""A scripted, optionally misbehaving agent for Sentinel's agent integration tests.

Built on the Python SDK (agents/sdk/python). What it subscribes to comes from the command
line; what it decides comes from the request headers the test sends, so one agent process
serves every case of a test module.

  test_agent.py --socket PATH|tcp://HOST:PORT [--name NAME]
      [--events request-headers,request-body,response-headers,response-body,request-complete,websocket-frame]
      [--request-body-mode none|buffer|stream] [--response-body-mode none|buffer|stream]
      [--max-body N] [--max-concurrency N] [--max-frame-size N]
      [--log FILE] [--ready-file FILE] [--reject-config]
      [--versions 1[,2...]] [--handshake normal|silent|close] [--health healthy|degraded|unhealthy]
      [--drain-timeout S] [--log-level LEVEL]

--events is Capabilities.events as sent (default request-headers); a body mode does not add its
body event, so inspecting bodies takes e.g. --events request-headers,request-body
--request-body-mode buffer. --max-body is Capabilities.max_body_bytes.
--ready-file is written (atomically) once listening and holds the bound address, e.g.
"tcp://127.0.0.1:41234" when tcp://127.0.0.1:0 was asked: wait for it, never sleep.
--reject-config rejects the config: one error, on the first child node of the `config {}`
block (on the block itself when it has none), message "rejected by test agent".
--versions: the protocol versions it claims to speak (2 alone forces a version mismatch).
--handshake silent: never answers HELLO (the proxy's handshake timeout); close: closes the
connection on HELLO. --health: the status reported right after each HELLO_ACK.

Request headers driving the decision on REQUEST_HEADERS (names case-insensitive):
  x-agent-action: allow (default) | block | redirect | sleep:<ms> | need-body | drain |
      unhealthy | degraded | healthy | malformed | garbage | oversize | close | no-answer |
      stray-decision | double-decision | invalid-decision
    block          block with x-agent-status (default 403), body "blocked by test agent"
    redirect       redirect to x-agent-location (default "/") with x-agent-status (default 302)
    sleep:<ms>     wait, then allow (a CANCEL interrupts the wait; no decision is sent then)
    need-body      need_more_body (allow if the request has no body); then the body events:
                   block (403) once the body seen so far contains "EVIL", else need_more_body
                   until the chunk with `last`, which is allowed. x-agent-replace-body: TEXT
                   replaces the body: the first chunk's decision carries TEXT, later ones "".
                   x-agent-body-chunks: N allows after N chunks (ends a streamed inspection).
    drain          sends DRAIN on this connection, then allows
    unhealthy|degraded|healthy   reports HEALTH (all connections), then allows
    malformed      a DECISION frame on this stream whose payload is not valid protobuf
    garbage        a frame header with an unknown type (0x7e) on this stream
    oversize       a DECISION header announcing a payload one byte over the proxy's limit
    close          closes the connection without answering
    no-answer      never answers (the proxy's timeout then CANCELs)
    stray-decision a DECISION on stream id + 1000 (no event waits there), then allows
    double-decision   allows twice on this stream
    invalid-decision  allows with a request header SET whose value contains CR LF
  x-agent-set: Name: value            request header SET (one mutation per header line)
  x-agent-add: Name: value            request header ADD
  x-agent-remove: Name                request header REMOVE
  x-agent-response-set: Name: value   response header SET
  x-agent-metadata: k=v               decision metadata (one pair per header line)
  x-agent-audit: reason               audit reason (tags ["test-agent"])
  These mutations are sent unchecked (a test can make the agent break the rules) and go on the
  decision answering REQUEST_HEADERS, whatever its action. An unknown action answers block 500
  "test agent: unknown action ..." so a typo cannot pass silently.

RESPONSE_HEADERS: with request header x-agent-response-action (same vocabulary; block uses
x-agent-response-status, default 502; need-body inspects the response body like the request
body, 502 on "EVIL", x-agent-replace-response-body replaces it) that action; else when the
response has header x-agent-block-response: block 502 "blocked by test agent"; else allow.
Every allow / need_more_body on the response side also sets the response header
x-test-agent-saw-response: <status>.
WEBSOCKET_FRAME: block 403 when the payload contains "EVIL", else allow.

--log FILE: one JSON object per line, appended and flushed as it happens:
  {"time": unix seconds, "conn": connection number (1, 2, ...), "dir": "in" | "out",
   "type": frame type name, "stream": id, "flags": flags, ...fields of that frame}
  in  HELLO             versions, proxy_name, proxy_version, agent_id, validate_only, max_frame_size,
                        worker, config ({"name","path","args","props","children"})
  in  REQUEST_HEADERS   method, scheme, authority, path, query, http_version, route, request_id,
                        traceparent, headers {lower-case name: value, repeats joined ", "},
                        has_body, content_length, metadata, client_address, client_port, listener,
                        server_address, tls_version, tls_sni, client_cert_subject,
                        client_cert_fingerprint
  in  REQUEST_BODY / RESPONSE_BODY   length, text (first 200 bytes, UTF-8 with replacement),
                        offset, last, truncated
  in  RESPONSE_HEADERS  status, headers, has_body, content_length
  in  REQUEST_COMPLETE  status, bytes_received, bytes_sent, duration_us, upstream, blocked_by
  in  WEBSOCKET_FRAME   client_to_server, opcode, fin, length, text
  in  CANCEL            reason ("ENDED", "CLIENT_GONE", "TIMEOUT", "SHUTDOWN"),
                        busy (a handler was running for the stream when it arrived)
  in  PING / PONG       nonce;   DRAIN: reason
  out HELLO_ACK         version, config_errors [{"path","message"}], events, request_body_mode,
                        response_body_mode, max_body_bytes, max_concurrency
  out DECISION          action, status, location, body_length, request_headers /
                        response_headers [[op, name, value]], metadata, audit, replace_body
  out HEALTH            status;  out DRAIN: reason;  out PING / PONG: nonce
  out RAW               what ("malformed", "garbage", "oversize") for bytes sent outside the codec
  -   DISCONNECTED      error (why the connection ended; null when the proxy closed it)
"""

import asyncio
import json
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "agents", "sdk", "python"))

import sentinel_agent as sa  # noqa: E402
from sentinel_agent import pb  # noqa: E402
from sentinel_agent.frame import encode_header  # noqa: E402

EVENT_NAMES = {
    "request-headers": pb.REQUEST_HEADERS,
    "request-body": pb.REQUEST_BODY,
    "response-headers": pb.RESPONSE_HEADERS,
    "response-body": pb.RESPONSE_BODY,
    "request-complete": pb.REQUEST_COMPLETE,
    "websocket-frame": pb.WEBSOCKET_FRAME,
}
BODY_MODES = {"none": pb.BODY_NONE, "buffer": pb.BODY_BUFFER, "stream": pb.BODY_STREAM}
BLOCK_BODY = b"blocked by test agent"
TEXT_LIMIT = 200


def _text(data):
    return bytes(data[:TEXT_LIMIT]).decode("utf-8", "replace")


def _mutations(ms):
    return [[pb.HeaderMutation.Op.Name(m.op), m.name, m.value.decode("utf-8", "replace")] for m in ms]


def describe(frame, message, connection):
    """The log fields of one frame (see the module docstring)."""
    t = frame.type
    F = sa.FrameType
    out = {}
    if t == F.HELLO:
        out.update(versions=list(message.versions), proxy_name=message.proxy_name,
                   proxy_version=message.proxy_version, agent_id=message.agent_id,
                   validate_only=message.validate_only, max_frame_size=message.max_frame_size,
                   worker=message.worker, config=sa.config_to_dict(message.config))
    elif t == F.HELLO_ACK:
        caps = message.capabilities
        out.update(version=message.version,
                   config_errors=[{"path": e.path, "message": e.message} for e in message.config_errors],
                   events=[pb.EventType.Name(e) for e in caps.events],
                   request_body_mode=pb.BodyMode.Name(caps.request_body_mode),
                   response_body_mode=pb.BodyMode.Name(caps.response_body_mode),
                   max_body_bytes=caps.max_body_bytes, max_concurrency=caps.max_concurrency)
    elif t == F.REQUEST_HEADERS:
        c = message.connection
        out.update(method=message.method, scheme=message.scheme, authority=message.authority,
                   path=message.path, query=message.query, http_version=message.http_version,
                   route=message.route, request_id=message.request_id, traceparent=message.traceparent,
                   headers=sa.headers_dict(message), has_body=message.has_body,
                   content_length=message.content_length, metadata=dict(message.metadata),
                   client_address=c.client_address, client_port=c.client_port, listener=c.listener,
                   server_address=c.server_address, tls_version=c.tls_version, tls_sni=c.tls_sni,
                   client_cert_subject=c.client_cert_subject,
                   client_cert_fingerprint=c.client_cert_fingerprint)
    elif t in (F.REQUEST_BODY, F.RESPONSE_BODY):
        out.update(length=len(message.data), text=_text(message.data), offset=message.offset,
                   last=message.last, truncated=message.truncated)
    elif t == F.RESPONSE_HEADERS:
        out.update(status=message.status, headers=sa.headers_dict(message), has_body=message.has_body,
                   content_length=message.content_length)
    elif t == F.REQUEST_COMPLETE:
        out.update(status=message.status, bytes_received=message.bytes_received,
                   bytes_sent=message.bytes_sent, duration_us=message.duration_us,
                   upstream=message.upstream, blocked_by=message.blocked_by)
    elif t == F.WEBSOCKET_FRAME:
        out.update(client_to_server=message.client_to_server, opcode=message.opcode, fin=message.fin,
                   length=len(message.payload), text=_text(message.payload))
    elif t == F.CANCEL:
        stream = connection.streams.get(frame.stream_id)
        out.update(reason=pb.Cancel.Reason.Name(message.reason),
                   busy=bool(stream is not None and stream.busy))
    elif t in (F.PING, F.PONG):
        out.update(nonce=message.nonce)
    elif t == F.DRAIN:
        out.update(reason=message.reason)
    elif t == F.HEALTH:
        out.update(status=pb.Health.Status.Name(message.status), message=message.message)
    elif t == F.DECISION:
        action = message.WhichOneof("action") or "allow"
        out.update(action=action, request_headers=_mutations(message.request_headers),
                   response_headers=_mutations(message.response_headers),
                   metadata=dict(message.metadata))
        if action == "block":
            out.update(status=message.block.status, body_length=len(message.block.body))
        elif action == "redirect":
            out.update(status=message.redirect.status, location=message.redirect.location)
        if message.HasField("replace_body"):
            out["replace_body"] = _text(message.replace_body)
        if message.HasField("audit"):
            out["audit"] = {"reason": message.audit.reason, "tags": list(message.audit.tags),
                            "rule_ids": list(message.audit.rule_ids)}
    return out


class EventLog:
    """JSON lines appended with one write(2) each (O_APPEND), so several agent processes can
    share a file and a test can read it while the agent runs."""

    def __init__(self, path):
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644) if path else None

    def write(self, record):
        if self.fd is not None:
            os.write(self.fd, (json.dumps(record, sort_keys=False) + "\n").encode("utf-8"))


def _split_header_line(value):
    """"Name: value" → (name, value)."""
    name, sep, rest = value.partition(":")
    if not sep:
        return value.strip(), ""
    return name.strip(), rest.strip()


def _int_header(req, name, default):
    value = sa.header(req, name) if req is not None else None
    try:
        return int(value) if value is not None else default
    except ValueError:
        return default


class TestAgent(sa.Agent):
    options = None     # argparse namespace, set by main()
    event_log = None   # EventLog, set by main()

    def __init__(self):
        o = self.options
        self.name = o.name
        self.version = "test"
        self.versions = tuple(o.versions)
        self.events = tuple(o.events)
        self.request_body_mode = o.request_body_mode
        self.response_body_mode = o.response_body_mode
        self.max_body_bytes = o.max_body
        self.max_concurrency = o.max_concurrency
        self.max_frame_size = o.max_frame_size

    # -- logging ----------------------------------------------------------------------------
    def record(self, direction, type_name, stream_id=0, flags=0, **fields):
        entry = {"time": round(time.time(), 6), "conn": self.connection.id, "dir": direction,
                 "type": type_name, "stream": stream_id, "flags": flags}
        entry.update(fields)
        self.event_log.write(entry)

    def on_frame(self, direction, frame, message):
        self.record(direction, frame.type.name, frame.stream_id, frame.flags,
                    **describe(frame, message, self.connection))

    def on_connection_closed(self, error):
        self.record("-", "DISCONNECTED", error=None if error is None else str(error))

    # -- handshake --------------------------------------------------------------------------
    async def configure(self, config):
        mode = self.options.handshake
        if mode == "close":
            self.connection.abort()
            return []
        if mode == "silent":
            # Read and drop everything until the proxy gives up and closes.
            while await self.connection.reader.read(65536):
                pass
            return []
        if self.options.reject_config:
            node = config.children[0] if config.children else config
            return [(node.path, "rejected by test agent")]
        return []

    # -- requests ---------------------------------------------------------------------------
    async def on_request_headers(self, stream, req):
        action = sa.header(req, "x-agent-action", "allow").strip()
        decision = await self.perform(stream, action, "request")
        if isinstance(decision, pb.Decision):
            self.add_request_extras(decision, req)
        return decision

    async def on_response_headers(self, stream, resp):
        req = stream.request
        action = sa.header(req, "x-agent-response-action") if req is not None else None
        if action is not None:
            decision = await self.perform(stream, action.strip(), "response")
        elif sa.header_bytes(resp, "x-agent-block-response") is not None:
            decision = self.block_decision(502)
        else:
            decision = pb.Decision(allow=True)
        if isinstance(decision, pb.Decision) and decision.WhichOneof("action") in ("allow", "need_more_body"):
            decision.response_headers.append(pb.HeaderMutation(
                op=pb.HeaderMutation.SET, name="x-test-agent-saw-response", value=str(resp.status).encode()))
        return decision

    async def on_request_body(self, stream, chunk):
        return self.inspect_body(stream, chunk, "request")

    async def on_response_body(self, stream, chunk):
        return self.inspect_body(stream, chunk, "response")

    async def on_websocket_frame(self, stream, frame):
        if self.options.frame_delay_ms:
            await asyncio.sleep(self.options.frame_delay_ms / 1000)
        if b"EVIL" in frame.payload:
            return self.block_decision(403)
        if frame.payload.startswith(b"REPLACE:"):  # the rest becomes the frame's payload
            return pb.Decision(allow=True, replace_body=frame.payload[len(b"REPLACE:"):])
        return None

    # -- behaviours -------------------------------------------------------------------------
    @staticmethod
    def block_decision(status):
        return pb.Decision(block=pb.Block(status=status, body=BLOCK_BODY))

    def raw(self, stream, what, data):
        self.connection.send_raw(data)
        self.record("out", "RAW", stream.id, 0, what=what)

    async def perform(self, stream, action, side):
        """The decision for `action` (x-agent-action vocabulary) on the headers of `side`."""
        req = stream.request
        conn = self.connection
        status_header = "x-agent-status" if side == "request" else "x-agent-response-status"
        name, _, arg = action.partition(":")
        name = name.strip().lower()
        if name == "allow":
            return pb.Decision(allow=True)
        if name == "block":
            return self.block_decision(_int_header(req, status_header, 403 if side == "request" else 502))
        if name == "redirect":
            location = sa.header(req, "x-agent-location", "/") if req is not None else "/"
            return pb.Decision(redirect=pb.Redirect(status=_int_header(req, status_header, 302), location=location))
        if name == "sleep":
            try:
                await asyncio.sleep(int(arg) / 1000.0)
            except ValueError:
                return pb.Decision(block=pb.Block(status=500, body=b"test agent: bad sleep " + action.encode()))
            return pb.Decision(allow=True)
        if name == "need-body":
            message = req if side == "request" else stream.response
            if message is not None and not message.has_body:
                return pb.Decision(allow=True)
            return pb.Decision(need_more_body=True)
        if name == "drain":
            await conn.send_drain("test agent")
            return pb.Decision(allow=True)
        if name in ("unhealthy", "degraded", "healthy"):
            self.server.report_health(name, "set by test agent")
            return pb.Decision(allow=True)
        if name == "malformed":
            garbage = b"\x12\x05ab"  # field 2 (block) announces 5 bytes, 2 follow
            self.raw(stream, "malformed", encode_header(len(garbage), sa.FrameType.DECISION, 0, stream.id) + garbage)
            return sa.NO_ANSWER
        if name == "garbage":
            self.raw(stream, "garbage", encode_header(4, 0x7E, 0, stream.id) + b"junk")
            return sa.NO_ANSWER
        if name == "oversize":
            self.raw(stream, "oversize", encode_header(conn.peer_max_frame_size + 1, sa.FrameType.DECISION, 0, stream.id))
            return sa.NO_ANSWER
        if name == "close":
            conn.abort()
            return sa.NO_ANSWER
        if name == "no-answer":
            return sa.NO_ANSWER
        if name == "stray-decision":
            await conn.send(sa.FrameType.DECISION, stream.id + 1000, pb.Decision(allow=True))
            return pb.Decision(allow=True)
        if name == "double-decision":
            await conn.send(sa.FrameType.DECISION, stream.id, pb.Decision(allow=True))
            return pb.Decision(allow=True)
        if name == "invalid-decision":
            d = pb.Decision(allow=True)
            d.request_headers.append(pb.HeaderMutation(op=pb.HeaderMutation.SET, name="x-injected",
                                                       value=b"a\r\nx-evil: 1"))
            return d
        return pb.Decision(block=pb.Block(status=500, body=b"test agent: unknown action " + action.encode()))

    @staticmethod
    def add_request_extras(decision, req):
        def mutation(op, line, with_value=True):
            name, value = _split_header_line(line) if with_value else (line.strip(), "")
            return pb.HeaderMutation(op=op, name=name, value=value.encode("utf-8"))

        for line in sa.header_values(req, "x-agent-set"):
            decision.request_headers.append(mutation(pb.HeaderMutation.SET, line))
        for line in sa.header_values(req, "x-agent-add"):
            decision.request_headers.append(mutation(pb.HeaderMutation.ADD, line))
        for line in sa.header_values(req, "x-agent-remove"):
            decision.request_headers.append(mutation(pb.HeaderMutation.REMOVE, line, with_value=False))
        for line in sa.header_values(req, "x-agent-response-set"):
            decision.response_headers.append(mutation(pb.HeaderMutation.SET, line))
        for pair in sa.header_values(req, "x-agent-metadata"):
            key, _, value = pair.partition("=")
            decision.metadata[key.strip()] = value.strip()
        reason = sa.header(req, "x-agent-audit")
        if reason is not None:
            decision.audit.reason = reason
            decision.audit.tags.append("test-agent")

    def inspect_body(self, stream, chunk, side):
        req = stream.request
        st = stream.state.setdefault(side + "_body", {"tail": b"", "chunks": 0, "replaced": False})
        st["chunks"] += 1
        seen = st["tail"] + chunk.data
        st["tail"] = seen[-3:]
        if b"EVIL" in seen:
            return self.block_decision(403 if side == "request" else 502)
        limit = _int_header(req, "x-agent-body-chunks", 0)
        done = chunk.last or (limit and st["chunks"] >= limit)
        decision = pb.Decision(allow=True) if done else pb.Decision(need_more_body=True)
        replace_header = "x-agent-replace-body" if side == "request" else "x-agent-replace-response-body"
        replacement = sa.header_bytes(req, replace_header) if req is not None else None
        if replacement is not None:
            decision.replace_body = b"" if st["replaced"] else replacement
            st["replaced"] = True
        return decision


def parse_args(argv=None):
    parser = sa.arg_parser(description="Scripted agent for Sentinel's integration tests (see the module docstring).")
    parser.add_argument("--name", default="sentinel-test-agent")
    parser.add_argument("--events", default="request-headers",
                        help="comma-separated: " + ",".join(EVENT_NAMES))
    parser.add_argument("--request-body-mode", choices=sorted(BODY_MODES), default="none")
    parser.add_argument("--response-body-mode", choices=sorted(BODY_MODES), default="none")
    parser.add_argument("--max-body", type=int, default=0)
    parser.add_argument("--max-concurrency", type=int, default=0)
    parser.add_argument("--max-frame-size", type=int, default=0)
    parser.add_argument("--log", help="JSON-lines log of every frame")
    parser.add_argument("--reject-config", action="store_true")
    parser.add_argument("--versions", default="1", help="comma-separated protocol versions spoken")
    parser.add_argument("--handshake", choices=["normal", "silent", "close"], default="normal")
    parser.add_argument("--health", choices=["healthy", "degraded", "unhealthy"], default="healthy")
    parser.add_argument("--frame-delay-ms", type=int, default=0,
                        help="wait this long before answering each WEBSOCKET_FRAME")
    args = parser.parse_args(argv)
    try:
        args.events = [EVENT_NAMES[e.strip()] for e in args.events.split(",") if e.strip()]
    except KeyError as e:
        parser.error("unknown event %s (expected %s)" % (e, ", ".join(EVENT_NAMES)))
    try:
        args.versions = [int(v) for v in args.versions.split(",") if v.strip()]
    except ValueError:
        parser.error("--versions takes comma-separated integers")
    args.request_body_mode = BODY_MODES[args.request_body_mode]
    args.response_body_mode = BODY_MODES[args.response_body_mode]
    return args


def main(argv=None):
    args = parse_args(argv)
    TestAgent.options = args
    TestAgent.event_log = EventLog(args.log)

    def started(server):
        if args.health != "healthy":
            server.report_health(args.health, "initial status from --health")

    try:
        sa.run_from_args(TestAgent, args, on_started=started)
    except OSError as e:
        print("test_agent: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
