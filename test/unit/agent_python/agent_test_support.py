"""Shared pieces of the Python agent tests: a fake proxy client, an in-process server thread
and a subprocess runner that waits on the agent's ready file.

Every wait here is for a condition (a frame, a file, a state) with a deadline; none is a
bare sleep standing in for readiness.
"""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
SDK = os.path.join(REPO, "agents", "sdk", "python")
if SDK not in sys.path:
    sys.path.insert(0, SDK)

import sentinel_agent as sa  # noqa: E402
from sentinel_agent import pb  # noqa: E402

PYTHON = "/usr/bin/python3"
TIMEOUT = 10.0


def wait_for(predicate, timeout=TIMEOUT, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for %s" % what)
        time.sleep(0.005)


class TempDir:
    """A short temporary directory (Unix socket paths are limited to 107 bytes)."""

    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="sa-", dir="/tmp")

    def join(self, name):
        return os.path.join(self.path, name)

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


class Closed(Exception):
    """The agent closed the connection."""


class FakeProxy:
    """The proxy's side of one connection, with blocking sockets and deadlines."""

    def __init__(self, address, timeout=TIMEOUT):
        kind, host_or_path, port = sa.server.parse_address(address)
        if kind == "unix":
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(host_or_path)
        else:
            self.sock = socket.create_connection((host_or_path, port), timeout=timeout)
        self.timeout = timeout
        self.decoder = sa.FrameDecoder(sa.Sender.PROXY, sa.MAX_FRAME_SIZE_LIMIT)
        self.frames = []
        self.eof = False

    def send(self, frame_type, stream_id, message=None, flags=0):
        payload = b"" if message is None else message.SerializeToString()
        self.sock.sendall(sa.encode_frame(frame_type, stream_id, payload, flags))

    def send_raw(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("no frame from the agent in time")
        self.sock.settimeout(remaining)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            raise Closed()
        self.frames.extend(self.decoder.feed(data))

    def recv_frame(self, timeout=None):
        """The next frame from the agent, payload not parsed; Closed at end of stream."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while not self.frames:
            if self.eof:
                raise Closed()
            self._fill(deadline)
        return self.frames.pop(0)

    def recv(self, timeout=None):
        """The next frame from the agent and its parsed message; Closed at end of stream."""
        frame = self.recv_frame(timeout)
        return frame, sa.parse_payload(frame)

    def expect(self, frame_type, stream_id=None, timeout=None):
        frame, message = self.recv(timeout)
        if frame.type != frame_type or (stream_id is not None and frame.stream_id != stream_id):
            raise AssertionError("expected %s on stream %s, got %r: %s"
                                 % (frame_type.name, stream_id, frame, message))
        return message

    def expect_closed(self, timeout=None):
        """Asserts the agent closes the connection (frames before the close are returned)."""
        got = []
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            while True:
                while self.frames:
                    got.append(self.frames.pop(0))
                self._fill(deadline)
        except Closed:
            return got
        except sa.FrameError:
            return got

    def hello(self, config=None, versions=(1,), max_frame_size=0, validate_only=False, agent_id="test"):
        self.send(sa.FrameType.HELLO, 0, pb.Hello(
            versions=list(versions), proxy_name="fake-proxy", proxy_version="0", agent_id=agent_id,
            config=config if config is not None else pb.ConfigNode(name="config", path="agents.agent[test].config"),
            validate_only=validate_only, max_frame_size=max_frame_size))
        return self.expect(sa.FrameType.HELLO_ACK)

    def ping(self, nonce):
        """PING and wait for its PONG, returning every other frame received before it."""
        self.send(sa.FrameType.PING, 0, pb.Ping(nonce=nonce))
        before = []
        while True:
            frame, message = self.recv()
            if frame.type == sa.FrameType.PONG and message.nonce == nonce:
                return before
            before.append((frame, message))

    def request(self, stream_id, path="/", headers=(), method="GET", route="r1", flags=0, has_body=False,
                **fields):
        msg = pb.RequestHeaders(method=method, path=path, route=route, request_id="req-%d" % stream_id,
                                has_body=has_body, **fields)
        for name, value in headers:
            msg.headers.add(name=name, value=value.encode() if isinstance(value, str) else value)
        self.send(sa.FrameType.REQUEST_HEADERS, stream_id, msg, flags)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def config(*children, path="agents.agent[test].config"):
    """A ConfigNode tree: config(("name", [args], {props}), ...) with paths filled in."""
    root = pb.ConfigNode(name="config", path=path)
    for i, (name, args, *rest) in enumerate(children):
        node = root.children.add(name=name, path="%s.%s[%d]" % (path, name, i))
        for a in args:
            node.args.append(_value(a))
        for k, v in (rest[0] if rest else {}).items():
            node.props[k].CopyFrom(_value(v))
    return root


def _value(v):
    if v is None:
        return pb.ConfigValue(null=True)
    if isinstance(v, bool):
        return pb.ConfigValue(boolean=v)
    if isinstance(v, int):
        return pb.ConfigValue(integer=v)
    if isinstance(v, float):
        return pb.ConfigValue(number=v)
    return pb.ConfigValue(string=v)


class ServerThread:
    """An AgentServer on its own event loop in a background thread, so a test can talk to it
    over a real socket and still inspect its state."""

    def __init__(self, agent_factory, address, drain_timeout=5.0):
        self.loop = asyncio.new_event_loop()
        self.server = sa.AgentServer(agent_factory, address, drain_timeout=drain_timeout)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._error = None

    def _run(self):
        asyncio.set_event_loop(self.loop)

        async def main():
            try:
                await self.server.start()
            except BaseException as e:  # reported to the starting thread
                self._error = e
                self._ready.set()
                return
            self._ready.set()
            await self.server.serve_forever()

        self.loop.run_until_complete(main())
        pending = asyncio.all_tasks(self.loop)
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.close()

    def start(self):
        self.thread.start()
        if not self._ready.wait(TIMEOUT):
            raise AssertionError("agent server did not start")
        if self._error is not None:
            raise self._error
        return self.server.address

    def call(self, fn, *args):
        """Runs fn(*args) on the server's loop (awaiting it if it is a coroutine function)."""
        async def wrapper():
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result
        return asyncio.run_coroutine_threadsafe(wrapper(), self.loop).result(TIMEOUT)

    def connections(self):
        return self.call(lambda: sorted(self.server.connections, key=lambda c: c.id))

    def open_streams(self):
        """{connection id: sorted open stream ids}."""
        return self.call(lambda: {c.id: sorted(c.streams) for c in self.server.connections})

    def stop(self, grace=0):
        if self.thread.is_alive():
            try:
                self.call(self.server.stop, grace)
            except Exception:
                pass
            self.thread.join(TIMEOUT)


class AgentProcess:
    """An agent script run with /usr/bin/python3, ready once its --ready-file exists."""

    def __init__(self, script, args, tmp, env=None, drop_env=()):
        self.ready_file = tmp.join("ready-%d" % id(self))
        self.stderr_path = tmp.join("stderr-%d" % id(self))
        full_env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        for name in drop_env:
            full_env.pop(name, None)
        if env:
            full_env.update(env)
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen([PYTHON, script, "--ready-file", self.ready_file] + list(args),
                                     stdout=subprocess.DEVNULL, stderr=self.stderr, env=full_env)
        self.address = None

    def wait_ready(self, timeout=TIMEOUT):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("agent exited with %s before it was ready:\n%s"
                                     % (self.proc.returncode, self.stderr_text()))
            try:
                with open(self.ready_file) as f:
                    return f.read().strip()
            except FileNotFoundError:
                return None
        self.address = wait_for(ready, timeout, "the agent's ready file")
        return self.address

    def stderr_text(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def terminate(self, timeout=TIMEOUT):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.kill()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stderr.close()
