"""Load balancing through the real binary: every `load-balancing` kind, consistent hashing on
each `hash-key` source (and how little a removed endpoint moves), sticky cookies, and an
endpoint name with its A/AAAA records. Origins carry distinct --name values; who answered is
counted from the X-Origin header of the responses Sentinel relays."""

import collections
import json
import os
import re
import socket
import sys
import threading
import time
import unittest

from harness import (IntegrationTest, KeepAliveClient, Origin, ResponseReader, free_port,
                     http_request, render, request_bytes, wait_until)

# One Sentinel, one worker (so one balancer per upstream and exact sequences), one upstream
# per balancer kind over the same origins, one route per upstream.
SHARED = r"""
system { workers 1 }
listeners { listener "main" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { match { path "/ready" }; respond 200 { body "ready\n" } }
    route "rr" { match { path-prefix "/rr" }; upstream "rr" }
    route "wrr" { match { path-prefix "/wrr" }; upstream "wrr" }
    route "random" { match { path-prefix "/random" }; upstream "random" }
    route "p2c" { match { path-prefix "/p2c" }; upstream "p2c" }
    route "h-header" { match { path-prefix "/h-header" }; upstream "h-header" }
    route "h-cookie" { match { path-prefix "/h-cookie" }; upstream "h-cookie" }
    route "h-query" { match { path-prefix "/h-query" }; upstream "h-query" }
    route "h-ip" { match { path-prefix "/h-ip" }; upstream "h-ip" }
    route "h-path" { match { path-prefix "/h-path" }; upstream "h-path" }
}
upstreams {
    upstream "rr" {
        endpoint "@a@"; endpoint "@b@"; endpoint "@c@"
        load-balancing "round-robin"
    }
    upstream "wrr" {
        endpoint "@a@" weight=3; endpoint "@b@" weight=1
        load-balancing "weighted-round-robin"
    }
    upstream "random" {
        endpoint "@a@" weight=2; endpoint "@b@" weight=1; endpoint "@c@" weight=1
        load-balancing "random"
    }
    upstream "p2c" {
        endpoint "@a@" weight=2; endpoint "@b@" weight=1; endpoint "@c@" weight=1
        load-balancing "power-of-two-choices"
    }
    upstream "h-header" {
        endpoint "@a@"; endpoint "@b@"; endpoint "@c@"
        load-balancing "consistent-hash"
        hash-key "header" name="X-User"
    }
    upstream "h-cookie" {
        endpoint "@a@"; endpoint "@b@"; endpoint "@c@"
        load-balancing "consistent-hash"
        hash-key "cookie" name="session"
    }
    upstream "h-query" {
        endpoint "@a@"; endpoint "@b@"; endpoint "@c@"
        load-balancing "consistent-hash"
        hash-key "query" name="user"
    }
    upstream "h-ip" {
        endpoint "@a@"; endpoint "@b@"; endpoint "@c@"
        load-balancing "consistent-hash"
        hash-key "client-ip"
    }
    upstream "h-path" {
        endpoint "@a@"; endpoint "@b@"; endpoint "@c@"
        load-balancing "consistent-hash"
        hash-key "path"
    }
}
"""

# A Sentinel of its own per test: one upstream "app" on the route "/", plus an admin
# listener for reloads and a status page.
SINGLE = r"""
system { workers @workers@ }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "main" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { match { path "/ready" }; respond 200 { body "@gen@\n" } }
    route "status" { priority 10; match { path "/status" }; builtin "status" }
    route "app" {
        match { path-prefix "/" }
        upstream "app"
@route_extra@
    }
}
upstreams {
    upstream "app" {
@endpoints@
@upstream_extra@
    }
}
"""


