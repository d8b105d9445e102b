"""The SDK's asyncio server end to end against a fake proxy over a temporary Unix socket:
handshake and config errors, concurrent streams, CANCEL, stream lifetime (PROTOCOL.md §4),
control frames, protocol errors and graceful stop."""

import asyncio
import os
import socket
import unittest

from agent_test_support import (FakeProxy, ServerThread, TempDir, config, pb, sa, wait_for)

F = sa.FrameType


class Record:
    """What the agents of one test saw (shared by every connection's agent instance)."""

    def __init__(self):
        self.gate = asyncio.Event()      # bound to the server loop on first use
        self.cancels = []                # (stream id, reason, handler was cancelled)
        self.completes = []
        self.drains = []
        self.closed = []
        self.handler_cancelled = set()
        self.started = set()             # stream ids whose request-headers handler is running


class RecordingAgent(sa.Agent):
    name = "recording-agent"
    version = "9"
    events = (sa.REQUEST_HEADERS, sa.RESPONSE_HEADERS, sa.REQUEST_COMPLETE)
    request_body_mode = sa.BODY_BUFFER
    max_body_bytes = 4096
    record = None

    async def on_request_headers(self, stream, req):
        stream.state["path"] = req.path
        stream.state["events"] = 1
        self.record.started.add(stream.id)
        if req.path == "/gate-wait":
            await self.record.gate.wait()
        elif req.path == "/gate-open":
            self.record.gate.set()
        elif req.path == "/forever":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.record.handler_cancelled.add(stream.id)
                raise
        elif req.path == "/stubborn":
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.record.handler_cancelled.add(stream.id)
                return sa.block(500, "should never be sent")
        elif req.path == "/raise":
            raise RuntimeError("handler bug")
        elif req.path == "/big":
            return sa.allow().set_metadata("k", "x" * 500)
        elif req.path == "/body":
            return sa.need_more_body()
        elif req.path == "/no-action":
            return pb.Decision(metadata={"only": "metadata"})
        return sa.allow().set_request_header("x-path", req.path)

    async def on_request_body(self, stream, chunk):
        stream.state["events"] += 1
        return sa.allow().set_metadata("body", "%s:%d:%d" % (stream.state["path"], len(chunk.data),
                                                             stream.state["events"]))

    async def on_response_headers(self, stream, resp):
        stream.state["events"] += 1
        return sa.allow().set_metadata("events", str(stream.state["events"]))

    async def on_request_complete(self, stream, event):
        self.record.completes.append((stream.id, event.status, stream.state.get("path")))

    async def on_cancel(self, stream, reason):
        self.record.cancels.append((stream.id, reason, stream.id in self.record.handler_cancelled))

    def on_drain(self, reason):
        self.record.drains.append(reason)

    def on_connection_closed(self, error):
        self.record.closed.append(error)


class ServerTestCase(unittest.TestCase):
    agent_class = RecordingAgent
    address = None  # default: a Unix socket in the temp dir

    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.record = Record()
        agent_class = type("Agent", (self.agent_class,), {"record": self.record})
        self.server = ServerThread(agent_class, self.address or self.tmp.join("agent.sock"))
        self.addr = self.server.start()
        self.addCleanup(self.server.stop)

    def connect(self, **hello):
        proxy = FakeProxy(self.addr)
        self.addCleanup(proxy.close)
        ack = proxy.hello(**hello)
        self.assertEqual(list(ack.config_errors), [])
        return proxy

    def open_streams(self):
        return {k: v for k, v in self.server.open_streams().items()}

    def assert_no_frame_before_pong(self, proxy, nonce=77):
        self.assertEqual(proxy.ping(nonce), [])


