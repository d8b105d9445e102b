"""Shared helpers for Sentinel's integration tests (DESIGN §6, tier 2).

Everything here drives real processes: the `sentinel` binary (path from $SENTINEL_BIN, or
`--sentinel-bin PATH` / `SENTINEL_BIN=PATH` on the command line), test/support/origin.py as
the upstream, curl and raw sockets as clients. Ports come from the kernel (bind to port 0),
readiness is polled, and every process started is killed in cleanup and again at exit.

Run one module:   cd test/integration && SENTINEL_BIN=/path/to/sentinel \
                      /usr/bin/python3 -m unittest -v test_proxy_basics
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SUPPORT = os.path.join(REPO, "test", "support")
ORIGIN_PY = os.path.join(SUPPORT, "origin.py")
PYTHON = "/usr/bin/python3"
sys.path.insert(0, SUPPORT)
import origin as origin_mod  # noqa: E402  (test/support/origin.py: PATTERN, pattern_slice)

PATTERN = origin_mod.PATTERN
pattern_slice = origin_mod.pattern_slice
READY_TIMEOUT = 20.0


def _default_bin():
    for i, a in enumerate(sys.argv):
        if a.startswith("SENTINEL_BIN="):
            return a.split("=", 1)[1]
        if a == "--sentinel-bin" and i + 1 < len(sys.argv):
            return sys.argv[i + 1]
    env = os.environ.get("SENTINEL_BIN")
    if env:
        return env
    for cand in (os.path.join(REPO, "build", "src", "cli", "sentinel"),):
        if os.path.exists(cand):
            return cand
    return None


def _strip_bin_args():
    # Let `python3 -m unittest test_x --sentinel-bin PATH` work: unittest must not see them.
    out, skip = [], False
    for a in sys.argv:
        if skip:
            skip = False
            continue
        if a == "--sentinel-bin":
            skip = True
            continue
        if a.startswith("SENTINEL_BIN="):
            continue
        out.append(a)
    sys.argv[:] = out


SENTINEL_BIN = _default_bin()
_strip_bin_args()


def require_binary():
    """Skips when no binary was named and none is built; fails when one was named (CTest
    always names it) but is missing, so a broken build cannot pass as "skipped"."""
    if SENTINEL_BIN and os.access(SENTINEL_BIN, os.X_OK):
        return
    if os.environ.get("SENTINEL_BIN"):
        raise AssertionError("SENTINEL_BIN=%s is not an executable file" % SENTINEL_BIN)
    raise unittest.SkipTest("sentinel binary not found (set SENTINEL_BIN); looked at %r"
                            % SENTINEL_BIN)


def sanitizer_build():
    """True when the binary carries ASan/TSan runtimes (their shadow memory makes RSS
    limits meaningless; everything else is still checked)."""
    if not SENTINEL_BIN or not os.path.exists(SENTINEL_BIN):
        return False
    with open(SENTINEL_BIN, "rb") as f:
        data = f.read()
    if b"__asan_init" in data or b"__tsan_init" in data:
        return True
    try:
        out = subprocess.run(["ldd", SENTINEL_BIN], capture_output=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return False
    return b"libasan" in out or b"libtsan" in out


# ---- processes ------------------------------------------------------------------------------

_live = []
_live_lock = threading.Lock()


def _track(proc):
    with _live_lock:
        _live.append(proc)
    return proc


def _kill(proc):
    if proc.poll() is None:
        try:
            proc.kill()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


@atexit.register
def kill_leftovers():
    with _live_lock:
        procs = list(_live)
        _live.clear()
    for p in procs:
        _kill(p)


def spawn(argv, stdout=None, stderr=None, **kw):
    return _track(subprocess.Popen(argv, stdout=stdout, stderr=stderr,
                                   stdin=subprocess.DEVNULL, **kw))


def wait_until(predicate, timeout, interval=0.02, what="condition"):
    """Polls predicate() until it returns a truthy value; returns it, or raises AssertionError."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            v = predicate()
            if v:
                return v
        except Exception as e:  # noqa: BLE001 - polled probes may fail until ready
            last_exc = e
        if time.monotonic() >= deadline:
            raise AssertionError("timed out after %.1fs waiting for %s (last error: %r)"
                                 % (timeout, what, last_exc))
        time.sleep(interval)


