"""External agents, protocol v1 (agents/protocol/PROTOCOL.md), end to end.

Real processes only: `sentinel`, test/support/origin.py as the upstream, the scripted agent
test/support/test_agent.py (its decisions come from the x-agent-* request headers the test
sends; its --log is a JSON line per frame, which is how the tests see what reached the agent),
the SDK's example agent agents/sdk/python/examples/header_agent.py where two agents on one
route must decide differently on the same request, and raw sockets or the harness client.

AgentsTest shares one Sentinel (one worker, so one connection per agent id) and a handful of
agent processes. Several agent ids point at the same agent process: each id has its own
connection, its own settings (timeout, failure mode, limits) and its own state (breaker,
concurrency, health), and the agent log tells the ids apart through the HELLO of each
connection. Routes are chosen with the X-Route header; route "via-ID" consults agent ID.
AgentConfigTest starts a Sentinel per test (config push: rejections at start-up and on
reload, re-push and drain on reload, unreachable agents).

Run: cd test/integration && SENTINEL_BIN=/path/to/sentinel /usr/bin/python3 -m unittest -v test_agents
"""

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
import unittest
import uuid

from harness import (PATTERN, PYTHON, READY_TIMEOUT, REPO, SUPPORT, IntegrationTest,
                     KeepAliveClient, ResponseReader, Sentinel, connect, free_port, http_request,
                     render, request_bytes, spawn, wait_until)

SDK = os.path.join(REPO, "agents", "sdk", "python")
TEST_AGENT = os.path.join(SUPPORT, "test_agent.py")
HEADER_AGENT = os.path.join(SDK, "examples", "header_agent.py")
BLOCK_BODY = b"blocked by test agent"


# ---- agent processes ------------------------------------------------------------------------