class HandshakeTest(ServerTestCase):
    def test_hello_ack_carries_capabilities(self):
        proxy = FakeProxy(self.addr)
        self.addCleanup(proxy.close)
        ack = proxy.hello(agent_id="waf")
        self.assertEqual((ack.version, ack.agent_name, ack.agent_version), (1, "recording-agent", "9"))
        caps = ack.capabilities
        self.assertEqual(list(caps.events), [pb.REQUEST_HEADERS, pb.RESPONSE_HEADERS, pb.REQUEST_COMPLETE])
        self.assertEqual((caps.request_body_mode, caps.response_body_mode), (pb.BODY_BUFFER, pb.BODY_NONE))
        self.assertEqual((caps.max_body_bytes, caps.max_concurrency), (4096, 0))
        self.assertEqual(ack.max_frame_size, 0)
        [conn] = self.server.connections()
        self.assertEqual(conn.agent.hello.agent_id, "waf")
        self.assertTrue(conn.established)

    def test_one_agent_per_connection(self):
        self.connect()
        self.connect()
        conns = self.server.connections()
        self.assertEqual(len(conns), 2)
        self.assertIsNot(conns[0].agent, conns[1].agent)

    def test_frame_before_hello_closes(self):
        proxy = FakeProxy(self.addr)
        self.addCleanup(proxy.close)
        proxy.send(F.PING, 0, pb.Ping(nonce=1))
        self.assertEqual(proxy.expect_closed(), [])

    def test_second_hello_closes(self):
        proxy = self.connect()
        proxy.send(F.HELLO, 0, pb.Hello(versions=[1]))
        self.assertEqual(proxy.expect_closed(), [])

    def test_version_mismatch(self):
        proxy = FakeProxy(self.addr)
        self.addCleanup(proxy.close)
        ack = proxy.hello(versions=[2, 3])
        self.assertEqual(ack.version, 0)
        self.assertEqual(len(ack.config_errors), 1)
        self.assertIn("[1]", ack.config_errors[0].message)
        proxy.expect_closed()

    def test_validate_only(self):
        proxy = FakeProxy(self.addr)
        proxy.hello(validate_only=True)
        proxy.close()
        wait_for(lambda: not self.server.connections(), what="the connection to go")

    def test_validate_only_connection_takes_no_streams(self):
        proxy = FakeProxy(self.addr)
        self.addCleanup(proxy.close)
        self.assertEqual(list(proxy.hello(validate_only=True).config_errors), [])
        self.assertEqual(proxy.ping(3), [])  # control frames are fine
        proxy.send(F.CANCEL, 1, pb.Cancel())
        proxy.expect_closed()


class ConfigAgent(RecordingAgent):
    async def configure(self, cfg):
        await asyncio.sleep(0)  # configure may be a coroutine
        errors = [sa.config_error(node, "%s is not allowed" % sa.node_args(node)[0])
                  for node in cfg.children if node.name == "bad"]
        if sa.node_props(cfg).get("explode"):
            raise ValueError("boom")
        return errors


class ConfigTest(ServerTestCase):
    agent_class = ConfigAgent

    def test_errors_keep_the_node_paths(self):
        proxy = FakeProxy(self.addr)
        self.addCleanup(proxy.close)
        ack = proxy.hello(config=config(("good", ["a"]), ("bad", ["x"]), ("bad", ["y"])))
        self.assertEqual([(e.path, e.message) for e in ack.config_errors],
                         [("agents.agent[test].config.bad[1]", "x is not allowed"),
                          ("agents.agent[test].config.bad[2]", "y is not allowed")])
        # A rejected connection gets no stream.
        proxy.request(1, "/")
        proxy.expect_closed()

    def test_accepted_config(self):
        proxy = FakeProxy(self.addr)
        self.addCleanup(proxy.close)
        ack = proxy.hello(config=config(("good", ["a"])))
        self.assertEqual(list(ack.config_errors), [])
        proxy.request(1, "/", flags=sa.FLAG_END_STREAM)
        self.assertTrue(proxy.expect(F.DECISION, 1).allow)

    def test_configure_exception_is_a_config_error(self):
        proxy = FakeProxy(self.addr)
        self.addCleanup(proxy.close)
        cfg = config()
        cfg.props["explode"].CopyFrom(pb.ConfigValue(boolean=True))
        ack = proxy.hello(config=cfg)
        self.assertEqual([(e.path, e.message) for e in ack.config_errors],
                         [("agents.agent[test].config", "agent failed to read its config: boom")])


