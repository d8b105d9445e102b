#!/usr/bin/python3
"""A WebSocket echo origin for the integration tests (python3-websockets): every message comes
back as it was received. On a plain GET it answers 426. Prints "listening <port>" once ready;
the negotiated extensions of each connection are echoed in the first message's reply prefix
when the client sends "?extensions"."""
import argparse
import asyncio

import websockets


async def echo(ws):
    async for message in ws:
        if message == "?extensions":
            await ws.send(",".join(str(e.name) for e in ws.extensions) or "none")
        else:
            await ws.send(message)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    async with websockets.serve(echo, "127.0.0.1", args.port, max_size=None) as server:
        port = server.sockets[0].getsockname()[1]
        print("listening", port, flush=True)
        await asyncio.Future()


asyncio.run(main())
