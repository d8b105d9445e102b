"""Endpoint health through the real binary: active HTTP and TCP checks (down, up, expected
statuses, the Host they send, initial state), passive outlier detection and its ejection cap,
the circuit breaker's open / half-open / closed cycle and its timing, backup endpoints and the
backup upstream. Who answered is read from X-Origin; what reached an origin from its /stats."""

import collections
import http.server
import json
import os
import re
import socket
import sys
import threading
import time
import unittest

from harness import (IntegrationTest, KeepAliveClient, Origin, free_port, http_request,
                     metric_value, render, wait_until)

CONFIG = r"""
system { workers @workers@ }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "main" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { match { path "/ready" }; respond 200 { body "ready\n" } }
    route "status" { priority 10; match { path "/status" }; builtin "status" }
@routes@
    route "app" { match { path-prefix "/" }; upstream "app" }
}
upstreams {
@upstreams@
}
"""

REFUSED = "sentinel_upstream_refused_total"


def write_control(path, **values):
    """Atomically replaces an origin's control file (re-read on mtime change)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(values, f)
    os.replace(tmp, path)


def origin_of(resp):
    return resp.header("X-Origin")


def report(test, text):
    """Figures measured, shown in the -v output (they go into the task report)."""
    sys.stderr.write("\n    [%s] %s " % (test.id().rsplit(".", 1)[-1], text))
    sys.stderr.flush()


def upstream_block(name, endpoints, extra=""):
    lines = ['    upstream "%s" {' % name]
    for e in endpoints:
        if isinstance(e, tuple):
            lines.append('        endpoint "%s" %s' % e)
        else:
            lines.append('        endpoint "%s"' % e)
    lines += ["        " + ln.strip() for ln in extra.strip().splitlines() if ln.strip()]
    lines.append("    }")
    return "\n".join(lines)


class HealthServer:
    """A tiny origin of this module's own: records the Host (and User-Agent) of every
    /healthz request and answers it with `healthz_status`; other paths get 200 and X-Origin.
    Runs in this process, on a thread, on an IPv4 or IPv6 loopback address."""

    def __init__(self, name, host="127.0.0.1", healthz_status=200):
        self.name = name
        self.healthz_status = healthz_status
        self.checks = []  # (Host, User-Agent) of each /healthz request
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):
                if self.path == "/healthz":
                    with outer.lock:
                        outer.checks.append((self.headers.get("Host"),
                                             self.headers.get("User-Agent")))
                    status = outer.healthz_status
                else:
                    status = 200
                body = b"ok\n"
                self.send_response(status)
                self.send_header("X-Origin", outer.name)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
            daemon_threads = True

        self.server = Server((host, 0), Handler)
        self.port = self.server.server_address[1]
        self.address = ("[%s]:%d" if ":" in host else "%s:%d") % (host, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def seen(self):
        with self.lock:
            return list(self.checks)

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class HealthTest(IntegrationTest):

    # -- helpers -------------------------------------------------------------------------------

    def origins(self, *names):
        out = []
        for n in names:
            path = os.path.join(self.workdir, "control-%s.json" % n)
            write_control(path)
            o = self.start_origin(n, control_file=path)
            o.control = path
            out.append(o)
        return out

    def restart_origin(self, old):
        """A new origin process with the same name, port and control file."""
        o = Origin(self.workdir, name=old.name, control_file=old.control,
                   extra_args=["--listen", "127.0.0.1:%d" % old.port])
        self.addCleanup(o.stop)
        o.control = old.control
        self.assertEqual(o.port, old.port)
        return o

    def start(self, upstreams, routes="", workers=2):
        self.port = free_port()
        self.admin = free_port()
        text = render(CONFIG, workers=workers, admin=self.admin, port=self.port,
                      routes=routes, upstreams=upstreams)
        self.s = self.start_sentinel(text, port=self.port, admin_port=self.admin,
                                     ready_path="/ready")
        return self.s

    def log(self):
        out, err = self.s.output()
        return err + out

    def wait_log(self, pattern, timeout, what):
        return wait_until(lambda: re.search(pattern, self.log()), timeout, interval=0.02,
                          what=what)

    @staticmethod
    def down_re(address, upstream="app"):
        return r'upstream "%s" endpoint %s is now DOWN' % (re.escape(upstream),
                                                          re.escape(address))

    @staticmethod
    def up_re(address, upstream="app"):
        return r'upstream "%s" endpoint %s is now UP' % (re.escape(upstream), re.escape(address))

    def batch(self, n, path="/b", client=None):
        """n requests on one keep-alive connection: Counter of (X-Origin, status)."""
        counts = collections.Counter()
        own = client is None
        client = client or KeepAliveClient(self.port)
        try:
            for _ in range(n):
                r = client.request("GET", path)
                counts[(origin_of(r), r.status)] += 1
        finally:
            if own:
                client.close()
        return counts

    @staticmethod
    def names(counts):
        return collections.Counter({k[0]: 0 for k in counts}) + collections.Counter(
            {k[0]: v for k, v in counts.items()})

    def status_page(self):
        return http_request(self.port, "GET", "/status").body.decode()

    # -- active HTTP checks ----------------------------------------------------------------------

    def test_http_check_takes_an_endpoint_down_and_back_up(self):
        a, b, c = self.origins("a", "b", "c")
        self.start(upstream_block("app", [a.address, b.address, c.address], """
            health-check { http "/healthz"; interval "200ms"; timeout "200ms"; healthy 2; unhealthy 2 }
        """))
        self.assertEqual(set(self.names(self.batch(30))), {"a", "b", "c"})

        t0 = time.monotonic()
        write_control(c.control, healthz_status=503)
        wait_until(lambda: "c" not in self.names(self.batch(15)), 5, interval=0.02,
                   what="c to stop getting traffic after its /healthz turned 503")
        detect = time.monotonic() - t0
        counts = self.batch(60)
        self.assertEqual(counts, {("a", 200): 30, ("b", 200): 30}, counts)
        self.wait_log(self.down_re(c.address) + r" \(2 consecutive failures: status 503\)", 2,
                      "the DOWN log line")
        self.assertIn("%s (unavailable)" % c.address, self.status_page())

        t1 = time.monotonic()
        write_control(c.control)
        wait_until(lambda: "c" in self.names(self.batch(6)), 5, interval=0.02,
                   what="c to get traffic again after /healthz turned 200")
        recover = time.monotonic() - t1
        self.wait_log(self.up_re(c.address) + r" \(2 consecutive successes\)", 2,
                      "the UP log line")
        self.assertEqual(self.names(self.batch(30)), {"a": 10, "b": 10, "c": 10})
        report(self, "interval 200ms, unhealthy 2 / healthy 2: out of rotation %.0f ms after "
               "/healthz turned 503, back %.0f ms after it turned 200"
               % (detect * 1000, recover * 1000))
        # Two failed checks 200 ms apart, plus up to one interval until the first.
        self.assertLess(detect, 1.5)
        self.assertLess(recover, 1.5)

    def test_down_state_survives_a_reload(self):
        a, b = self.origins("a", "b")
        check = 'health-check { http "/healthz"; interval "200ms"; timeout "200ms"; healthy 2; unhealthy 2 }'
        self.start(upstream_block("app", [a.address, b.address], check))
        write_control(b.control, healthz_status=503)
        self.wait_log(self.down_re(b.address), 5, "b DOWN")
        # Reload with a change elsewhere (a new route): b's health must not reset to UP.
        text = render(CONFIG, workers=2, admin=self.admin, port=self.port,
                      routes='    route "new" { match { path "/new" }; respond 200 { body "new" } }',
                      upstreams=upstream_block("app", [a.address, b.address], check))
        self.s.write_config(text)
        self.assertEqual(self.s.admin_post("/reload").status, 200)
        wait_until(lambda: http_request(self.port, "GET", "/new").status == 200, 5,
                   what="the reloaded config")
        self.assertEqual(self.batch(30), {("a", 200): 30})
        self.assertNotRegex(self.log(), self.up_re(b.address))
        # ...and it still comes back through its checks.
        write_control(b.control)
        self.wait_log(self.up_re(b.address), 5, "b UP after the reload")
        self.assertEqual(self.names(self.batch(20)), {"a": 10, "b": 10})

    def test_expect_status_and_check_host_header(self):
        ok204 = HealthServer("ok204", healthz_status=204)
        self.addCleanup(ok204.stop)
        plain200 = HealthServer("plain200", healthz_status=200)
        self.addCleanup(plain200.stop)
        default_host = HealthServer("dflt", healthz_status=200)
        self.addCleanup(default_host.stop)
        v6 = HealthServer("v6", host="::1", healthz_status=200)
        self.addCleanup(v6.stop)
        check = 'interval "200ms"; timeout "200ms"; healthy 1; unhealthy 2'
        self.start("\n".join([
            # 204 passes and 200 does not: the set replaces the default 200-399.
            upstream_block("app", [ok204.address, plain200.address], """
                health-check { http "/healthz"; expect-status 204 418; host "health.example"; %s }
            """ % check),
            upstream_block("dflt", [default_host.address],
                           'health-check { http "/healthz"; %s }' % check),
            upstream_block("v6", [v6.address], 'health-check { http "/healthz"; %s }' % check),
        ]), routes='    route "v6" { match { path-prefix "/v6" }; upstream "v6" }\n'
                   '    route "dflt" { match { path-prefix "/dflt" }; upstream "dflt" }')
        self.wait_log(self.down_re(plain200.address) + r" \(2 consecutive failures: status 200\)",
                      5, "the endpoint answering 200 (not in expect-status) to go down")
        counts = self.batch(20)
        self.assertEqual(counts, {("ok204", 200): 20}, counts)
        self.assertNotRegex(self.log(), self.down_re(ok204.address))

        seen = ok204.seen()
        self.assertTrue(seen)
        self.assertEqual({h for h, _ in seen}, {"health.example"}, seen)
        self.assertEqual({ua for _, ua in seen}, {"sentinel-health-check"}, seen)
        wait_until(lambda: default_host.seen() and v6.seen(), 5, what="checks of dflt and v6")
        # Without `host`: the endpoint as written.
        self.assertEqual({h for h, _ in default_host.seen()}, {default_host.address})
        self.assertEqual({h for h, _ in v6.seen()}, {v6.address},
                         "Host of checks to an IPv6 endpoint")
        self.assertEqual(origin_of(http_request(self.port, "GET", "/v6/x")), "v6")
        report(self, "check Host headers: %s; %s; %s" % (
            seen[0][0], default_host.seen()[0][0], v6.seen()[0][0]))

    # -- TCP checks ---------------------------------------------------------------------------------

    def test_tcp_check_kill_and_restart(self):
        a, b, c = self.origins("a", "b", "c")
        self.start(upstream_block("app", [a.address, b.address, c.address], """
            health-check { tcp #true; interval "200ms"; timeout "200ms"; healthy 2; unhealthy 2 }
        """))
        self.assertEqual(set(self.names(self.batch(9))), {"a", "b", "c"})
        t0 = time.monotonic()
        c.proc.kill()
        c.proc.wait(5)
        self.wait_log(self.down_re(c.address) + r" \(2 consecutive failures: connection refused\)",
                      5, "the killed origin to be marked DOWN")
        detect = time.monotonic() - t0
        a.reset_stats()
        b.reset_stats()
        statuses = collections.Counter()
        for i in range(90):  # fresh connections: both workers
            r = http_request(self.port, "GET", "/after-kill/%d" % i)
            statuses[(origin_of(r), r.status)] += 1
        served = a.stats()["requests_total"] + b.stats()["requests_total"]
        self.assertEqual(statuses[("a", 200)] + statuses[("b", 200)], 90, statuses)
        self.assertEqual(served, 90, "the survivors saw %d of 90 requests" % served)

        t1 = time.monotonic()
        c2 = self.restart_origin(c)
        self.wait_log(self.up_re(c.address), 5, "the restarted origin to be marked UP")
        wait_until(lambda: "c" in self.names(self.batch(6)), 3, what="traffic to c again")
        recover = time.monotonic() - t1
        self.assertGreater(c2.stats()["requests_total"], 0)
        report(self, "tcp check, interval 200ms: DOWN logged %.0f ms after the kill; zero "
               "errors over 90 requests after; back %.0f ms after the restart"
               % (detect * 1000, recover * 1000))

    # -- initial state --------------------------------------------------------------------------

    def test_initial_state_unhealthy_and_no_available_endpoint(self):
        a, b = self.origins("a", "b")
        for o in (a, b):
            write_control(o.control, healthz_status=503)
        self.start(upstream_block("app", [a.address, b.address], """
            health-check { http "/healthz"; interval "200ms"; timeout "200ms"; healthy 2; unhealthy 2; initial-state "unhealthy" }
        """))
        before = metric_value(self.s.metrics(), REFUSED, reason="no_available_endpoint")
        for _ in range(5):
            r = http_request(self.port, "GET", "/nobody")
            self.assertLocalReply(r, 503)
            self.assertIsNone(origin_of(r))
        after = metric_value(self.s.metrics(), REFUSED, reason="no_available_endpoint")
        self.assertEqual(after - before, 5)
        page = self.status_page()
        self.assertIn("%s (unavailable)" % a.address, page)
        self.assertIn("%s (unavailable)" % b.address, page)

        t0 = time.monotonic()
        write_control(a.control)
        wait_until(lambda: http_request(self.port, "GET", "/x").status == 200, 5,
                   what="a to come up after two passing checks")
        up = time.monotonic() - t0
        self.assertEqual(self.batch(20), {("a", 200): 20})  # b still never passed
        self.wait_log(self.up_re(a.address), 2, "the UP line")
        self.assertNotRegex(self.log(), self.up_re(b.address))
        report(self, "initial-state unhealthy: 5/5 requests 503 (refused metric +%d); a up "
               "%.0f ms after its /healthz turned 200" % (after - before, up * 1000))

    def test_initial_state_unhealthy_holds_traffic_until_checks_pass(self):
        a, = self.origins("a")
        t_spawn = time.monotonic()
        self.start(upstream_block("app", [a.address], """
            health-check { http "/healthz"; interval "1s"; timeout "500ms"; healthy 2; initial-state "unhealthy" }
        """))
        ready = time.monotonic() - t_spawn
        first = http_request(self.port, "GET", "/early")
        t_first = time.monotonic() - t_spawn
        if t_first < 0.9:  # the second check cannot have passed yet
            self.assertLocalReply(first, 503)
        wait_until(lambda: http_request(self.port, "GET", "/x").status == 200, 5,
                   what="the endpoint to come up")
        up = time.monotonic() - t_spawn
        report(self, "ready %.0f ms after spawn, first answer %s, traffic from %.0f ms "
               "(healthy 2 x interval 1s)" % (ready * 1000, first.status, up * 1000))
        # Two checks one interval apart: never before 1 s after the process started.
        self.assertGreaterEqual(up, 1.0)
        self.assertLess(up, 3.0)

    # -- outlier detection ------------------------------------------------------------------------

    OUTLIER = """
        outlier-detection { consecutive-failures 3; base-ejection "2s"; max-ejection "10s"; max-ejected-percent 50 }
    """

    def test_outlier_ejection_and_return(self):
        a, b, c = self.origins("a", "b", "c")
        write_control(c.control, status=503)
        self.start(upstream_block("app", [a.address, b.address, c.address], self.OUTLIER),
                   workers=1)
        seq = []
        with KeepAliveClient(self.port) as cl:
            for _ in range(30):
                r = cl.request("GET", "/o")
                seq.append((time.monotonic(), origin_of(r), r.status))
        from_c = [x for x in seq if x[1] == "c"]
        self.assertEqual([s for _, _, s in from_c], [503, 503, 503], seq)
        self.assertEqual({s for _, o, s in seq if o != "c"}, {200})
        self.assertEqual(c.stats()["requests_forced"], 3)
        t_eject = from_c[-1][0]
        # Poll until c is back in rotation (it still fails: it is then ejected again).
        back = {}

        def c_back():
            r = http_request(self.port, "GET", "/poll")
            if origin_of(r) == "c":
                back["t"] = time.monotonic()
                return True
            return False

        wait_until(c_back, 6, interval=0.03, what="c to return after its 2 s ejection")
        ejected_for = back["t"] - t_eject
        report(self, "3 consecutive 503s ejected c; it got traffic again %.0f ms later "
               "(base-ejection 2s)" % (ejected_for * 1000))
        self.assertGreaterEqual(ejected_for, 1.9)
        self.assertLess(ejected_for, 2.6)
        self.assertEqual(c.stats()["requests_forced"], 4)

    def test_max_ejected_percent_keeps_one_in_rotation(self):
        a, b = self.origins("a", "b")
        for o in (a, b):
            write_control(o.control, status=503)
        self.start(upstream_block("app", [a.address, b.address], self.OUTLIER), workers=1)
        seq = []
        with KeepAliveClient(self.port) as cl:
            for _ in range(30):
                r = cl.request("GET", "/o")
                seq.append(origin_of(r))
                self.assertEqual(r.status, 503)
        # Every answer came from an origin (no local 503 for lack of endpoints).
        self.assertNotIn(None, seq)
        counts = collections.Counter(seq)
        report(self, "both of 2 endpoints failing, max-ejected-percent 50: %s" % dict(counts))
        self.assertEqual(sorted(counts.values()), [3, 27], seq)
        self.assertEqual(len(set(seq[-20:])), 1, seq)

    # -- circuit breaker -----------------------------------------------------------------------------

    def test_circuit_breaker_open_half_open_closed(self):
        a, b = self.origins("a", "b")
        write_control(b.control, status=503)
        self.start(upstream_block("app", [a.address, b.address], """
            circuit-breaker { failures 3; open-for "1s"; half-open-probes 1; successes 1 }
        """), workers=1)
        # Closed → open: three failures in a row (round-robin alternates a, b).
        b_hits = []
        with KeepAliveClient(self.port) as cl:
            for _ in range(6):
                r = cl.request("GET", "/cb")
                if origin_of(r) == "b":
                    self.assertEqual(r.status, 503)
                    b_hits.append(time.monotonic())
        self.assertEqual(len(b_hits), 3)
        t_open = b_hits[-1]
        # The trial request will be slow and fail: only one may be in flight.
        write_control(b.control, status=503, delay=0.3)
        self.assertEqual(b.stats()["requests_total"], 3)

        # Concurrent load through the open period, the half-open probe and the re-opening.
        log = []
        lock = threading.Lock()
        stop = time.monotonic()  # set below
        errors = []

        def client():
            try:
                with KeepAliveClient(self.port) as cl:
                    while time.monotonic() < stop:
                        ts = time.monotonic()
                        r = cl.request("GET", "/load")
                        with lock:
                            log.append((ts, time.monotonic(), origin_of(r), r.status))
                        time.sleep(0.01)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        stop = t_open + 1.0 + 0.3 + 0.5  # through the probe and half a second of re-open
        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        self.assertFalse(errors, errors)
        to_b = sorted(x for x in log if x[2] == "b")
        self.assertEqual(len(to_b), 1, "trial requests while half-open: %r" % to_b)
        self.assertEqual(b.stats()["requests_total"], 4, "b saw requests while open")
        probe_sent = to_b[0][0]
        half_open_after = probe_sent - t_open
        self.assertEqual(to_b[0][3], 503)
        self.assertTrue(all(s == 200 for _, _, o, s in log if o == "a"))
        load = len(log)

        # b recovers; the next probe (1 s after the failed one) succeeds and closes it.
        write_control(b.control)
        t_fixed = time.monotonic()
        with KeepAliveClient(self.port) as cl:
            wait_until(lambda: origin_of(cl.request("GET", "/recover")) == "b", 5,
                       interval=0.02, what="the breaker to let b back in")
            closed_after = time.monotonic() - t_fixed
            counts = self.names(self.batch(20, client=cl))
        self.assertEqual(counts, {"a": 10, "b": 10}, "breaker not closed after one success")
        refusals = self.s.metric("sentinel_upstream_breaker_refusals_total")
        report(self, "open-for 1s: first trial request %.0f ms after the breaker opened; "
               "%d requests by 4 clients during open + half-open let exactly 1 trial through; "
               "closed %.0f ms after the origin recovered; breaker refusals metric %g"
               % (half_open_after * 1000, load, closed_after * 1000, refusals))
        # open_until is set when the 3rd failure is reported, just before its response
        # reaches us; the trial's send time is taken here, a little before Sentinel picks.
        self.assertGreaterEqual(half_open_after, 0.95)
        self.assertLessEqual(half_open_after, 1.3)

    def test_half_open_admits_exactly_the_configured_probes(self):
        a, b = self.origins("a", "b")
        write_control(b.control, status=503)
        self.start(upstream_block("app", [a.address, b.address], """
            circuit-breaker { failures 2; open-for "1s"; half-open-probes 3; successes 2 }
        """), workers=2)
        with KeepAliveClient(self.port) as cl:
            wait_until(lambda: (cl.request("GET", "/cb"),
                                b.stats()["requests_total"] >= 2)[1], 5, interval=0,
                       what="two failures on b")
        self.assertEqual(b.stats()["requests_total"], 2)
        # Slow successes: three trials overlap, a fourth must wait.
        write_control(b.control, delay=0.8)
        stop = time.monotonic() + 1.0 + 0.7  # ends before the first trial answers
        hits = collections.Counter()
        lock = threading.Lock()

        def client():
            with KeepAliveClient(self.port) as cl:
                while time.monotonic() < stop:
                    r = cl.request("GET", "/p")
                    with lock:
                        hits[origin_of(r)] += 1
                    time.sleep(0.01)

        threads = [threading.Thread(target=client) for _ in range(6)]
        for t in threads:
            t.start()
        wait_until(lambda: b.stats()["active_requests"] >= 3, 3, what="three trials in flight")
        time.sleep(0.2)
        self.assertEqual(b.stats()["active_requests"], 3)
        self.assertEqual(b.stats()["requests_total"], 5)
        for t in threads:
            t.join(30)
        # Two successes close it: b takes its share again.
        write_control(b.control)
        wait_until(lambda: self.names(self.batch(10)).get("b", 0) >= 4, 5,
                   what="the breaker to close after two successful trials")
        report(self, "half-open-probes 3: exactly 3 slow trials in flight at once (6 "
                     "clients), %s" % dict(hits))

    # -- backups ------------------------------------------------------------------------------------

    def test_backup_endpoint_only_when_every_primary_is_down(self):
        a, b, c = self.origins("a", "b", "c")
        self.start(upstream_block("app", [a.address, b.address, (c.address, "backup=#true")], """
            health-check { tcp #true; interval "200ms"; timeout "200ms"; healthy 2; unhealthy 2 }
        """))
        self.assertEqual(self.names(self.batch(40)), {"a": 20, "b": 20})
        self.assertIn("%s (backup)" % c.address, self.status_page())
        a.proc.kill()
        self.wait_log(self.down_re(a.address), 5, "a DOWN")
        self.assertEqual(self.batch(20), {("b", 200): 20})  # one primary is enough
        b.proc.kill()
        t0 = time.monotonic()
        self.wait_log(self.down_re(b.address), 5, "b DOWN")
        took = time.monotonic() - t0
        self.assertEqual(self.batch(40), {("c", 200): 40})
        page = self.status_page()
        self.assertIn("%s (unavailable)" % a.address, page)
        self.assertIn("%s (unavailable)" % b.address, page)
        a2 = self.restart_origin(a)
        self.wait_log(self.up_re(a.address), 5, "a UP again")
        self.assertEqual(self.batch(20), {("a", 200): 20})
        self.assertGreater(a2.stats()["requests_total"], 0)
        report(self, "backup took all traffic once both primaries were DOWN (%.0f ms after "
               "the last kill) and none after a primary returned" % (took * 1000))

    def test_backup_upstream_when_every_endpoint_is_down(self):
        a, b, d = self.origins("a", "b", "d")
        self.start("\n".join([
            upstream_block("app", [a.address, b.address], """
                health-check { tcp #true; interval "200ms"; timeout "200ms"; healthy 2; unhealthy 2 }
                backup-upstream "spare"
            """),
            upstream_block("spare", [d.address]),
        ]))
        self.assertEqual(self.names(self.batch(20)), {"a": 10, "b": 10})
        for o in (a, b):
            o.proc.kill()
        for o in (a, b):
            self.wait_log(self.down_re(o.address), 5, "%s DOWN" % o.name)
        self.assertEqual(self.batch(20), {("d", 200): 20})
        self.assertEqual(d.stats()["requests_total"], 20)


if __name__ == "__main__":
    unittest.main()