class StreamTest(ServerTestCase):
    def test_streams_run_concurrently_and_answer_out_of_order(self):
        proxy = self.connect()
        for sid in range(1, 21):
            proxy.request(sid, "/gate-wait", flags=sa.FLAG_END_STREAM)
        proxy.request(21, "/gate-open", flags=sa.FLAG_END_STREAM)
        frame, first = proxy.recv()
        self.assertEqual((frame.type, frame.stream_id), (F.DECISION, 21))
        self.assertEqual(first.request_headers[0].value, b"/gate-open")
        rest = sorted(proxy.recv()[0].stream_id for _ in range(20))
        self.assertEqual(rest, list(range(1, 21)))
        self.assertEqual(self.open_streams(), {1: []})

    def test_cancel_cancels_the_handler_and_suppresses_its_decision(self):
        proxy = self.connect()
        proxy.request(1, "/stubborn", flags=sa.FLAG_END_STREAM)
        wait_for(lambda: 1 in self.record.started, what="the handler to run")
        proxy.send(F.CANCEL, 1, pb.Cancel(reason=pb.Cancel.CLIENT_GONE))
        wait_for(lambda: self.record.cancels, what="on_cancel")
        self.assertEqual(self.record.cancels, [(1, pb.Cancel.CLIENT_GONE, True)])
        self.assert_no_frame_before_pong(proxy)
        self.assertEqual(self.open_streams(), {1: []})
        # The stream is closed: a new event on it is a protocol error.
        proxy.request(1, "/")
        proxy.expect_closed()

    def test_cancel_of_an_unknown_stream_is_ignored(self):
        # CANCEL may cross the decision of the last event.
        proxy = self.connect()
        proxy.request(1, "/", flags=sa.FLAG_END_STREAM)
        proxy.expect(F.DECISION, 1)
        proxy.send(F.CANCEL, 1, pb.Cancel(reason=pb.Cancel.TIMEOUT))
        proxy.send(F.CANCEL, 9, pb.Cancel(reason=pb.Cancel.ENDED))
        self.assert_no_frame_before_pong(proxy)
        self.assertEqual(self.record.cancels, [])

    def test_answer_to_end_stream_frees_the_stream(self):
        proxy = self.connect()
        proxy.request(1, "/a", flags=sa.FLAG_END_STREAM)
        proxy.expect(F.DECISION, 1)
        self.assertEqual(self.open_streams(), {1: []})
        proxy.request(2, "/b")
        proxy.expect(F.DECISION, 2)
        self.assertEqual(self.open_streams(), {1: [2]})
        # The state dict lives as long as the stream: the third event sees the first two.
        proxy.send(F.RESPONSE_HEADERS, 2, pb.ResponseHeaders(status=200), sa.FLAG_END_STREAM)
        self.assertEqual(dict(proxy.expect(F.DECISION, 2).metadata), {"events": "2"})
        self.assertEqual(self.open_streams(), {1: []})
        proxy.send(F.RESPONSE_HEADERS, 2, pb.ResponseHeaders(status=200))
        proxy.expect_closed()

    def test_request_complete_ends_the_stream_unanswered(self):
        proxy = self.connect()
        proxy.request(3, "/c")
        proxy.expect(F.DECISION, 3)
        proxy.send(F.REQUEST_COMPLETE, 3, pb.RequestComplete(status=204), sa.FLAG_END_STREAM)
        wait_for(lambda: self.record.completes, what="on_request_complete")
        self.assertEqual(self.record.completes, [(3, 204, "/c")])
        self.assert_no_frame_before_pong(proxy)
        self.assertEqual(self.open_streams(), {1: []})

    def test_cancel_frees_the_stream(self):
        proxy = self.connect()
        proxy.request(1, "/a")
        proxy.expect(F.DECISION, 1)
        proxy.send(F.CANCEL, 1, pb.Cancel(reason=pb.Cancel.ENDED))
        wait_for(lambda: self.record.cancels, what="on_cancel")
        self.assertEqual(self.record.cancels, [(1, pb.Cancel.ENDED, False)])
        self.assertEqual(self.open_streams(), {1: []})

    def test_body_events_share_the_stream_state(self):
        proxy = self.connect()
        proxy.request(1, "/body", has_body=True)
        self.assertTrue(proxy.expect(F.DECISION, 1).need_more_body)
        proxy.send(F.REQUEST_BODY, 1, pb.BodyChunk(data=b"12345", last=True), sa.FLAG_END_STREAM)
        self.assertEqual(dict(proxy.expect(F.DECISION, 1).metadata), {"body": "/body:5:2"})
        self.assertEqual(self.open_streams(), {1: []})

    def test_event_while_one_awaits_its_decision_closes(self):
        proxy = self.connect()
        proxy.request(1, "/forever")
        wait_for(lambda: 1 in self.record.started, what="the handler to run")
        proxy.send(F.RESPONSE_HEADERS, 1, pb.ResponseHeaders(status=200))
        proxy.expect_closed()
        wait_for(lambda: self.record.cancels, what="on_cancel")
        self.assertEqual(self.record.cancels, [(1, sa.CONNECTION_CLOSED, True)])
        self.assertIsInstance(self.record.closed[0], sa.ProtocolError)

    def test_stream_ids_are_never_reused(self):
        proxy = self.connect()
        proxy.request(5, "/", flags=sa.FLAG_END_STREAM)
        proxy.expect(F.DECISION, 5)
        proxy.request(4, "/", flags=sa.FLAG_END_STREAM)
        proxy.expect_closed()

    def test_unsubscribed_event_closes(self):
        proxy = self.connect()
        proxy.send(F.WEBSOCKET_FRAME, 1, pb.WebSocketFrame(opcode=1))
        proxy.expect_closed()

    def test_body_event_needs_a_need_more_body_answer_first(self):
        proxy = self.connect()
        proxy.request(1, "/", has_body=True)
        self.assertTrue(proxy.expect(F.DECISION, 1).allow)
        proxy.send(F.REQUEST_BODY, 1, pb.BodyChunk(data=b"x", last=True), sa.FLAG_END_STREAM)
        proxy.expect_closed()

    def test_decision_without_an_action_allows(self):
        proxy = self.connect()
        proxy.request(1, "/no-action", flags=sa.FLAG_END_STREAM)
        d = proxy.expect(F.DECISION, 1)
        self.assertEqual(d.WhichOneof("action"), "allow")
        self.assertEqual(dict(d.metadata), {"only": "metadata"})

    def test_handler_exception_sends_no_decision(self):
        proxy = self.connect()
        proxy.request(1, "/raise", flags=sa.FLAG_END_STREAM)
        self.assert_no_frame_before_pong(proxy)
        # The proxy times the event out and cancels; the stream then ends cleanly.
        self.assertEqual(self.open_streams(), {1: [1]})
        proxy.send(F.CANCEL, 1, pb.Cancel(reason=pb.Cancel.TIMEOUT))
        wait_for(lambda: self.record.cancels, what="on_cancel")
        self.assertEqual(self.open_streams(), {1: []})

    def test_decision_over_the_proxy_frame_limit_is_not_sent(self):
        proxy = self.connect(max_frame_size=64)
        proxy.request(1, "/big", flags=sa.FLAG_END_STREAM)
        self.assert_no_frame_before_pong(proxy)
        proxy.request(2, "/", flags=sa.FLAG_END_STREAM)
        proxy.expect(F.DECISION, 2)


