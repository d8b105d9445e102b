"""The asyncio agent server: listens, does the handshake, runs one task per stream event.

The proxy is always the client (PROTOCOL.md §1). Each accepted connection gets its own Agent
instance because the configuration is bound to the connection (§3): after a reload the proxy
opens new connections carrying the new config while the old ones drain with the old one.
"""

import asyncio
import inspect
import logging
import os
import socket
import stat

from . import decisions
from . import sentinel_agent_v1_pb2 as pb
from .frame import (DEFAULT_MAX_FRAME_SIZE, HEADER_SIZE, MAX_FRAME_SIZE_LIMIT, PROTOCOL_VERSION, Frame,
                    FrameType, ProtocolError, Sender, encode_frame, parse_payload, read_frame)

log = logging.getLogger("sentinel_agent")

# on_cancel's reason when the connection went away with the stream open (not a Cancel.Reason).
CONNECTION_CLOSED = -1


class _NoAnswer:
    def __repr__(self):
        return "NO_ANSWER"


# A handler returning this sends no decision (the proxy's timeout then applies its failure
# mode). Meant for on_error and for test agents that misbehave on purpose.
NO_ANSWER = _NoAnswer()

_EVENT_OF_FRAME = {
    FrameType.REQUEST_HEADERS: pb.REQUEST_HEADERS,
    FrameType.REQUEST_BODY: pb.REQUEST_BODY,
    FrameType.RESPONSE_HEADERS: pb.RESPONSE_HEADERS,
    FrameType.RESPONSE_BODY: pb.RESPONSE_BODY,
    FrameType.REQUEST_COMPLETE: pb.REQUEST_COMPLETE,
    FrameType.WEBSOCKET_FRAME: pb.WEBSOCKET_FRAME,
}

_HANDLER_OF_FRAME = {
    FrameType.REQUEST_HEADERS: "on_request_headers",
    FrameType.REQUEST_BODY: "on_request_body",
    FrameType.RESPONSE_HEADERS: "on_response_headers",
    FrameType.RESPONSE_BODY: "on_response_body",
    FrameType.WEBSOCKET_FRAME: "on_websocket_frame",
}


async def _maybe_await(value):
    return await value if inspect.isawaitable(value) else value


class Agent:
    """Base class of an agent. Override the class attributes and the handlers you need.

    Handlers receive the Stream and the event message and return a Decision (see
    decisions.py), a pb.Decision, or None for allow. They run as one asyncio task per event,
    so a slow handler delays only its own stream. Attributes set by the server before
    configure(): `server` (AgentServer), `connection` (Connection), `hello` (pb.Hello).
    """

    name = "sentinel-python-agent"
    version = "0"
    versions = (PROTOCOL_VERSION,)        # protocol versions spoken
    events = (pb.REQUEST_HEADERS,)        # Capabilities.events
    request_body_mode = pb.BODY_NONE
    response_body_mode = pb.BODY_NONE
    max_body_bytes = 0                    # 0: the proxy's limit
    max_concurrency = 0                   # open streams per connection; 0: any
    max_frame_size = 0                    # largest payload accepted; 0: 1 MiB

    server = None
    connection = None
    hello = None

    def configure(self, config):
        """Checks the `config {}` block (pb.ConfigNode). May be async.

        Returns a list of (path, message) errors (decisions.config_error(node, msg) builds
        one); empty or None accepts the config.
        """
        return []

    def capabilities(self):
        """Sent in HELLO_ACK; called after configure(), so it may depend on the config."""
        return pb.Capabilities(events=list(self.events), request_body_mode=self.request_body_mode,
                               response_body_mode=self.response_body_mode,
                               max_body_bytes=self.max_body_bytes,
                               max_concurrency=self.max_concurrency)

    async def on_request_headers(self, stream, event):
        return None

    async def on_request_body(self, stream, chunk):
        return None

    async def on_response_headers(self, stream, event):
        return None

    async def on_response_body(self, stream, chunk):
        return None

    async def on_websocket_frame(self, stream, frame):
        return None

    async def on_request_complete(self, stream, event):
        """The request is over (not answered)."""

    async def on_cancel(self, stream, reason):
        """The stream was cancelled (pb.Cancel.Reason) or its connection closed
        (CONNECTION_CLOSED). The handler that was running has been cancelled already."""

    def on_error(self, stream, event, error):
        """A handler raised `error`. Returns the decision to send instead, or NO_ANSWER.

        The default sends nothing, so the proxy's timeout applies the operator's
        failure-mode (open or closed) rather than the agent guessing one.
        """
        log.error("stream %d: handler failed", stream.id, exc_info=error)
        return NO_ANSWER

    def on_drain(self, reason):
        """The proxy sent DRAIN: this connection gets no new stream."""

    def on_frame(self, direction, frame, message):
        """Trace hook: every frame received ("in") or sent ("out") with its parsed message."""

    def on_connection_closed(self, error):
        """The connection ended; `error` is the ProtocolError/OSError that ended it, or None."""


