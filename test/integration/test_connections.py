"""Connection handling: upstream keep-alive reuse, no fd leak over 10,000 requests,
max-connections (503 + counter), client-header timeout (408) and keepalive-idle."""

import random
import socket
import sys
import threading
import time
import unittest

from harness import (IntegrationTest, KeepAliveClient, ResponseReader, closed_port, connect,
                     curl, free_port, http_request, metric_value, render, request_bytes,
                     wait_until)

BASE = r"""
system { workers @workers@; max-connections @maxconn@; max-connections-per-worker @perworker@ }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
timeouts {
    client-header "@client_header@"; keepalive-idle "@keepalive_idle@"
    client-body-idle "@client_body_idle@"; upstream-response-header "@upstream_header@"
}
routes {
    route "hello" { match { path "/hello" }; respond 200 { body "hi\n" } }
    route "down" { match { path-prefix "/down" }; upstream "down" }
    route "all" { match { path-prefix "/" }; upstream "a" }
}
upstreams {
    upstream "a" { endpoint "@a@" }
    upstream "down" { endpoint "127.0.0.1:@closed@" }
}
"""


class ConnectionsTest(IntegrationTest):

    def start(self, workers=2, maxconn=100000, perworker=0, client_header="10s",
              keepalive_idle="75s", client_body_idle="30s", upstream_header="30s"):
        self.a = self.start_origin("a")
        self.port = free_port()
        self.admin = free_port()
        cfg = render(BASE, workers=workers, maxconn=maxconn, perworker=perworker,
                     admin=self.admin, port=self.port, client_header=client_header,
                     keepalive_idle=keepalive_idle, client_body_idle=client_body_idle,
                     upstream_header=upstream_header,
                     a=self.a.address, closed=closed_port())
        self.s = self.start_sentinel(cfg, port=self.port, admin_port=self.admin,
                                     ready_path="/hello")
        return self.s

    # -- upstream keep-alive ----------------------------------------------------------------

    def test_keepalive_reuse_one_client_connection(self):
        self.start()
        self.a.reset_stats()
        with KeepAliveClient(self.port) as c:
            for i in range(100):
                r = c.request("GET", "/demo/%d" % i)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.json()["path"], "/demo/%d" % i)
        st = self.a.stats()
        self.assertEqual(st["requests_total"], 100, st)
        self.assertLessEqual(st["connections_used"], 2,
                             "100 keep-alive requests used %d upstream connections: %r"
                             % (st["connections_used"], st["requests_per_connection"]))
        self.assertGreaterEqual(st["max_requests_per_connection"], 50, st)

    def test_keepalive_reuse_with_curl(self):
        self.start()
        self.a.reset_stats()
        urls = ["http://127.0.0.1:%d/demo/c%d" % (self.port, i) for i in range(100)]
        rc, status, _, body, err = curl(*urls)
        self.assertEqual((rc, status), (0, 200), err)
        self.assertEqual(body.count(b'"origin": "a"'), 100)
        st = self.a.stats()
        self.assertEqual(st["requests_total"], 100, st)
        self.assertLessEqual(st["connections_used"], 2, st["requests_per_connection"])

    def test_upstream_reuse_across_client_connections(self):
        self.start()
        self.a.reset_stats()
        for i in range(100):
            r = http_request(self.port, "GET", "/demo/n%d" % i)
            self.assertEqual(r.status, 200, r)
        st = self.a.stats()
        self.assertEqual(st["requests_total"], 100, st)
        self.assertLessEqual(st["connections_used"], 4,
                             "100 sequential requests on new client connections used %d "
                             "upstream connections (pool not reused): %r"
                             % (st["connections_used"], st["requests_per_connection"]))

    # -- fd leak ----------------------------------------------------------------------------

    def _load(self, total, threads=4):
        """total requests from `threads` raw clients: keep-alive runs of 50, one-shot
        connections, local replies, 502s, 504s, downloads abandoned midway and connections
        dropped mid-head. Returns (ok_count, failures list)."""
        failures = []
        counts = [0] * threads
        per = total // threads

        def worker(idx):
            rnd = random.Random(idx)
            done = 0
            try:
                while done < per:
                    kind = rnd.random()
                    if kind < 0.5:
                        n = min(50, per - done)
                        with KeepAliveClient(self.port) as c:
                            for _ in range(n):
                                r = c.request("GET", "/demo/k")
                                if r.status != 200:
                                    failures.append(("keepalive", r.status))
                                done += 1
                    elif kind < 0.8:
                        r = http_request(self.port, "GET", "/demo/o")
                        if r.status != 200:
                            failures.append(("oneshot", r.status))
                        done += 1
                    elif kind < 0.9:
                        r = http_request(self.port, "GET", "/hello")
                        if r.status != 200:
                            failures.append(("local", r.status))
                        done += 1
                    elif kind < 0.94:
                        r = http_request(self.port, "GET", "/down")
                        if r.status != 502:
                            failures.append(("down", r.status))
                        done += 1
                    elif kind < 0.943:
                        r = http_request(self.port, "GET", "/slow?delay=0.5")
                        if r.status != 504:
                            failures.append(("slow", r.status))
                        done += 1
                    elif kind < 0.95:
                        # Leave in the middle of a 4 MiB download.
                        s = connect(self.port)
                        s.sendall(request_bytes("GET", "/bytes/4194304", "a"))
                        s.recv(1024)
                        s.close()
                        done += 1
                    else:
                        s = connect(self.port)
                        if rnd.random() < 0.5:
                            s.sendall(b"GET /demo/partial HTTP/1.1\r\nHost: a\r\n")
                        s.close()
            except Exception as e:  # noqa: BLE001 - reported as a failure
                failures.append(("exception", repr(e)))
            counts[idx] = done

        ts = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        return sum(counts), failures

    def test_no_fd_leak_over_10000_requests(self):
        s = self.start(upstream_header="200ms")
        done, failures = self._load(400)  # warm-up: pools and worker state settle
        self.assertEqual(failures, [])
        wait_until(lambda: metric_value(s.metrics(), "sentinel_downstream_connections_active",
                                        default=-1) == 0, 10,
                   what="sentinel_downstream_connections_active back to 0 after warm-up")
        baseline = s.fd_count()
        t0 = time.monotonic()
        done, failures = self._load(10000)
        elapsed = time.monotonic() - t0
        self.assertEqual(failures[:10], [], "%d failed requests" % len(failures))
        self.assertGreaterEqual(done, 10000)
        slack = 8
        try:
            wait_until(lambda: s.fd_count() <= baseline + slack, 15,
                       what="fd count back to baseline")
        except AssertionError:
            self.fail("sentinel fd count %d after %d requests (%.1fs), baseline %d (+%d slack)"
                      % (s.fd_count(), done, elapsed, baseline, slack))
        sys.stderr.write("[%d requests in %.1fs, origin saw %d; fds: baseline %d, after %d] "
                         % (done, elapsed, self.a.stats()["requests_total"], baseline,
                            s.fd_count()))
        wait_until(lambda: metric_value(s.metrics(), "sentinel_downstream_connections_active",
                                        default=-1) == 0, 10,
                   what="sentinel_downstream_connections_active back to 0")
        self.assertLessEqual(self.a.stats()["connections_open"], 16,
                             "upstream connections kept open: %r" % self.a.stats())

    # -- max-connections --------------------------------------------------------------------

    def test_max_connections_sixth_gets_503(self):
        s = self.start(workers=1, maxconn=5)
        clients = []
        try:
            for i in range(5):
                c = KeepAliveClient(self.port)
                clients.append(c)
                self.assertEqual(c.request("GET", "/hello").status, 200)
            rejected_before = metric_value(s.metrics(),
                                           "sentinel_downstream_connections_rejected_total",
                                           reason="max_connections")
            sixth = connect(self.port)
            self.addCleanup(sixth.close)
            sixth.sendall(request_bytes("GET", "/hello", "a"))
            reader = ResponseReader(sixth, 5)
            r = reader.read_response()
            self.assertEqual(r.status, 503, r)
            try:
                self.assertEqual(reader.read_until_eof(5), b"")
            except ConnectionResetError:
                self.fail("rejected connection was reset, not closed")
            rejected_after = metric_value(s.metrics(),
                                          "sentinel_downstream_connections_rejected_total",
                                          reason="max_connections")
            self.assertEqual(rejected_after - rejected_before, 1.0)
            # The five admitted connections keep working.
            for c in clients:
                self.assertEqual(c.request("GET", "/hello").status, 200)
            # Freeing one slot admits a new connection.
            clients.pop().close()

            def admitted():
                return http_request(self.port, "GET", "/hello").status == 200
            wait_until(admitted, 5, what="a new connection to be admitted after one closed")
        finally:
            for c in clients:
                c.close()

    def test_max_connections_per_worker_bounds_total(self):
        s = self.start(workers=2, perworker=2)
        clients, accepted, rejected = [], 0, 0
        try:
            for i in range(8):
                c = KeepAliveClient(self.port, timeout=5)
                clients.append(c)
                r = c.request("GET", "/hello")
                if r.status == 200:
                    accepted += 1
                else:
                    self.assertEqual(r.status, 503, r)
                    rejected += 1
        finally:
            for c in clients:
                c.close()
        self.assertLessEqual(accepted, 4, "2 workers × 2 admitted %d connections" % accepted)
        self.assertGreaterEqual(accepted, 2)
        self.assertEqual(accepted + rejected, 8)
        self.assertGreaterEqual(metric_value(s.metrics(),
                                             "sentinel_downstream_connections_rejected_total",
                                             reason="max_connections"), rejected)

    # -- timeouts ---------------------------------------------------------------------------

    def test_client_header_timeout_408(self):
        self.start(client_header="500ms")
        s = connect(self.port)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendall(b"GET /demo/x HTTP/1.1\r\nHost: a\r\nX-Partial: 1\r\n")
        reader = ResponseReader(s, 10)
        r = reader.read_response()
        elapsed = time.monotonic() - t0
        self.assertLocalReply(r, 408)
        self.assertGreaterEqual(elapsed, 0.4, "408 after only %.2fs" % elapsed)
        self.assertLess(elapsed, 3.0, "408 after %.2fs (client-header 500ms)" % elapsed)
        self.assertEqual(reader.read_until_eof(5), b"")

    def test_client_header_timeout_is_a_deadline_not_idle(self):
        # Slowloris: one header byte every 100 ms never leaves the connection idle for long,
        # but the head as a whole must still arrive within client-header.
        self.start(client_header="500ms")
        s = connect(self.port)
        self.addCleanup(s.close)
        stop = threading.Event()

        def drip():
            try:
                s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
                while not stop.is_set():
                    s.sendall(b"X")
                    stop.wait(0.1)
            except OSError:
                pass

        t = threading.Thread(target=drip, daemon=True)
        t0 = time.monotonic()
        t.start()
        try:
            r = ResponseReader(s, 10).read_response()
        except (ConnectionError, OSError) as e:
            r = e
        elapsed = time.monotonic() - t0
        stop.set()
        t.join(2)
        self.assertLess(elapsed, 3.0, "slow-drip head kept the connection %.1fs" % elapsed)
        if not isinstance(r, Exception):
            self.assertEqual(r.status, 408, r)

    def test_client_body_idle_timeout(self):
        # Half a body, then silence: after client-body-idle Sentinel answers 408 (the
        # origin has not answered yet), closes, and drops the upstream upload.
        self.start(client_body_idle="500ms")
        aborted_before = self.a.stats()["aborted_uploads"]
        s = connect(self.port)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        s.sendall(request_bytes("POST", "/sink", "a", [("Content-Length", "10000")]) + b"x" * 5000)
        reader = ResponseReader(s, 10)
        r = reader.read_response()
        elapsed = time.monotonic() - t0
        self.assertLocalReply(r, 408)
        self.assertGreaterEqual(elapsed, 0.4)
        self.assertLess(elapsed, 3.0, "408 after %.2fs (client-body-idle 500ms)" % elapsed)
        self.assertEqual(reader.read_until_eof(5), b"")
        wait_until(lambda: self.a.stats()["aborted_uploads"] > aborted_before, 5,
                   what="the origin to see the stalled upload dropped")

    def test_keepalive_idle_closes_idle_connection(self):
        self.start(keepalive_idle="1s")
        s = connect(self.port)
        self.addCleanup(s.close)
        s.sendall(request_bytes("GET", "/hello", "a"))
        reader = ResponseReader(s, 10)
        self.assertEqual(reader.read_response().status, 200)
        t0 = time.monotonic()
        try:
            reader.read_until_eof(10)
        except ConnectionResetError:
            pass  # closed either way; a reset on an idle connection loses nothing
        except socket.timeout:
            self.fail("idle keep-alive connection still open after 10s (keepalive-idle 1s)")
        elapsed = time.monotonic() - t0
        self.assertGreaterEqual(elapsed, 0.8, "closed after %.2fs, before keepalive-idle" % elapsed)
        self.assertLess(elapsed, 5.0)

    def test_keepalive_idle_timer_resets_on_activity(self):
        self.start(keepalive_idle="1s")
        with KeepAliveClient(self.port) as c:
            deadline = time.monotonic() + 2.5
            n = 0
            while time.monotonic() < deadline:
                self.assertEqual(c.request("GET", "/hello").status, 200)
                n += 1
                time.sleep(0.3)  # the pause under test, not a synchronisation
            self.assertGreaterEqual(n, 5)

    def test_silent_connection_is_closed(self):
        self.start(client_header="500ms", keepalive_idle="1s")
        s = connect(self.port)
        self.addCleanup(s.close)
        t0 = time.monotonic()
        try:
            ResponseReader(s, 10).read_until_eof(10)
        except ConnectionResetError:
            pass
        except socket.timeout:
            self.fail("a connection that never sent a byte is still open after 10s")
        self.assertLess(time.monotonic() - t0, 5.0)


if __name__ == "__main__":
    unittest.main()