class ErrorPolicyAgent(RecordingAgent):
    def on_error(self, stream, event, error):
        return sa.block(500, "agent error: %s" % type(error).__name__)


class OnErrorTest(ServerTestCase):
    agent_class = ErrorPolicyAgent

    def test_on_error_decides(self):
        proxy = self.connect(max_frame_size=64)
        proxy.request(1, "/raise", flags=sa.FLAG_END_STREAM)
        d = proxy.expect(F.DECISION, 1)
        self.assertEqual((d.block.status, d.block.body), (500, b"agent error: RuntimeError"))
        proxy.request(2, "/big", flags=sa.FLAG_END_STREAM)
        self.assertEqual(proxy.expect(F.DECISION, 2).block.body, b"agent error: ValueError")
        self.assertEqual(self.open_streams(), {1: []})


class LimitedAgent(RecordingAgent):
    max_concurrency = 2


class ConcurrencyTest(ServerTestCase):
    agent_class = LimitedAgent

    def test_streams_past_max_concurrency_close_the_connection(self):
        proxy = FakeProxy(self.addr)
        self.addCleanup(proxy.close)
        self.assertEqual(proxy.hello().capabilities.max_concurrency, 2)
        proxy.request(1, "/forever")
        for sid in (2, 3, 4):  # each ends before the next opens: never more than 2 open
            proxy.request(sid, "/", flags=sa.FLAG_END_STREAM)
            proxy.expect(F.DECISION, sid)
        proxy.request(5, "/forever")
        wait_for(lambda: 5 in self.record.started, what="the handler to run")
        proxy.request(6, "/")
        proxy.expect_closed()
        wait_for(lambda: len(self.record.cancels) == 2, what="both streams cancelled")
        self.assertEqual(sorted(self.record.cancels),
                         [(1, sa.CONNECTION_CLOSED, True), (5, sa.CONNECTION_CLOSED, True)])


