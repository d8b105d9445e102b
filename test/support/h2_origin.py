#!/usr/bin/env python3
"""A small HTTP/2 (h2c prior knowledge) origin for Sentinel's `protocol "h2"` upstream tests,
on python3-h2. Prints "listening <port>" once ready.

  h2_origin.py [--tls CERT_DIR [--alpn PROTO]]
      --tls: TLS with CERT_DIR/site.pem and site.key (test/support/make-certs.sh), selecting
      PROTO in ALPN (default h2; another one makes a client that offers only h2 get none)

  GET  /bytes/N      N bytes of a repeating pattern, with content-length
  GET  /stream/N     N bytes in 16 KiB DATA frames, no content-length
  POST /echo         the request body back (no content-length), with trailers
                     x-echo-bytes and x-seen-te (the request's te field)
  GET  /headers      the request's header fields as JSON (pseudo-headers included)
  GET  /refuse-once  RST_STREAM(REFUSED_STREAM) the first time, 200 "second try" after
  anything else      404
"""
import json
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events

PATTERN = bytes(range(256)) * 64


class Origin:
    def __init__(self):
        self.refused = set()
        self.lock = threading.Lock()

    def serve(self, sock, tls):
        if tls is not None:
            try:
                sock = tls.wrap_socket(sock, server_side=True)
            except (OSError, ssl.SSLError):
                sock.close()
                return
        cfg = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        conn = h2.connection.H2Connection(config=cfg)
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        streams = {}  # id → {"headers": [...], "body": bytearray}
        pending = {}  # id → bytes still to send (flow control)
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = {"headers": ev.headers, "body": bytearray()}
                    elif isinstance(ev, h2.events.DataReceived):
                        streams[ev.stream_id]["body"] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        self.answer(conn, ev.stream_id, streams.pop(ev.stream_id), pending)
                    elif isinstance(ev, h2.events.WindowUpdated):
                        pass
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        sock.sendall(conn.data_to_send())
                        return
                self.flush_pending(conn, pending)
                sock.sendall(conn.data_to_send())
        except (OSError, h2.exceptions.ProtocolError):
            return
        finally:
            sock.close()

    def answer(self, conn, sid, req, pending):
        headers = dict(req["headers"])
        path = headers.get(":path", "/")
        if path.startswith("/bytes/"):
            n = int(path[len("/bytes/"):])
            body = (PATTERN * (n // len(PATTERN) + 1))[:n]
            conn.send_headers(sid, [(":status", "200"), ("content-length", str(n)), ("x-origin", "h2")])
            pending[sid] = [body, True, None]
        elif path.startswith("/stream/"):
            n = int(path[len("/stream/"):])
            conn.send_headers(sid, [(":status", "200"), ("x-origin", "h2")])
            pending[sid] = [(PATTERN * (n // len(PATTERN) + 1))[:n], True, None]
        elif path == "/echo":
            body = bytes(req["body"])
            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/octet-stream")])
            pending[sid] = [body, True, [("x-echo-bytes", str(len(body))), ("x-seen-te", headers.get("te", ""))]]
        elif path == "/headers":
            body = json.dumps(req["headers"]).encode()
            conn.send_headers(sid, [(":status", "200"), ("content-type", "application/json"),
                                    ("content-length", str(len(body)))])
            pending[sid] = [body, True, None]
        elif path == "/refuse-once":
            with self.lock:
                first = path not in self.refused
                self.refused.add(path)
            if first:
                conn.reset_stream(sid, error_code=7)  # REFUSED_STREAM
                return
            body = b"second try\n"
            conn.send_headers(sid, [(":status", "200"), ("content-length", str(len(body)))])
            pending[sid] = [body, True, None]
        else:
            conn.send_headers(sid, [(":status", "404"), ("content-length", "0")], end_stream=True)

    @staticmethod
    def flush_pending(conn, pending):
        for sid in list(pending):
            body, end, trailers = pending[sid]
            while body:
                window = min(conn.local_flow_control_window(sid), conn.max_outbound_frame_size, 16384)
                if window <= 0:
                    break
                conn.send_data(sid, body[:window])
                body = body[window:]
            pending[sid][0] = body
            if not body:
                if trailers:
                    conn.send_headers(sid, trailers, end_stream=True)
                else:
                    conn.end_stream(sid)
                del pending[sid]


def tls_context(argv):
    if "--tls" not in argv:
        return None
    certs = argv[argv.index("--tls") + 1]
    alpn = argv[argv.index("--alpn") + 1] if "--alpn" in argv else "h2"
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs + "/site.pem", certs + "/site.key")
    ctx.set_alpn_protocols([alpn])
    return ctx


def main():
    tls = tls_context(sys.argv)
    origin = Origin()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print("listening", srv.getsockname()[1], flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=origin.serve, args=(conn, tls), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
