"""Agents inspecting response bodies (agents/protocol/PROTOCOL.md §5, RESPONSE_BODY): buffer
and stream mode against the test origin's Content-Length and chunked responses. Nothing of an
inspected body reaches the client before the agents decided; a block replaces the response,
a replacement gets a correct Content-Length, and a body over the limit is refused (reject) or
relayed whole while the agent sees only the start (skip).

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_agent_response_body
"""
import os
import sys
import unittest

from harness import IntegrationTest, free_port, http_request, wait_until
from test_agents import AgentProcess

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from origin import pattern_slice  # noqa: E402  (the bytes /bytes/N and /chunked/N send)

CONFIG = r"""
system { workers 1 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ok\n" } }
@routes@
}
upstreams { upstream "app" { endpoint "@origin@" } }
agents {
@agents@
}
"""

# agent id → (process, settings)
AGENT_IDS = {
    "buf": ("buf", 'failure-mode "closed"; timeout "2s"'),
    "buf-reject": ("buf", 'failure-mode "closed"; timeout "2s"; max-body "1KiB"; body-over-limit "reject"'),
    "buf-skip": ("buf", 'failure-mode "closed"; timeout "2s"; max-body "1KiB"; body-over-limit "skip"'),
    "strm": ("strm", 'failure-mode "closed"; timeout "2s"'),
    "strm-skip": ("strm", 'failure-mode "closed"; timeout "2s"; max-body "1KiB"; body-over-limit "skip"'),
}
EVENTS = ["--events", "request-headers,response-headers,response-body"]


def pattern(n):
    out = bytearray()
    while len(out) < n:
        out += pattern_slice(len(out), min(4096, n - len(out)))
    return bytes(out)


class AgentResponseBodyTest(IntegrationTest):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.class_workdir
        cls.origin = cls.class_origin("app")
        cls.procs = {
            "buf": AgentProcess(d, "buf", EVENTS + ["--response-body-mode", "buffer"], wait=False),
            "strm": AgentProcess(d, "strm", EVENTS + ["--response-body-mode", "stream"], wait=False),
        }
        for p in cls.procs.values():
            cls.addClassCleanup(p.stop)
            p.wait_ready()
        routes = "\n".join('    route "%s" { match { header "X-Route" "%s" }; upstream "app"; agents "%s" }' % (i, i, i)
                           for i in AGENT_IDS)
        agents = "\n".join('    agent "%s" { socket "%s"; %s }' % (i, cls.procs[p].socket, s)
                           for i, (p, s) in AGENT_IDS.items())
        cls.port, cls.admin = free_port(), free_port()
        text = (CONFIG.replace("@admin@", str(cls.admin)).replace("@port@", str(cls.port))
                .replace("@origin@", cls.origin.address).replace("@routes@", routes).replace("@agents@", agents))
        cls.s = cls.class_sentinel(text, port=cls.port, admin_port=cls.admin, ready_path="/ready")
        wait_until(lambda: all(cls.s.metric("sentinel_agent_connections", agent=i) >= 1 for i in AGENT_IDS), 10,
                   what="every agent connection")

    def get(self, route, path, *headers, method="GET", body=b""):
        hs = [("X-Route", route), ("X-Agent-Response-Action", "need-body")] + list(headers)
        if body:
            hs.append(("Content-Length", str(len(body))))
        return http_request(self.port, method, path, headers=hs, body=body)

    def body_events(self, proc, since):
        return [e for e in proc.log()[since:] if e.get("type") == "RESPONSE_BODY" and e.get("dir") == "in"]

    def test_clean_bodies_pass_whole_in_both_modes_and_framings(self):
        for route in ("buf", "strm"):
            for path in ("/bytes/20000", "/chunked/20000"):
                with self.subTest(route=route, path=path):
                    since = len(self.procs[route].log())
                    r = self.get(route, path)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.body, pattern(20000))
                    self.assertEqual(r.header("Content-Length"), "20000", "held bodies go out with their length")
                    self.assertEqual(r.header("x-test-agent-saw-response"), "200")
                    events = self.body_events(self.procs[route], since)
                    self.assertEqual(sum(e["length"] for e in events), 20000, events)
                    self.assertTrue(events[-1]["last"] and not events[-1]["truncated"], events[-1])

    def test_evil_response_is_replaced_with_502(self):
        for route in ("buf", "strm"):
            with self.subTest(route=route):
                r = self.get(route, "/echo", method="POST", body=b"harmless start, then EVIL content")
                self.assertEqual(r.status, 502, r)
                self.assertNotIn(b"EVIL", r.body)

    def test_replaced_body_gets_its_new_length(self):
        for route in ("buf", "strm"):
            for path in ("/bytes/3000", "/chunked/3000"):
                with self.subTest(route=route, path=path):
                    r = self.get(route, path, ("X-Agent-Replace-Response-Body", "REPLACED"))
                    self.assertEqual((r.status, r.body), (200, b"REPLACED"), r)
                    self.assertEqual(r.header("Content-Length"), "8")

    def test_over_the_limit(self):
        r = self.get("buf-reject", "/bytes/5000")
        self.assertEqual(r.status, 502, r)
        r = self.get("buf-reject", "/chunked/5000")
        self.assertEqual(r.status, 502, r)
        for route, proc in (("buf-skip", "buf"), ("strm-skip", "strm")):
            for path in ("/bytes/70000", "/chunked/70000"):
                with self.subTest(route=route, path=path):
                    since = len(self.procs[proc].log())
                    r = self.get(route, path)
                    self.assertEqual(r.status, 200, r)
                    self.assertEqual(r.body, pattern(70000), "the body past the limit was not relayed whole")
                    events = self.body_events(self.procs[proc], since)
                    self.assertEqual(sum(e["length"] for e in events), 1024, events)
                    self.assertTrue(events[-1]["last"] and events[-1]["truncated"], events[-1])


if __name__ == "__main__":
    unittest.main()