class ControlTest(ServerTestCase):
    def test_ping_pong(self):
        proxy = self.connect()
        for nonce in (0, 1, 2 ** 64 - 1):
            self.assertEqual(proxy.ping(nonce), [])

    def test_agent_pings(self):
        proxy = self.connect()
        [conn] = self.server.connections()
        future = asyncio.run_coroutine_threadsafe(conn.ping(), self.server.loop)
        nonce = proxy.expect(F.PING).nonce
        proxy.send(F.PONG, 0, pb.Ping(nonce=nonce))
        self.assertGreaterEqual(future.result(5), 0)

    def test_report_health(self):
        proxy = self.connect()
        self.server.call(self.server.server.report_health, "unhealthy", "disk full")
        health = proxy.expect(F.HEALTH)
        self.assertEqual((health.status, health.message), (pb.Health.UNHEALTHY, "disk full"))
        # Unchanged: not repeated.
        self.server.call(self.server.server.report_health, pb.Health.UNHEALTHY, "disk full")
        self.assert_no_frame_before_pong(proxy)
        # A new connection learns it right after the handshake.
        late = self.connect()
        self.assertEqual(late.expect(F.HEALTH).status, pb.Health.UNHEALTHY)
        self.server.call(self.server.server.report_health, sa.HEALTHY)
        self.assertEqual(proxy.expect(F.HEALTH).status, pb.Health.HEALTHY)
        self.assertEqual(late.expect(F.HEALTH).status, pb.Health.HEALTHY)

    def test_proxy_drain(self):
        proxy = self.connect()
        proxy.send(F.DRAIN, 0, pb.Drain(reason="reload"))
        self.assert_no_frame_before_pong(proxy)
        self.assertEqual(self.record.drains, ["reload"])
        # Open streams still finish on a drained connection.
        proxy.request(1, "/", flags=sa.FLAG_END_STREAM)
        proxy.expect(F.DECISION, 1)


class MalformedTest(ServerTestCase):
    CASES = {
        "unparseable payload": sa.frame.encode_header(4, F.REQUEST_HEADERS, 0, 1) + b"\x0a\x05ab",
        "unknown type": sa.frame.encode_header(0, 0x7E, 0, 1),
        "reserved flag": sa.frame.encode_header(0, F.REQUEST_HEADERS, 0x02, 1),
        "END_STREAM on PING": sa.frame.encode_header(0, F.PING, sa.FLAG_END_STREAM, 0),
        "wrong direction": sa.frame.encode_header(0, F.DECISION, 0, 1),
        "stream frame on stream 0": sa.frame.encode_header(0, F.REQUEST_HEADERS, 0, 0),
        "connection frame on a stream": sa.frame.encode_header(0, F.PING, 0, 3),
        "over the agent's limit": sa.frame.encode_header(sa.DEFAULT_MAX_FRAME_SIZE + 1, F.REQUEST_BODY, 0, 1),
        "garbage": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    }

    def test_every_malformed_frame_closes_the_connection(self):
        for name, data in self.CASES.items():
            with self.subTest(name):
                self.record.cancels.clear()
                self.record.started.clear()
                proxy = self.connect()
                proxy.request(1, "/forever")
                wait_for(lambda: 1 in self.record.started, what="the handler to run")
                proxy.send_raw(data)
                self.assertEqual(proxy.expect_closed(), [])
                wait_for(lambda: self.record.cancels, what="on_cancel")
                self.assertEqual(self.record.cancels, [(1, sa.CONNECTION_CLOSED, True)])
                wait_for(lambda: not self.server.connections(), what="the connection to go")
                proxy.close()
        # The server itself is unharmed.
        self.connect()


class LifecycleTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.record = Record()
        self.agent_class = type("Agent", (RecordingAgent,), {"record": self.record})

    def start(self, address):
        server = ServerThread(self.agent_class, address)
        self.addCleanup(server.stop)
        return server, server.start()

    def test_stale_socket_file_is_replaced(self):
        path = self.tmp.join("stale.sock")
        s = socket.socket(socket.AF_UNIX)
        s.bind(path)
        s.close()  # the file stays, nobody listens
        server, addr = self.start(path)
        self.assertEqual(addr, path)
        FakeProxy(addr).hello()

    def test_regular_file_is_not_removed(self):
        path = self.tmp.join("file")
        with open(path, "w") as f:
            f.write("keep me")
        with self.assertRaisesRegex(OSError, "not a socket"):
            ServerThread(self.agent_class, path).start()
        with open(path) as f:
            self.assertEqual(f.read(), "keep me")

    def test_live_socket_is_not_stolen(self):
        path = self.tmp.join("live.sock")
        self.start(path)
        with self.assertRaisesRegex(OSError, "another process"):
            ServerThread(self.agent_class, path).start()

    def test_tcp_with_port_zero(self):
        server, addr = self.start("tcp://127.0.0.1:0")
        self.assertRegex(addr, r"^tcp://127\.0\.0\.1:[1-9][0-9]*$")
        proxy = FakeProxy(addr)
        self.addCleanup(proxy.close)
        proxy.hello()
        proxy.request(1, "/", flags=sa.FLAG_END_STREAM)
        proxy.expect(F.DECISION, 1)

    def test_bad_addresses(self):
        for bad in ("tcp://nohost", "tcp://:80", "tcp://h:x", ""):
            with self.assertRaises(ValueError, msg=bad):
                sa.server.parse_address(bad)
        self.assertEqual(sa.server.parse_address("tcp://[::1]:9"), ("tcp", "::1", 9))
        self.assertEqual(sa.server.parse_address("unix:/a"), ("unix", "/a", None))

    def test_stop_drains_then_closes(self):
        path = self.tmp.join("agent.sock")
        server, addr = self.start(path)
        proxy = FakeProxy(addr)
        self.addCleanup(proxy.close)
        proxy.hello()
        proxy.request(1, "/gate-wait", flags=sa.FLAG_END_STREAM)
        wait_for(lambda: server.open_streams() == {1: [1]}, what="the stream to open")
        stopping = asyncio.run_coroutine_threadsafe(server.server.stop(), server.loop)
        self.assertEqual(proxy.expect(F.DRAIN).reason, "agent shutting down")
        # No new connection is accepted while draining...
        with self.assertRaises(OSError):
            FakeProxy(addr).hello()
        # ...but the drained one still serves: a stream crossing the DRAIN, and the open one.
        proxy.request(2, "/gate-open", flags=sa.FLAG_END_STREAM)
        self.assertEqual(sorted(proxy.recv()[0].stream_id for _ in range(2)), [1, 2])
        proxy.close()  # the proxy closes the idle drained connection
        stopping.result(5)
        self.assertFalse(os.path.exists(path))

    def test_stop_gives_up_after_the_grace_period(self):
        server, addr = self.start(self.tmp.join("agent.sock"))
        proxy = FakeProxy(addr)
        self.addCleanup(proxy.close)
        proxy.hello()
        proxy.request(1, "/forever")
        wait_for(lambda: server.open_streams() == {1: [1]}, what="the stream to open")
        stopping = asyncio.run_coroutine_threadsafe(server.server.stop(grace=0.3), server.loop)
        proxy.expect(F.DRAIN)
        self.assertEqual(proxy.expect_closed(), [])
        stopping.result(5)
        self.assertEqual(self.record.cancels, [(1, sa.CONNECTION_CLOSED, True)])

    def test_agent_instance_is_refused(self):
        with self.assertRaises(TypeError):
            sa.AgentServer(RecordingAgent(), "x")


if __name__ == "__main__":
    unittest.main()