class Stream:
    """One request seen by this agent (PROTOCOL.md §4)."""

    __slots__ = ("id", "connection", "state", "request", "response", "end_stream", "cancelled",
                 "cancel_reason", "_task", "_awaiting", "_more_request_body", "_more_response_body")

    def __init__(self, stream_id, connection):
        self.id = stream_id
        self.connection = connection
        self.state = {}            # the agent's per-request data; dropped when the stream ends
        self.request = None        # pb.RequestHeaders, once received
        self.response = None       # pb.ResponseHeaders, once received
        self.end_stream = False    # the current event is the last one on this stream
        self.cancelled = False
        self.cancel_reason = None
        self._task = None
        self._awaiting = False     # an event waits for our decision
        self._more_request_body = False    # our last answer on that side was need_more_body
        self._more_response_body = False

    @property
    def busy(self):
        """A handler is running for this stream."""
        return self._task is not None and not self._task.done()

    def __repr__(self):
        return "Stream(%d)" % self.id


def _normalise_errors(result):
    errors = []
    for e in result or ():
        if isinstance(e, pb.ConfigError):
            errors.append(e)
        else:
            path, message = e
            errors.append(pb.ConfigError(path=path, message=message))
    return errors


class Connection:
    """One proxy connection: handshake, frame loop, stream table."""

    def __init__(self, server, conn_id, agent, reader, writer):
        self.server = server
        self.id = conn_id
        self.agent = agent
        self.reader = reader
        self.writer = writer
        self.streams = {}              # open streams by id
        self.hello = None
        self.capabilities = None
        self.acked = False             # HELLO_ACK sent
        self.established = False       # ... and streams may follow (config accepted, not validate_only)
        self.rejected = False          # HELLO_ACK carried config errors
        self.validate_only = False     # HELLO only checked the config: no streams follow
        self.peer_draining = False     # the proxy sent DRAIN
        self.draining = False          # we sent DRAIN
        self.closed = False
        self.error = None              # what ended the connection
        self.max_frame_size = agent.max_frame_size or DEFAULT_MAX_FRAME_SIZE  # we accept
        self.peer_max_frame_size = DEFAULT_MAX_FRAME_SIZE                     # we may send
        self._highest_stream = 0
        self._tasks = set()
        self._pings = {}
        self._next_nonce = 1
        self._warned_need_body = False

    # -- sending -----------------------------------------------------------------------------
    def _encode(self, frame_type, stream_id, message, flags=0):
        return encode_frame(frame_type, stream_id, message, flags, max_payload=self.peer_max_frame_size)

    def _write(self, frame_type, stream_id, message, flags=0, data=None):
        """Writes one frame now (no await between a decision and its write: a CANCEL
        processed before this point suppresses it, one processed after finds it sent)."""
        if self.closed or self.writer.transport.is_closing():
            return False
        if data is None:
            data = self._encode(frame_type, stream_id, message, flags)
        self.writer.write(data)
        self._trace("out", Frame(FrameType(frame_type), flags, stream_id, data[HEADER_SIZE:]), message)
        return True

    async def _flush(self):
        try:
            await self.writer.drain()
        except (ConnectionError, OSError):
            pass

    async def send(self, frame_type, stream_id, message, flags=0):
        if self._write(frame_type, stream_id, message, flags):
            await self._flush()

    def send_raw(self, data):
        """Writes bytes as they are: for test agents that must break the protocol."""
        if not self.closed and not self.writer.transport.is_closing():
            self.writer.write(data)

    async def send_drain(self, reason=""):
        """DRAIN: the proxy opens no new stream here and closes the connection when idle."""
        self.draining = True
        if self.acked:
            await self.send(FrameType.DRAIN, 0, pb.Drain(reason=reason))

    def send_health(self, status, message=""):
        if self.established:
            self._write(FrameType.HEALTH, 0, pb.Health(status=status, message=message))

    async def ping(self, timeout=5.0):
        """Sends PING and waits for the PONG; returns the round trip in seconds."""
        loop = asyncio.get_running_loop()
        nonce = self._next_nonce
        self._next_nonce += 1
        waiter = loop.create_future()
        self._pings[nonce] = waiter
        start = loop.time()
        try:
            await self.send(FrameType.PING, 0, pb.Ping(nonce=nonce))
            await asyncio.wait_for(waiter, timeout)
        finally:
            self._pings.pop(nonce, None)
        return loop.time() - start

    def abort(self):
        """Closes the connection at once (open streams fail at the proxy)."""
        if not self.closed:
            self.writer.transport.abort()

    # -- receiving ---------------------------------------------------------------------------
    def _trace(self, direction, frame, message):
        try:
            self.agent.on_frame(direction, frame, message)
        except Exception:
            log.exception("on_frame hook failed")

    async def run(self):
        try:
            while True:
                frame = await read_frame(self.reader, Sender.AGENT, self.max_frame_size)
                if frame is None:
                    break
                message = parse_payload(frame)
                self._trace("in", frame, message)
                await self._dispatch(frame, message)
        except ProtocolError as e:
            self.error = e
            log.warning("connection %d: protocol error, closing: %s", self.id, e)
        except (ConnectionError, OSError) as e:
            self.error = e
            log.info("connection %d: %s", self.id, e)
        except asyncio.CancelledError:
            self.error = ConnectionError("server stopped")
        finally:
            await self._shutdown()

    async def _dispatch(self, frame, message):
        t = frame.type
        if self.hello is None:
            if t != FrameType.HELLO:
                raise ProtocolError("frame before HELLO", t.name)
            await self._handshake(message)
            return
        if t == FrameType.HELLO:
            raise ProtocolError("second HELLO")
        if t == FrameType.PING:
            await self.send(FrameType.PONG, 0, pb.Ping(nonce=message.nonce))
        elif t == FrameType.PONG:
            waiter = self._pings.get(message.nonce)
            if waiter is not None and not waiter.done():
                waiter.set_result(None)
        elif t == FrameType.DRAIN:
            self.peer_draining = True
            log.info("connection %d: proxy drains (%s)", self.id, message.reason)
            self.agent.on_drain(message.reason)
        elif not self.established:
            raise ProtocolError("stream frame on a connection that takes no streams "
                                "(validate_only HELLO or rejected config)", t.name)
        elif t == FrameType.CANCEL:
            self._on_cancel_frame(frame, message)
        else:
            self._on_event(frame, message)

    async def _handshake(self, hello):
        self.hello = hello
        self.peer_max_frame_size = min(hello.max_frame_size or DEFAULT_MAX_FRAME_SIZE, MAX_FRAME_SIZE_LIMIT)
        agent = self.agent
        ack = pb.HelloAck(agent_name=agent.name, agent_version=agent.version,
                          max_frame_size=agent.max_frame_size)
        common = [v for v in hello.versions if v in agent.versions]
        if not common:
            ack.version = 0
            ack.config_errors.append(pb.ConfigError(
                path="", message="agent speaks protocol versions %s, proxy offers %s"
                % (list(agent.versions), list(hello.versions))))
            self._write(FrameType.HELLO_ACK, 0, ack)
            await self._flush()
            raise ProtocolError("no common protocol version", str(list(hello.versions)))
        ack.version = max(common)
        agent.hello = hello
        try:
            errors = _normalise_errors(await _maybe_await(agent.configure(hello.config)))
        except Exception as e:
            log.exception("configure failed")
            errors = [pb.ConfigError(path=hello.config.path, message="agent failed to read its config: %s" % e)]
        self.capabilities = agent.capabilities()
        ack.capabilities.CopyFrom(self.capabilities)
        ack.config_errors.extend(errors)
        if errors:
            self.rejected = True
            log.warning("connection %d: config rejected: %s", self.id,
                        "; ".join("%s: %s" % (e.path or "config", e.message) for e in errors))
        elif hello.validate_only:
            self.validate_only = True
        else:
            self.established = True
        self._write(FrameType.HELLO_ACK, 0, ack)
        self.acked = True
        if self.established:
            status, text = self.server.health
            if status != pb.Health.HEALTHY:
                self._write(FrameType.HEALTH, 0, pb.Health(status=status, message=text))
            if self.server.stopping:
                self.draining = True
                self._write(FrameType.DRAIN, 0, pb.Drain(reason="agent shutting down"))
        await self._flush()

    def _subscribed(self, t):
        caps = self.capabilities
        if _EVENT_OF_FRAME[t] in caps.events:
            return True
        # Body events follow a need_more_body answer; the body mode is what asks for them.
        if t == FrameType.REQUEST_BODY:
            return caps.request_body_mode != pb.BODY_NONE
        if t == FrameType.RESPONSE_BODY:
            return caps.response_body_mode != pb.BODY_NONE
        return False

    def _on_event(self, frame, message):
        t = frame.type
        sid = frame.stream_id
        if not self._subscribed(t):
            raise ProtocolError("event not subscribed", t.name)
        stream = self.streams.get(sid)
        if stream is None:
            if sid <= self._highest_stream:
                raise ProtocolError("event on a closed stream", "%s on stream %d" % (t.name, sid))
            limit = self.capabilities.max_concurrency
            if limit and len(self.streams) >= limit:
                raise ProtocolError("max_concurrency exceeded",
                                    "stream %d opens stream %d of %d" % (sid, len(self.streams) + 1, limit))
            self._highest_stream = sid
            stream = Stream(sid, self)
            self.streams[sid] = stream
        if stream._awaiting:
            raise ProtocolError("event while another awaits its decision", "%s on stream %d" % (t.name, sid))
        if ((t == FrameType.REQUEST_BODY and not stream._more_request_body)
                or (t == FrameType.RESPONSE_BODY and not stream._more_response_body)):
            raise ProtocolError("body event without a need_more_body answer before it",
                                "%s on stream %d" % (t.name, sid))
        stream.end_stream = frame.end_stream
        if t == FrameType.REQUEST_HEADERS:
            stream.request = message
        elif t == FrameType.RESPONSE_HEADERS:
            stream.response = message
        if t == FrameType.REQUEST_COMPLETE:
            # Not answered, and the stream ends with it (PROTOCOL.md §4).
            del self.streams[sid]
            self.server._changed()
            self._spawn(stream, self._complete(stream, message))
            return
        stream._awaiting = True
        self._spawn(stream, self._handle(stream, frame, message))

    def _spawn(self, stream, coro):
        task = asyncio.get_running_loop().create_task(coro)
        if stream is not None:
            stream._task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _handle(self, stream, frame, message):
        agent = self.agent
        try:
            try:
                result = await getattr(agent, _HANDLER_OF_FRAME[frame.type])(stream, message)
                decision = None if result is NO_ANSWER else decisions.to_proto(result)
                if decision is not None:
                    self._check_decision(frame.type, decision)
                    encoded = self._encode(FrameType.DECISION, stream.id, decision)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                decision, encoded = self._decision_after_error(stream, message, e)
        except asyncio.CancelledError:
            return  # cancelled by CANCEL or by the connection closing: no decision
        if stream.cancelled or self.closed or decision is None:
            return
        stream._awaiting = False
        more = decision.WhichOneof("action") == "need_more_body"
        if frame.type in (FrameType.REQUEST_HEADERS, FrameType.REQUEST_BODY):
            stream._more_request_body = more
        elif frame.type in (FrameType.RESPONSE_HEADERS, FrameType.RESPONSE_BODY):
            stream._more_response_body = more
        if stream.end_stream:
            # The answer to the last event ends the stream (PROTOCOL.md §4).
            self.streams.pop(stream.id, None)
            self.server._changed()
        self._write(FrameType.DECISION, stream.id, decision, data=encoded)
        await self._flush()

    def _decision_after_error(self, stream, message, error):
        try:
            result = self.agent.on_error(stream, message, error)
            if result is NO_ANSWER:
                return None, None
            decision = decisions.to_proto(result)
            return decision, self._encode(FrameType.DECISION, stream.id, decision)
        except Exception:
            log.exception("stream %d: on_error failed; no decision sent", stream.id)
            return None, None

    def _check_decision(self, event_type, decision):
        if decision.WhichOneof("action") != "need_more_body" or self._warned_need_body:
            return
        caps = self.capabilities
        request_side = event_type in (FrameType.REQUEST_HEADERS, FrameType.REQUEST_BODY)
        mode = caps.request_body_mode if request_side else caps.response_body_mode
        if mode == pb.BODY_NONE or event_type == FrameType.WEBSOCKET_FRAME:
            self._warned_need_body = True
            log.warning("need_more_body answered to %s while that body mode is BODY_NONE: "
                        "the proxy treats it as a protocol error", event_type.name)

    async def _complete(self, stream, message):
        try:
            await self.agent.on_request_complete(stream, message)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("stream %d: on_request_complete failed", stream.id)

    def _on_cancel_frame(self, frame, message):
        stream = self.streams.pop(frame.stream_id, None)
        if stream is None:
            # Crossed our last decision, or followed a NO_ANSWER: nothing left to stop.
            return
        self.server._changed()
        stream.cancelled = True
        stream.cancel_reason = message.reason
        previous = stream._task
        if previous is not None:
            previous.cancel()
        self._spawn(None, self._cancelled(stream, message.reason, previous))

    async def _cancelled(self, stream, reason, previous):
        try:
            if previous is not None and not previous.done():
                await asyncio.wait([previous])
            await self.agent.on_cancel(stream, reason)
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("stream %d: on_cancel failed", stream.id)

    async def _shutdown(self):
        self.closed = True
        open_streams = list(self.streams.values())
        self.streams.clear()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(list(self._tasks))
        for waiter in self._pings.values():
            if not waiter.done():
                waiter.set_exception(ConnectionError("connection closed"))
        for stream in open_streams:
            stream.cancelled = True
            stream.cancel_reason = CONNECTION_CLOSED
            try:
                await self.agent.on_cancel(stream, CONNECTION_CLOSED)
            except Exception:
                log.exception("stream %d: on_cancel failed", stream.id)
        try:
            self.agent.on_connection_closed(self.error)
        except Exception:
            log.exception("on_connection_closed failed")
        if self.error is not None:
            self.writer.transport.abort()  # a protocol error: drop whatever is queued
        else:
            self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass
        self.server._connection_done(self)