def write_control(path, **values):
    """Atomically replaces an origin's control file (it is re-read on mtime change)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(values, f)
    os.replace(tmp, path)


def origin_of(resp):
    return resp.header("X-Origin")


def tally_keepalive(port, n, path, headers=()):
    """n requests on one keep-alive connection; Counter of X-Origin (None = local reply)."""
    counts = collections.Counter()
    with KeepAliveClient(port) as c:
        for _ in range(n):
            r = c.request("GET", path, headers=list(headers))
            if r.status != 200:
                raise AssertionError("unexpected response %r" % r)
            counts[origin_of(r)] += 1
    return counts


def tally_fresh(port, n, path, headers=()):
    """n requests, each on a new connection (spread over the workers' listen sockets)."""
    counts = collections.Counter()
    for _ in range(n):
        r = http_request(port, "GET", path, headers=list(headers))
        if r.status != 200:
            raise AssertionError("unexpected response %r" % r)
        counts[origin_of(r)] += 1
    return counts


def shares(counts):
    total = sum(counts.values())
    return {k: round(v / total, 3) for k, v in sorted(counts.items(), key=str)}


def report(test, text):
    """Figures measured, shown in the -v output (they go into the task report)."""
    sys.stderr.write("\n    [%s] %s " % (test.id().rsplit(".", 1)[-1], text))
    sys.stderr.flush()


# XXH64 (seed 0), written from the algorithm's description: Sentinel's sticky token for an
# endpoint is the hex XXH64 of its "ip:port" key, so a test can name an endpoint's token
# without having been handed a cookie first.
_M64 = (1 << 64) - 1
_P1, _P2, _P3 = 0x9E3779B185EBCA87, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9
_P4, _P5 = 0x85EBCA77C2B2AE63, 0x27D4EB2F165667C5


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & _M64


def _round(acc, lane):
    return (_rotl((acc + lane * _P2) & _M64, 31) * _P1) & _M64


def xxh64(data, seed=0):
    n, p = len(data), 0
    if n >= 32:
        v = [(seed + _P1 + _P2) & _M64, (seed + _P2) & _M64, seed, (seed - _P1) & _M64]
        while p + 32 <= n:
            for i in range(4):
                v[i] = _round(v[i], int.from_bytes(data[p + 8 * i:p + 8 * i + 8], "little"))
            p += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M64
        for x in v:
            h = ((h ^ _round(0, x)) * _P1 + _P4) & _M64
    else:
        h = (seed + _P5) & _M64
    h = (h + n) & _M64
    while p + 8 <= n:
        h ^= _round(0, int.from_bytes(data[p:p + 8], "little"))
        h = (_rotl(h, 27) * _P1 + _P4) & _M64
        p += 8
    if p + 4 <= n:
        h ^= (int.from_bytes(data[p:p + 4], "little") * _P1) & _M64
        h = (_rotl(h, 23) * _P2 + _P3) & _M64
        p += 4
    while p < n:
        h ^= (data[p] * _P5) & _M64
        h = (_rotl(h, 11) * _P1) & _M64
        p += 1
    h ^= h >> 33
    h = (h * _P2) & _M64
    h ^= h >> 29
    h = (h * _P3) & _M64
    h ^= h >> 32
    return h


def sticky_token(address):
    return "%016x" % xxh64(address.encode())


class SharedBalancersTest(IntegrationTest):
    """Distributions and key stickiness on one Sentinel with one worker."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.a = cls.class_origin("a")
        cls.b = cls.class_origin("b")
        cls.c = cls.class_origin("c")
        cls.port = free_port()
        cls.s = cls.class_sentinel(
            render(SHARED, port=cls.port, a=cls.a.address, b=cls.b.address, c=cls.c.address),
            port=cls.port, ready_path="/ready")

    # -- round-robin and weighted round-robin -------------------------------------------------

    def test_round_robin_exact_even_split_one_worker(self):
        counts = tally_keepalive(self.port, 300, "/rr/x")
        report(self, "round-robin 1 worker, 300 requests: %s" % dict(counts))
        self.assertEqual(counts, {"a": 100, "b": 100, "c": 100})
        # Fresh connections change nothing with one worker: the balancer is per worker.
        counts = tally_fresh(self.port, 60, "/rr/y")
        self.assertEqual(counts, {"a": 20, "b": 20, "c": 20})

    def test_weighted_round_robin_three_to_one(self):
        counts = tally_keepalive(self.port, 400, "/wrr/x")
        report(self, "weighted-round-robin 3:1, 400 requests: %s" % shares(counts))
        # Smooth WRR is exact over every period of sum(weights) picks.
        self.assertEqual(counts, {"a": 300, "b": 100})
        # ...and interleaved: never more than 3 in a row from the heavy endpoint.
        seq = []
        with KeepAliveClient(self.port) as c:
            for _ in range(40):
                seq.append(origin_of(c.request("GET", "/wrr/seq")))
        run = longest = 0
        for o in seq:
            run = run + 1 if o == "a" else 0
            longest = max(longest, run)
        self.assertLessEqual(longest, 3, "WRR sends bursts: %s" % "".join(seq))

    # -- random and power-of-two-choices ------------------------------------------------------

    def _weighted_2_1_1(self, path):
        n = 2000
        counts = tally_keepalive(self.port, n, path)
        s = shares(counts)
        report(self, "%s weights 2:1:1, %d requests: %s" % (path, n, s))
        self.assertEqual(sum(counts.values()), n)
        # Binomial sd is ~1.1% (a) and ~1% (b, c) of n: ±5 points is ~5 sd.
        self.assertAlmostEqual(s.get("a", 0), 0.50, delta=0.05, msg=str(s))
        self.assertAlmostEqual(s.get("b", 0), 0.25, delta=0.05, msg=str(s))
        self.assertAlmostEqual(s.get("c", 0), 0.25, delta=0.05, msg=str(s))

    def test_random_weighted(self):
        self._weighted_2_1_1("/random/x")

    def test_power_of_two_choices_weighted(self):
        self._weighted_2_1_1("/p2c/x")

    # -- consistent hash ------------------------------------------------------------------------

    def _keyed(self, users, request):
        """request(user) -> Response; each user asked 3 times. Returns {user: origin}."""
        placement = {}
        for u in users:
            seen = set()
            for _ in range(3):
                r = request(u)
                self.assertEqual(r.status, 200, r)
                seen.add(origin_of(r))
            self.assertEqual(len(seen), 1, "key %r went to several origins: %s" % (u, seen))
            placement[u] = seen.pop()
        return placement

    def _assert_spread(self, placement, what):
        per = collections.Counter(placement.values())
        report(self, "%s: %d keys over origins %s" % (what, len(placement), dict(per)))
        self.assertEqual(set(per), {"a", "b", "c"}, "keys not spread over all origins: %s" % per)

    def test_hash_header_sticky_and_spread(self):
        users = ["user-%d" % i for i in range(50)]
        with KeepAliveClient(self.port) as c:
            placement = self._keyed(users, lambda u: c.request("GET", "/h-header/x",
                                                             headers=[("X-User", u)]))
            # The same user on other paths and connections: same origin.
            for u in users[:10]:
                r = http_request(self.port, "GET", "/h-header/other?z=1", headers=[("X-User", u)])
                self.assertEqual(origin_of(r), placement[u], u)
        self._assert_spread(placement, "hash-key header X-User")

    def test_hash_cookie(self):
        users = ["s%03d" % i for i in range(50)]
        with KeepAliveClient(self.port) as c:
            placement = self._keyed(users, lambda u: c.request(
                "GET", "/h-cookie/x", headers=[("Cookie", "theme=dark; session=%s; x=1" % u)]))
            # Only the named cookie counts: other cookies around it change nothing.
            for u in users[:10]:
                r = c.request("GET", "/h-cookie/y", headers=[("Cookie", "session=%s" % u),
                                                              ("Cookie", "other=%s" % time.time())])
                self.assertEqual(origin_of(r), placement[u], u)
        self._assert_spread(placement, "hash-key cookie session")

    def test_hash_query(self):
        users = ["q%d" % i for i in range(50)]
        with KeepAliveClient(self.port) as c:
            placement = self._keyed(users, lambda u: c.request(
                "GET", "/h-query/x?a=1&user=%s&b=%d" % (u, len(u))))
            for u in users[:10]:
                r = c.request("GET", "/h-query/elsewhere?user=%s" % u)
                self.assertEqual(origin_of(r), placement[u], u)
        self._assert_spread(placement, "hash-key query user")

    def test_hash_path(self):
        paths = ["/h-path/item/%d" % i for i in range(50)]
        with KeepAliveClient(self.port) as c:
            placement = self._keyed(paths, lambda p: c.request("GET", p))
        self._assert_spread(placement, "hash-key path")

    def test_hash_client_ip(self):
        # Every request from 127.0.0.1: one origin, whatever the connection or path.
        counts = collections.Counter()
        for i in range(30):
            r = http_request(self.port, "GET", "/h-ip/%d" % i)
            counts[origin_of(r)] += 1
        report(self, "hash-key client-ip from 127.0.0.1: %s" % dict(counts))
        self.assertEqual(len(counts), 1, counts)
        # Other loopback source addresses (127.0.0.0/8 is all local) spread, each sticky.
        placement = {}

        def from_ip(ip):
            with socket.create_connection(("127.0.0.1", self.port), timeout=10,
                                          source_address=(ip, 0)) as s:
                s.sendall(request_bytes("GET", "/h-ip/x", "test.local", [("Connection", "close")]))
                return ResponseReader(s, 10).read_response()

        placement = self._keyed(["127.0.0.%d" % i for i in range(2, 42)], from_ip)
        self._assert_spread(placement, "hash-key client-ip over 127.0.0.2-41")


class BalancingTest(IntegrationTest):
    """Tests that need their own origins or Sentinel (slow or killed origins, reloads)."""

    def start(self, endpoints, upstream_extra="", route_extra="", workers=1, gen="g1"):
        self.port = getattr(self, "port", None) or free_port()
        self.admin = getattr(self, "admin", None) or free_port()
        self.s = self.start_sentinel(self.config(endpoints, upstream_extra, route_extra,
                                                 workers, gen),
                                     port=self.port, admin_port=self.admin, ready_path="/ready")
        return self.s

    def config(self, endpoints, upstream_extra="", route_extra="", workers=1, gen="g1"):
        lines = []
        for e in endpoints:
            if isinstance(e, tuple):
                addr, props = e
                lines.append('        endpoint "%s" %s' % (addr, props))
            else:
                lines.append('        endpoint "%s"' % e)
        return render(SINGLE, workers=workers, admin=self.admin, port=self.port, gen=gen,
                      endpoints="\n".join(lines), upstream_extra=upstream_extra,
                      route_extra=route_extra)

    def reload(self, text, gen):
        self.s.write_config(text)
        r = self.s.admin_post("/reload")
        self.assertEqual(r.status, 200, r)
        wait_until(lambda: http_request(self.port, "GET", "/ready").body == (gen + "\n").encode(),
                   10, what="the reloaded config (%s) to serve" % gen)

    def origins(self, *names, control=False):
        out = []
        for n in names:
            kw = {}
            if control:
                path = os.path.join(self.workdir, "control-%s.json" % n)
                write_control(path)
                kw["control_file"] = path
            o = self.start_origin(n, **kw)
            o.control = kw.get("control_file")
            out.append(o)
        return out

    # -- round-robin over several workers ----------------------------------------------------

    def test_round_robin_two_workers_within_ten_percent(self):
        a, b, c = self.origins("a", "b", "c")
        self.start([a.address, b.address, c.address], workers=2)
        counts = tally_fresh(self.port, 600, "/x")
        report(self, "round-robin 2 workers, 600 fresh connections: %s" % dict(counts))
        self.assertEqual(sum(counts.values()), 600)
        for name in ("a", "b", "c"):
            self.assertAlmostEqual(counts[name], 200, delta=20, msg=str(counts))

    # -- least-connections --------------------------------------------------------------------

    def test_least_connections_prefers_the_fast_endpoint(self):
        slow, fast = self.origins("slow", "fast", control=True)
        write_control(slow.control, delay=0.25)
        self.start([slow.address, fast.address], 'load-balancing "least-connections"',
                   workers=2)
        counts = collections.Counter()
        errors = []
        lock = threading.Lock()

        def client():
            try:
                with KeepAliveClient(self.port) as c:
                    for _ in range(25):
                        r = c.request("GET", "/lc")
                        with lock:
                            counts[(origin_of(r), r.status)] += 1
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)

        t0 = time.monotonic()
        threads = [threading.Thread(target=client) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        elapsed = time.monotonic() - t0
        self.assertFalse(errors, errors)
        total = sum(counts.values())
        fast_n = counts[("fast", 200)]
        report(self, "least-connections, 8 concurrent clients x 25, one origin +250ms: %s "
               "in %.2fs (fast share %.3f)" % (dict(counts), elapsed, fast_n / total))
        self.assertEqual(total, 200)
        # Round-robin would give the slow one half (100 requests, 25 s of its time / 8).
        self.assertGreaterEqual(fast_n / total, 0.80, counts)
        self.assertGreater(counts[("slow", 200)], 0, "the slow endpoint got nothing at all")

    # -- peak EWMA ------------------------------------------------------------------------------

    def test_peak_ewma_avoids_the_slow_endpoint(self):
        a, b, slow = self.origins("a", "b", "slow", control=True)
        write_control(slow.control, delay=0.1)
        self.start([a.address, b.address, slow.address], 'load-balancing "peak-ewma"',
                   workers=2)
        counts = collections.Counter()
        with KeepAliveClient(self.port) as c:
            for _ in range(300):
                r = c.request("GET", "/ewma")
                self.assertEqual(r.status, 200, r)
                counts[origin_of(r)] += 1
        s = shares(counts)
        report(self, "peak-ewma, one origin +100ms, 300 requests: %s" % s)
        self.assertLess(s.get("slow", 0), 0.05, s)
        self.assertGreater(s.get("a", 0), 0.15, s)
        self.assertGreater(s.get("b", 0), 0.15, s)

    # -- consistent hash under a reload -----------------------------------------------------------

    def test_consistent_hash_removing_an_endpoint_moves_only_its_keys(self):
        a, b, c = self.origins("a", "b", "c")
        extra = 'load-balancing "consistent-hash"\n        hash-key "header" name="X-User"'
        self.start([a.address, b.address, c.address], extra, workers=2)
        users = ["user-%d" % i for i in range(60)]

        def place():
            out = {}
            with KeepAliveClient(self.port) as cl:
                for u in users:
                    r = cl.request("GET", "/u", headers=[("X-User", u)])
                    self.assertEqual(r.status, 200, r)
                    out[u] = origin_of(r)
            return out

        before = place()
        self.assertEqual(before, place(), "placement changed without any change")
        self.assertEqual(set(before.values()), {"a", "b", "c"}, before)
        self.reload(self.config([a.address, b.address], extra, workers=2, gen="g2"), "g2")
        after = place()
        moved_c = [u for u in users if before[u] == "c"]
        others = [u for u in users if before[u] != "c"]
        stayed = [u for u in others if after[u] == before[u]]
        report(self, "consistent-hash reload 3→2 endpoints: %d keys of the removed endpoint "
               "moved; %d/%d other keys stayed" % (len(moved_c), len(stayed), len(others)))
        for u in moved_c:
            self.assertIn(after[u], ("a", "b"), u)
        self.assertEqual(set(after.values()), {"a", "b"})
        # Maglev keeps most keys of the remaining endpoints in place (ideally all).
        self.assertGreaterEqual(len(stayed), 0.9 * len(others),
                                "too many keys moved: before=%s after=%s" % (before, after))
        # Adding it back restores the original placement (the table depends on the keys only).
        self.reload(self.config([a.address, b.address, c.address], extra, workers=2,
                                gen="g3"), "g3")
        self.assertEqual(place(), before)

    # -- sticky cookie --------------------------------------------------------------------------

    STICKY_RE = r"^srv=([0-9a-f]{16}); Path=/; HttpOnly; Max-Age=3600$"

    def sticky_setup(self):
        a, b, c = self.origins("a", "b", "c")
        # connect-failure retries (the default `on`): a dead pinned origin is tried once,
        # then the request goes elsewhere.
        self.start([a.address, b.address, c.address], 'sticky-cookie "srv" ttl="1h"',
                   route_extra="        retry { attempts 3; backoff \"0s\" }", workers=2)
        return {"a": a, "b": b, "c": c}

    def test_sticky_token_pins_and_moves_when_the_origin_dies(self):
        # The token is computed here (XXH64 of the endpoint's "ip:port"), so pinning is
        # tested on its own, for every endpoint, without a first response setting it.
        origins = self.sticky_setup()
        tokens = {name: sticky_token(o.address) for name, o in origins.items()}
        for name, token in sorted(tokens.items()):
            seen = collections.Counter()
            for i in range(12):  # fresh connections: both workers
                r = http_request(self.port, "GET", "/pin/%d" % i,
                                 headers=[("Cookie", "other=1; srv=%s" % token)])
                self.assertEqual(r.status, 200, r)
                seen[origin_of(r)] += 1
            self.assertEqual(seen, {name: 12}, "token of %s" % name)
        # Without the cookie, or with a garbage one: balanced as usual (round-robin).
        self.assertEqual(len(tally_keepalive(self.port, 30, "/nocookie")), 3)
        self.assertEqual(len(tally_keepalive(self.port, 30, "/bad",
                                             headers=[("Cookie", "srv=zzzz")])), 3)

        # The pinned origin dies: its requests go elsewhere (one connect failure, one retry).
        origins["b"].stop()
        moved = collections.Counter()
        for i in range(10):
            r = http_request(self.port, "GET", "/after-death/%d" % i,
                             headers=[("Cookie", "srv=%s" % tokens["b"])])
            self.assertEqual(r.status, 200, r)
            moved[origin_of(r)] += 1
        report(self, "tokens %s; after b died its cookie's requests went to %s"
               % (tokens, dict(moved)))
        self.assertNotIn("b", moved)
        # The others stay pinned.
        for name in ("a", "c"):
            r = http_request(self.port, "GET", "/pin", headers=[("Cookie", "srv=%s" % tokens[name])])
            self.assertEqual(origin_of(r), name)

    def test_sticky_cookie_set_on_first_response_and_after_a_move(self):
        origins = self.sticky_setup()
        r = http_request(self.port, "GET", "/first")
        self.assertEqual(r.status, 200, r)
        cookies = r.header_values("Set-Cookie")
        self.assertEqual(len(cookies), 1, r)
        m = re.match(self.STICKY_RE, cookies[0])
        self.assertTrue(m, "Set-Cookie %r" % cookies[0])
        token, pinned = m.group(1), origin_of(r)
        self.assertEqual(token, sticky_token(origins[pinned].address))

        # Replaying the cookie pins every request, and a valid cookie is not set again.
        for i in range(20):
            r = http_request(self.port, "GET", "/again/%d" % i,
                             headers=[("Cookie", "srv=%s" % token)])
            self.assertEqual(origin_of(r), pinned)
            self.assertEqual(r.header_values("Set-Cookie"), [], "cookie re-set although valid")

        # A garbage token is replaced.
        r = http_request(self.port, "GET", "/bad", headers=[("Cookie", "srv=zzzz")])
        self.assertTrue(re.match(self.STICKY_RE, r.header("Set-Cookie") or ""), r)

        # The pinned origin dies: the request goes elsewhere and gets a new cookie.
        origins[pinned].stop()
        r = http_request(self.port, "GET", "/after-death", headers=[("Cookie", "srv=%s" % token)])
        self.assertEqual(r.status, 200, r)
        self.assertNotEqual(origin_of(r), pinned)
        m2 = re.match(self.STICKY_RE, r.header("Set-Cookie") or "")
        self.assertTrue(m2, "no new cookie after the move: %r" % r)
        self.assertEqual(m2.group(1), sticky_token(origins[origin_of(r)].address))

    def test_sticky_cookie_without_ttl_is_a_session_cookie(self):
        a, b = self.origins("a", "b")
        self.start([a.address, b.address], 'sticky-cookie "sess"')
        r = http_request(self.port, "GET", "/")
        self.assertTrue(re.match(r"^sess=[0-9a-f]{16}; Path=/; HttpOnly$",
                                 r.header("Set-Cookie") or ""), r)

    # -- a name with several addresses -----------------------------------------------------------

    def test_endpoint_name_resolves_to_every_address(self):
        addrs = sorted({ai[4][0] for ai in socket.getaddrinfo("localhost", None,
                                                             type=socket.SOCK_STREAM)})
        port = free_port()
        origins = {}
        for ip in addrs:
            if ip == "::1":
                try:  # the port must be free on ::1 too
                    with socket.socket(socket.AF_INET6) as t:
                        t.bind(("::1", port))
                except OSError:
                    self.skipTest("port %d taken on ::1" % port)
        for i, ip in enumerate(addrs):
            listen = "[%s]:%d" % (ip, port) if ":" in ip else "%s:%d" % (ip, port)
            o = Origin(self.workdir, name="lh%d" % i, extra_args=["--listen", listen])
            self.addCleanup(o.stop)
            origins[ip] = "lh%d" % i
        self.start(["localhost:%d" % port])
        status = http_request(self.port, "GET", "/status").body.decode()
        for ip in addrs:
            key = "[%s]:%d" % (ip, port) if ":" in ip else "%s:%d" % (ip, port)
            self.assertIn(key, status, "endpoint %s missing from the status page" % key)
        counts = tally_keepalive(self.port, 20 * len(addrs), "/lh")
        report(self, "localhost resolves to %s; traffic %s" % (addrs, dict(counts)))
        self.assertEqual(set(counts), set(origins.values()), counts)
        for name in origins.values():
            self.assertEqual(counts[name], 20)  # round-robin, one worker


if __name__ == "__main__":
    unittest.main()
