"""Running an agent as a process: the common command line, signals and the ready file.

    if __name__ == "__main__":
        sentinel_agent.main(MyAgent)

Every agent then takes: --socket PATH|tcp://HOST:PORT, --ready-file FILE, --drain-timeout S,
--log-level LEVEL. SIGTERM or SIGINT drains (DRAIN on every connection, open streams finish,
at most --drain-timeout seconds); a second signal stops at once.
"""

import argparse
import asyncio
import logging
import os
import signal
import sys

from .server import AgentServer, log


def arg_parser(description=None):
    """The standard options; add your agent's own before calling parse_args."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--socket", required=True,
                        help="Unix socket path (a stale socket file is removed) or tcp://HOST:PORT "
                             "(port 0 picks a free one; see --ready-file)")
    parser.add_argument("--ready-file", help="written once listening; holds the bound address")
    parser.add_argument("--drain-timeout", type=float, default=30.0,
                        help="seconds open streams get to finish on SIGTERM (default 30)")
    parser.add_argument("--log-level", default="info",
                        choices=["debug", "info", "warning", "error"])
    return parser


def write_ready_file(path, address):
    """Written whole or not at all (rename), so a reader never sees half an address."""
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(address + "\n")
    os.replace(tmp, path)


async def serve(agent_factory, address, ready_file=None, drain_timeout=30.0, on_started=None):
    """Runs the server until SIGTERM/SIGINT has drained it. on_started(server) runs once listening."""
    server = AgentServer(agent_factory, address, drain_timeout=drain_timeout)
    await server.start()
    loop = asyncio.get_running_loop()
    signals = []

    def on_signal(signum):
        log.info("%s: %s", signal.Signals(signum).name,
                 "stopping now" if server.stopping else "draining")
        loop.create_task(server.stop(grace=0 if server.stopping else None))

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)
        signals.append(signum)
    try:
        if on_started is not None:
            on_started(server)
        if ready_file:
            write_ready_file(ready_file, server.address)
        await server.serve_forever()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        if not server.stopping:
            await server.stop(grace=0)
    return server


def run(agent_factory, address, ready_file=None, drain_timeout=30.0, log_level="info", on_started=None):
    logging.basicConfig(level=getattr(logging, log_level.upper()), stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(serve(agent_factory, address, ready_file=ready_file, drain_timeout=drain_timeout,
                      on_started=on_started))


def run_from_args(agent_factory, args, on_started=None):
    run(agent_factory, args.socket, ready_file=args.ready_file, drain_timeout=args.drain_timeout,
        log_level=args.log_level, on_started=on_started)


def main(agent_factory, argv=None, description=None):
    """Parses the standard options and runs; returns 0 (for sys.exit)."""
    args = arg_parser(description).parse_args(argv)
    try:
        run_from_args(agent_factory, args)
    except OSError as e:
        print("%s: %s" % (os.path.basename(sys.argv[0]), e), file=sys.stderr)
        return 1
    return 0