def parse_address(address):
    """"tcp://host:port" → ("tcp", host, port); anything else ("unix:PATH" or PATH) → ("unix", path, None)."""
    if address.startswith("tcp://"):
        rest = address[len("tcp://"):]
        host, sep, port = rest.rpartition(":")
        if not sep or not port.isdigit() or not host:
            raise ValueError("expected tcp://HOST:PORT, got %r" % address)
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        return "tcp", host, int(port)
    if address.startswith("unix:"):
        address = address[len("unix:"):]
    if not address:
        raise ValueError("empty socket path")
    return "unix", address, None


def _remove_stale_socket(path):
    """Removes a socket file nobody listens on; refuses to touch anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(st.st_mode):
        raise OSError("%s exists and is not a socket; not removing it" % path)
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)  # stale: left by a process that died
        return
    finally:
        probe.close()
    raise OSError("another process is listening on %s" % path)


class AgentServer:
    """Listens on a Unix socket path or tcp://host:port and serves Agent connections.

    agent_factory: a callable returning a new Agent (usually the Agent subclass itself),
    called once per connection.
    """

    def __init__(self, agent_factory, address, drain_timeout=30.0):
        if isinstance(agent_factory, Agent):
            raise TypeError("pass the Agent class (or a factory), not an instance: "
                            "each connection gets its own agent")
        self.agent_factory = agent_factory
        self.requested_address = address
        self.drain_timeout = drain_timeout
        self.address = None              # the bound address, once started
        self.connections = set()
        self.health = (pb.Health.HEALTHY, "")
        self.stopping = False
        self._listener = None
        self._unix_path = None
        self._unix_inode = None
        self._next_id = 1
        self._stopped = None
        self._change = None

    async def start(self):
        self._stopped = asyncio.Event()
        self._change = asyncio.Event()
        kind, host_or_path, port = parse_address(self.requested_address)
        limit = 1 << 20
        if kind == "unix":
            _remove_stale_socket(host_or_path)
            self._listener = await asyncio.start_unix_server(self._accept, path=host_or_path, limit=limit)
            self._unix_path = host_or_path
            self._unix_inode = os.stat(host_or_path).st_ino
            self.address = host_or_path
        else:
            self._listener = await asyncio.start_server(self._accept, host_or_path, port, limit=limit)
            sockname = self._listener.sockets[0].getsockname()
            host = sockname[0]
            self.address = "tcp://%s:%d" % ("[%s]" % host if ":" in host else host, sockname[1])
        log.info("listening on %s", self.address)
        return self.address

    async def _accept(self, reader, writer):
        if self.stopping:
            writer.transport.abort()
            return
        conn_id = self._next_id
        self._next_id += 1
        try:
            agent = self.agent_factory()
        except Exception:
            log.exception("agent factory failed")
            writer.transport.abort()
            return
        conn = Connection(self, conn_id, agent, reader, writer)
        agent.server = self
        agent.connection = conn
        self.connections.add(conn)
        await conn.run()

    def _connection_done(self, conn):
        self.connections.discard(conn)
        self._changed()

    def _changed(self):
        if self._change is not None:
            self._change.set()

    def report_health(self, status, message=""):
        """HEALTH on every connection (and on later ones) when the status changes.

        status: pb.Health.HEALTHY / DEGRADED / UNHEALTHY, or its name ("unhealthy").
        """
        if isinstance(status, str):
            status = pb.Health.Status.Value(status.upper())
        if (status, message) == self.health:
            return
        self.health = (status, message)
        for conn in list(self.connections):
            conn.send_health(status, message)

    async def serve_forever(self):
        await self._stopped.wait()

    async def stop(self, grace=None):
        """Graceful stop: stop accepting, DRAIN every connection, let open streams finish
        (up to `grace` seconds, default drain_timeout), then close what is left."""
        if self.stopping:
            if grace == 0:
                for conn in list(self.connections):
                    conn.abort()
            await self._stopped.wait()
            return
        self.stopping = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.drain_timeout if grace is None else grace)
        if self._listener is not None:
            self._listener.close()
        log.info("draining %d connection(s)", len(self.connections))
        await asyncio.gather(*(c.send_drain("agent shutting down") for c in list(self.connections)),
                             return_exceptions=True)
        # Streams finish; the proxy closes each drained connection once it is idle. A short
        # linger after the last stream lets it do so before we close.
        idle_since = None
        while self.connections:
            now = loop.time()
            if now >= deadline:
                break
            if any(c.streams for c in self.connections):
                idle_since = None
            elif idle_since is None:
                idle_since = now
            elif now - idle_since >= 0.5:
                break
            self._change.clear()
            try:
                await asyncio.wait_for(self._change.wait(), timeout=min(0.1, deadline - now))
            except asyncio.TimeoutError:
                pass
        for conn in list(self.connections):
            conn.abort()
        while self.connections:
            self._change.clear()
            try:
                await asyncio.wait_for(self._change.wait(), timeout=1.0)
            except asyncio.TimeoutError:
                break
        self._remove_socket_file()
        self._stopped.set()

    def _remove_socket_file(self):
        if self._unix_path is None:
            return
        try:
            if os.stat(self._unix_path).st_ino == self._unix_inode:
                os.unlink(self._unix_path)
        except OSError:
            pass
