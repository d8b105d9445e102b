#!/usr/bin/python3
"""A small, strict HTTP/1.1 origin server for Sentinel's integration tests and `make run`.

Standard library only (run it with Debian's /usr/bin/python3). One thread per connection,
keep-alive, request bodies streamed (never held whole), every connection and request counted
so a test can assert on connection reuse, aborted uploads and malformed input that should
never have reached an origin.

  origin.py --listen 127.0.0.1:0 [--name NAME] [--control-file PATH] [--quiet]

The first line on stdout is always `listening on HOST:PORT` (the bound port when 0 was asked).

Endpoints (GET unless noted; HEAD works everywhere and sends no body):
  /demo/...          JSON page: method, path, query, received headers, client, connection info
                     (every path not listed here answers the same page)
  /headers           JSON of the received headers (in order, duplicates kept)
  /echo              (any method) returns the request body; Content-Length in → Content-Length
                     out, chunked in → chunked out, streamed in 64 KiB pieces
  /sink              (any method) reads and discards the body, replies {"received": N};
                     ?pattern=1 also checks the body against PATTERN ("pattern_ok");
                     a peer that leaves mid-body counts in /stats "aborted_uploads"
  /bytes/N           N bytes of PATTERN with Content-Length, written in 64 KiB pieces
  /chunked/N         N bytes of PATTERN, chunked in 64 KiB chunks
  /slow?delay=S      sleeps S seconds (float, ≤ 600), then answers 200
  /stall?after=N&delay=S  sends a head and N of 2N+1 body bytes, stalls S seconds, closes
  /raw/KIND          a deliberately broken or unusual response (Connection.RAW lists them)
  /status/CODE       answers CODE with a short body (none for 1xx/204/304)
  /close             answers 200 with `Connection: close` and closes
  /response-headers?Name=Value&...  answers 200 with those response headers added
  /stats             JSON counters (see Stats.snapshot); ?reset=1 zeroes them first.
                     /stats requests are never counted, nor is a connection whose first
                     request is /stats, so watching does not disturb what is measured
  /healthz           200 "ok" (status overridable through the control file)

Control file (optional, JSON object, re-read when its mtime changes):
  {"healthz_status": 503, "delay": 0.2, "status": 503}
  healthz_status: status for /healthz; status: answer every request except /stats and
  /healthz with this status (body drained first); delay: seconds slept before every response except
  /stats and /healthz.
"""

import argparse
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse

