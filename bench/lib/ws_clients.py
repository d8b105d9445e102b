#!/usr/bin/python3
"""One client process of bench/websocket_50k.sh (python3-websockets, stdlib otherwise).

  ws_clients.py URL COUNT SOURCE_ADDRESS

Opens COUNT WebSocket connections to URL from SOURCE_ADDRESS (any free port), without
compression or keepalive pings (idle really means idle), and prints "open <n>" when they are
all up (or "failed <n> <first error>"). Then waits for commands on stdin:
  echo   send one distinct message on every connection; print "echoed <n ok> <n sent>"
  close  close them all and exit
"""
import asyncio
import resource
import sys

import websockets


async def main(url, count, source):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    conns, errors = [], []
    gate = asyncio.Semaphore(64)  # handshakes in flight per process: no SYN backlog overflow

    async def open_one():
        async with gate:
            try:
                conns.append(await websockets.connect(url, local_addr=(source, 0), compression=None,
                                                      ping_interval=None, open_timeout=120, close_timeout=5))
            except Exception as e:  # noqa: BLE001 - reported, counted
                errors.append(repr(e))

    await asyncio.gather(*(open_one() for _ in range(count)))
    if errors:
        print("failed %d %s" % (len(errors), errors[0]), flush=True)
    else:
        print("open %d" % len(conns), flush=True)

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode().strip()
        if line == "echo":
            echo_gate = asyncio.Semaphore(256)

            async def echo(i, ws):
                async with echo_gate:
                    message = "%s #%d" % (source, i)
                    try:
                        await ws.send(message)
                        return await asyncio.wait_for(ws.recv(), 60) == message
                    except Exception:  # noqa: BLE001 - a failed echo is counted, not fatal
                        return False
            results = await asyncio.gather(*(echo(i, ws) for i, ws in enumerate(conns)))
            print("echoed %d %d" % (sum(results), len(conns)), flush=True)
        elif line in ("close", ""):
            await asyncio.gather(*(ws.close() for ws in conns), return_exceptions=True)
            return


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), sys.argv[3]))
