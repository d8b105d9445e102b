#!/usr/bin/python3
"""A WebSocket echo origin for the integration tests and bench/websocket_50k.sh
(python3-websockets): every message comes back as it was received. On a plain GET it answers
426. Prints "listening <port>" once ready; the negotiated extensions of each connection are
echoed in the first message's reply prefix when the client sends "?extensions".

Options for many idle connections: --no-compression (no permessage-deflate state per
connection) and --no-ping (the server's keepalive pings would make idle tunnels busy)."""
import argparse
import asyncio
import resource

import websockets


async def echo(ws):
    async for message in ws:
        if message == "?extensions":
            await ws.send(",".join(str(e.name) for e in ws.extensions) or "none")
        else:
            await ws.send(message)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--no-compression", action="store_true")
    ap.add_argument("--no-ping", action="store_true")
    args = ap.parse_args()
    # One descriptor per connection: take whatever the hard limit allows.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    options = {"max_size": None, "backlog": 4096}
    if args.no_compression:
        options["compression"] = None
    if args.no_ping:
        options["ping_interval"] = None
    async with websockets.serve(echo, args.host, args.port, **options) as server:
        port = server.sockets[0].getsockname()[1]
        print("listening", port, flush=True)
        await asyncio.Future()


asyncio.run(main())