def read_json_lines(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.decode(errors="replace").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line still being written
    return out


class AgentProcess:
    """One agent process on a Unix socket in `workdir`. For test_agent.py, log() reads its
    frame log; start() again (after kill()) runs a fresh process on the same socket with a
    fresh log, as an operator restarting the agent would."""

    def __init__(self, workdir, name, args=(), script=TEST_AGENT, wait=True):
        self.workdir = workdir
        self.name = name
        self.args = list(args)
        self.script = script
        self.socket = os.path.join(workdir, name + ".sock")
        self.generation = 0
        self.proc = None
        self.start(wait)

    def start(self, wait=True):
        self.generation += 1
        base = os.path.join(self.workdir, "%s.%d" % (self.name, self.generation))
        self.log_path = base + ".jsonl"
        self.ready_path = base + ".ready"
        self.stderr_path = base + ".stderr"
        argv = [PYTHON, self.script, "--socket", self.socket, "--ready-file", self.ready_path]
        if self.script == TEST_AGENT:
            argv += ["--name", self.name, "--log", self.log_path]
        argv += self.args
        env = dict(os.environ, PYTHONPATH=SDK, PYTHONDONTWRITEBYTECODE="1")
        with open(self.stderr_path, "wb") as err:
            self.proc = spawn(argv, stdout=subprocess.DEVNULL, stderr=err, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("agent %s exited with %s before it was ready:\n%s"
                                     % (self.name, self.proc.returncode, self.stderr()[-2000:]))
            return os.path.exists(self.ready_path)
        deadline = time.monotonic() + READY_TIMEOUT
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError("agent %s not ready within %ss:\n%s"
                                     % (self.name, READY_TIMEOUT, self.stderr()[-2000:]))
            time.sleep(0.02)

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def kill(self):
        """SIGKILL: the agent dies with whatever it was doing (its socket file stays)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(timeout=10)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    # -- the frame log (test_agent.py --log)

    def log(self):
        return read_json_lines(self.log_path)

    def conns_of(self, agent_id, entries=None):
        """Connection numbers whose (serving, not validate-only) HELLO named `agent_id`."""
        return {e["conn"] for e in (entries if entries is not None else self.log())
                if e["type"] == "HELLO" and e["dir"] == "in" and not e["validate_only"]
                and e["agent_id"] == agent_id}

    def find_request(self, test_id, agent_id=None, entries=None):
        entries = entries if entries is not None else self.log()
        conns = self.conns_of(agent_id, entries) if agent_id else None
        for e in entries:
            if (e["type"] == "REQUEST_HEADERS" and e["dir"] == "in"
                    and e["headers"].get("x-test-id") == test_id
                    and (conns is None or e["conn"] in conns)):
                return e
        return None

    def wait_request(self, test_id, agent_id=None, timeout=10):
        return wait_until(lambda: self.find_request(test_id, agent_id), timeout,
                          what="REQUEST_HEADERS of %s at agent %s (%s)" % (test_id, self.name, agent_id))

    def stream(self, entry, entries=None):
        """Every log line of the stream `entry` belongs to, in order."""
        entries = entries if entries is not None else self.log()
        return [e for e in entries if e["conn"] == entry["conn"] and e["stream"] == entry["stream"]]

    def frames(self, entry, type_name, direction="in"):
        return [e for e in self.stream(entry) if e["type"] == type_name and e["dir"] == direction]

    def wait_frame(self, entry, type_name, direction="in", timeout=10):
        return wait_until(lambda: self.frames(entry, type_name, direction), timeout,
                          what="%s %s on stream %s of conn %s at agent %s"
                          % (direction, type_name, entry["stream"], entry["conn"], self.name))[0]


def act_as_second_proxy(socket_path, headers, timeout=5.0):
    """Speaks the proxy side of the protocol on a connection of its own: HELLO, then one
    REQUEST_HEADERS carrying `headers` (END_STREAM), and returns the DECISION. A test uses it
    to make an agent do something (e.g. report HEALTHY on all its connections) when Sentinel
    itself will not send that agent a request."""
    if SDK not in sys.path:
        sys.path.insert(0, SDK)
    from sentinel_agent import pb
    from sentinel_agent.frame import (FLAG_END_STREAM, FrameDecoder, FrameType, Sender,
                                      encode_frame, parse_payload)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(socket_path)
        s.sendall(encode_frame(FrameType.HELLO, 0, pb.Hello(versions=[1], proxy_name="test",
                                                             agent_id="second-proxy")))
        ev = pb.RequestHeaders(method="GET", path="/control", route="control")
        for name, value in headers:
            ev.headers.add(name=name, value=value.encode())
        s.sendall(encode_frame(FrameType.REQUEST_HEADERS, 1, ev, flags=FLAG_END_STREAM))
        decoder = FrameDecoder(Sender.PROXY)
        while True:
            data = s.recv(65536)
            if not data:
                raise ConnectionError("agent closed the control connection")
            for frame in decoder.feed(data):
                if frame.type == FrameType.DECISION and frame.stream_id == 1:
                    return parse_payload(frame)


def header_map(pairs):
    """[[name, value], ...] (origin's JSON) → {lower-case name: [values]}."""
    out = {}
    for k, v in pairs:
        out.setdefault(k.lower(), []).append(v)
    return out


def new_id():
    return uuid.uuid4().hex


class AgentTestBase(IntegrationTest):

    port = None
    s = None

    def send(self, route, action=None, path="/demo/agents", headers=(), method="GET", body=b"",
             test_id=None, timeout=15, port=None):
        """One request on route `route` (the X-Route header); returns (Response, test id)."""
        test_id = test_id or new_id()
        hs = [("X-Route", route), ("X-Test-Id", test_id)]
        if action is not None:
            hs.append(("X-Agent-Action", action))
        hs += list(headers)
        if method in ("POST", "PUT") and not any(k.lower() in ("content-length", "transfer-encoding")
                                                 for k, _ in hs):
            hs.append(("Content-Length", str(len(body))))
        r = http_request(port or self.port, method, path, headers=hs, body=body, timeout=timeout)
        return r, test_id

    def m(self, name, **labels):
        return self.s.metric(name, **labels)

    def decisions(self, agent, outcome):
        return self.m("sentinel_agent_decisions_total", agent=agent, outcome=outcome)

    def wait_metric(self, name, value, what=None, timeout=5, **labels):
        wait_until(lambda: self.m(name, **labels) == value, timeout,
                   what=what or "%s%r == %s (now %s)" % (name, labels, value, self.m(name, **labels)))

    def origin_requests(self):
        return self.origin.stats()["requests_total"]


# ---- one Sentinel, many agents ---------------------------------------------------------------

# id → (agent process, settings). Each id gets route "via-ID" (X-Route: ID).
AGENT_IDS = {
    "ta": ("ta", 'failure-mode "closed"; timeout "2s"'),
    "tb": ("tb", 'failure-mode "closed"; timeout "2s"'),
    "hb": ("hdr", 'failure-mode "closed"; timeout "2s"\n'
                  '        config {\n'
                  '            route-header "x-from-hb"\n'
                  '            block-path "/b-blocks"\n'
                  '            block-status 452\n'
                  '        }'),
    "to-open": ("ta", 'failure-mode "open"; timeout "150ms"'),
    "to-closed": ("ta", 'failure-mode "closed"; timeout "150ms"'),
    "gone": ("ta", 'failure-mode "closed"; timeout "5s"'),
    "proto": ("ta", 'failure-mode "closed"; timeout "1s"; reconnect-backoff "20ms" max="200ms"'),
    "proto-open": ("ta", 'failure-mode "open"; timeout "1s"'),
    "cap1": ("ta", 'failure-mode "closed"; timeout "3s"; max-concurrent 1'),
    "brk": ("ta", 'failure-mode "closed"; timeout "100ms"; circuit-breaker { failures 2; open-for "1s"; }'),
    "drn": ("ta", 'failure-mode "closed"; timeout "2s"'),
    "v-open": ("victim", 'failure-mode "open"; timeout "1s"; reconnect-backoff "20ms" max="100ms"'),
    "v-closed": ("victim", 'failure-mode "closed"; timeout "1s"; reconnect-backoff "20ms" max="100ms"'),
    "resp": ("resp", 'failure-mode "closed"; timeout "2s"'),
    "resp-to": ("resp", 'failure-mode "closed"; timeout "150ms"'),
    "resp-to-open": ("resp", 'failure-mode "open"; timeout "150ms"'),
    "buf": ("buf", 'failure-mode "closed"; timeout "2s"'),
    "buf-reject": ("buf", 'failure-mode "closed"; timeout "2s"; max-body "1KiB"; body-over-limit "reject"'),
    "buf-skip": ("buf", 'failure-mode "closed"; timeout "2s"; max-body "1KiB"; body-over-limit "skip"'),
    "strm": ("strm", 'failure-mode "closed"; timeout "2s"'),
    "strm-reject": ("strm", 'failure-mode "closed"; timeout "2s"; max-body "1KiB"; body-over-limit "reject"'),
    "strm-skip": ("strm", 'failure-mode "closed"; timeout "2s"; max-body "1KiB"; body-over-limit "skip"'),
    "buf-frames": ("bufsmall", 'failure-mode "closed"; timeout "2s"'),
    "strm-frames": ("strmsmall", 'failure-mode "closed"; timeout "2s"'),
    "head-frames": ("bufsmall", 'failure-mode "closed"; timeout "2s"'),
    "rc": ("rc", 'failure-mode "closed"; timeout "2s"'),
    "mc1": ("mc1", 'failure-mode "closed"; timeout "2s"'),
    "sick": ("sick", 'failure-mode "closed"; timeout "1s"'),
    "sick2": ("sick2", 'failure-mode "closed"; timeout "1s"; reconnect-backoff "20ms" max="100ms"'),
}

# process name → (script, arguments)
AGENT_PROCESSES = {
    "ta": (TEST_AGENT, []),
    "tb": (TEST_AGENT, []),
    "hdr": (HEADER_AGENT, []),
    "victim": (TEST_AGENT, []),
    "resp": (TEST_AGENT, ["--events", "request-headers,response-headers"]),
    "buf": (TEST_AGENT, ["--events", "request-headers,request-body", "--request-body-mode", "buffer"]),
    "strm": (TEST_AGENT, ["--events", "request-headers,request-body", "--request-body-mode", "stream"]),
    "bufsmall": (TEST_AGENT, ["--events", "request-headers,request-body", "--request-body-mode", "buffer",
                              "--max-frame-size", "4096"]),
    "strmsmall": (TEST_AGENT, ["--events", "request-headers,request-body", "--request-body-mode", "stream",
                               "--max-frame-size", "4096"]),
    "rc": (TEST_AGENT, ["--events", "request-headers,request-complete"]),
    "mc1": (TEST_AGENT, ["--max-concurrency", "1"]),
    "sick": (TEST_AGENT, []),
    "sick2": (TEST_AGENT, []),
}

MAIN_CONFIG = r"""
system { workers 1 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ok\n" } }
    route "plain" { match { header "X-Route" "plain" }; upstream "app" }
    route "chain" { match { header "X-Route" "chain" }; upstream "app"; agents "ta" "tb" }
    route "conc" { match { header "X-Route" "conc" }; upstream "app"; agents "ta" "tb"; agents-concurrent #true }
    route "conc-hdr" { match { header "X-Route" "conc-hdr" }; upstream "app"; agents "ta" "hb"; agents-concurrent #true }
    route "conc-hdr-rev" { match { header "X-Route" "conc-hdr-rev" }; upstream "app"; agents "hb" "ta"; agents-concurrent #true }
@routes@
}
upstreams { upstream "app" { endpoint "@origin@" } }
agents {
@agents@
}
observability { audit-log { path "@audit@" } }
"""


class AgentsTest(AgentTestBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.class_workdir
        cls.origin = cls.class_origin("app")
        cls.agents = {}
        for name, (script, args) in AGENT_PROCESSES.items():
            a = AgentProcess(d, name, args, script=script, wait=False)
            cls.addClassCleanup(a.stop)
            cls.agents[name] = a
        for a in cls.agents.values():
            a.wait_ready()
        cls.ta, cls.tb = cls.agents["ta"], cls.agents["tb"]
        routes, agents = [], []
        for agent_id, (proc, settings) in AGENT_IDS.items():
            routes.append('    route "via-%s" { match { header "X-Route" "%s" }; upstream "app"; agents "%s" }'
                          % (agent_id, agent_id, agent_id))
            if "circuit-breaker" not in settings:
                settings += "\n        circuit-breaker { failures 1000; }"  # only brk tests it
            agents.append('    agent "%s" {\n        socket "%s"\n        %s\n    }'
                          % (agent_id, cls.agents[proc].socket, settings))
        cls.port, cls.admin = free_port(), free_port()
        cls.audit_path = os.path.join(d, "audit.log")
        cfg = render(MAIN_CONFIG, port=cls.port, admin=cls.admin, origin=cls.origin.address,
                     routes="\n".join(routes), agents="\n".join(agents), audit=cls.audit_path)
        cls.s = cls.class_sentinel(cfg, port=cls.port, admin_port=cls.admin, ready_path="/ready")
        # Every agent id connected (one worker: one connection each).
        for agent_id in AGENT_IDS:
            wait_until(lambda: cls.s.metric("sentinel_agent_connections", agent=agent_id) == 1,
                       READY_TIMEOUT, what="agent %s to be connected" % agent_id)

    def tearDown(self):
        # Whatever happened, every stream a test opened has ended (answered, cancelled or
        # failed with its connection): nothing leaks in flight.
        wait_until(lambda: self.m("sentinel_agent_in_flight") == 0, 5,
                   what="no agent stream left in flight (now %s)" % self.m("sentinel_agent_in_flight"))
        super().tearDown()

    def audit_entries(self):
        return read_json_lines(self.audit_path)

    def wait_audit(self, request_id):
        return wait_until(lambda: [e for e in self.audit_entries() if e.get("request_id") == request_id],
                          5, what="an audit entry for request %s" % request_id)

    # -- 1. allow, header changes, metadata, several agents --------------------------------------

    def test_allow_applies_request_and_response_header_changes(self):
        allowed = self.decisions("ta", "allow")
        r, tid = self.send("ta", "allow", path="/headers", headers=[
            ("X-Agent-Set", "X-Set-By-Agent: from-agent"),
            ("X-Set-By-Agent", "from-client"),
            ("X-Agent-Add", "X-Added-By-Agent: added"),
            ("X-Agent-Remove", "X-Remove-Me"),
            ("X-Remove-Me", "secret"),
            ("X-Agent-Response-Set", "X-Agent-Said: hello"),
        ])
        self.assertEqual(r.status, 200, r)
        seen = header_map(r.json()["headers"])
        self.assertEqual(seen.get("x-set-by-agent"), ["from-agent"], seen)
        self.assertEqual(seen.get("x-added-by-agent"), ["added"], seen)
        self.assertNotIn("x-remove-me", seen)
        self.assertEqual(r.header("X-Agent-Said"), "hello", r)
        self.assertEqual(self.decisions("ta", "allow"), allowed + 1)

        ev = self.ta.find_request(tid, "ta")
        self.assertIsNotNone(ev, "the agent never saw the request")
        self.assertEqual((ev["method"], ev["path"], ev["route"], ev["listener"]),
                         ("GET", "/headers", "via-ta", "public"), ev)
        self.assertEqual(ev["client_address"], "127.0.0.1", ev)
        self.assertTrue(ev["request_id"], ev)
        self.assertFalse(ev["has_body"], ev)
        # Request headers only: the one event is also the last one on the stream.
        self.assertEqual(ev["flags"], 1, "REQUEST_HEADERS without END_STREAM: %r" % ev)
        # (The agent logs a frame after writing it: wait for the line.)
        d = self.ta.wait_frame(ev, "DECISION", "out")
        self.assertEqual(d["action"], "allow", d)

    def test_sequential_agents_see_earlier_metadata_and_header_changes(self):
        r, tid = self.send("chain", "sleep:150", path="/headers", headers=[
            ("X-Agent-Metadata", "stage=one"),
            ("X-Agent-Set", "X-Set-By-Agent: yes"),
        ])
        self.assertEqual(r.status, 200, r)
        a = self.ta.find_request(tid, "ta")
        b = self.tb.find_request(tid, "tb")
        self.assertIsNotNone(a)
        self.assertIsNotNone(b)
        self.assertEqual(a["metadata"], {}, a)
        self.assertEqual(b["metadata"], {"stage": "one"}, "B did not get A's metadata: %r" % b)
        self.assertEqual(b["headers"].get("x-set-by-agent"), "yes", "B did not see A's SET: %r" % b)
        a_decision = self.ta.wait_frame(a, "DECISION", "out")
        self.assertGreaterEqual(b["time"], a_decision["time"],
                                "B's event was sent before A decided on a sequential route")
        self.assertEqual(header_map(r.json()["headers"]).get("x-set-by-agent"), ["yes"])

    def test_concurrent_agents_get_their_events_at_once(self):
        r, tid = self.send("conc", "sleep:300", path="/headers", headers=[
            ("X-Agent-Metadata", "stage=one"),
            ("X-Agent-Set", "X-Set-By-Agent: yes"),
        ])
        self.assertEqual(r.status, 200, r)
        a = self.ta.find_request(tid, "ta")
        b = self.tb.find_request(tid, "tb")
        self.assertIsNotNone(a)
        self.assertIsNotNone(b)
        a_decision = self.ta.wait_frame(a, "DECISION", "out")
        self.assertLess(b["time"], a_decision["time"],
                        "agents-concurrent: B's event waited for A's decision")
        # Sent at once, B cannot see what A decides.
        self.assertEqual(b["metadata"], {}, b)
        self.assertNotIn("x-set-by-agent", b["headers"], b)
        # Both changes still apply upstream, in route order.
        self.assertEqual(header_map(r.json()["headers"]).get("x-set-by-agent"), ["yes"])

    def test_concurrent_agents_first_block_in_route_order_wins(self):
        # Route conc-hdr = agents "ta" "hb" concurrent; hb (header_agent.py) blocks /b-blocks
        # with 452 and allows everything else; ta does what X-Agent-Action says.
        before = self.origin_requests()
        # A (slow) allows with changes, B blocks at once: B's block, after A's decision.
        t0 = time.monotonic()
        r, tid = self.send("conc-hdr", "sleep:200", path="/b-blocks/1", headers=[
            ("X-Agent-Set", "X-From-Ta: 1"), ("X-Agent-Response-Set", "X-Ta-Said: allow")])
        elapsed = time.monotonic() - t0
        self.assertEqual(r.status, 452, r)
        self.assertIn(b"blocked by sentinel-header-agent", r.body)
        self.assertGreaterEqual(elapsed, 0.19, "B's block was applied before A's decision")
        # A's response change applies to the block reply too (PROTOCOL.md §6).
        self.assertEqual(r.header("X-Ta-Said"), "allow", r)
        d = self.ta.wait_frame(self.ta.find_request(tid, "ta"), "DECISION", "out")
        self.assertEqual(d["action"], "allow")

        # A blocks, B allows: A's block.
        r, _ = self.send("conc-hdr", "block", path="/demo/ok", headers=[("X-Agent-Status", "451")])
        self.assertEqual((r.status, r.body), (451, BLOCK_BODY), r)
        # Both block: the first in route order wins.
        r, _ = self.send("conc-hdr", "block", path="/b-blocks/2", headers=[("X-Agent-Status", "451")])
        self.assertEqual(r.status, 451, r)
        self.assertEqual(self.origin_requests(), before, "a blocked request reached the origin")

        # Route order reversed (hb, ta): hb's block wins at once and ta's stream, still
        # working, is cancelled.
        t0 = time.monotonic()
        r, tid = self.send("conc-hdr-rev", "sleep:3000", path="/b-blocks/3")
        self.assertEqual(r.status, 452, r)
        self.assertLess(time.monotonic() - t0, 2.5, "the block waited for the later agent")
        ev = self.ta.wait_request(tid, "ta")
        cancel = self.ta.wait_frame(ev, "CANCEL")
        self.assertEqual(cancel["reason"], "ENDED", cancel)
        self.assertTrue(cancel["busy"], cancel)
        self.assertEqual(self.ta.frames(ev, "DECISION", "out"), [])

    def test_nothing_carries_over_to_the_next_request_on_a_connection(self):
        with KeepAliveClient(self.port) as c:
            r = c.request("GET", "/headers", headers=[
                ("X-Route", "chain"), ("X-Test-Id", new_id()), ("X-Agent-Metadata", "leak=yes"),
                ("X-Agent-Set", "X-Leak: yes"), ("X-Agent-Response-Set", "X-Leak-Response: yes")])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("X-Leak-Response"), "yes")
            tid = new_id()
            r = c.request("GET", "/headers", headers=[("X-Route", "chain"), ("X-Test-Id", tid)])
            self.assertEqual(r.status, 200, r)
            self.assertNotIn("x-leak", header_map(r.json()["headers"]))
            self.assertIsNone(r.header("X-Leak-Response"), r)
            b = self.tb.find_request(tid, "tb")
            self.assertEqual(b["metadata"], {}, b)
            self.assertNotIn("x-leak", b["headers"], b)

    def test_request_complete_reports_the_outcome(self):
        rc = self.agents["rc"]
        r, tid = self.send("rc", "allow")
        self.assertEqual(r.status, 200, r)
        ev = rc.find_request(tid, "rc")
        self.assertEqual(ev["flags"], 0, "END_STREAM on REQUEST_HEADERS although REQUEST_COMPLETE follows")
        done = rc.wait_frame(ev, "REQUEST_COMPLETE")
        self.assertEqual((done["status"], done["blocked_by"], done["upstream"], done["flags"]),
                         (200, "", self.origin.address, 1), done)
        self.assertGreater(done["bytes_sent"], len(r.body), done)
        r, tid = self.send("rc", "block", headers=[("X-Agent-Status", "451")])
        self.assertEqual(r.status, 451, r)
        done = rc.wait_frame(rc.find_request(tid, "rc"), "REQUEST_COMPLETE")
        self.assertEqual((done["status"], done["blocked_by"], done["upstream"]), (451, "rc", ""), done)
        # REQUEST_COMPLETE is not answered.
        self.assertEqual(len(rc.frames(ev, "DECISION", "out")), 1)

    def test_head_request_blocked_gets_no_body(self):
        with KeepAliveClient(self.port) as c:
            r = c.request("HEAD", "/demo/x", headers=[("X-Route", "ta"), ("X-Test-Id", new_id()),
                                                      ("X-Agent-Action", "block")])
            self.assertEqual((r.status, r.body), (403, b""), r)
            r = c.request("GET", "/demo/y", headers=[("X-Route", "ta"), ("X-Test-Id", new_id())])
            self.assertEqual(r.status, 200, r)

    # -- 2. block, redirect, audit ------------------------------------------------------------

    def test_block_answers_the_client_and_is_audited(self):
        before = self.origin_requests()
        blocks = self.decisions("ta", "block")
        r, tid = self.send("ta", "block", headers=[("X-Agent-Status", "429"),
                                                   ("X-Agent-Audit", "too many things")])
        self.assertEqual((r.status, r.body), (429, BLOCK_BODY), r)
        rid = r.header("X-Request-Id")
        self.assertTrue(rid, r)
        r2, _ = self.send("ta", "block")
        self.assertEqual((r2.status, r2.body), (403, BLOCK_BODY), r2)
        self.assertEqual(self.origin_requests(), before, "a blocked request reached the origin")
        self.assertEqual(self.decisions("ta", "block"), blocks + 2)

        [e] = self.wait_audit(rid)
        self.assertEqual((e["decision"], e["reason"], e["route"]), ("blocked", "agent_decision", "via-ta"), e)
        self.assertIn("agent=ta", e["details"], e)
        self.assertIn("status=429", e["details"], e)
        self.assertIn("reason=too many things", e["details"], e)
        self.assertEqual(self.ta.find_request(tid, "ta")["request_id"], rid)

    def test_redirect(self):
        redirects = self.decisions("ta", "redirect")
        r, _ = self.send("ta", "redirect", headers=[("X-Agent-Location", "/moved/here"),
                                                    ("X-Agent-Status", "301")])
        self.assertEqual(r.status, 301, r)
        self.assertEqual(r.header("Location"), "/moved/here", r)
        r, _ = self.send("ta", "redirect", headers=[("X-Agent-Location", "https://elsewhere.test/x")])
        self.assertEqual(r.status, 302, r)
        self.assertEqual(r.header("Location"), "https://elsewhere.test/x", r)
        self.assertEqual(self.decisions("ta", "redirect"), redirects + 2)
        [e] = self.wait_audit(r.header("X-Request-Id"))
        self.assertEqual(e["decision"], "redirected", e)
        self.assertIn("agent=ta", e["details"], e)

    # -- 3. timeouts ----------------------------------------------------------------------------

    def test_timeout_fail_open_lets_the_request_through(self):
        fail_open = self.m("sentinel_agent_fail_open_total", agent="to-open")
        timeouts = self.decisions("to-open", "timeout")
        before = self.origin_requests()
        r, tid = self.send("to-open", "sleep:3000")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.origin_requests(), before + 1)
        self.assertEqual(self.m("sentinel_agent_fail_open_total", agent="to-open"), fail_open + 1)
        self.assertEqual(self.decisions("to-open", "timeout"), timeouts + 1)
        ev = self.ta.wait_request(tid, "to-open")
        cancel = self.ta.wait_frame(ev, "CANCEL")
        self.assertEqual(cancel["reason"], "TIMEOUT", cancel)
        self.assertTrue(cancel["busy"], cancel)
        self.assertEqual(self.ta.frames(ev, "DECISION", "out"), [], "the agent answered after CANCEL")

    def test_timeout_fail_closed_answers_503(self):
        timeouts = self.decisions("to-closed", "timeout")
        before = self.origin_requests()
        r, tid = self.send("to-closed", "sleep:3000")
        self.assertLocalReply(r, 503)
        self.assertEqual(self.origin_requests(), before)
        self.assertEqual(self.decisions("to-closed", "timeout"), timeouts + 1)
        self.assertEqual(self.m("sentinel_agent_fail_open_total", agent="to-closed"), 0)
        ev = self.ta.wait_request(tid, "to-closed")
        self.assertEqual(self.ta.wait_frame(ev, "CANCEL")["reason"], "TIMEOUT")
        [e] = self.wait_audit(r.header("X-Request-Id"))
        self.assertEqual(e["decision"], "blocked", e)
        self.assertIn("agent=to-closed", e["details"], e)
        self.assertIn("timeout", e["details"], e)

    # -- 4. an agent killed mid-request -----------------------------------------------------------

    def test_killed_agent_fails_open_or_closed_and_is_used_again_after_restart(self):
        victim = self.agents["victim"]
        results = {}
        ids = {"v-open": new_id(), "v-closed": new_id()}

        def run(agent_id):
            try:
                results[agent_id] = self.send(agent_id, "sleep:5000", test_id=ids[agent_id])[0]
            except Exception as e:  # noqa: BLE001 - reported below
                results[agent_id] = e
        errors = {a: self.decisions(a, "error") for a in ids}
        fail_open = self.m("sentinel_agent_fail_open_total", agent="v-open")
        threads = [threading.Thread(target=run, args=(a,), daemon=True) for a in ids]
        for t in threads:
            t.start()
        for agent_id, tid in ids.items():
            victim.wait_request(tid, agent_id)
        victim.kill()
        for t in threads:
            t.join(10)
        r_open, r_closed = results.get("v-open"), results.get("v-closed")
        self.assertEqual(getattr(r_open, "status", r_open), 200, r_open)
        self.assertEqual(getattr(r_closed, "status", r_closed), 503, r_closed)
        self.assertLocalReply(r_closed, 503)
        # A broken connection, not a timeout.
        for agent_id in ids:
            self.assertEqual(self.decisions(agent_id, "error"), errors[agent_id] + 1, agent_id)
            self.assertEqual(self.decisions(agent_id, "timeout"), 0, agent_id)
        self.assertEqual(self.m("sentinel_agent_fail_open_total", agent="v-open"), fail_open + 1)

        # The proxy keeps serving; the dead agent's routes get the failure mode.
        self.wait_metric("sentinel_agent_connections", 0, agent="v-closed")
        self.assertEqual(self.send("plain")[0].status, 200)
        unavailable = self.decisions("v-closed", "unavailable")
        r, _ = self.send("v-closed", "block", headers=[("X-Agent-Status", "410")])
        self.assertLocalReply(r, 503)
        self.assertEqual(self.decisions("v-closed", "unavailable"), unavailable + 1)

        # Restarted on the same socket, it decides again.
        victim.start()
        for agent_id in ids:
            self.wait_metric("sentinel_agent_connections", 1, agent=agent_id, timeout=10)
        for agent_id in ids:
            r, tid = self.send(agent_id, "block", headers=[("X-Agent-Status", "410")])
            self.assertEqual((r.status, r.body), (410, BLOCK_BODY), r)
            self.assertIsNotNone(victim.find_request(tid, agent_id))

    # -- 5. the client leaves --------------------------------------------------------------------

    def test_client_disconnect_cancels_the_agent_stream(self):
        before = self.origin_requests()
        cancels = self.m("sentinel_agent_cancels_total", agent="gone")
        tid = new_id()
        s = connect(self.port)
        try:
            s.sendall(request_bytes("GET", "/demo/gone", headers=[
                ("X-Route", "gone"), ("X-Test-Id", tid), ("X-Agent-Action", "sleep:2000")]))
            ev = self.ta.wait_request(tid, "gone")
        finally:
            s.close()
        cancel = self.ta.wait_frame(ev, "CANCEL", timeout=5)
        self.assertEqual(cancel["reason"], "CLIENT_GONE", cancel)
        self.assertTrue(cancel["busy"], cancel)
        self.assertLess(cancel["time"] - ev["time"], 1.9, "CANCEL only came when the agent would have answered")
        self.assertEqual(self.ta.frames(ev, "DECISION", "out"), [])
        self.assertEqual(self.origin_requests(), before, "the request went upstream after the client left")
        self.assertEqual(self.m("sentinel_agent_cancels_total", agent="gone"), cancels + 1)

    # -- 6. protocol errors and invalid decisions ---------------------------------------------------

    def test_protocol_errors_close_the_connection_and_are_counted(self):
        cases = [("malformed", "bad_payload"), ("garbage", "bad_frame"),
                 ("oversize", "bad_frame"), ("stray-decision", "unexpected_frame")]
        for action, reason in cases:
            with self.subTest(action=action):
                count = self.m("sentinel_agent_protocol_errors_total", agent="proto", reason=reason)
                errors = self.decisions("proto", "error")
                connects = self.m("sentinel_agent_connects_total", agent="proto", result="ok")
                r, tid = self.send("proto", action)
                # Failure mode closed: a frame the proxy refused is no decision (stray-decision
                # does allow on the right stream after its stray frame).
                self.assertLocalReply(r, 503)
                self.wait_metric("sentinel_agent_protocol_errors_total", count + 1, agent="proto", reason=reason)
                self.assertEqual(self.decisions("proto", "error"), errors + 1)
                # The broken connection is replaced; the next request is decided by the agent.
                self.wait_metric("sentinel_agent_connects_total", connects + 1, agent="proto", result="ok")
                self.wait_metric("sentinel_agent_connections", 1, agent="proto")
                r2, tid2 = self.send("proto", "block", headers=[("X-Agent-Status", "409")])
                self.assertEqual((r2.status, r2.body), (409, BLOCK_BODY), r2)
                first, second = self.ta.find_request(tid, "proto"), self.ta.find_request(tid2, "proto")
                self.assertNotEqual(first["conn"], second["conn"], "the broken connection was reused")
        self.assertEqual(self.send("plain")[0].status, 200)

    def test_invalid_decision_is_rejected_and_the_failure_mode_applies(self):
        bad = self.m("sentinel_agent_protocol_errors_total", agent="proto", reason="bad_decision")
        errors = self.decisions("proto", "error")
        r, _ = self.send("proto", "invalid-decision")
        self.assertLocalReply(r, 503)
        self.assertEqual(self.m("sentinel_agent_protocol_errors_total", agent="proto", reason="bad_decision"), bad + 1)
        self.assertEqual(self.decisions("proto", "error"), errors + 1)

        bad = self.m("sentinel_agent_protocol_errors_total", agent="proto-open", reason="bad_decision")
        fail_open = self.m("sentinel_agent_fail_open_total", agent="proto-open")
        r, _ = self.send("proto-open", "invalid-decision", path="/headers")
        self.assertEqual(r.status, 200, r)
        seen = header_map(r.json()["headers"])
        self.assertNotIn("x-injected", seen, "a header with CR LF in its value went upstream")
        self.assertNotIn("x-evil", seen, "header injection through an agent's decision")
        self.assertEqual(self.m("sentinel_agent_protocol_errors_total", agent="proto-open", reason="bad_decision"), bad + 1)
        self.assertEqual(self.m("sentinel_agent_fail_open_total", agent="proto-open"), fail_open + 1)

        # Fields the proxy owns (framing, hop-by-hop, Host) and invalid names are refused too.
        for change in [("X-Agent-Set", "Content-Length: 5"), ("X-Agent-Set", "Transfer-Encoding: chunked"),
                       ("X-Agent-Add", "Connection: close"), ("X-Agent-Remove", "Host"),
                       ("X-Agent-Set", "Bad Name: x"), ("X-Agent-Response-Set", "Content-Length: 0"),
                       ("X-Agent-Response-Set", "Transfer-Encoding: chunked")]:
            with self.subTest(change=change):
                bad = self.m("sentinel_agent_protocol_errors_total", agent="proto", reason="bad_decision")
                r, _ = self.send("proto", "allow", headers=[change])
                self.assertLocalReply(r, 503)
                self.assertEqual(self.m("sentinel_agent_protocol_errors_total", agent="proto",
                                        reason="bad_decision"), bad + 1)

    def test_second_decision_on_a_stream_is_dropped_as_late(self):
        late = self.m("sentinel_agent_late_decisions_total", agent="ta")
        errors = self.m("sentinel_agent_protocol_errors_total", agent="ta")
        connects = self.m("sentinel_agent_connects_total", agent="ta", result="ok")
        r, _ = self.send("ta", "double-decision")
        self.assertEqual(r.status, 200, r)
        self.wait_metric("sentinel_agent_late_decisions_total", late + 1, agent="ta")
        r, _ = self.send("ta", "allow")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.m("sentinel_agent_protocol_errors_total", agent="ta"), errors)
        self.assertEqual(self.m("sentinel_agent_connects_total", agent="ta", result="ok"), connects)

    def test_body_of_a_blocked_request_is_never_read_as_a_request(self):
        smuggled = request_bytes("GET", "/demo/smuggled", headers=[("X-Route", "plain")])
        before = self.origin_requests()
        cases = {
            "headers": [("X-Route", "ta"), ("X-Agent-Action", "block"),
                        ("Content-Length", str(len(smuggled)))],
            "body": [("X-Route", "strm"), ("X-Agent-Action", "need-body"),
                     ("Transfer-Encoding", "chunked")],
        }
        for blocked_at, headers in cases.items():
            with self.subTest(blocked_at=blocked_at):
                s = connect(self.port)
                self.addCleanup(s.close)
                if blocked_at == "headers":
                    body = smuggled
                else:
                    body = b"4\r\nEVIL\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
                s.sendall(request_bytes("POST", "/demo/x", headers=headers + [("X-Test-Id", new_id())]) + body)
                reader = ResponseReader(s, 10)
                r = reader.read_response("POST")
                self.assertEqual((r.status, r.body), (403, BLOCK_BODY), r)
                try:
                    rest = reader.read_until_eof(2)
                except socket.timeout:
                    rest = bytes(reader.buf)  # kept alive: only acceptable with nothing more sent
                self.assertEqual(rest, b"", "the blocked body was parsed as a request")
        self.assertEqual(self.origin_requests(), before)

    # -- 8. request bodies ------------------------------------------------------------------------

    def body_events(self, agent, ev):
        return [e for e in agent.stream(ev) if e["type"] == "REQUEST_BODY" and e["dir"] == "in"]

    def check_clean_body(self, agent_id, proc):
        body = b"a clean body, nothing to see here. " * 60
        before = self.origin_requests()
        r, tid = self.send(agent_id, "need-body", method="POST", path="/echo", body=body)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, body, "the origin did not get the whole body")
        self.assertEqual(r.header("Content-Length"), str(len(body)))
        self.assertEqual(self.origin_requests(), before + 1)
        ev = proc.find_request(tid, agent_id)
        self.assertTrue(ev["has_body"], ev)
        self.assertEqual(ev["content_length"], len(body), ev)
        self.assertEqual(ev["flags"], 0, "END_STREAM on REQUEST_HEADERS although a body event follows")
        chunks = self.body_events(proc, ev)
        self.assertTrue(chunks, "the agent saw no body")
        self.assertEqual(sum(c["length"] for c in chunks), len(body), chunks)
        self.assertTrue(chunks[-1]["last"], chunks[-1])
        self.assertFalse(chunks[-1]["truncated"], chunks[-1])
        self.assertEqual(chunks[-1]["flags"], 1, "the last body event lacks END_STREAM")
        self.assertEqual([c["offset"] for c in chunks],
                         [sum(c["length"] for c in chunks[:i]) for i in range(len(chunks))])

    def check_evil_body(self, agent_id, proc):
        before = self.origin_requests()
        body = b"x" * 300 + b"EVIL" + b"y" * 300
        r, tid = self.send(agent_id, "need-body", method="POST", path="/echo", body=body)
        self.assertEqual((r.status, r.body), (403, BLOCK_BODY), r)
        self.assertEqual(self.origin_requests(), before, "a blocked body went upstream")

    def check_replaced_body(self, agent_id, proc):
        body = b"the original body " * 10
        r, tid = self.send(agent_id, "need-body", method="POST", path="/echo", body=body,
                           headers=[("X-Agent-Replace-Body", "replaced by the agent")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"replaced by the agent")
        # /echo answers with the Content-Length it received.
        self.assertEqual(r.header("Content-Length"), str(len(b"replaced by the agent")), r)

    def test_request_body_buffer_mode(self):
        buf = self.agents["buf"]
        for check in (self.check_clean_body, self.check_evil_body, self.check_replaced_body):
            with self.subTest(check.__name__):
                check("buf", buf)

    def test_request_body_stream_mode(self):
        strm = self.agents["strm"]
        for check in (self.check_clean_body, self.check_evil_body, self.check_replaced_body):
            with self.subTest(check.__name__):
                check("strm", strm)

    def chunked_request(self, agent_id, pieces, wait_between=None, headers=()):
        """POST /echo with a chunked body, one chunk per piece. wait_between(test_id, i) runs
        before piece i > 0 is sent (e.g. to wait for the agent to see the previous one)."""
        tid = new_id()
        s = connect(self.port)
        self.addCleanup(s.close)
        head = request_bytes("POST", "/echo", headers=[
            ("X-Route", agent_id), ("X-Test-Id", tid), ("X-Agent-Action", "need-body"),
            ("Transfer-Encoding", "chunked"), ("Connection", "close")] + list(headers))
        s.sendall(head)
        for i, piece in enumerate(pieces):
            if i > 0 and wait_between is not None:
                wait_between(tid, i)
            s.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        s.sendall(b"0\r\n\r\n")
        return ResponseReader(s, 10).read_response("POST"), tid

    def test_chunked_request_body_buffer_mode(self):
        buf = self.agents["buf"]
        r, tid = self.chunked_request("buf", [b"hello", b" chunked", b" world"])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"hello chunked world")
        ev = buf.find_request(tid, "buf")
        self.assertEqual((ev["has_body"], ev["content_length"]), (True, -1), ev)
        chunks = self.body_events(buf, ev)
        self.assertEqual("".join(c["text"] for c in chunks), "hello chunked world")
        self.assertTrue(chunks[-1]["last"])
        # "EVIL" split over two chunks is still one body to a buffer-mode agent.
        before = self.origin_requests()
        r, _ = self.chunked_request("buf", [b"abc EV", b"IL def"])
        self.assertEqual((r.status, r.body), (403, BLOCK_BODY), r)
        self.assertEqual(self.origin_requests(), before)

    def test_chunked_request_body_stream_mode(self):
        strm = self.agents["strm"]

        def after_agent_saw_previous(tid, i):
            ev = strm.wait_request(tid, "strm")
            wait_until(lambda: len(self.body_events(strm, ev)) >= i, 10,
                       what="body event %d at the stream-mode agent" % i)

        r, tid = self.chunked_request("strm", [b"hello", b" streamed", b" world"], after_agent_saw_previous)
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.body, b"hello streamed world")
        # Forwarded with the length the proxy now knows.
        self.assertEqual(r.header("Content-Length"), str(len(b"hello streamed world")), r)
        ev = strm.find_request(tid, "strm")
        chunks = self.body_events(strm, ev)
        self.assertGreaterEqual(len(chunks), 3, chunks)
        self.assertEqual("".join(c["text"] for c in chunks), "hello streamed world")
        self.assertEqual([c["last"] for c in chunks], [False] * (len(chunks) - 1) + [True])

        # Replaced as it streams: the first piece's decision carries the new body, later ones
        # delete their piece.
        r, tid = self.chunked_request("strm", [b"hello", b" streamed", b" world"], after_agent_saw_previous,
                                      headers=[("X-Agent-Replace-Body", "NEW")])
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"NEW", "3"), r)

        before = self.origin_requests()
        r, tid = self.chunked_request("strm", [b"abc EV", b"IL def"], after_agent_saw_previous)
        self.assertEqual((r.status, r.body), (403, BLOCK_BODY), r)
        self.assertEqual(self.origin_requests(), before, "part of a blocked body went upstream")

    def test_stream_mode_allow_ends_the_inspection(self):
        strm = self.agents["strm"]

        def after_first_chunk(tid, i):
            ev = strm.wait_request(tid, "strm")
            wait_until(lambda: self.body_events(strm, ev), 10, what="the first body event")

        r, tid = self.chunked_request("strm", [b"first piece", b" EVIL after the inspection"], after_first_chunk,
                                      headers=[("X-Agent-Body-Chunks", "1")])
        self.assertEqual((r.status, r.body), (200, b"first piece EVIL after the inspection"), r)
        self.assertEqual(len(self.body_events(strm, strm.find_request(tid, "strm"))), 1)

    def check_split_body(self, agent_id, proc):
        body = PATTERN * 330  # 20130 bytes; the agent accepts payloads of at most 4096
        r, tid = self.send(agent_id, "need-body", method="POST", path="/echo", body=body)
        self.assertEqual((r.status, len(r.body)), (200, len(body)), r)
        self.assertEqual(r.body, body)
        chunks = self.body_events(proc, proc.find_request(tid, agent_id))
        self.assertGreaterEqual(len(chunks), 5, chunks)
        self.assertTrue(all(c["length"] <= 4096 for c in chunks), [c["length"] for c in chunks])
        self.assertEqual(sum(c["length"] for c in chunks), len(body))
        self.assertEqual([c["last"] for c in chunks], [False] * (len(chunks) - 1) + [True])
        self.assertEqual(self.broken_connections(proc, agent_id), [], "a frame over the agent's limit")

    def broken_connections(self, proc, agent_id):
        serving = proc.conns_of(agent_id)
        return [e for e in proc.log() if e["type"] == "DISCONNECTED" and e["conn"] in serving]

    def test_buffered_body_is_split_at_the_agent_frame_limit(self):
        self.check_split_body("buf-frames", self.agents["bufsmall"])
        # Replaced over several events: the first event's replacement is the whole new body.
        r, _ = self.send("buf-frames", "need-body", method="POST", path="/echo", body=PATTERN * 330,
                         headers=[("X-Agent-Replace-Body", "short")])
        self.assertEqual((r.status, r.body, r.header("Content-Length")), (200, b"short", "5"), r)

    def test_streamed_body_pieces_respect_the_agent_frame_limit(self):
        self.check_split_body("strm-frames", self.agents["strmsmall"])

    def test_large_request_head_does_not_break_the_agent_connection(self):
        proc = self.agents["bufsmall"]
        r, _ = self.send("head-frames", "allow", headers=[("X-Big", "b" * 6000)])
        self.assertIn(r.status, (200, 503), r)
        r, _ = self.send("head-frames", "block", headers=[("X-Agent-Status", "409")])
        self.assertEqual(r.status, 409, r)
        self.assertEqual(self.broken_connections(proc, "head-frames"), [],
                         "a large request head broke the agent connection")

    def test_body_over_the_agent_limit(self):
        body = PATTERN * 70  # 4270 bytes, over max-body "1KiB"
        for mode in ("buf", "strm"):
            proc = self.agents[mode]
            with self.subTest(mode=mode, policy="reject"):
                before = self.origin_requests()
                r, _ = self.send(mode + "-reject", "need-body", method="POST", path="/echo", body=body)
                self.assertLocalReply(r, 413)
                r, _ = self.chunked_request(mode + "-reject", [body[:2000], body[2000:]])
                self.assertLocalReply(r, 413)
                self.assertEqual(self.origin_requests(), before)
            with self.subTest(mode=mode, policy="skip"):
                r, tid = self.send(mode + "-skip", "need-body", method="POST", path="/echo", body=body)
                self.assertEqual(r.status, 200, r)
                self.assertEqual(r.body, body, "the body past the inspection limit was not forwarded whole")
                chunks = self.body_events(proc, proc.find_request(tid, mode + "-skip"))
                self.assertEqual(sum(c["length"] for c in chunks), 1024, chunks)
                self.assertTrue(chunks[-1]["last"] and chunks[-1]["truncated"], chunks[-1])
                r, tid = self.chunked_request(mode + "-skip", [body[:2000], body[2000:]])
                self.assertEqual((r.status, r.body), (200, body), r)
                chunks = self.body_events(proc, proc.find_request(tid, mode + "-skip"))
                self.assertEqual(sum(c["length"] for c in chunks), 1024, chunks)
                self.assertTrue(chunks[-1]["last"] and chunks[-1]["truncated"], chunks[-1])

    # -- 9. response headers --------------------------------------------------------------------

    def test_response_headers_event_can_replace_the_response(self):
        resp = self.agents["resp"]
        r, tid = self.send("resp", path="/response-headers?x-agent-block-response=1&x-secret=upstream")
        self.assertEqual((r.status, r.body), (502, BLOCK_BODY), r)
        self.assertIsNone(r.header("x-secret"), "the replaced response leaked upstream headers")
        ev = resp.find_request(tid, "resp")
        self.assertEqual(ev["flags"], 0, "END_STREAM on REQUEST_HEADERS although RESPONSE_HEADERS follows")
        [rh] = resp.frames(ev, "RESPONSE_HEADERS")
        self.assertEqual(rh["status"], 200, rh)
        self.assertEqual(rh["headers"].get("x-agent-block-response"), "1", rh)
        self.assertEqual(rh["flags"], 1, rh)

        r, _ = self.send("resp", path="/demo/x", headers=[("X-Agent-Response-Action", "block"),
                                                          ("X-Agent-Response-Status", "418")])
        self.assertEqual((r.status, r.body), (418, BLOCK_BODY), r)

        # Allowed: the agent's response change reaches the client; on a kept-alive connection
        # a replaced response does not disturb the next exchange.
        with KeepAliveClient(self.port) as c:
            r = c.request("GET", "/response-headers?x-agent-block-response=1",
                          headers=[("X-Route", "resp"), ("X-Test-Id", new_id())])
            self.assertEqual(r.status, 502, r)
            r = c.request("GET", "/demo/next", headers=[("X-Route", "resp"), ("X-Test-Id", new_id()),
                                                        ("X-Agent-Response-Set", "X-Agent-Said: ok")])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.header("x-test-agent-saw-response"), "200", r)
            self.assertEqual(r.header("X-Agent-Said"), "ok", r)
            self.assertEqual(r.json()["path"], "/demo/next")

    def test_response_headers_timeout_applies_the_failure_mode(self):
        resp = self.agents["resp"]
        with KeepAliveClient(self.port) as c:
            tid = new_id()
            r = c.request("GET", "/demo/late", headers=[("X-Route", "resp-to"), ("X-Test-Id", tid),
                                                        ("X-Agent-Response-Action", "sleep:2000")])
            self.assertLocalReply(r, 503)
            ev = resp.find_request(tid, "resp-to")
            resp.wait_frame(ev, "RESPONSE_HEADERS")
            self.assertEqual(resp.wait_frame(ev, "CANCEL")["reason"], "TIMEOUT")
            self.assertEqual(self.decisions("resp-to", "timeout"), 1)
            # The connection still works after a response replaced at the response phase.
            r = c.request("GET", "/demo/after", headers=[("X-Route", "resp-to"), ("X-Test-Id", new_id())])
            self.assertEqual(r.status, 200, r)
            self.assertEqual(r.json()["path"], "/demo/after")
        r, _ = self.send("resp-to-open", path="/demo/passes", headers=[("X-Agent-Response-Action", "sleep:2000")])
        self.assertEqual(r.status, 200, r)
        self.assertEqual(r.json()["path"], "/demo/passes")
        self.assertEqual(self.m("sentinel_agent_fail_open_total", agent="resp-to-open"), 1)

    # -- 10. max-concurrent, circuit breaker ---------------------------------------------------

    def test_max_concurrent_sheds_the_excess(self):
        shed = self.decisions("cap1", "shed")
        slow = {}
        tid = new_id()

        def run():
            try:
                slow["r"] = self.send("cap1", "sleep:600", test_id=tid)[0]
            except Exception as e:  # noqa: BLE001
                slow["r"] = e
        t = threading.Thread(target=run, daemon=True)
        t.start()
        self.ta.wait_request(tid, "cap1")  # holds the only slot now
        r, tid2 = self.send("cap1", "allow")
        self.assertLocalReply(r, 503)
        self.assertIsNone(self.ta.find_request(tid2, "cap1"), "a shed request reached the agent")
        self.assertEqual(self.decisions("cap1", "shed"), shed + 1)
        t.join(10)
        self.assertEqual(getattr(slow.get("r"), "status", slow.get("r")), 200)
        # The slot is free again.
        self.assertEqual(self.send("cap1", "allow")[0].status, 200)

    def test_agent_stream_limit_queues_the_next_request(self):
        # The agent takes one stream at a time (HELLO_ACK max_concurrency 1): a second request
        # must not be sent to it while the first is open (the SDK would call that a protocol
        # error), and it proceeds once the first stream ends.
        mc1 = self.agents["mc1"]
        first, tid = {}, new_id()

        def run():
            first["r"] = self.send("mc1", "sleep:300", test_id=tid)[0]
        t = threading.Thread(target=run, daemon=True)
        t.start()
        mc1.wait_request(tid, "mc1")
        t0 = time.monotonic()
        r, tid2 = self.send("mc1", "block", headers=[("X-Agent-Status", "409")])
        elapsed = time.monotonic() - t0
        t.join(10)
        self.assertEqual(first["r"].status, 200, first)
        self.assertEqual(r.status, 409, r)
        self.assertIsNotNone(mc1.find_request(tid2, "mc1"))
        self.assertEqual([e for e in mc1.log() if e["type"] == "DISCONNECTED" and e["conn"] in mc1.conns_of("mc1")],
                         [], "the agent's stream limit was exceeded")
        self.assertLess(elapsed, 1.5, "the second request waited for the agent timeout, not for the free stream")

    def test_circuit_breaker_opens_after_failures_and_recovers(self):
        for _ in range(2):
            r, _ = self.send("brk", "no-answer")
            self.assertLocalReply(r, 503)
        opened = time.monotonic()
        self.assertEqual(self.decisions("brk", "timeout"), 2)
        open_count = self.decisions("brk", "breaker_open")
        r, tid = self.send("brk", "block", headers=[("X-Agent-Status", "409")])
        self.assertLocalReply(r, 503)
        self.assertEqual(self.decisions("brk", "breaker_open"), open_count + 1)
        self.assertIsNone(self.ta.find_request(tid, "brk"), "the open breaker let a request through")

        # After open-for, a trial goes through; its decision closes the breaker.
        def decided():
            return self.send("brk", "block", headers=[("X-Agent-Status", "409")])[0].status == 409
        wait_until(decided, 5, interval=0.05, what="the breaker to let a trial through")
        self.assertGreaterEqual(time.monotonic() - opened, 0.9, "the breaker closed before open-for")
        for _ in range(2):
            self.assertEqual(self.send("brk", "allow")[0].status, 200)

    # -- 11. DRAIN and HEALTH ---------------------------------------------------------------------

    def test_drain_from_the_agent_moves_to_a_new_connection(self):
        connects = self.m("sentinel_agent_connects_total", agent="drn", result="ok")
        failures = sum(self.decisions("drn", o) for o in ("timeout", "error", "unavailable"))
        r, tid = self.send("drn", "drain")
        self.assertEqual(r.status, 200, r)
        old = self.ta.find_request(tid, "drn")
        self.assertTrue(self.ta.frames(dict(old, stream=0), "DRAIN", "out"), "the agent sent no DRAIN")
        self.wait_metric("sentinel_agent_connects_total", connects + 1, agent="drn", result="ok")
        self.wait_metric("sentinel_agent_connections", 1, agent="drn")
        # The proxy closed the drained connection once its stream ended.
        gone = wait_until(lambda: [e for e in self.ta.log() if e["conn"] == old["conn"] and e["type"] == "DISCONNECTED"],
                          5, what="the drained connection to close")
        self.assertEqual(len(gone), 1, gone)
        self.assertIsNone(gone[0]["error"], gone)
        r, tid2 = self.send("drn", "block", headers=[("X-Agent-Status", "409")])
        self.assertEqual(r.status, 409, r)
        new = self.ta.find_request(tid2, "drn")
        self.assertGreater(new["conn"], old["conn"])
        self.assertEqual(sum(self.decisions("drn", o) for o in ("timeout", "error", "unavailable")), failures)

    def test_unhealthy_agent_is_unavailable_until_healthy(self):
        sick = self.agents["sick"]
        # DEGRADED changes nothing.
        self.assertEqual(self.send("sick", "degraded")[0].status, 200)
        r, _ = self.send("sick", "block", headers=[("X-Agent-Status", "409")])
        self.assertEqual(r.status, 409, r)
        # UNHEALTHY: the agent's decision on this request still counts; later ones get the
        # failure mode without the agent being asked.
        self.assertEqual(self.send("sick", "unhealthy")[0].status, 200)
        unavailable = self.decisions("sick", "unavailable")
        r, tid = self.send("sick", "block", headers=[("X-Agent-Status", "409")])
        self.assertLocalReply(r, 503)
        self.assertEqual(self.decisions("sick", "unavailable"), unavailable + 1)
        self.assertIsNone(sick.find_request(tid, "sick"), "an UNHEALTHY agent was asked")
        # The agent reports HEALTHY (to every connection) when a second proxy asks it to.
        d = act_as_second_proxy(sick.socket, [("x-agent-action", "healthy")])
        self.assertEqual(d.WhichOneof("action"), "allow")

        def consulted():
            return self.send("sick", "block", headers=[("X-Agent-Status", "409")])[0].status == 409
        wait_until(consulted, 5, interval=0.05, what="the agent to be used again after HEALTHY")

    def test_restarted_agent_is_used_again_after_it_was_unhealthy(self):
        sick2 = self.agents["sick2"]
        self.assertEqual(self.send("sick2", "unhealthy")[0].status, 200)
        r, _ = self.send("sick2", "block", headers=[("X-Agent-Status", "409")])
        self.assertLocalReply(r, 503)
        connects = self.m("sentinel_agent_connects_total", agent="sick2", result="ok")
        sick2.kill()
        sick2.start()
        self.wait_metric("sentinel_agent_connects_total", connects + 1, agent="sick2", result="ok", timeout=10)

        def consulted():
            return self.send("sick2", "block", headers=[("X-Agent-Status", "409")])[0].status == 409
        wait_until(consulted, 5, interval=0.1, what="the restarted (healthy) agent to be used again")


