"""Agents on WebSocket connections (agents/protocol/PROTOCOL.md §4, WEBSOCKET_FRAME): a real
python3-websockets client and echo origin (test/support/ws_origin.py), Sentinel in between
with test/support/test_agent.py subscribed to WEBSOCKET_FRAME. Frames pass, get replaced, or
end the connection (1008 block, 1009 too large, 1011 agent failure with failure-mode closed);
compression is not negotiated while frames are inspected.

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_agent_websocket
"""
import asyncio
import os
import subprocess
import unittest

import websockets

from harness import IntegrationTest, PYTHON, free_port, spawn, wait_until
from test_agents import AgentProcess

HERE = os.path.dirname(os.path.abspath(__file__))
WS_ORIGIN = os.path.join(HERE, "..", "support", "ws_origin.py")

CONFIG = r"""
system { workers 1 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ok\n" } }
    route "ws" { match { path "/ws" }; upstream "echo"; websocket #true; agents "frames" }
    route "ws-small-reject" { match { path "/small-reject" }; upstream "echo"; websocket #true; agents "small-reject" }
    route "ws-small-skip" { match { path "/small-skip" }; upstream "echo"; websocket #true; agents "small-skip" }
    route "ws-slow" { match { path "/slow" }; upstream "echo"; websocket #true; agents "slow" }
}
upstreams { upstream "echo" { endpoint "127.0.0.1:@origin@" } }
agents {
    agent "frames" { socket "@socket@"; failure-mode "closed" }
    agent "small-reject" { socket "@socket@"; failure-mode "closed"; max-body "1KiB"; body-over-limit "reject" }
    agent "small-skip" { socket "@socket@"; failure-mode "closed"; max-body "1KiB"; body-over-limit "skip" }
    agent "slow" { socket "@slow@"; failure-mode "closed"; timeout "100ms" }
}
"""


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 20))


class AgentWebSocketTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.class_workdir
        origin = spawn([PYTHON, WS_ORIGIN], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        cls._class_procs.append(origin)
        line = origin.stdout.readline().decode().split()  # "listening <port>": ready
        cls.origin_port = int(line[1])
        cls.agent = AgentProcess(d, "frames", ["--events", "request-headers,websocket-frame"])
        cls.addClassCleanup(cls.agent.stop)
        # Answers every frame after 500 ms: past the "slow" agent id's 100 ms timeout.
        cls.slow = AgentProcess(d, "slow", ["--events", "websocket-frame", "--frame-delay-ms", "500"])
        cls.addClassCleanup(cls.slow.stop)
        cls.port, cls.admin = free_port(), free_port()
        text = (CONFIG.replace("@admin@", str(cls.admin)).replace("@port@", str(cls.port))
                .replace("@origin@", str(cls.origin_port)).replace("@socket@", cls.agent.socket)
                .replace("@slow@", cls.slow.socket))
        cls.s = cls.class_sentinel(text, port=cls.port, admin_port=cls.admin, ready_path="/ready")
        wait_until(lambda: cls.s.metric("sentinel_agent_connections", agent="frames") >= 1, 10,
                   what="the agent connection")

    def url(self, path):
        return "ws://127.0.0.1:%d%s" % (self.port, path)

    def frames(self, client_to_server=None):
        out = [e for e in self.agent.log() if e.get("type") == "WEBSOCKET_FRAME" and e.get("dir") == "in"]
        if client_to_server is not None:
            out = [e for e in out if e.get("client_to_server") == client_to_server]
        return out

    def test_frames_pass_both_ways_and_the_agent_sees_them_unmasked(self):
        before = len(self.frames())

        async def talk():
            async with websockets.connect(self.url("/ws")) as ws:
                await ws.send("hello agent")
                self.assertEqual(await ws.recv(), "hello agent")
                await ws.send(b"\x00\x01\x02binary")
                self.assertEqual(await ws.recv(), b"\x00\x01\x02binary")
                await ws.ping()
        run(talk())
        seen = self.frames()[before:]
        texts = [(e["client_to_server"], e["opcode"], e.get("text")) for e in seen]
        self.assertIn((True, 1, "hello agent"), texts)
        self.assertIn((False, 1, "hello agent"), texts)  # the echo, server to client
        self.assertEqual(sum(1 for e in seen if e["opcode"] == 2), 2)
        self.assertFalse(any(e["opcode"] >= 8 for e in seen), "control frames are not events")

    def test_compression_is_not_negotiated_while_frames_are_inspected(self):
        async def talk():
            # The client offers permessage-deflate (websockets' default); the origin would take it.
            async with websockets.connect(self.url("/ws")) as ws:
                self.assertEqual(ws.extensions, [])
                await ws.send("?extensions")
                return await ws.recv()
        self.assertEqual(run(talk()), "none")

    def test_block_closes_with_1008(self):
        blocks = self.s.metric("sentinel_agent_decisions_total", agent="frames", outcome="block")

        async def talk():
            async with websockets.connect(self.url("/ws")) as ws:
                await ws.send("fine")
                self.assertEqual(await ws.recv(), "fine")
                await ws.send("something EVIL")
                with self.assertRaises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                return closed.exception
        exc = run(talk())
        self.assertEqual(exc.rcvd.code if exc.rcvd else None, 1008)
        self.assertEqual(self.s.metric("sentinel_agent_decisions_total", agent="frames", outcome="block"), blocks + 1)

    def test_replaced_payload_reaches_the_origin(self):
        async def talk():
            async with websockets.connect(self.url("/ws")) as ws:
                await ws.send("REPLACE:" + "x" * 300)  # the agent makes the payload the rest
                return await ws.recv()
        self.assertEqual(run(talk()), "x" * 300)

    def test_oversized_frame_is_closed_with_1009_under_reject(self):
        async def talk():
            async with websockets.connect(self.url("/small-reject")) as ws:
                await ws.send("small")
                self.assertEqual(await ws.recv(), "small")
                await ws.send("y" * 4000)
                with self.assertRaises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                return closed.exception
        exc = run(talk())
        self.assertEqual(exc.rcvd.code if exc.rcvd else None, 1009)

    def test_oversized_frame_passes_uninspected_under_skip(self):
        before = len(self.frames())

        async def talk():
            async with websockets.connect(self.url("/small-skip")) as ws:
                await ws.send("z" * 4000)
                self.assertEqual(await ws.recv(), "z" * 4000)
                await ws.send("tiny")
                self.assertEqual(await ws.recv(), "tiny")
        run(talk())
        seen = [e.get("length") for e in self.frames()[before:]]
        self.assertNotIn(4000, seen)  # never sent to the agent
        self.assertIn(4, seen)

    def test_agent_failure_closes_1011_with_failure_mode_closed(self):
        timeouts = self.s.metric("sentinel_agent_decisions_total", agent="slow", outcome="timeout")

        async def talk():
            async with websockets.connect(self.url("/slow")) as ws:
                await ws.send("too slow")
                with self.assertRaises(websockets.ConnectionClosed) as closed:
                    await ws.recv()
                return closed.exception
        exc = run(talk())
        self.assertEqual(exc.rcvd.code if exc.rcvd else None, 1011)
        self.assertEqual(self.s.metric("sentinel_agent_decisions_total", agent="slow", outcome="timeout"), timeouts + 1)


if __name__ == "__main__":
    unittest.main()