# ---- ports and sockets ------------------------------------------------------------------------

_handed_out = set()
_handed_out_lock = threading.Lock()


def free_port(host="127.0.0.1"):
    """A port the kernel just handed out for bind(0); free again when returned. The kernel
    may hand the same port out twice in a row once it is closed, so ports already given to
    this process are never returned again (two listeners of one config must differ)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
        with _handed_out_lock:
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise RuntimeError("no fresh free port after 100 tries")


def closed_port(host="127.0.0.1"):
    """A port nobody listens on (connect → ECONNREFUSED)."""
    return free_port(host)


def connect(port, host="127.0.0.1", timeout=5.0):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def can_connect(port, host="127.0.0.1", timeout=1.0):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def connection_refused(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers  # list of (name, value) as received
        self.body = body
        self.raw_head = raw_head

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_values(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %s %s headers=%r body=%r>" % (
            self.status, self.reason, self.headers, self.body[:300])


class ResponseReader:
    """Reads HTTP/1.1 responses from a socket, keeping bytes that belong to the next one."""

    def __init__(self, sock, timeout=10.0):
        self.sock = sock
        self.buf = bytearray()
        self.timeout = timeout
        self.eof = False

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("response read timed out")
        self.sock.settimeout(remaining)
        d = self.sock.recv(256 * 1024)
        if not d:
            self.eof = True
            return False
        self.buf += d
        return True

    def read_response(self, method="GET", timeout=None, body_sink=None):
        """Returns a Response. body_sink(bytes) receives the body instead when given (then
        Response.body holds only the byte count as an int)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            while b"\r\n\r\n" not in self.buf:
                if not self._fill(deadline):
                    raise ConnectionError("EOF before a complete response head (got %r)"
                                          % bytes(self.buf[:500]))
            end = self.buf.index(b"\r\n\r\n") + 4
            raw_head = bytes(self.buf[:end])
            del self.buf[:end]
            lines = raw_head[:-4].split(b"\r\n")
            m = re.match(rb"^(HTTP/\d\.\d) (\d{3})(?: (.*))?$", lines[0])
            if not m:
                raise ValueError("bad status line %r" % lines[0])
            version, status, reason = m.group(1).decode(), int(m.group(2)), (m.group(3) or b"").decode("latin-1")
            headers = []
            for ln in lines[1:]:
                k, _, v = ln.partition(b":")
                headers.append((k.decode("latin-1"), v.strip().decode("latin-1")))
            if 100 <= status < 200:
                continue  # interim response; the final one follows
            break
        resp = Response(version, status, reason, headers, b"", raw_head)
        te = (resp.header("transfer-encoding") or "").lower()
        cl = resp.header("content-length")
        parts = []
        total = 0

        def emit(b):
            nonlocal total
            total += len(b)
            if body_sink:
                body_sink(b)
            else:
                parts.append(bytes(b))


        if method == "HEAD" or status in (204, 304):
            pass
        elif "chunked" in te:
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill(deadline):
                        raise ConnectionError("EOF in chunk size")
                i = self.buf.index(b"\r\n")
                size = int(bytes(self.buf[:i]).split(b";")[0], 16)
                del self.buf[:i + 2]
                if size == 0:
                    while b"\r\n" not in self.buf:
                        if not self._fill(deadline):
                            raise ConnectionError("EOF in trailers")
                    # trailers: skip lines until an empty one
                    while True:
                        while b"\r\n" not in self.buf:
                            if not self._fill(deadline):
                                raise ConnectionError("EOF in trailers")
                        i = self.buf.index(b"\r\n")
                        line = bytes(self.buf[:i])
                        del self.buf[:i + 2]
                        if not line:
                            break
                    break
                while len(self.buf) < size + 2:
                    if not self._fill(deadline):
                        raise ConnectionError("EOF in chunk data")
                emit(self.buf[:size])
                del self.buf[:size + 2]
        elif cl is not None:
            left = int(cl)
            take = min(left, len(self.buf))
            if take:
                emit(self.buf[:take])
                del self.buf[:take]
                left -= take
            if left and body_sink:
                # Large bodies: receive straight into one reused buffer.
                scratch = bytearray(1024 * 1024)
                view = memoryview(scratch)
                while left > 0:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise socket.timeout("response body read timed out")
                    self.sock.settimeout(remaining)
                    n = self.sock.recv_into(view, min(left, len(scratch)))
                    if n == 0:
                        self.eof = True
                        raise ConnectionError("EOF with %d body bytes missing" % left)
                    emit(view[:n])
                    left -= n
            while left > 0:
                if not self.buf and not self._fill(deadline):
                    raise ConnectionError("EOF with %d body bytes missing" % left)
                take = min(left, len(self.buf))
                emit(self.buf[:take])
                del self.buf[:take]
                left -= take
        else:
            while True:
                if self.buf:
                    emit(self.buf)
                    self.buf.clear()
                if not self._fill(deadline):
                    break
        resp.body = total if body_sink else b"".join(parts)
        return resp

    def read_until_eof(self, timeout=5.0):
        """Returns the bytes that arrive before the peer's FIN. Raises ConnectionResetError if
        the peer resets instead, socket.timeout if it neither closes nor resets in time."""
        deadline = time.monotonic() + timeout
        while self._fill(deadline):
            pass
        data = bytes(self.buf)
        self.buf.clear()
        return data