# ---- config push -------------------------------------------------------------------------------

CONFIG_TEMPLATE = r"""system { workers 1 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "probe" { priority 100; match { path "/probe" }; respond 200 { body "@name@" } }
    route "open" { match { header "X-Route" "open" }; upstream "app"; agents "cfg-open" }
    route "closed" { match { header "X-Route" "closed" }; upstream "app"; agents "cfg-closed" }
}
upstreams { upstream "app" { endpoint "@origin@" } }
agents {
    agent "cfg-open" {
        socket "@socket@"
        failure-mode "open"
        timeout "300ms"
        reconnect-backoff "50ms" max="200ms"
    }
    agent "cfg-closed" {
        socket "@socket@"
        failure-mode "closed"
        timeout "@timeout@"
        reconnect-backoff "50ms" max="200ms"
        config {
            mode "@mode@"
            rules "a" "b" strict=#true
        }
    }
}
@observability@
"""


def line_col(text, needle):
    """1-based line and column of the first occurrence of `needle` in `text`."""
    i = text.index(needle)
    line = text.count("\n", 0, i) + 1
    col = i - (text.rfind("\n", 0, i) + 1) + 1
    return line, col


class AgentConfigTest(AgentTestBase):

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        d = cls.class_workdir
        cls.origin = cls.class_origin("app")
        cls.good = AgentProcess(d, "good", wait=False)
        cls.addClassCleanup(cls.good.stop)
        cls.rejecting = AgentProcess(d, "rejecting", ["--reject-config"], wait=False)
        cls.addClassCleanup(cls.rejecting.stop)
        cls.good.wait_ready()
        cls.rejecting.wait_ready()

    def config(self, socket_path, name="A", mode="first", observability="", timeout="300ms"):
        return render(CONFIG_TEMPLATE, admin=self.admin, port=self.port, name=name,
                      origin=self.origin.address, socket=socket_path, mode=mode,
                      observability=observability, timeout=timeout)

    def setUp(self):
        super().setUp()
        self.port, self.admin = free_port(), free_port()

    def probe(self):
        return http_request(self.port, "GET", "/probe").body.decode()

    def reload_count(self, result):
        return self.m("sentinel_config_reloads_total", result=result)

    def start_rejected(self):
        """`sentinel run` with both agents on the rejecting agent; returns (config, output)."""
        text = self.config(self.rejecting.socket)
        s = Sentinel(self.workdir, text, port=self.port, wait=False)
        self.addCleanup(s.kill)
        try:
            code = s.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.fail("sentinel kept running with a config its agent rejected")
        self.assertNotEqual(code, 0)
        self.assertFalse(can_reach(self.port), "sentinel listened although start-up failed")
        out, err = s.output()
        return text, out + err

    def test_rejected_config_fails_startup_at_the_node(self):
        text, output = self.start_rejected()
        # The first child of cfg-closed's config {} block.
        line, col = line_col(text, 'mode "first"')
        self.assertRegex(output, r'sentinel\.kdl:%d:%d: agent "cfg-closed" rejected its config: '
                                 r'rejected by test agent' % (line, col))
        hellos = [e for e in self.rejecting.log() if e["type"] == "HELLO" and e["agent_id"] == "cfg-closed"]
        self.assertTrue(hellos and hellos[0]["validate_only"], hellos)
        self.assertEqual(len(hellos), 1, "a serving connection after a failed start-up: %r" % hellos)
        children = hellos[0]["config"]["children"]
        self.assertEqual([c["name"] for c in children], ["mode", "rules"], hellos[0]["config"])
        self.assertEqual(children[0]["args"], ["first"], children[0])
        self.assertEqual(children[1]["args"], ["a", "b"], children[1])
        self.assertEqual(children[1]["props"], {"strict": True}, children[1])

    def test_rejection_of_an_agent_without_a_config_block_points_at_the_agent(self):
        text, output = self.start_rejected()
        line, col = line_col(text, 'agent "cfg-open"')
        self.assertRegex(output, r'sentinel\.kdl:%d:%d: agent "cfg-open" rejected its config' % (line, col))

    def test_reload_with_a_rejected_config_keeps_the_old_one(self):
        self.s = self.start_sentinel(self.config(self.good.socket), port=self.port,
                                     admin_port=self.admin, ready_path="/probe")
        self.assertEqual(self.probe(), "A")
        self.assertEqual(self.send("closed", "block", headers=[("X-Agent-Status", "409")])[0].status, 409)

        # SIGHUP: the block goes to an agent that rejects it.
        failures = self.reload_count("failure")
        text = self.config(self.rejecting.socket, name="B", mode="second")
        self.s.write_config(text)
        self.s.reload_sighup()
        self.wait_metric("sentinel_config_reloads_total", failures + 1, result="failure")
        self.assertEqual(self.probe(), "A")
        line, col = line_col(text, 'mode "second"')
        wait_until(lambda: re.search(r'sentinel\.kdl:%d:%d: agent "cfg-closed" rejected its config'
                                     % (line, col), self.s.output()[1]), 5,
                   what="the rejection in the error log")
        # Still decided by the old agent.
        r, tid = self.send("closed", "block", headers=[("X-Agent-Status", "409")])
        self.assertEqual(r.status, 409, r)
        self.assertIsNotNone(self.good.find_request(tid, "cfg-closed"))

        # Admin POST /reload: refused with the position.
        r = self.s.admin_post("/reload")
        self.assertEqual(r.status, 422, r)
        self.assertIn(b"rejected by test agent", r.body)
        self.assertIn(("sentinel.kdl:%d:%d" % (line, col)).encode(), r.body)
        self.assertEqual(self.reload_count("failure"), failures + 2)
        self.assertEqual(self.probe(), "A")

        # A block the agent accepts: pushed on new connections, the old ones drained.
        good_hellos = len([e for e in self.good.log() if e["type"] == "HELLO"])
        self.s.write_config(self.config(self.good.socket, name="C", mode="third"))
        r = self.s.admin_post("/reload")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.probe(), "C")

        def pushed():
            hellos = [e for e in self.good.log() if e["type"] == "HELLO"][good_hellos:]
            return [h for h in hellos if h["agent_id"] == "cfg-closed" and not h["validate_only"]
                    and h["config"]["children"][0]["args"] == ["third"]]
        wait_until(pushed, 10, what="a HELLO carrying the new config block")
        r, tid = self.send("closed", "block", headers=[("X-Agent-Status", "409")])
        self.assertEqual(r.status, 409, r)
        ev = self.good.find_request(tid, "cfg-closed")
        self.assertIn(ev["conn"], {h["conn"] for h in pushed()}, "decided on a connection with the old config")

    def test_reload_drains_old_agent_connections_and_their_requests_finish(self):
        good = self.good
        self.s = self.start_sentinel(self.config(good.socket, timeout="3s"), port=self.port,
                                     admin_port=self.admin, ready_path="/probe")
        result, tid = {}, new_id()

        def run():
            result["r"] = self.send("closed", "sleep:800", test_id=tid)[0]
        t = threading.Thread(target=run, daemon=True)
        t.start()
        old = good.wait_request(tid, "cfg-closed")
        self.s.write_config(self.config(good.socket, name="B", mode="second", timeout="3s"))
        r = self.s.admin_post("/reload")
        self.assertEqual(r.status, 200, r)
        t.join(10)
        # The request in flight on the old connection gets its decision there.
        self.assertEqual(getattr(result.get("r"), "status", None), 200, result)
        self.assertEqual(self.decisions("cfg-closed", "error") + self.decisions("cfg-closed", "timeout"), 0)
        self.assertEqual(good.wait_frame(old, "DECISION", "out")["action"], "allow")
        drains = [e for e in good.log() if e["conn"] == old["conn"] and e["type"] == "DRAIN" and e["dir"] == "in"]
        self.assertEqual(len(drains), 1, "the old connection was not drained")
        wait_until(lambda: [e for e in good.log() if e["conn"] == old["conn"] and e["type"] == "DISCONNECTED"],
                   5, what="the drained connection to close")
        r, tid2 = self.send("closed", "block", headers=[("X-Agent-Status", "409")])
        self.assertEqual(r.status, 409, r)
        new = good.find_request(tid2, "cfg-closed")
        [hello] = [e for e in good.log() if e["conn"] == new["conn"] and e["type"] == "HELLO"]
        self.assertEqual(hello["config"]["children"][0]["args"], ["second"], hello)

        # A reload that leaves the agents alone neither asks them again nor reconnects.
        hellos = len([e for e in good.log() if e["type"] == "HELLO"])
        self.s.write_config(self.config(good.socket, name="C", mode="second", timeout="3s"))
        self.assertEqual(self.s.admin_post("/reload").status, 200)
        self.assertEqual(self.probe(), "C")
        r, tid3 = self.send("closed", "allow")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(good.find_request(tid3, "cfg-closed")["conn"], new["conn"])
        self.assertEqual(len([e for e in good.log() if e["type"] == "HELLO"]), hellos)

    def test_unreachable_agent_only_warns_and_requests_get_the_failure_mode(self):
        missing = os.path.join(self.workdir, "later.sock")
        self.s = self.start_sentinel(self.config(missing), port=self.port, admin_port=self.admin,
                                     ready_path="/probe")
        err = self.s.output()[1]
        self.assertIn('agent "cfg-closed"', err)
        self.assertIn("could not check its config", err)
        unavailable = self.decisions("cfg-closed", "unavailable")
        r, _ = self.send("closed", "block")
        self.assertLocalReply(r, 503)
        self.assertEqual(self.decisions("cfg-closed", "unavailable"), unavailable + 1)
        fail_open = self.m("sentinel_agent_fail_open_total", agent="cfg-open")
        r, _ = self.send("open", "block")
        self.assertEqual(r.status, 200, r)
        self.assertEqual(self.m("sentinel_agent_fail_open_total", agent="cfg-open"), fail_open + 1)

        # The agent appears later and rejects the blocks (test_agent.py --reject-config rejects
        # an agent without a block too): reported at the node, and the routes keep their
        # failure mode without the agent being asked.
        later = AgentProcess(self.workdir, "later", ["--reject-config"])
        self.addCleanup(later.stop)
        self.assertEqual(later.socket, missing)
        line, col = line_col(self.config(missing), 'mode "first"')
        wait_until(lambda: re.search(r'agent rejected its config.*sentinel\.kdl:%d:%d' % (line, col),
                                     self.s.output()[1]), 10, what="the late rejection in the error log")
        r, tid = self.send("closed", "block")
        self.assertLocalReply(r, 503)
        r, tid2 = self.send("open", "block")
        self.assertEqual(r.status, 200, r)
        self.assertIsNone(later.find_request(tid))
        self.assertIsNone(later.find_request(tid2))

    def test_agent_metadata_in_the_access_log(self):
        log_path = os.path.join(self.workdir, "access.log")
        obs = ('observability { access-log { path "%s"; fields "request-id" "route" "agent-metadata" } }'
               % log_path)
        self.s = self.start_sentinel(self.config(self.good.socket, observability=obs), port=self.port,
                                     admin_port=self.admin, ready_path="/probe")
        r, _ = self.send("closed", "allow", headers=[("X-Agent-Metadata", "verdict=clean")])
        self.assertEqual(r.status, 200, r)
        lines = wait_until(lambda: [e for e in read_json_lines(log_path) if e.get("route") == "closed"], 5,
                           what="the access log line")
        value = lines[0].get("agent_metadata")
        self.assertIsNotNone(value, lines[0])
        self.assertIn("verdict", json.dumps(value))
        self.assertIn("clean", json.dumps(value))


def can_reach(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    unittest.main()