# A printable pattern with a prime period: a dropped, duplicated or reordered block shows up
# as a mismatch unless its length is a multiple of 61, and the byte count catches the rest.
PATTERN = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz012345678"
PERIOD = len(PATTERN)  # 61
IO_BLOCK = 64 * 1024
# PATTERN repeated so that any IO_BLOCK-long slice starting at any phase exists in it.
PATTERN_BLOCK = PATTERN * (IO_BLOCK // PERIOD + 2)

MAX_LINE = 64 * 1024
MAX_HEADERS = 256
MAX_HEAD_BYTES = 256 * 1024
SERVER_NAME = "sentinel-test-origin"

TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789"
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")

REASONS = {
    100: "Continue", 200: "OK", 201: "Created", 202: "Accepted", 204: "No Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
    418: "I'm a teapot", 429: "Too Many Requests", 500: "Internal Server Error",
    501: "Not Implemented", 502: "Bad Gateway", 503: "Service Unavailable",
    504: "Gateway Timeout", 505: "HTTP Version Not Supported",
}


def pattern_slice(offset, length):
    """PATTERN bytes [offset, offset+length) of the infinite repetition (length ≤ IO_BLOCK)."""
    phase = offset % PERIOD
    return PATTERN_BLOCK[phase:phase + length]


class BadRequest(Exception):
    pass


class ClientGone(Exception):
    """The peer closed (or reset) the connection in the middle of a message."""


class Stats:
    """Process-wide counters. Bounded: per-connection detail is kept for the last 4096."""

    KEEP_CONNECTIONS = 4096

    def __init__(self):
        self.lock = threading.Lock()
        self.next_id = 0
        self.reset()

    def reset(self):
        with getattr(self, "lock", threading.Lock()):
            self.connections_total = 0
            self.requests_total = 0
            self.bad_requests = 0
            self.aborted_uploads = 0
            self.completed_uploads = 0
            self.requests_forced = 0
            self.active_uploads = getattr(self, "active_uploads", 0)  # a gauge: kept
            self.active_requests = getattr(self, "active_requests", 0)  # a gauge: kept
            self.reset_id = self.next_id
            self.bytes_received = 0
            self.bytes_sent = 0
            # conn id -> {"requests": n, "open": bool}; open ones are never dropped, and a
            # reset keeps them (with zero requests) so reuse after a reset is still seen.
            open_ids = getattr(self, "open_ids", set())
            self.conns = {cid: {"requests": 0, "open": True} for cid in open_ids}
            self.open_ids = set(open_ids)

    def conn_opened(self):
        with self.lock:
            self.connections_total += 1
            self.next_id += 1
            cid = self.next_id
            self.conns[cid] = {"requests": 0, "open": True}
            self.open_ids.add(cid)
            if len(self.conns) > self.KEEP_CONNECTIONS:
                for old in list(self.conns):
                    if len(self.conns) <= self.KEEP_CONNECTIONS:
                        break
                    if old not in self.open_ids:
                        del self.conns[old]
            return cid

    def mark_observer(self, cid):
        """A connection whose first request is /stats only watches: it leaves every count."""
        with self.lock:
            entry = self.conns.get(cid)
            if entry is None or entry["requests"] or not entry["open"]:
                return
            del self.conns[cid]
            self.open_ids.discard(cid)
            if cid > self.reset_id:
                self.connections_total -= 1

    def conn_closed(self, cid):
        with self.lock:
            self.open_ids.discard(cid)
            if cid in self.conns:
                self.conns[cid]["open"] = False

    def request_started(self, cid):
        with self.lock:
            self.requests_total += 1
            self.active_requests += 1
            if cid in self.conns:
                self.conns[cid]["requests"] += 1
                return self.conns[cid]["requests"]
            return 0

    def request_finished(self):
        with self.lock:
            self.active_requests -= 1

    def add(self, name, n=1):
        with self.lock:
            setattr(self, name, getattr(self, name) + n)

    def snapshot(self):
        with self.lock:
            per_conn = [self.conns[c]["requests"] for c in sorted(self.conns)]
            return {
                "connections_total": self.connections_total,
                "connections_used": sum(1 for n in per_conn if n > 0),
                "connections_open": len(self.open_ids),
                "requests_total": self.requests_total,
                "active_requests": self.active_requests,
                "bad_requests": self.bad_requests,
                "aborted_uploads": self.aborted_uploads,
                "completed_uploads": self.completed_uploads,
                "requests_forced": self.requests_forced,
                "active_uploads": self.active_uploads,
                "bytes_received": self.bytes_received,
                "bytes_sent": self.bytes_sent,
                "max_requests_per_connection": max(per_conn, default=0),
                "requests_per_connection": per_conn,
            }


class Control:
    """The optional control file, re-read when its mtime changes."""

    def __init__(self, path):
        self.path = path
        self.mtime = None
        self.values = {}
        self.lock = threading.Lock()

    def get(self, key, default):
        if not self.path:
            return default
        with self.lock:
            try:
                mtime = os.stat(self.path).st_mtime_ns
            except OSError:
                self.values, self.mtime = {}, None
                return default
            if mtime != self.mtime:
                try:
                    with open(self.path, "rb") as f:
                        loaded = json.loads(f.read() or b"{}")
                    self.values = loaded if isinstance(loaded, dict) else {}
                except (OSError, ValueError):
                    self.values = {}
                self.mtime = mtime
            return self.values.get(key, default)


class Request:
    __slots__ = ("method", "target", "path", "query", "version", "headers", "body_kind",
                 "content_length", "keep_alive", "expect_continue")

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_values(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]


class Connection:
    def __init__(self, server, sock, addr):
        self.server = server
        self.stats = server.stats
        self.sock = sock
        self.addr = addr
        self.rfile = sock.makefile("rb", buffering=IO_BLOCK)
        self.cid = 0
        self.request_no = 0

    # ---- low-level I/O -------------------------------------------------------------------

    def send(self, data):
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise ClientGone(str(e))
        self.stats.add("bytes_sent", len(data))

    def readline(self, limit=MAX_LINE):
        try:
            line = self.rfile.readline(limit + 1)
        except OSError as e:
            raise ClientGone(str(e))
        if len(line) > limit:
            raise BadRequest("line too long")
        return line

    def read_some(self, n):
        """Up to n bytes (at least 1); ClientGone on EOF."""
        try:
            data = self.rfile.read1(n)
        except OSError as e:
            raise ClientGone(str(e))
        if not data:
            raise ClientGone("eof in body")
        self.stats.add("bytes_received", len(data))
        return data

    def read_exact(self, n):
        parts = []
        while n > 0:
            d = self.read_some(min(n, IO_BLOCK))
            parts.append(d)
            n -= len(d)
        return b"".join(parts)

    # ---- parsing --------------------------------------------------------------------------

    def read_request(self):
        """Returns a Request, or None on a clean EOF between requests."""
        line = self.readline()
        skipped = 0
        while line in (b"\r\n", b"\n") and skipped < 4:  # RFC 9112 §2.2 leading CRLFs
            line = self.readline()
            skipped += 1
        if not line:
            return None
        if not line.endswith(b"\r\n"):
            raise BadRequest("request line not terminated by CRLF")
        parts = line[:-2].split(b" ")
        if len(parts) != 3 or not all(parts):
            raise BadRequest("malformed request line")
        method, target, version = parts
        if not method or any(c not in TOKEN_CHARS for c in method):
            raise BadRequest("bad method")
        if version not in (b"HTTP/1.1", b"HTTP/1.0"):
            raise BadRequest("unsupported version")
        if any(c <= 0x20 or c >= 0x7F for c in target):
            raise BadRequest("bad target")
        headers = []
        total = len(line)
        while True:
            h = self.readline()
            if not h:
                raise ClientGone("eof in head")
            total += len(h)
            if total > MAX_HEAD_BYTES or len(headers) > MAX_HEADERS:
                raise BadRequest("head too large")
            if not h.endswith(b"\r\n"):
                raise BadRequest("header line not terminated by CRLF")
            if h == b"\r\n":
                break
            if h[:1] in (b" ", b"\t"):
                raise BadRequest("obs-fold")
            name, sep, value = h[:-2].partition(b":")
            if not sep or not name or any(c not in TOKEN_CHARS for c in name):
                raise BadRequest("bad header name")
            value = value.strip(b" \t")
            if any((c < 0x20 and c != 0x09) or c == 0x7F for c in value):
                raise BadRequest("bad header value")
            headers.append((name.decode("latin-1"), value.decode("latin-1")))

        req = Request()
        req.method = method.decode()
        req.target = target.decode("latin-1")
        req.version = version.decode()
        req.headers = headers
        split = urllib.parse.urlsplit(req.target)
        req.path = split.path or "/"
        req.query = urllib.parse.parse_qs(split.query, keep_blank_values=True)

        hosts = req.header_values("host")
        if req.version == "HTTP/1.1" and len(hosts) != 1:
            raise BadRequest("need exactly one Host")
        te = req.header_values("transfer-encoding")
        cl = req.header_values("content-length")
        if te and cl:
            raise BadRequest("both Content-Length and Transfer-Encoding")
        if te:
            if [t.strip().lower() for t in ",".join(te).split(",")] != ["chunked"]:
                raise BadRequest("unsupported transfer-encoding")
            req.body_kind, req.content_length = "chunked", None
        elif cl:
            if len(set(cl)) != 1 or not cl[0].isdigit() or len(cl[0]) > 18:
                raise BadRequest("bad content-length")
            req.content_length = int(cl[0])
            req.body_kind = "length" if req.content_length else "none"
        else:
            req.body_kind, req.content_length = "none", 0
        conn_tokens = [t.strip().lower() for t in ",".join(req.header_values("connection")).split(",")]
        if req.version == "HTTP/1.0":
            req.keep_alive = "keep-alive" in conn_tokens
        else:
            req.keep_alive = "close" not in conn_tokens
        req.expect_continue = (req.header("expect", "").lower() == "100-continue")
        return req

    def body_pieces(self, req):
        """Yields the request body in pieces of at most IO_BLOCK bytes."""
        if req.expect_continue and req.body_kind != "none":
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            req.expect_continue = False
        if req.body_kind == "length":
            left = req.content_length
            while left:
                d = self.read_some(min(left, IO_BLOCK))
                left -= len(d)
                yield d
        elif req.body_kind == "chunked":
            while True:
                line = self.readline(4096)
                if not line:
                    raise ClientGone("eof in chunk size")
                if not line.endswith(b"\r\n"):
                    raise BadRequest("chunk size line")
                size_txt = line[:-2].split(b";", 1)[0]
                if not size_txt or len(size_txt) > 16 or any(
                        c not in b"0123456789abcdefABCDEF" for c in size_txt):
                    raise BadRequest("bad chunk size")
                size = int(size_txt, 16)
                if size == 0:
                    while True:  # trailers
                        t = self.readline()
                        if not t:
                            raise ClientGone("eof in trailers")
                        if t == b"\r\n":
                            return
                left = size
                while left:
                    d = self.read_some(min(left, IO_BLOCK))
                    left -= len(d)
                    yield d
                if self.read_exact(2) != b"\r\n":
                    raise BadRequest("chunk data not followed by CRLF")

    def drain_body(self, req):
        for _ in self.body_pieces(req):
            pass

    # ---- responses ------------------------------------------------------------------------

    def head_bytes(self, status, headers, keep_alive):
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Status"))]
        lines.append("Server: " + SERVER_NAME)
        lines.append("X-Origin: " + self.server.name)
        lines.append("X-Origin-Connection: %d" % self.cid)
        lines.append("X-Origin-Request: %d" % self.request_no)
        for k, v in headers:
            lines.append("%s: %s" % (k, v))
        if not keep_alive:
            lines.append("Connection: close")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def respond(self, req, status, body=b"", content_type="text/plain; charset=utf-8",
                extra=(), keep_alive=True):
        if isinstance(body, str):
            body = body.encode()
        headers = list(extra)
        no_body = status < 200 or status in (204, 304)
        if not no_body:
            headers.insert(0, ("Content-Type", content_type))
            headers.insert(1, ("Content-Length", str(len(body))))
        head = self.head_bytes(status, headers, keep_alive)
        if req is not None and req.method == "HEAD" or no_body:
            self.send(head)
        else:
            self.send(head + body)
        return keep_alive

    def respond_json(self, req, status, obj, **kw):
        body = json.dumps(obj, indent=2, sort_keys=False) + "\n"
        return self.respond(req, status, body, content_type="application/json", **kw)

    # ---- endpoints ------------------------------------------------------------------------

    def handle_request(self, req):
        path = req.path
        ka = req.keep_alive
        if req.expect_continue and req.body_kind != "none":
            # Before any response head: /echo answers while still reading the body.
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")
            req.expect_continue = False
        if path == "/stats":
            self.drain_body(req)
            if req.query.get("reset", ["0"])[0] == "1":
                self.stats.reset()
            return self.respond_json(req, 200, self.stats.snapshot(), keep_alive=ka)
        if path == "/healthz":
            self.drain_body(req)
            code = int(self.server.control.get("healthz_status", 200))
            return self.respond(req, code, "ok\n" if code == 200 else "unhealthy\n",
                                keep_alive=ka)
        delay = float(self.server.control.get("delay", 0) or 0)
        if delay > 0:
            time.sleep(min(delay, 600))
        forced = self.server.control.get("status", None)
        if forced:
            self.drain_body(req)
            self.stats.add("requests_forced")
            return self.respond(req, int(forced), "forced %d\n" % int(forced), keep_alive=ka)

        if path == "/echo":
            return self.handle_echo(req)
        if path == "/sink":
            return self.handle_sink(req)

        # Everything else has no meaningful request body: consume it to keep framing.
        self.drain_body(req)
        if path == "/" or path.startswith("/demo"):
            return self.respond_json(req, 200, self.describe(req), keep_alive=ka)
        if path == "/headers":
            return self.respond_json(req, 200, {"headers": req.headers}, keep_alive=ka)
        if path.startswith("/bytes/"):
            return self.send_pattern(req, path[len("/bytes/"):], chunked=False)
        if path.startswith("/chunked/"):
            return self.send_pattern(req, path[len("/chunked/"):], chunked=True)
        if path == "/slow":
            try:
                d = float(req.query.get("delay", ["1"])[0])
            except ValueError:
                return self.respond(req, 400, "bad delay\n", keep_alive=ka)
            time.sleep(max(0.0, min(d, 600.0)))
            return self.respond(req, 200, "slow response after %gs\n" % d, keep_alive=ka)
        if path.startswith("/raw/"):
            return self.send_raw(req, path[len("/raw/"):])
        if path == "/stall":
            # Head + `after` bytes of a Content-Length body twice as long, then silence.
            try:
                after = int(req.query.get("after", ["1000"])[0])
                d = float(req.query.get("delay", ["5"])[0])
            except ValueError:
                return self.respond(req, 400, "bad stall parameters\n", keep_alive=ka)
            after = max(0, min(after, IO_BLOCK))
            self.send(self.head_bytes(200, [("Content-Type", "application/octet-stream"),
                                            ("Content-Length", str(2 * after + 1))], False))
            self.send(pattern_slice(0, after))
            time.sleep(max(0.0, min(d, 600.0)))
            return False
        if path.startswith("/status/"):
            try:
                code = int(path[len("/status/"):])
                if not 100 <= code <= 599 or code == 101:
                    raise ValueError
            except ValueError:
                return self.respond(req, 400, "bad status code\n", keep_alive=ka)
            return self.respond(req, code, "status %d\n" % code, keep_alive=ka)
        if path == "/close":
            return self.respond(req, 200, "closing\n", keep_alive=False)
        if path == "/response-headers":
            extra = [(k, v) for k, vs in req.query.items() for v in vs]
            for k, v in extra:
                if not k or any(ord(c) > 127 or c in "\r\n:" for c in k + v):
                    return self.respond(req, 400, "bad header\n", keep_alive=ka)
            return self.respond(req, 200, "ok\n", extra=extra, keep_alive=ka)
        # Any other path gets the demo page too, so routes can be tested on any path.
        return self.respond_json(req, 200, self.describe(req), keep_alive=ka)

    def describe(self, req):
        return {
            "origin": self.server.name,
            "method": req.method,
            "path": req.path,
            "target": req.target,
            "query": req.query,
            "version": req.version,
            "client": "%s:%d" % (self.addr[0], self.addr[1]),
            "connection": self.cid,
            "request_on_connection": self.request_no,
            "headers": req.headers,
            "x_forwarded_for": req.header("x-forwarded-for"),
            "x_request_id": req.header("x-request-id"),
        }

    # Deliberately broken or unusual responses, for testing how a proxy treats its upstream.
    RAW = {
        # Content-Length 1000, 500 bytes sent, then the connection is closed.
        "truncated": (b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"t" * 500, True),
        # No framing header: the body runs until the connection closes.
        "close-delimited": (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n"
                            + PATTERN * 100, True),
        # Both framings: a response-smuggling shape.
        "cl-te": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"5\r\nhello\r\n0\r\n\r\n", True),
        # Two different Content-Length values.
        "two-cl": (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", True),
        # A status line that is not HTTP.
        "garbage": (b"this is not http\r\n\r\n", True),
        # A three-digit rule violation.
        "bad-status": (b"HTTP/1.1 2000 OK\r\nContent-Length: 2\r\n\r\nok", True),
        # A header with CR inside its value (response splitting attempt).
        "bad-header": (b"HTTP/1.1 200 OK\r\nX-Split: a\rSet-Cookie: evil=1\r\n"
                       b"Content-Length: 2\r\n\r\nok", True),
        # An interim 103 before the final answer.
        "early-hints": (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal", False),
        # The connection closes before any byte of a response.
        "empty": (b"", True),
    }

    def send_raw(self, req, kind):
        if kind not in self.RAW:
            return self.respond(req, 404, "raw kinds: %s\n" % " ".join(sorted(self.RAW)),
                                keep_alive=req.keep_alive)
        data, close = self.RAW[kind]
        if data:
            self.send(data)
        return not close and req.keep_alive

    def send_pattern(self, req, count_txt, chunked):
        if not count_txt.isdigit() or len(count_txt) > 15:
            return self.respond(req, 400, "bad byte count\n", keep_alive=req.keep_alive)
        total = int(count_txt)
        if chunked:
            head = self.head_bytes(200, [("Content-Type", "application/octet-stream"),
                                         ("Transfer-Encoding", "chunked")], req.keep_alive)
        else:
            head = self.head_bytes(200, [("Content-Type", "application/octet-stream"),
                                         ("Content-Length", str(total))], req.keep_alive)
        self.send(head)
        if req.method == "HEAD":
            return req.keep_alive
        off = 0
        while off < total:
            n = min(IO_BLOCK, total - off)
            piece = pattern_slice(off, n)
            if chunked:
                self.send(b"%x\r\n" % n + piece + b"\r\n")
            else:
                self.send(piece)
            off += n
        if chunked:
            self.send(b"0\r\n\r\n")
        return req.keep_alive

    def handle_echo(self, req):
        ka = req.keep_alive
        ctype = req.header("content-type", "application/octet-stream")
        if req.body_kind == "none":
            return self.respond(req, 200, b"", content_type=ctype, keep_alive=ka)
        if req.body_kind == "length":
            self.send(self.head_bytes(200, [("Content-Type", ctype),
                                            ("Content-Length", str(req.content_length))], ka))
            for piece in self.body_pieces(req):
                if req.method != "HEAD":
                    self.send(piece)
            return ka
        self.send(self.head_bytes(200, [("Content-Type", ctype),
                                        ("Transfer-Encoding", "chunked")], ka))
        for piece in self.body_pieces(req):
            self.send(b"%x\r\n" % len(piece) + piece + b"\r\n")
        self.send(b"0\r\n\r\n")
        return ka

    def handle_sink(self, req):
        check = req.query.get("pattern", ["0"])[0] == "1"
        received = 0
        pattern_ok = True
        self.stats.add("active_uploads")
        try:
            for piece in self.body_pieces(req):
                if check and pattern_ok:
                    if piece != pattern_slice(received, len(piece)):
                        pattern_ok = False
                received += len(piece)
        except ClientGone:
            if req.body_kind != "none":
                self.stats.add("aborted_uploads")
            raise
        finally:
            self.stats.add("active_uploads", -1)
        self.stats.add("completed_uploads")
        result = {"received": received, "framing": req.body_kind}
        if check:
            result["pattern_ok"] = pattern_ok
        return self.respond_json(req, 200, result, keep_alive=req.keep_alive)

    # ---- connection loop ------------------------------------------------------------------

    def run(self):
        self.cid = self.stats.conn_opened()
        try:
            while True:
                try:
                    req = self.read_request()
                except BadRequest as e:
                    self.stats.add("bad_requests")
                    self.server.log("%s bad request: %s" % (self.addr[0], e))
                    self.respond(None, 400, "bad request: %s\n" % e, keep_alive=False)
                    return
                if req is None:
                    return
                counted = req.path != "/stats"  # reading the counters never moves them
                if counted:
                    self.request_no = self.stats.request_started(self.cid)
                else:
                    self.stats.mark_observer(self.cid)
                t0 = time.monotonic()
                status_line = "?"
                try:
                    keep = self.handle_request(req)
                    status_line = "ok"
                except BadRequest as e:
                    self.stats.add("bad_requests")
                    self.respond(None, 400, "bad request: %s\n" % e, keep_alive=False)
                    status_line = "bad body: %s" % e
                    return
                finally:
                    if counted:
                        self.stats.request_finished()
                    self.server.log("%s %s %s conn=%d req=%d %.1fms %s" % (
                        self.addr[0], req.method, req.target, self.cid, self.request_no,
                        (time.monotonic() - t0) * 1000, status_line))
                if not keep:
                    return
        except ClientGone:
            return
        finally:
            self.stats.conn_closed(self.cid)
            try:
                self.rfile.close()
            except OSError:
                pass
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.request.settimeout(self.server.idle_timeout)
        try:
            Connection(self.server, self.request, self.client_address).run()
        except (TimeoutError, socket.timeout):
            pass


class OriginServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    block_on_close = False

    def __init__(self, addr, family, name, control, idle_timeout, quiet):
        self.address_family = family
        self.name = name
        self.control = control
        self.idle_timeout = idle_timeout
        self.quiet = quiet
        self.stats = Stats()
        self.log_lock = threading.Lock()
        super().__init__(addr, Handler)

    def log(self, msg):
        if self.quiet:
            return
        with self.log_lock:
            sys.stderr.write("[origin %s] %s\n" % (self.name, msg))
            sys.stderr.flush()

    def handle_error(self, request, client_address):
        # A peer vanishing is normal here; anything else is worth a traceback.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ClientGone, ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


def parse_listen(text):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError("expected HOST:PORT, got %r" % text)
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 1)[1])
    ap.add_argument("--listen", type=parse_listen, default=("127.0.0.1", 9001),
                    help="HOST:PORT to listen on; port 0 picks a free one (default 127.0.0.1:9001)")
    ap.add_argument("--name", default=None, help="name reported in X-Origin and /demo")
    ap.add_argument("--control-file", default=None, help="optional JSON control file")
    ap.add_argument("--idle-timeout", type=float, default=120.0,
                    help="seconds an idle or stalled connection is kept (default 120)")
    ap.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    args = ap.parse_args(argv)

    host, port = args.listen
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = OriginServer((host, port), family, args.name or "origin",
                          Control(args.control_file), args.idle_timeout, args.quiet)
    bound = server.server_address
    if args.name is None:
        server.name = "origin-%d" % bound[1]
    shown = ("[%s]" % bound[0]) if family == socket.AF_INET6 else bound[0]
    sys.stdout.write("listening on %s:%d\n" % (shown, bound[1]))
    sys.stdout.flush()

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
