"""Many idle WebSocket tunnels through one Sentinel (the CI-sized version of
bench/websocket_50k.sh): 2,000 python3-websockets clients, spread over the source addresses
127.0.0.2-127.0.0.9, through one Sentinel to the echo origin (test/support/ws_origin.py). All
stay open at once, the gauge counts them, every one still echoes a message afterwards, and
Sentinel's resident memory per open tunnel is reported and bounded.

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_websocket_scale
(SENTINEL_WS_SCALE_CONNECTIONS changes the count.)
"""
import asyncio
import os
import resource
import subprocess
import time
import unittest

import websockets

from harness import IntegrationTest, PYTHON, free_port, sanitizer_build, spawn, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
WS_ORIGIN = os.path.join(HERE, "..", "support", "ws_origin.py")
CONNECTIONS = int(os.environ.get("SENTINEL_WS_SCALE_CONNECTIONS", "2000"))
WARM = 100  # opened first: the baseline includes what the first tunnels cost once
SOURCES = ["127.0.0.%d" % i for i in range(2, 10)]
# Resident memory per idle tunnel (downstream + upstream connection). Measured 13.4 KiB in a
# Release build (20.3 KiB before tunnels restarted their buffers small); the bound leaves room
# for allocator noise on a shared machine.
MAX_KIB_PER_TUNNEL = 24

CONFIG = r"""
system { workers 2 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ok\n" } }
    route "ws" { match { path "/ws" }; upstream "echo"; websocket #true { idle-timeout "5m" } }
}
upstreams { upstream "echo" { endpoint "127.0.0.1:@origin@" } }
"""


class WebSocketScaleTest(IntegrationTest):

    def test_2000_idle_tunnels_then_every_one_echoes(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < CONNECTIONS + 200:
            self.skipTest("RLIMIT_NOFILE hard limit %d is below %d connections" % (hard, CONNECTIONS))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

        origin = spawn([PYTHON, WS_ORIGIN, "--no-compression", "--no-ping"],
                       stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.addCleanup(lambda: (origin.kill(), origin.wait()))
        origin_port = int(origin.stdout.readline().decode().split()[1])  # "listening <port>": ready
        port, admin = free_port(), free_port()
        s = self.start_sentinel(CONFIG.replace("@admin@", str(admin)).replace("@port@", str(port))
                                .replace("@origin@", str(origin_port)),
                                port=port, admin_port=admin, ready_path="/ready")
        url = "ws://127.0.0.1:%d/ws" % port
        figures = {}

        async def open_many(count, offset, out):
            gate = asyncio.Semaphore(100)  # handshakes in flight, so neither backlog overflows

            async def one(i):
                async with gate:
                    ws = await websockets.connect(url, local_addr=(SOURCES[i % len(SOURCES)], 0),
                                                  compression=None, ping_interval=None, open_timeout=30)
                    out.append(ws)
            await asyncio.gather(*(one(offset + i) for i in range(count)))

        async def echo_all(conns):
            gate = asyncio.Semaphore(200)

            async def one(i, ws):
                async with gate:
                    message = "tunnel %d" % i
                    await ws.send(message)
                    return await asyncio.wait_for(ws.recv(), 30) == message
            return await asyncio.gather(*(one(i, ws) for i, ws in enumerate(conns)))

        def active():
            return s.metric("sentinel_websocket_connections_active", route="ws")

        async def scenario():
            loop = asyncio.get_running_loop()
            conns = []
            try:
                await open_many(WARM, 0, conns)
                await loop.run_in_executor(None, lambda: wait_until(lambda: active() == WARM, 10, what="warm gauge"))
                base = s.rss_kib()
                start = time.monotonic()
                await open_many(CONNECTIONS - WARM, WARM, conns)
                figures["open_seconds"] = time.monotonic() - start
                await loop.run_in_executor(None, lambda: wait_until(lambda: active() == CONNECTIONS, 20,
                                                                     what="gauge at %d" % CONNECTIONS))
                await asyncio.sleep(1)  # idle: nothing moves through any tunnel
                full = s.rss_kib()
                figures["kib_per_tunnel"] = (full - base) / float(CONNECTIONS - WARM)
                figures["rss_mib"] = full / 1024.0
                figures["fds"] = s.fd_count()
                start = time.monotonic()
                results = await echo_all(conns)
                figures["echo_seconds"] = time.monotonic() - start
                figures["echoed"] = sum(1 for r in results if r)
            finally:
                await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)

        asyncio.run(asyncio.wait_for(scenario(), 120))
        print("\n%d idle WebSocket tunnels: Sentinel RSS %.1f MiB, %.1f KiB per tunnel, %d fds; "
              "opened in %.1f s, all echoed in %.1f s"
              % (CONNECTIONS, figures["rss_mib"], figures["kib_per_tunnel"], figures["fds"],
                 figures["open_seconds"], figures["echo_seconds"]))
        self.assertEqual(figures["echoed"], CONNECTIONS)
        self.assertGreaterEqual(figures["fds"], 2 * CONNECTIONS)  # both sides of every tunnel
        if not sanitizer_build():
            self.assertLess(figures["kib_per_tunnel"], MAX_KIB_PER_TUNNEL)
        wait_until(lambda: active() == 0, 20, what="every tunnel closed")


if __name__ == "__main__":
    unittest.main()
