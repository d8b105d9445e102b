"""CLI: `sentinel version`, `--help`, `validate` (good and bad files), `run` on a busy port."""

import socket
import time
import unittest

from harness import IntegrationTest, free_port, render

GOOD = """\
listeners { listener "public" { listen "127.0.0.1:@port@"; protocol "http" } }
routes {
    route "hello" { match { path "/hello" }; respond 200 { body "hi\\n" } }
    route "api" { match { path-prefix "/" }; upstream "api" }
}
upstreams { upstream "api" { endpoint "127.0.0.1:9" } }
"""

# Line 3 holds a key the schema does not know: validate must point at 3:<col>.
BAD = """\
listeners { listener "public" { listen "127.0.0.1:8080" } }
routes {
    route "x" { matchh { path "/x" }; respond 200 }
}
"""


class CliTest(IntegrationTest):

    def test_version(self):
        p = self.run_sentinel_cli("version")
        out = p.stdout.decode()
        self.assertEqual(p.returncode, 0, p)
        self.assertRegex(out, r"\d+\.\d+\.\d+", "no version number in %r" % out)

    def test_help(self):
        p = self.run_sentinel_cli("--help")
        self.assertEqual(p.returncode, 0, p)
        text = (p.stdout + p.stderr).decode()
        for sub in ("run", "validate", "version"):
            self.assertIn(sub, text, "--help does not mention %r:\n%s" % (sub, text))

    def test_unknown_subcommand_fails(self):
        p = self.run_sentinel_cli("no-such-subcommand")
        self.assertNotEqual(p.returncode, 0, p)

    def test_validate_good(self):
        path = self.write_file("good.kdl", render(GOOD, port=free_port()))
        p = self.run_sentinel_cli("validate", path)
        self.assertEqual(p.returncode, 0, p)
        lines = [ln for ln in p.stdout.decode().splitlines() if ln.strip()]
        self.assertEqual(len(lines), 1, "expected a one-line summary, got %r" % p.stdout)

    def test_validate_bad_points_at_file_line_col(self):
        path = self.write_file("bad.kdl", BAD)
        p = self.run_sentinel_cli("validate", path)
        self.assertEqual(p.returncode, 1, p)
        text = (p.stdout + p.stderr).decode()
        self.assertRegex(text, r"bad\.kdl:3:\d+", "no file:line:col in:\n%s" % text)

    def test_validate_syntax_error(self):
        path = self.write_file("syntax.kdl", 'routes {\n  route "x" {\n')
        p = self.run_sentinel_cli("validate", path)
        self.assertEqual(p.returncode, 1, p)
        self.assertRegex((p.stdout + p.stderr).decode(), r"syntax\.kdl:\d+:\d+")

    def test_validate_missing_file(self):
        p = self.run_sentinel_cli("validate", self.workdir + "/does-not-exist.kdl")
        self.assertEqual(p.returncode, 1, p)

    def test_run_port_in_use_exits_nonzero_quickly(self):
        blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(blocker.close)
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        path = self.write_file("busy.kdl", render(GOOD, port=port))
        t0 = time.monotonic()
        p = self.run_sentinel_cli("run", "-c", path, timeout=15)
        elapsed = time.monotonic() - t0
        self.assertNotEqual(p.returncode, 0, p)
        self.assertLess(elapsed, 10.0, "took %.1fs to give up on a busy port" % elapsed)
        text = (p.stdout + p.stderr).decode()
        self.assertIn(str(port), text, "error does not name the busy address:\n%s" % text)


if __name__ == "__main__":
    unittest.main()
