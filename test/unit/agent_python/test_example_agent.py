"""The SDK's example agent run as a process the way the README says, plus check_generated.py."""

import os
import shutil
import subprocess
import unittest

from agent_test_support import (PYTHON, REPO, SDK, AgentProcess, FakeProxy, TempDir, config, pb, sa)

F = sa.FrameType
SCRIPT = os.path.join(SDK, "examples", "header_agent.py")
CHECK = os.path.join(SDK, "check_generated.py")
END = sa.FLAG_END_STREAM


class HeaderAgentTest(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.addCleanup(self.tmp.cleanup)
        # Without PYTHONPATH, as the README runs it: the example finds the SDK next to itself.
        self.agent = AgentProcess(SCRIPT, ["--socket", self.tmp.join("h.sock")], self.tmp,
                                  drop_env=("PYTHONPATH",))
        self.addCleanup(self.agent.kill)
        self.agent.wait_ready()

    def connect(self, cfg):
        proxy = FakeProxy(self.agent.address)
        self.addCleanup(proxy.close)
        return proxy, proxy.hello(config=cfg)

    def test_tags_with_the_route_and_blocks_configured_paths(self):
        proxy, ack = self.connect(config(("route-header", ["x-route-id"]), ("block-path", ["/admin", "/internal"]),
                                         ("block-status", [404])))
        self.assertEqual(list(ack.config_errors), [])
        self.assertEqual(ack.agent_name, "sentinel-header-agent")
        proxy.request(1, "/api/users", route="api", flags=END)
        d = proxy.expect(F.DECISION, 1)
        self.assertTrue(d.allow)
        self.assertEqual([(m.op, m.name, m.value) for m in d.request_headers],
                         [(pb.HeaderMutation.SET, "x-route-id", b"api")])
        proxy.request(2, "/internal/metrics", flags=END)
        d = proxy.expect(F.DECISION, 2)
        self.assertEqual((d.block.status, d.block.body), (404, b"blocked by sentinel-header-agent\n"))
        self.assertEqual(list(d.audit.rule_ids), ["block-path"])

    def test_default_header_name(self):
        proxy, ack = self.connect(config())
        proxy.request(1, "/admin", route="r", flags=END)
        self.assertEqual(proxy.expect(F.DECISION, 1).request_headers[0].name, "x-sentinel-route")

    def test_config_errors(self):
        _, ack = self.connect(config(("route-header", ["bad name"]), ("block-path", ["relative"]),
                                     ("block-status", [200]), ("colour", ["red"])))
        p = "agents.agent[test].config"
        self.assertEqual([e.path for e in ack.config_errors],
                         [p + ".route-header[0]", p + ".block-path[1]", p + ".block-status[2]", p + ".colour[3]"])
        self.assertIn("unknown setting 'colour'", ack.config_errors[3].message)

    def test_sigterm_without_connections_exits_cleanly(self):
        self.assertEqual(self.agent.terminate(), 0)
        self.assertFalse(os.path.exists(self.tmp.join("h.sock")))


class CheckGeneratedTest(unittest.TestCase):
    def run_check(self, *args):
        return subprocess.run([PYTHON, CHECK] + list(args), capture_output=True, text=True, timeout=60)

    @unittest.skipUnless(shutil.which("protoc"), "protoc not installed")
    def test_committed_module_is_current(self):
        result = self.run_check()
        self.assertEqual(result.returncode, 0, result.stderr)

    @unittest.skipUnless(shutil.which("protoc"), "protoc not installed")
    def test_stale_module_fails(self):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        stale = tmp.join("stale_pb2.py")
        with open(os.path.join(SDK, "sentinel_agent", "sentinel_agent_v1_pb2.py")) as f:
            text = f.read()
        with open(stale, "w") as f:
            f.write(text.replace("BuildTopDescriptorsAndMessages", "BuildTopDescriptorsAndMessagez"))
        result = self.run_check("--committed", stale)
        self.assertEqual(result.returncode, 1)
        self.assertIn("is stale", result.stderr)
        self.assertIn("BuildTopDescriptorsAndMessagez", result.stderr)
        self.assertEqual(self.run_check("--committed", tmp.join("missing.py")).returncode, 1)
        # --write brings it back in line.
        self.assertEqual(self.run_check("--committed", stale, "--write").returncode, 0)
        self.assertEqual(self.run_check("--committed", stale).returncode, 0)

    def test_protoc_failure(self):
        result = self.run_check("--protoc", os.path.join(REPO, "no-such-protoc"))
        self.assertEqual(result.returncode, 2)


if __name__ == "__main__":
    unittest.main()
