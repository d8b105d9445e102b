"""The reference agents behind the real proxy: sentinel-echo-agent over TCP (its config block
pushed by Sentinel) and sentinel-denylist-agent over a Unix socket (its list reloaded while
both run), both on one route, denylist first.

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_reference_agents
"""
import json
import os
import subprocess
import unittest

from harness import IntegrationTest, Sentinel, free_port, http_request, spawn, wait_until

BUILD = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(os.environ.get("SENTINEL_BIN", "")))))
ECHO = os.environ.get("SENTINEL_ECHO_AGENT") or os.path.join(BUILD, "agents", "echo", "sentinel-echo-agent")
DENYLIST = os.environ.get("SENTINEL_DENYLIST_AGENT") or os.path.join(BUILD, "agents", "denylist", "sentinel-denylist-agent")

CONFIG = r"""
system { workers 1 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ok\n" } }
    route "app" { upstream "app"; agents "denylist" "echo" }
}
upstreams { upstream "app" { endpoint "@origin@" } }
agents {
    agent "denylist" {
        socket "@deny@"
        failure-mode "closed"
        config { status 451; }
    }
    agent "echo" {
        socket "tcp://127.0.0.1:@echo@"
        failure-mode "open"
        config { header-prefix "@prefix@"; }
    }
}
observability { audit-log { path "@audit@" } }
"""

RULES = """# test rules
path /admin
user-agent BadBot
header X-Evil yes
"""


class ReferenceAgentsTest(IntegrationTest):

    def start_agent(self, argv, ready):
        err = open(ready + ".stderr", "wb")
        self.addCleanup(err.close)
        p = spawn(argv + ["--ready-file", ready], stdout=subprocess.DEVNULL, stderr=err)
        self.addCleanup(lambda: (p.poll() is None and p.terminate(), p.wait(timeout=10)))
        wait_until(lambda: os.path.exists(ready) or p.poll() is not None, 10, what=argv[0] + " ready")
        if p.poll() is not None:
            with open(ready + ".stderr") as f:
                self.fail("agent exited: " + f.read())
        return p

    def setUp(self):
        super().setUp()
        for binary in (ECHO, DENYLIST):
            if not os.access(binary, os.X_OK):
                self.fail("agent binary %s not built" % binary)
        self.origin = self.start_origin("app")
        self.list_path = os.path.join(self.workdir, "deny.list")
        with open(self.list_path, "w") as f:
            f.write(RULES)
        self.deny_socket = os.path.join(self.workdir, "deny.sock")
        self.start_agent([DENYLIST, "--socket", self.deny_socket, "--list", self.list_path],
                         os.path.join(self.workdir, "deny.ready"))
        self.echo_port = free_port()
        self.start_agent([ECHO, "--socket", "tcp://127.0.0.1:%d" % self.echo_port],
                         os.path.join(self.workdir, "echo.ready"))
        self.port, self.admin = free_port(), free_port()
        self.audit = os.path.join(self.workdir, "audit.log")

    def config(self, prefix="X-Seen-"):
        return (CONFIG.replace("@admin@", str(self.admin)).replace("@port@", str(self.port))
                .replace("@origin@", self.origin.address).replace("@deny@", self.deny_socket)
                .replace("@echo@", str(self.echo_port)).replace("@prefix@", prefix)
                .replace("@audit@", self.audit))

    def seen(self, r):
        """The headers the origin received, by lower-case name."""
        return {k.lower(): v for k, v in r.json()["headers"]}

    def test_echo_over_tcp_with_its_pushed_config_and_denylist_first(self):
        s = self.start_sentinel(self.config(), port=self.port, admin_port=self.admin, ready_path="/ready")
        wait_until(lambda: s.metric("sentinel_agent_connections", agent="echo") >= 1, 10, what="echo connection")
        r = http_request(self.port, "GET", "/demo/page?q=1", headers=[("X-Seen-Agent", "forged")])
        self.assertEqual(r.status, 200, r)
        seen = self.seen(r)
        self.assertEqual(seen.get("x-seen-agent"), "0.1.0", seen)  # SET: the client's copy is gone
        self.assertEqual(seen.get("x-seen-method"), "GET")
        self.assertEqual(seen.get("x-seen-path"), "/demo/page")
        self.assertEqual(seen.get("x-seen-route"), "app")
        self.assertEqual(seen.get("x-seen-client"), "127.0.0.1")
        self.assertEqual(seen.get("x-seen-request-id"), r.header("X-Request-Id"))
        self.assertNotIn("x-echo-agent", seen, "the pushed header-prefix was not used")
        self.assertEqual(s.metric("sentinel_agent_decisions_total", agent="echo", outcome="allow"), 1)
        self.assertEqual(s.metric("sentinel_agent_decisions_total", agent="denylist", outcome="allow"), 1)

    def test_denylist_blocks_with_its_configured_status_and_audits(self):
        s = self.start_sentinel(self.config(), port=self.port, admin_port=self.admin, ready_path="/ready")
        before = self.origin.stats()["requests_total"]
        for path, headers in (("/admin/x", []), ("/demo", [("User-Agent", "a BadBot/1.0")]),
                              ("/demo", [("X-Evil", "yes")]), ("/x/../admin", [])):
            with self.subTest(path=path, headers=headers):
                r = http_request(self.port, "GET", path, headers=headers)
                self.assertEqual(r.status, 451, r)
        self.assertEqual(self.origin.stats()["requests_total"], before, "a blocked request reached the origin")
        # Blocked by the first agent: the second is never asked.
        self.assertEqual(s.metric("sentinel_agent_decisions_total", agent="echo", outcome="allow"), 0)
        def audit_lines():
            if not os.path.exists(self.audit):
                return []
            with open(self.audit) as f:
                return f.read().splitlines()
        wait_until(lambda: len(audit_lines()) >= 4, 5, what="4 audit lines")
        entries = [json.loads(l) for l in audit_lines()]
        self.assertTrue(all(e["reason"] == "agent_decision" and e["decision"] == "blocked" for e in entries), entries)
        self.assertIn("agent=denylist status=451 rules=denylist:2 tags=denylist reason=path /admin", entries[0]["details"])

    def test_denylist_list_reloads_without_restart(self):
        s = self.start_sentinel(self.config(), port=self.port, admin_port=self.admin, ready_path="/ready")
        self.assertEqual(http_request(self.port, "GET", "/private").status, 200)
        tmp = self.list_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(RULES + "path /private\n")
        os.replace(tmp, self.list_path)  # as an operator would: atomically
        wait_until(lambda: http_request(self.port, "GET", "/private").status == 451, 10,
                   what="the new rule to take effect")
        self.assertEqual(http_request(self.port, "GET", "/demo").status, 200)
        self.assertEqual(s.metric("sentinel_agent_connects_total", agent="denylist", result="ok"), 1,
                         "the list reload must not need a reconnect")

    def test_a_config_the_echo_agent_rejects_fails_startup_at_its_position(self):
        text = self.config(prefix="Bad Prefix")
        s = Sentinel(self.workdir, text, port=self.port, wait=False)
        self.addCleanup(s.kill)
        code = s.proc.wait(timeout=20)
        self.assertNotEqual(code, 0)
        out, err = s.output()
        line = text[:text.index('header-prefix "Bad Prefix"')].count("\n") + 1
        self.assertRegex(out + err, r'sentinel\.kdl:%d:\d+: agent "echo" rejected its config' % line)


if __name__ == "__main__":
    unittest.main()