def request_bytes(method="GET", path="/", host="test.local", headers=(), body=b"",
                  version="HTTP/1.1", content_length=True):
    lines = ["%s %s %s" % (method, path, version)]
    if host is not None:
        lines.append("Host: " + host)
    for k, v in headers:
        lines.append("%s: %s" % (k, v))
    if body and content_length and not any(k.lower() in ("content-length", "transfer-encoding")
                                           for k, _ in headers):
        lines.append("Content-Length: %d" % len(body))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def http_request(port, method="GET", path="/", host="test.local", headers=(), body=b"",
                 timeout=10.0, close=True):
    """One request on a fresh connection; returns a Response. close=True adds
    `Connection: close`; otherwise the socket is closed after the (framed) response."""
    extra = [("Connection", "close")] if close else []
    with connect(port, timeout=timeout) as s:
        s.sendall(request_bytes(method, path, host, list(headers) + extra, body))
        return ResponseReader(s, timeout).read_response(method)


class KeepAliveClient:
    """A raw keep-alive HTTP/1.1 client on one connection."""

    def __init__(self, port, host_header="test.local", timeout=10.0):
        self.sock = connect(port, timeout=timeout)
        self.reader = ResponseReader(self.sock, timeout)
        self.host = host_header

    def request(self, method="GET", path="/", headers=(), body=b""):
        self.sock.sendall(request_bytes(method, path, self.host, headers, body))
        return self.reader.read_response(method)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def curl(*args, timeout=60):
    """Runs curl; returns (returncode, status, headers list, body bytes, stderr)."""
    fd, hdr_path = tempfile.mkstemp(prefix="curl-headers-")
    os.close(fd)
    try:
        p = subprocess.run(["curl", "-sS", "-D", hdr_path, "-o", "-", *args],
                           capture_output=True, timeout=timeout)
        with open(hdr_path, "rb") as f:
            raw = f.read().decode("latin-1")
    finally:
        os.unlink(hdr_path)
    # Keep the last response head (curl writes interim 100 heads too).
    blocks = [b for b in raw.split("\r\n\r\n") if b.strip()]
    status, headers = None, []
    if blocks:
        lines = blocks[-1].split("\r\n")
        m = re.match(r"HTTP/\S+ (\d{3})", lines[0])
        status = int(m.group(1)) if m else None
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            headers.append((k, v.strip()))
    return p.returncode, status, headers, p.stdout, p.stderr.decode(errors="replace")


def header_of(headers, name, default=None):
    name = name.lower()
    for k, v in headers:
        if k.lower() == name:
            return v
    return default


def headers_named(headers, name):
    name = name.lower()
    return [v for k, v in headers if k.lower() == name]


