"""test/support/test_agent.py, the scripted agent of the proxy's integration tests, driven by a
fake proxy: its command line, every header-driven behaviour and its JSON-lines log."""

import json
import os
import socket
import unittest

from agent_test_support import (REPO, AgentProcess, FakeProxy, TempDir, config, pb, sa, wait_for)

F = sa.FrameType
SCRIPT = os.path.join(REPO, "test", "support", "test_agent.py")
END = sa.FLAG_END_STREAM


class TestAgentCase(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        self.log_path = self.tmp.join("agent.log")

    def start(self, *args, socket_path=None):
        address = socket_path or self.tmp.join("agent.sock")
        agent = AgentProcess(SCRIPT, ["--socket", address, "--log", self.log_path] + list(args), self.tmp)
        self.addCleanup(agent.kill)
        agent.wait_ready()
        return agent

    def connect(self, agent, **hello):
        proxy = FakeProxy(agent.address)
        self.addCleanup(proxy.close)
        ack = proxy.hello(**hello)
        return proxy, ack

    def log(self):
        try:
            with open(self.log_path) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def wait_log(self, predicate, what="a log line"):
        return wait_for(lambda: [e for e in self.log() if predicate(e)], what=what)

    def decide(self, proxy, stream, headers=(), path="/", flags=END, **fields):
        proxy.request(stream, path, headers=headers, flags=flags, **fields)
        return proxy.expect(F.DECISION, stream)


class CommandLineTest(TestAgentCase):
    def test_capabilities_from_the_command_line_over_tcp(self):
        agent = self.start("--name", "waf-double", "--events",
                           "request-headers,request-body,response-headers,response-body,request-complete",
                           "--request-body-mode", "stream", "--response-body-mode", "buffer",
                           "--max-body", "4096", "--max-concurrency", "7", "--max-frame-size", "65536",
                           socket_path="tcp://127.0.0.1:0")
        self.assertRegex(agent.address, r"^tcp://127\.0\.0\.1:[1-9][0-9]*$")
        proxy, ack = self.connect(agent)
        self.assertEqual((ack.version, ack.agent_name, ack.max_frame_size), (1, "waf-double", 65536))
        caps = ack.capabilities
        self.assertEqual(list(caps.events), [pb.REQUEST_HEADERS, pb.REQUEST_BODY, pb.RESPONSE_HEADERS,
                                             pb.RESPONSE_BODY, pb.REQUEST_COMPLETE])
        self.assertEqual((caps.request_body_mode, caps.response_body_mode), (pb.BODY_STREAM, pb.BODY_BUFFER))
        self.assertEqual((caps.max_body_bytes, caps.max_concurrency), (4096, 7))

    def test_defaults(self):
        agent = self.start()
        self.assertEqual(agent.address, self.tmp.join("agent.sock"))
        _, ack = self.connect(agent)
        self.assertEqual(ack.agent_name, "sentinel-test-agent")
        self.assertEqual(list(ack.capabilities.events), [pb.REQUEST_HEADERS])
        self.assertEqual(ack.capabilities.request_body_mode, pb.BODY_NONE)

    def test_unknown_event_is_a_usage_error(self):
        agent = AgentProcess(SCRIPT, ["--socket", self.tmp.join("a.sock"), "--events", "request-headerz"], self.tmp)
        self.addCleanup(agent.kill)
        self.assertEqual(agent.proc.wait(10), 2)
        self.assertIn("unknown event", agent.stderr_text())

    def test_sigterm_drains_and_exits(self):
        agent = self.start()
        proxy, _ = self.connect(agent)
        proxy.request(1, "/", headers=[("x-agent-action", "sleep:300")], flags=END)
        self.wait_log(lambda e: e["type"] == "REQUEST_HEADERS")
        agent.proc.terminate()
        proxy.expect(F.DRAIN)
        self.assertTrue(proxy.expect(F.DECISION, 1).allow)  # the open stream finishes
        proxy.close()
        self.assertEqual(agent.proc.wait(10), 0)
        self.assertFalse(os.path.exists(self.tmp.join("agent.sock")))


class HandshakeTest(TestAgentCase):
    def test_hello_is_logged_with_the_config(self):
        agent = self.start()
        self.connect(agent, config=config(("rule", ["a", 1], {"on": True})), agent_id="waf")
        [hello] = self.wait_log(lambda e: e["type"] == "HELLO")
        self.assertEqual((hello["dir"], hello["conn"], hello["stream"], hello["flags"]), ("in", 1, 0, 0))
        self.assertEqual(hello["agent_id"], "waf")
        self.assertEqual(hello["versions"], [1])
        self.assertEqual(hello["config"]["children"], [
            {"name": "rule", "path": "agents.agent[test].config.rule[0]", "args": ["a", 1], "props": {"on": True}}])
        [ack] = self.wait_log(lambda e: e["type"] == "HELLO_ACK")
        self.assertEqual((ack["dir"], ack["version"], ack["config_errors"]), ("out", 1, []))

    def test_reject_config_names_the_first_child(self):
        agent = self.start("--reject-config")
        _, ack = self.connect(agent, config=config(("a", []), ("b", [])))
        self.assertEqual([(e.path, e.message) for e in ack.config_errors],
                         [("agents.agent[test].config.a[0]", "rejected by test agent")])
        _, ack = self.connect(agent, config=config())
        self.assertEqual([(e.path, e.message) for e in ack.config_errors],
                         [("agents.agent[test].config", "rejected by test agent")])

    def test_version_mismatch(self):
        agent = self.start("--versions", "2")
        proxy, ack = self.connect(agent)
        self.assertEqual(ack.version, 0)
        proxy.expect_closed()

    def test_handshake_close(self):
        agent = self.start("--handshake", "close")
        proxy = FakeProxy(agent.address)
        self.addCleanup(proxy.close)
        proxy.send(F.HELLO, 0, pb.Hello(versions=[1]))
        self.assertEqual(proxy.expect_closed(), [])

    def test_handshake_silent(self):
        agent = self.start("--handshake", "silent")
        proxy = FakeProxy(agent.address)
        self.addCleanup(proxy.close)
        proxy.send(F.HELLO, 0, pb.Hello(versions=[1]))
        proxy.send(F.PING, 0, pb.Ping(nonce=1))
        with self.assertRaises(socket.timeout):  # a negative check: nothing within 300 ms
            proxy.recv(timeout=0.3)
        proxy.close()
        self.wait_log(lambda e: e["type"] == "DISCONNECTED")

    def test_initial_health(self):
        agent = self.start("--health", "unhealthy")
        proxy, _ = self.connect(agent)
        self.assertEqual(proxy.expect(F.HEALTH).status, pb.Health.UNHEALTHY)


class RequestActionTest(TestAgentCase):
    def setUp(self):
        super().setUp()
        self.agent = self.start("--events", "request-headers,request-body,response-headers,response-body,"
                                "request-complete,websocket-frame",
                                "--request-body-mode", "buffer", "--response-body-mode", "stream")
        self.proxy, _ = self.connect(self.agent)

    def test_allow_by_default_and_the_log_line(self):
        d = self.decide(self.proxy, 1, headers=[("Host", "a.test"), ("X-Dup", "1"), ("x-dup", "2")],
                        path="/p", method="POST", route="api", query="q=1", has_body=False,
                        metadata={"earlier": "yes"},
                        connection=pb.ConnectionInfo(client_address="192.0.2.1", listener="main"))
        self.assertTrue(d.allow)
        self.assertEqual((list(d.request_headers), list(d.response_headers), dict(d.metadata)), ([], [], {}))
        [line] = self.wait_log(lambda e: e["type"] == "REQUEST_HEADERS")
        for key, value in {"dir": "in", "conn": 1, "stream": 1, "flags": END, "method": "POST", "path": "/p",
                           "query": "q=1", "route": "api", "request_id": "req-1",
                           "headers": {"host": "a.test", "x-dup": "1, 2"}, "has_body": False,
                           "metadata": {"earlier": "yes"}, "client_address": "192.0.2.1",
                           "listener": "main"}.items():
            self.assertEqual(line[key], value, key)
        self.assertIsInstance(line["time"], float)
        [out] = self.wait_log(lambda e: e["type"] == "DECISION")
        self.assertEqual((out["dir"], out["stream"], out["action"]), ("out", 1, "allow"))

    def test_mutations_metadata_and_audit(self):
        d = self.decide(self.proxy, 1, headers=[
            ("x-agent-set", "X-One: 1"), ("x-agent-set", "X-Two: two words"), ("x-agent-add", "X-Add: a"),
            ("x-agent-remove", "X-Gone"), ("x-agent-response-set", "X-Resp: r"),
            ("x-agent-metadata", "user=alice"), ("x-agent-metadata", "tier = gold"),
            ("x-agent-audit", "looked suspicious"), ("x-agent-set", "Content-Length: 5")])
        SET, ADD, REMOVE = pb.HeaderMutation.SET, pb.HeaderMutation.ADD, pb.HeaderMutation.REMOVE
        self.assertEqual([(m.op, m.name, m.value) for m in d.request_headers],
                         [(SET, "X-One", b"1"), (SET, "X-Two", b"two words"), (SET, "Content-Length", b"5"),
                          (ADD, "X-Add", b"a"), (REMOVE, "X-Gone", b"")])
        self.assertEqual([(m.op, m.name, m.value) for m in d.response_headers], [(SET, "X-Resp", b"r")])
        self.assertEqual(dict(d.metadata), {"user": "alice", "tier": "gold"})
        self.assertEqual((d.audit.reason, list(d.audit.tags)), ("looked suspicious", ["test-agent"]))

    def test_block(self):
        d = self.decide(self.proxy, 1, headers=[("x-agent-action", "block")])
        self.assertEqual((d.block.status, d.block.body), (403, b"blocked by test agent"))
        d = self.decide(self.proxy, 2, headers=[("x-agent-action", "block"), ("x-agent-status", "429"),
                                                ("x-agent-response-set", "Retry-After: 1")])
        self.assertEqual(d.block.status, 429)
        self.assertEqual(d.response_headers[0].name, "Retry-After")

    def test_redirect(self):
        d = self.decide(self.proxy, 1, headers=[("x-agent-action", "redirect")])
        self.assertEqual((d.redirect.status, d.redirect.location), (302, "/"))
        d = self.decide(self.proxy, 2, headers=[("x-agent-action", "redirect"), ("x-agent-status", "308"),
                                                ("x-agent-location", "https://login.test/")])
        self.assertEqual((d.redirect.status, d.redirect.location), (308, "https://login.test/"))

    def test_unknown_action_is_loud(self):
        d = self.decide(self.proxy, 1, headers=[("x-agent-action", "alow")])
        self.assertEqual((d.block.status, d.block.body), (500, b"test agent: unknown action alow"))

    def test_sleep_then_allow(self):
        d = self.decide(self.proxy, 1, headers=[("x-agent-action", "sleep:20"), ("x-agent-set", "X-Slept: 1")])
        self.assertTrue(d.allow)
        self.assertEqual(d.request_headers[0].name, "X-Slept")

    def test_cancel_during_sleep_is_logged_and_nothing_is_answered(self):
        self.proxy.request(1, "/", headers=[("x-agent-action", "sleep:60000")])
        self.wait_log(lambda e: e["type"] == "REQUEST_HEADERS")
        self.proxy.send(F.CANCEL, 1, pb.Cancel(reason=pb.Cancel.CLIENT_GONE))
        [cancel] = self.wait_log(lambda e: e["type"] == "CANCEL")
        self.assertEqual((cancel["dir"], cancel["stream"], cancel["reason"], cancel["busy"]),
                         ("in", 1, "CLIENT_GONE", True))
        self.assertEqual(self.proxy.ping(5), [])
        self.assertEqual([e for e in self.log() if e["type"] == "DECISION"], [])

    def test_cancel_reasons(self):
        for sid, reason in ((1, pb.Cancel.ENDED), (2, pb.Cancel.TIMEOUT), (3, pb.Cancel.SHUTDOWN)):
            self.proxy.request(sid, "/")
            self.proxy.expect(F.DECISION, sid)
            self.proxy.send(F.CANCEL, sid, pb.Cancel(reason=reason), END)
        self.wait_log(lambda e: e["type"] == "CANCEL" and e["stream"] == 3)
        self.assertEqual([(e["stream"], e["reason"], e["busy"], e["flags"])
                          for e in self.log() if e["type"] == "CANCEL"],
                         [(1, "ENDED", False, END), (2, "TIMEOUT", False, END), (3, "SHUTDOWN", False, END)])

    def test_malformed(self):
        self.proxy.request(1, "/", headers=[("x-agent-action", "malformed")])
        frame = self.proxy.recv_frame()
        self.assertEqual((frame.type, frame.stream_id), (F.DECISION, 1))
        with self.assertRaises(sa.ProtocolError):
            sa.parse_payload(frame)
        self.wait_log(lambda e: e["type"] == "RAW" and e["what"] == "malformed")

    def test_garbage(self):
        self.proxy.request(1, "/", headers=[("x-agent-action", "garbage")])
        with self.assertRaises(sa.FrameError) as cm:
            self.proxy.recv()
        self.assertEqual(cm.exception.status, sa.frame.DecodeStatus.UNKNOWN_TYPE)

    def test_oversize(self):
        self.proxy.request(1, "/", headers=[("x-agent-action", "oversize")])
        header = b""
        while len(header) < sa.frame.HEADER_SIZE:
            header += self.proxy.sock.recv(sa.frame.HEADER_SIZE - len(header))
        with self.assertRaises(sa.FrameError) as cm:
            sa.frame.decode_header(header, sa.Sender.PROXY, sa.DEFAULT_MAX_FRAME_SIZE)
        self.assertEqual(cm.exception.status, sa.frame.DecodeStatus.TOO_LARGE)
        self.assertEqual(int.from_bytes(header[:4], "big"), sa.DEFAULT_MAX_FRAME_SIZE + 1)

    def test_close(self):
        self.proxy.request(1, "/", headers=[("x-agent-action", "close")])
        self.assertEqual(self.proxy.expect_closed(), [])
        self.wait_log(lambda e: e["type"] == "DISCONNECTED")

    def test_no_answer(self):
        self.proxy.request(1, "/", headers=[("x-agent-action", "no-answer")])
        self.assertEqual(self.proxy.ping(1), [])

    def test_stray_and_double_decisions(self):
        self.proxy.request(1, "/", headers=[("x-agent-action", "stray-decision")], flags=END)
        self.assertEqual([self.proxy.recv()[0].stream_id for _ in range(2)], [1001, 1])
        self.proxy.request(2, "/", headers=[("x-agent-action", "double-decision")], flags=END)
        self.assertEqual([self.proxy.recv()[0].stream_id for _ in range(2)], [2, 2])

    def test_invalid_decision(self):
        d = self.decide(self.proxy, 1, headers=[("x-agent-action", "invalid-decision")])
        self.assertIn(b"\r\n", d.request_headers[0].value)

    def test_drain(self):
        self.proxy.request(1, "/", headers=[("x-agent-action", "drain")], flags=END)
        self.assertEqual(self.proxy.expect(F.DRAIN).reason, "test agent")
        self.assertTrue(self.proxy.expect(F.DECISION, 1).allow)

    def test_health(self):
        other, _ = self.connect(self.agent)
        self.proxy.request(1, "/", headers=[("x-agent-action", "unhealthy")], flags=END)
        self.assertEqual(self.proxy.expect(F.HEALTH).status, pb.Health.UNHEALTHY)
        self.assertTrue(self.proxy.expect(F.DECISION, 1).allow)
        self.assertEqual(other.expect(F.HEALTH).status, pb.Health.UNHEALTHY)  # every connection
        self.proxy.request(2, "/", headers=[("x-agent-action", "healthy")], flags=END)
        self.assertEqual(self.proxy.expect(F.HEALTH).status, pb.Health.HEALTHY)
        self.assertTrue(self.proxy.expect(F.DECISION, 2).allow)

    def body(self, stream, data, last, frame_type=F.REQUEST_BODY, offset=0):
        self.proxy.send(frame_type, stream, pb.BodyChunk(data=data, last=last, offset=offset),
                        END if last else 0)
        return self.proxy.expect(F.DECISION, stream)

    def test_need_body_allows_a_clean_body(self):
        d = self.decide(self.proxy, 1, headers=[("x-agent-action", "need-body")], flags=0, has_body=True)
        self.assertTrue(d.need_more_body)
        self.assertTrue(self.body(1, b"hello ", False).need_more_body)
        self.assertTrue(self.body(1, b"world", True, offset=6).allow)
        lines = [e for e in self.log() if e["type"] == "REQUEST_BODY"]
        self.assertEqual([(e["length"], e["text"], e["offset"], e["last"], e["truncated"]) for e in lines],
                         [(6, "hello ", 0, False, False), (5, "world", 6, True, False)])

    def test_need_body_blocks_evil_even_across_chunks(self):
        self.decide(self.proxy, 1, headers=[("x-agent-action", "need-body")], flags=0, has_body=True)
        self.assertTrue(self.body(1, b"xxEV", False).need_more_body)
        d = self.body(1, b"IL", False)
        self.assertEqual((d.block.status, d.block.body), (403, b"blocked by test agent"))

    def test_need_body_replaces_the_body(self):
        self.decide(self.proxy, 1, headers=[("x-agent-action", "need-body"),
                                            ("x-agent-replace-body", "new body")], flags=0, has_body=True)
        first = self.body(1, b"old ", False)
        self.assertEqual((first.need_more_body, first.replace_body), (True, b"new body"))
        last = self.body(1, b"stuff", True)
        self.assertTrue(last.allow)
        self.assertTrue(last.HasField("replace_body"))
        self.assertEqual(last.replace_body, b"")

    def test_need_body_without_a_body_allows(self):
        self.assertTrue(self.decide(self.proxy, 1, headers=[("x-agent-action", "need-body")], has_body=False).allow)

    def test_body_chunk_limit_ends_inspection(self):
        self.decide(self.proxy, 1, headers=[("x-agent-action", "need-body"), ("x-agent-body-chunks", "1")],
                    flags=0, has_body=True)
        self.assertTrue(self.body(1, b"a", False).allow)

    def test_response_headers_default(self):
        self.decide(self.proxy, 1, flags=0)
        self.proxy.send(F.RESPONSE_HEADERS, 1, pb.ResponseHeaders(status=201), END)
        d = self.proxy.expect(F.DECISION, 1)
        self.assertTrue(d.allow)
        self.assertEqual([(m.name, m.value) for m in d.response_headers], [("x-test-agent-saw-response", b"201")])
        [line] = self.wait_log(lambda e: e["type"] == "RESPONSE_HEADERS")
        self.assertEqual(line["status"], 201)

    def test_response_block_header(self):
        self.decide(self.proxy, 1, flags=0)
        resp = pb.ResponseHeaders(status=200)
        resp.headers.add(name="X-Agent-Block-Response", value=b"1")
        self.proxy.send(F.RESPONSE_HEADERS, 1, resp, END)
        d = self.proxy.expect(F.DECISION, 1)
        self.assertEqual((d.block.status, d.block.body), (502, b"blocked by test agent"))

    def test_response_action_and_body(self):
        self.decide(self.proxy, 1, headers=[("x-agent-response-action", "need-body"),
                                            ("x-agent-replace-response-body", "R")], flags=0)
        self.proxy.send(F.RESPONSE_HEADERS, 1, pb.ResponseHeaders(status=200, has_body=True))
        d = self.proxy.expect(F.DECISION, 1)
        self.assertTrue(d.need_more_body)
        self.assertEqual(d.response_headers[0].value, b"200")
        first = self.body(1, b"abc", False, F.RESPONSE_BODY)
        self.assertEqual((first.need_more_body, first.replace_body), (True, b"R"))
        d = self.body(1, b"EVIL", True, F.RESPONSE_BODY)
        self.assertEqual(d.block.status, 502)

    def test_response_action_block_status(self):
        self.decide(self.proxy, 1, headers=[("x-agent-response-action", "block"),
                                            ("x-agent-response-status", "503")], flags=0)
        self.proxy.send(F.RESPONSE_HEADERS, 1, pb.ResponseHeaders(status=200), END)
        self.assertEqual(self.proxy.expect(F.DECISION, 1).block.status, 503)

    def test_request_complete_is_logged(self):
        self.decide(self.proxy, 1, flags=0)
        self.proxy.send(F.REQUEST_COMPLETE, 1, pb.RequestComplete(
            status=200, bytes_received=10, bytes_sent=20, duration_us=30, upstream="127.0.0.1:9",
            blocked_by="other"), END)
        [line] = self.wait_log(lambda e: e["type"] == "REQUEST_COMPLETE")
        self.assertEqual({k: line[k] for k in ("status", "bytes_received", "bytes_sent", "duration_us",
                                               "upstream", "blocked_by", "flags")},
                         {"status": 200, "bytes_received": 10, "bytes_sent": 20, "duration_us": 30,
                          "upstream": "127.0.0.1:9", "blocked_by": "other", "flags": END})

    def test_websocket_frames(self):
        self.decide(self.proxy, 1, flags=0)
        self.proxy.send(F.WEBSOCKET_FRAME, 1, pb.WebSocketFrame(client_to_server=True, opcode=1, fin=True,
                                                                payload=b"hi"))
        self.assertTrue(self.proxy.expect(F.DECISION, 1).allow)
        self.proxy.send(F.WEBSOCKET_FRAME, 1, pb.WebSocketFrame(opcode=1, payload=b"EVIL"))
        self.assertEqual(self.proxy.expect(F.DECISION, 1).block.status, 403)
        lines = [e for e in self.log() if e["type"] == "WEBSOCKET_FRAME"]
        self.assertEqual([(e["client_to_server"], e["opcode"], e["fin"], e["length"], e["text"]) for e in lines],
                         [(True, 1, True, 2, "hi"), (False, 1, False, 4, "EVIL")])

    def test_every_line_has_the_common_fields(self):
        self.decide(self.proxy, 1, headers=[("x-agent-action", "block")])
        self.proxy.ping(3)
        self.proxy.close()
        self.wait_log(lambda e: e["type"] == "DISCONNECTED")
        types = []
        for e in self.log():
            self.assertLessEqual({"time", "conn", "dir", "type", "stream", "flags"}, set(e))
            types.append((e["dir"], e["type"]))
        self.assertEqual(types, [("in", "HELLO"), ("out", "HELLO_ACK"), ("in", "REQUEST_HEADERS"),
                                 ("out", "DECISION"), ("in", "PING"), ("out", "PONG"), ("-", "DISCONNECTED")])


class ProcessTest(TestAgentCase):
    def test_body_text_is_cut_at_200_bytes(self):
        agent = self.start("--request-body-mode", "buffer")
        proxy, _ = self.connect(agent)
        self.decide(proxy, 1, headers=[("x-agent-action", "need-body")], flags=0, has_body=True)
        proxy.send(F.REQUEST_BODY, 1, pb.BodyChunk(data=b"x" * 1000, last=True), END)
        proxy.expect(F.DECISION, 1)
        [line] = self.wait_log(lambda e: e["type"] == "REQUEST_BODY")
        self.assertEqual((line["length"], len(line["text"])), (1000, 200))

    def test_shared_log_between_two_agents(self):
        a, b = self.start(), self.start(socket_path=self.tmp.join("b.sock"))
        for agent, sid in ((a, 1), (b, 2)):
            proxy, _ = self.connect(agent)
            self.decide(proxy, sid)
        lines = self.wait_log(lambda e: e["type"] == "REQUEST_HEADERS")
        self.assertEqual(sorted(e["stream"] for e in lines), [1, 2])


if __name__ == "__main__":
    unittest.main()
