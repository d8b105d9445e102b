"""Route matching (every matcher kind, evaluation order), redirects and rewrites, end to end.

Matcher routes answer locally with their own id as the body, so each request shows which
route took it. Rewrite routes proxy to test/support/origin.py, whose demo page reports the
request line and headers it received. `sentinel route-explain` is checked when the binary has
it (another engineer adds it).
"""

import os
import subprocess
import unittest

from harness import (IntegrationTest, KeepAliveClient, SENTINEL_BIN, free_port, http_request,
                     render)

CONFIG = r"""
system { workers 1 }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ready" } }
    route "fallback" { priority -100; match { path-prefix "/" }; respond 200 { body "fallback" } }

    route "re" { match { path-regex "^/u/[0-9]+$" }; respond 200 { body "re" } }
    route "hdr" { match { path-prefix "/h/"; header "X-Env" "prod" "staging" }
                  respond 200 { body "hdr" } }
    route "hdrre" { match { path-prefix "/hr/"; header-regex "User-Agent" "Mozilla/[0-9.]+" "^bot-.*" }
                    respond 200 { body "hdrre" } }
    route "present" { match { path-prefix "/hp/"; header-present "X-Token" }
                      respond 200 { body "present" } }
    route "absent" { match { path-prefix "/hp/"; header-absent "X-Token" }
                     respond 200 { body "absent" } }
    route "q" { match { path-prefix "/q/"; query "name" "a b" "c" }; respond 200 { body "q" } }
    route "qre" { match { path-prefix "/qr/"; query-regex "id" "[0-9]+" }; respond 200 { body "qre" } }
    route "qp" { match { path-prefix "/qp/"; query-present "debug" }; respond 200 { body "qp" } }
    route "qa" { match { path-prefix "/qp/"; query-absent "debug" }; respond 200 { body "qa" } }
    route "and" { match { path-prefix "/and/"; method "POST"; header "X-A" "1"; query "b" "2" }
                  respond 200 { body "and" } }

    route "exact-low" { match { path "/p/exact" }; respond 200 { body "exact-low" } }
    route "prefix-high" { priority 10; match { path-prefix "/p/" }; respond 200 { body "prefix-high" } }
    route "s-prefix" { match { path-prefix "/s/" }; respond 200 { body "s-prefix" } }
    route "s-longer" { match { path-prefix "/s/long/" }; respond 200 { body "s-longer" } }
    route "s-regex" { match { path-regex "/s/re[0-9]" }; respond 200 { body "s-regex" } }
    route "s-exact" { match { path "/s/exact" }; respond 200 { body "s-exact" } }
    route "host-wild" { match { host "*.h.test"; path-prefix "/hw/" }; respond 200 { body "host-wild" } }
    route "host-exact" { match { host "a.h.test"; path-prefix "/hw/" }; respond 200 { body "host-exact" } }
    route "fo1" { match { path-prefix "/fo/" }; respond 200 { body "fo1" } }
    route "fo2" { match { path-prefix "/fo/" }; respond 200 { body "fo2" } }

    route "redir-all" { match { path-prefix "/old/" }
        redirect 301 { scheme "https"; host "new.test"; port 8443; path "/new"; keep-query #true } }
    route "redir-path" { match { path-prefix "/keep/" }; redirect 308 { path "/kept"; keep-query #false } }
    route "redir-scheme" { match { path-prefix "/tls/" }; redirect 301 { scheme "https" } }
    route "redir-host" { match { path-prefix "/moved/" }; redirect 302 { host "other.test" } }
    route "redir-default-port" { match { path-prefix "/dp/" }
        redirect 307 { scheme "https"; port 443; path "/x" } }
    route "redir-port" { match { path-prefix "/port/" }; redirect 301 { port 9090 } }

    route "rw-strip" { match { path-prefix "/api/" }; upstream "o"; rewrite { strip-prefix "/api" } }
    route "rw-add" { match { path-prefix "/add/" }; upstream "o"; rewrite { add-prefix "/v2" } }
    route "rw-both" { match { path-prefix "/both/" }; upstream "o"
        rewrite { strip-prefix "/both"; add-prefix "/v2/" } }
    route "rw-whole" { match { path-prefix "/b2" }; upstream "o"
        rewrite { strip-prefix "/b2"; add-prefix "/v2/" } }
    route "rw-host" { match { path-prefix "/hostrw/" }; upstream "o"; rewrite { host "backend.internal" } }
}
upstreams { upstream "o" { endpoint "@o@" } }
"""


class RouteActionsTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.o = cls.class_origin("o")
        cls.port = free_port()
        cls.config = render(CONFIG, port=cls.port, o=cls.o.address)
        cls.s = cls.class_sentinel(cls.config, port=cls.port, ready_path="/ready")

    def get(self, path, host="m.test", headers=(), method="GET"):
        return http_request(self.port, method, path, host=host, headers=headers)

    def route_of(self, path, **kw):
        r = self.get(path, **kw)
        self.assertEqual(r.status, 200, r)
        return r.body.decode()

    def check(self, cases):
        for args, want in cases:
            if isinstance(args, str):
                args = (args, {})
            path, kw = args
            with self.subTest(path=path, **{k: repr(v) for k, v in kw.items()}):
                self.assertEqual(self.route_of(path, **kw), want)

    # -- matchers

    def test_path_regex_full_match(self):
        self.check([("/u/12", "re"), ("/u/12/x", "fallback"), ("/u/ab", "fallback"),
                    ("/x/u/12", "fallback"), ("/u/12?x=1", "re")])

    def test_header_exact_values_ored_name_case_insensitive(self):
        self.check([
            (("/h/x", {"headers": [("X-Env", "prod")]}), "hdr"),
            (("/h/x", {"headers": [("x-env", "staging")]}), "hdr"),
            (("/h/x", {"headers": [("X-ENV", "Prod")]}), "fallback"),  # values are exact
            (("/h/x", {"headers": [("X-Env", "dev")]}), "fallback"),
            (("/h/x", {}), "fallback"),
            # Any one field with the name may carry the value.
            (("/h/x", {"headers": [("X-Env", "dev"), ("X-Env", "prod")]}), "hdr"),
        ])

    def test_header_regex_whole_value(self):
        self.check([
            (("/hr/x", {"headers": [("User-Agent", "Mozilla/5.0")]}), "hdrre"),
            (("/hr/x", {"headers": [("user-agent", "bot-crawler")]}), "hdrre"),
            # Whole value: a match inside a longer value does not count.
            (("/hr/x", {"headers": [("User-Agent", "Mozilla/5.0 (X11)")]}), "fallback"),
            (("/hr/x", {"headers": [("User-Agent", "curl/8")]}), "fallback"),
        ])

    def test_header_present_and_absent(self):
        self.check([
            (("/hp/x", {"headers": [("X-Token", "t")]}), "present"),
            (("/hp/x", {"headers": [("x-token", "")]}), "present"),
            (("/hp/x", {}), "absent"),
        ])

    def test_query_exact_percent_decoded(self):
        self.check([("/q/x?name=a%20b", "q"), ("/q/x?name=a+b", "q"), ("/q/x?name=c", "q"),
                    ("/q/x?other=1&name=c", "q"), ("/q/x?name=ab", "fallback"),
                    ("/q/x?name=a%2520b", "fallback"), ("/q/x", "fallback"),
                    ("/q/x?%6Eame=c", "q")])

    def test_query_regex_present_absent(self):
        self.check([("/qr/x?id=123", "qre"), ("/qr/x?id=12a", "fallback"),
                    ("/qr/x?id=", "fallback"), ("/qr/x", "fallback"),
                    ("/qp/x?debug", "qp"), ("/qp/x?debug=1", "qp"), ("/qp/x?a=1&debug=", "qp"),
                    ("/qp/x?a=1", "qa"), ("/qp/x", "qa")])

    def test_matchers_are_anded(self):
        h = [("X-A", "1")]
        self.assertEqual(self.route_of("/and/x?b=2", method="POST", headers=h + [("Content-Length", "0")]), "and")
        self.assertEqual(self.route_of("/and/x?b=2", method="GET", headers=h), "fallback")
        self.assertEqual(self.route_of("/and/x?b=3", method="POST", headers=h + [("Content-Length", "0")]), "fallback")
        self.assertEqual(self.route_of("/and/x?b=2", method="POST", headers=[("Content-Length", "0")]), "fallback")

    def test_priority_beats_specificity(self):
        self.check([("/p/exact", "prefix-high"), ("/p/other", "prefix-high")])

    def test_equal_priority_more_specific_wins(self):
        self.check([("/s/exact", "s-exact"), ("/s/re1", "s-regex"), ("/s/long/x", "s-longer"),
                    ("/s/other", "s-prefix"),
                    (("/hw/x", {"host": "a.h.test"}), "host-exact"),
                    (("/hw/x", {"host": "b.h.test"}), "host-wild"),
                    (("/hw/x", {"host": "A.H.TEST:8080"}), "host-exact")])

    def test_file_order_breaks_ties(self):
        self.check([("/fo/x", "fo1")])

    # -- redirects

    def redirect(self, path, host="r.test:8080", method="GET"):
        r = self.get(path, host=host, method=method)
        return r.status, r.header("Location"), r

    def test_redirect_replaces_parts(self):
        cases = [
            ("/old/x?a=1&b=2", 301, "https://new.test:8443/new?a=1&b=2"),
            ("/old/x", 301, "https://new.test:8443/new"),
            # Only the path replaced: the request's host and port stay; the query is dropped.
            ("/keep/x?a=1", 308, "http://r.test:8080/kept"),
            # A new scheme drops the old port (it belonged to the old scheme).
            ("/tls/p?q=1", 301, "https://r.test/tls/p?q=1"),
            ("/moved/p", 302, "http://other.test/moved/p"),
            # The scheme's default port is left out.
            ("/dp/p?z=9", 307, "https://r.test/x?z=9"),
            ("/port/p", 301, "http://r.test:9090/port/p"),
        ]
        for path, status, location in cases:
            with self.subTest(path=path):
                got_status, got_location, r = self.redirect(path)
                self.assertEqual((got_status, got_location), (status, location), r)
                self.assertTrue(r.header("X-Request-Id"))

    def test_redirect_without_port_in_host(self):
        self.assertEqual(self.redirect("/keep/x", host="r.test")[:2], (308, "http://r.test/kept"))

    def test_redirect_ipv6_host_and_normalised_path(self):
        self.assertEqual(self.redirect("/port/p", host="[::1]:8080")[:2],
                         (301, "http://[::1]:9090/port/p"))
        self.assertEqual(self.redirect("/keep/p", host="[::1]:8080")[:2],
                         (308, "http://[::1]:8080/kept"))
        # The Location is built from the path as routed (dot segments removed).
        self.assertEqual(self.redirect("/tls/a/../b?q=1")[:2], (301, "https://r.test/tls/b?q=1"))

    def test_redirect_with_request_body_closes(self):
        r = http_request(self.port, "POST", "/old/x", host="r.test", close=False,
                         headers=[("Content-Length", "5")], body=b"hello")
        self.assertEqual((r.status, r.header("Location")), (301, "https://new.test:8443/new"))

    def test_redirect_head_has_no_body(self):
        with KeepAliveClient(self.port, host_header="r.test") as c:
            r = c.request("HEAD", "/old/x?a=1")
            self.assertEqual(r.status, 301)
            self.assertEqual(r.header("Location"), "https://new.test:8443/new?a=1")
            self.assertEqual(r.body, b"")
            # Had a body followed the HEAD response, it would be read as this response.
            r2 = c.request("GET", "/u/7")
            self.assertEqual((r2.status, r2.body), (200, b"re"), r2)

    # -- rewrites

    def demo(self, path, host="front.test"):
        r = self.get(path, host=host)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.header("X-Origin"), "o", r)
        return r.json()

    def header_of(self, d, name):
        for k, v in d["headers"]:
            if k.lower() == name.lower():
                return v
        return None

    def test_strip_prefix(self):
        self.assertEqual(self.demo("/api/users?x=1")["target"], "/users?x=1")
        self.assertEqual(self.demo("/api/")["target"], "/")
        self.assertEqual(self.demo("/api/a/b")["target"], "/a/b")

    def test_add_prefix(self):
        self.assertEqual(self.demo("/add/x?y=2")["target"], "/v2/add/x?y=2")

    def test_strip_and_add_prefix(self):
        self.assertEqual(self.demo("/both/users?x=1")["target"], "/v2/users?x=1")
        self.assertEqual(self.demo("/both/")["target"], "/v2/")
        # The whole path stripped: joined with one slash.
        self.assertEqual(self.demo("/b2")["target"], "/v2/")
        self.assertEqual(self.demo("/b2?q=1")["target"], "/v2/?q=1")
        # Stripping works on whole segments: "/b2" is not a segment of "/b2x".
        self.assertEqual(self.demo("/b2x")["target"], "/v2/b2x")
        self.assertEqual(self.demo("/b2/y")["target"], "/v2/y")

    def test_host_rewrite_keeps_forwarded_host(self):
        port_host = "front.test:%d" % self.port
        d = self.demo("/hostrw/p", host=port_host)
        self.assertEqual(d["target"], "/hostrw/p")
        self.assertEqual(self.header_of(d, "Host"), "backend.internal")
        self.assertEqual(self.header_of(d, "X-Forwarded-Host"), port_host)
        hosts = [v for k, v in d["headers"] if k.lower() == "host"]
        self.assertEqual(len(hosts), 1, d["headers"])

    def test_rewrite_on_normalised_path(self):
        # Dot segments are removed before routing; the rewrite works on the clean path.
        self.assertEqual(self.demo("/api/a/../b?q")["target"], "/b?q")

    # -- route-explain

    def explain(self, *args):
        path = os.path.join(self.workdir, "routes.kdl")
        with open(path, "w") as f:
            f.write(self.config)
        return subprocess.run([SENTINEL_BIN, "route-explain", path, *args], capture_output=True,
                              timeout=30, stdin=subprocess.DEVNULL)

    def require_route_explain(self):
        out = subprocess.run([SENTINEL_BIN, "--help"], capture_output=True, timeout=10)
        if b"route-explain" not in out.stdout + out.stderr:
            self.skipTest("this sentinel has no route-explain subcommand yet")

    def test_route_explain_match(self):
        self.require_route_explain()
        p = self.explain("--method", "GET", "--url", "http://m.test/h/x", "-H", "X-Env: staging")
        out = p.stdout.decode() + p.stderr.decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("hdr", out)
        p = self.explain("--method", "GET", "--url", "http://m.test/p/exact")
        out = p.stdout.decode() + p.stderr.decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("prefix-high", out)
        # The higher-ranked routes that did not match are named with the reason.
        p = self.explain("--method", "GET", "--url", "http://m.test/h/x", "-H", "X-Env: dev")
        out = p.stdout.decode() + p.stderr.decode()
        self.assertEqual(p.returncode, 0, out)
        self.assertIn("fallback", out)
        self.assertIn("hdr", out)
        self.assertIn("X-Env".lower(), out.lower())

    def test_route_explain_no_match(self):
        self.require_route_explain()
        path = os.path.join(self.workdir, "one.kdl")
        with open(path, "w") as f:
            f.write(render(r"""
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes { route "only" { match { path "/only" }; respond 200 } }
""", port=free_port()))
        p = subprocess.run([SENTINEL_BIN, "route-explain", path, "--method", "GET", "--url",
                            "http://m.test/else"], capture_output=True, timeout=30)
        self.assertEqual(p.returncode, 1, p)
        self.assertIn("only", (p.stdout + p.stderr).decode())


if __name__ == "__main__":
    unittest.main()