class PatternChecker:
    """Counts bytes and checks them against origin.PATTERN incrementally (memcmp speed)."""

    CHUNK = 4 * 1024 * 1024
    REF = PATTERN * (CHUNK // len(PATTERN) + 2)

    def __init__(self):
        self.count = 0
        self.ok = True
        self.first_bad = None

    def __call__(self, data):
        data = bytes(data)  # memoryview comparisons go element by element; bytes use memcmp
        off = 0
        while off < len(data):
            n = min(len(data) - off, self.CHUNK)
            if self.ok:
                phase = self.count % len(PATTERN)
                piece = data if (off == 0 and n == len(data)) else data[off:off + n]
                if piece != self.REF[phase:phase + n]:
                    self.ok = False
                    self.first_bad = self.count
            self.count += n
            off += n


def pattern_stream(total, block=1024 * 1024):
    """Yields PATTERN bytes [0, total) in pieces of `block` (a multiple of the period)."""
    block -= block % origin_mod.PERIOD
    piece = (PATTERN * (block // origin_mod.PERIOD + 1))[:block]
    sent = 0
    while sent < total:
        n = min(block, total - sent)
        yield piece if n == block else piece[:n]
        sent += n


# ---- /proc readers ----------------------------------------------------------------------------

def proc_status_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def rss_kib(pid):
    return proc_status_kib(pid, "VmRSS")


def hwm_kib(pid):
    return proc_status_kib(pid, "VmHWM")


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


# ---- origin -----------------------------------------------------------------------------------

class Origin:
    def __init__(self, workdir, name="origin", control_file=None, extra_args=()):
        self.name = name
        self.log_path = os.path.join(workdir, "origin-%s.log" % name)
        self.log = open(self.log_path, "wb")
        argv = [PYTHON, ORIGIN_PY, "--listen", "127.0.0.1:0", "--name", name, "--quiet"]
        if control_file:
            argv += ["--control-file", control_file]
        argv += list(extra_args)
        self.proc = spawn(argv, stdout=subprocess.PIPE, stderr=self.log)
        line = self._first_line()
        m = re.match(r"listening on (\S+):(\d+)$", line)
        if not m:
            self.stop()
            raise RuntimeError("origin did not report its port: %r" % line)
        self.host = m.group(1)
        self.port = int(m.group(2))
        self.address = "127.0.0.1:%d" % self.port

    def _first_line(self):
        result = {}

        def rd():
            result["line"] = self.proc.stdout.readline().decode().strip()

        t = threading.Thread(target=rd, daemon=True)
        t.start()
        t.join(READY_TIMEOUT)
        if "line" not in result:
            self.stop()
            raise RuntimeError("origin did not start within %ss" % READY_TIMEOUT)
        return result["line"]

    def stats(self):
        return http_request(self.port, "GET", "/stats").json()

    def reset_stats(self):
        return http_request(self.port, "GET", "/stats?reset=1").json()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()


# ---- sentinel ---------------------------------------------------------------------------------

def render(template, **values):
    """Fills @name@ placeholders (KDL uses braces, and ${ENV} is the loader's own syntax)."""
    def sub(m):
        key = m.group(1)
        if key not in values:
            raise KeyError("config template needs a value for @%s@" % key)
        return str(values[key])
    return re.sub(r"@([a-zA-Z_][a-zA-Z0-9_]*)@", sub, template)


class Sentinel:
    def __init__(self, workdir, config_text, port=None, admin_port=None, name="sentinel",
                 ready_path="/", ready_host="readiness.probe", wait=True, extra_args=()):
        require_binary()
        self.workdir = workdir
        self.config_path = os.path.join(workdir, "%s.kdl" % name)
        self.write_config(config_text)
        self.port = port
        self.admin_port = admin_port
        self.stdout_path = os.path.join(workdir, "%s.stdout" % name)
        self.stderr_path = os.path.join(workdir, "%s.stderr" % name)
        self.stdout = open(self.stdout_path, "wb")
        self.stderr = open(self.stderr_path, "wb")
        self.proc = spawn([SENTINEL_BIN, "run", "-c", self.config_path, *extra_args],
                          stdout=self.stdout, stderr=self.stderr, cwd=workdir)
        self.pid = self.proc.pid
        self.ready_path = ready_path
        self.ready_host = ready_host
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.kill()  # the caller never gets this object to clean up
                raise

    def write_config(self, text):
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, self.config_path)  # atomic: a watcher never sees half a file

    def output(self):
        for f in (self.stdout, self.stderr):
            if not f.closed:
                f.flush()
        with open(self.stdout_path, "rb") as f:
            out = f.read().decode(errors="replace")
        with open(self.stderr_path, "rb") as f:
            err = f.read().decode(errors="replace")
        return out, err

    def _probe(self, port):
        with connect(port, timeout=1.0) as s:
            s.sendall(request_bytes("GET", self.ready_path, self.ready_host,
                                    [("Connection", "close")]))
            r = ResponseReader(s, 2.0).read_response()
            return r.status > 0

    def wait_ready(self, port=None, timeout=READY_TIMEOUT):
        port = port or self.port
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out, err = self.output()
                raise AssertionError("sentinel exited with %s before becoming ready\n"
                                     "stdout:\n%s\nstderr:\n%s" % (self.proc.returncode,
                                                                   out[-3000:], err[-3000:]))
            try:
                ok = self._probe(port) if port else True
                if ok and self.admin_port:
                    ok = self.admin_get("/healthz").status == 200
                if ok:
                    return
            except (OSError, ValueError, ConnectionError) as e:
                last = e
            time.sleep(0.02)
        out, err = self.output()
        raise AssertionError("sentinel not ready on port %s within %ss (last: %r)\nstderr:\n%s"
                             % (port, timeout, last, err[-3000:]))

    # -- signals and lifecycle

    def signal(self, sig):
        os.kill(self.pid, sig)

    def reload_sighup(self):
        self.signal(signal.SIGHUP)

    def stop(self, timeout=15.0, expect_code=0, send_sigterm=True):
        """SIGTERM (unless send_sigterm=False: a test that already signalled must not send a
        second one, which means "exit now") and wait; returns the exit code, asserting it
        when expect_code is not None."""
        self.reaped = True
        if send_sigterm and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("sentinel did not exit within %ss" % timeout)
        finally:
            self.stdout.close()
            self.stderr.close()
        if expect_code is not None and code != expect_code:
            out, err = self.output()
            raise AssertionError("sentinel exited with %s, expected %s\nstderr:\n%s"
                                 % (code, expect_code, err[-3000:]))
        return code

    def finish(self):
        """Cleanup: a Sentinel still running must stop on SIGTERM with exit code 0; one that
        exited on its own, without the test stopping it, crashed or quit — a failure. Either
        way nothing is left running."""
        if getattr(self, "reaped", False):
            self.kill()
            return
        if self.proc.poll() is not None:
            code = self.proc.returncode
            self.kill()
            out, err = self.output()
            raise AssertionError("sentinel exited by itself during the test with %s\n"
                                 "stderr:\n%s" % (code, err[-3000:]))
        try:
            self.stop(timeout=15.0, expect_code=0)
        finally:
            self.kill()

    def kill(self):
        _kill(self.proc)
        for f in (self.stdout, self.stderr):
            if not f.closed:
                f.close()

    # -- process state

    def hwm_kib(self):
        return hwm_kib(self.pid)

    def rss_kib(self):
        return rss_kib(self.pid)

    def fd_count(self):
        return fd_count(self.pid)

    # -- admin

    def admin_get(self, path, timeout=5.0):
        return http_request(self.admin_port, "GET", path, host="127.0.0.1", timeout=timeout)

    def admin_post(self, path, body=b"", timeout=30.0):
        return http_request(self.admin_port, "POST", path, host="127.0.0.1", body=body,
                            headers=[("Content-Length", str(len(body)))], timeout=timeout)

    def metrics(self):
        r = self.admin_get("/metrics")
        if r.status != 200:
            raise AssertionError("GET /metrics answered %s" % r.status)
        return parse_metrics(r.body.decode())

    def metric(self, name, default=0.0, **labels):
        return metric_value(self.metrics(), name, default, **labels)


def parse_metrics(text):
    """Prometheus text → {(name, frozenset(labels.items())): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)', line)
        if not m:
            continue
        labels = {}
        if m.group(3):
            for lm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3)):
                labels[lm.group(1)] = lm.group(2)
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        out[(m.group(1), frozenset(labels.items()))] = value
    return out


def metric_value(metrics, name, default=0.0, **labels):
    """Sum of every series of `name` whose labels include `labels`."""
    want = set(labels.items())
    found = [v for (n, ls), v in metrics.items() if n == name and want <= set(ls)]
    return sum(found) if found else default


def metric_series(metrics, name):
    return {ls: v for (n, ls), v in metrics.items() if n == name}


# ---- test base --------------------------------------------------------------------------------

class IntegrationTest(unittest.TestCase):
    """Per-test temp dir; processes started through these helpers die in cleanup, whatever
    happened. Modules that share one Sentinel use the class-level variants."""

    keep_workdir = os.environ.get("SENTINEL_KEEP_WORKDIR") == "1"

    @classmethod
    def setUpClass(cls):
        require_binary()
        cls.class_workdir = tempfile.mkdtemp(prefix="sentinel-integ-%s-" % cls.__name__)
        cls._class_procs = []
        # Class cleanups run even when setUpClass fails half-way (tearDownClass would not).
        cls.addClassCleanup(cls._class_cleanup)

    @classmethod
    def _class_cleanup(cls):
        errors = []
        for p in reversed(cls._class_procs):
            try:
                cls._stop_quietly(p)
            except AssertionError as e:
                errors.append(e)
        cls._class_procs = []
        if not cls.keep_workdir:
            shutil.rmtree(cls.class_workdir, ignore_errors=True)
        if errors:
            raise errors[0]

    @staticmethod
    def _stop_quietly(p):
        if isinstance(p, Sentinel):
            p.finish()  # raises when it did not exit 0: reported as a class cleanup error
        elif isinstance(p, Origin):
            p.stop()
        else:
            _kill(p)

    @classmethod
    def class_origin(cls, name="origin", **kw):
        o = Origin(cls.class_workdir, name=name, **kw)
        cls._class_procs.append(o)
        return o

    @classmethod
    def class_sentinel(cls, config_text, **kw):
        s = Sentinel(cls.class_workdir, config_text, **kw)
        cls._class_procs.append(s)
        return s

    def setUp(self):
        self.workdir = tempfile.mkdtemp(prefix="t-", dir=self.class_workdir)

    def start_origin(self, name="origin", **kw):
        o = Origin(self.workdir, name=name, **kw)
        self.addCleanup(o.stop)
        return o

    def start_sentinel(self, config_text, **kw):
        s = Sentinel(self.workdir, config_text, **kw)
        self.addCleanup(s.finish)
        self.addCleanup(self._dump_on_failure, s)
        return s

    def _dump_on_failure(self, s):
        # Show sentinel's own log when a test failed; unittest keeps outcome on _outcome.
        outcome = getattr(self, "_outcome", None)
        failed = outcome is not None and not getattr(outcome, "success", True)
        if failed or os.environ.get("SENTINEL_SHOW_LOGS") == "1":
            try:
                out, err = s.output()
                sys.stderr.write("\n--- sentinel stderr (%s) ---\n%s\n" % (self.id(), err[-4000:]))
            except (OSError, ValueError):
                pass

    def write_file(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def run_sentinel_cli(self, *args, timeout=30):
        require_binary()
        return subprocess.run([SENTINEL_BIN, *args], capture_output=True, timeout=timeout,
                              cwd=self.workdir, stdin=subprocess.DEVNULL)

    def assertLocalReply(self, resp, status, msg=None):
        """A reply Sentinel generated itself: status, a request id, a small body without
        internals."""
        self.assertEqual(resp.status, status, msg or repr(resp))
        self.assertTrue(resp.header("x-request-id"), "local reply without X-Request-Id: %r" % resp)
        self.assertLessEqual(len(resp.body), 1024, "local reply body too large: %r" % resp)
        low = resp.body.lower()
        for leak in (b"std::", b".cpp", b".hpp", b"boost", b"exception", b"errno", b"asio",
                     b"traceback", b"0x"):
            self.assertNotIn(leak, low, "local reply leaks internals: %r" % resp)
