"""Tracing: W3C trace context and OTLP/HTTP export (issue "observability", tracing part).

A real OTLP/HTTP receiver runs in this process on a free port and decodes every export body
with classes generated at test time by `protoc --python_out` from the official .proto files
vendored in third_party/opentelemetry-proto, so the hand-written encoder is checked against
the interface definition, not against itself. Origins (test/support/origin.py) echo the headers
they received (/headers), so the traceparent Sentinel sent upstream is checked against the
exported CLIENT span.
"""

import http.server
import importlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

from harness import IntegrationTest, closed_port, free_port, http_request, render, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.normpath(os.path.join(HERE, "..", "..", "third_party", "opentelemetry-proto"))
PROTO_FILES = [
    "opentelemetry/proto/common/v1/common.proto",
    "opentelemetry/proto/resource/v1/resource.proto",
    "opentelemetry/proto/trace/v1/trace.proto",
    "opentelemetry/proto/collector/trace/v1/trace_service.proto",
]

trace_service_pb2 = None
trace_pb2 = None
_generated_dir = None


def setUpModule():
    global trace_service_pb2, trace_pb2, _generated_dir
    if shutil.which("protoc") is None:
        raise unittest.SkipTest("protoc not installed (protobuf-compiler)")
    try:
        import google.protobuf  # noqa: F401
    except ImportError:
        raise unittest.SkipTest("python3-protobuf not installed")
    _generated_dir = tempfile.mkdtemp(prefix="otlp-pb2-")
    subprocess.run(["protoc", "-I", PROTO_ROOT, "--python_out", _generated_dir, *PROTO_FILES],
                   check=True, capture_output=True)
    sys.path.insert(0, _generated_dir)
    trace_service_pb2 = importlib.import_module("opentelemetry.proto.collector.trace.v1.trace_service_pb2")
    trace_pb2 = importlib.import_module("opentelemetry.proto.trace.v1.trace_pb2")


def tearDownModule():
    if _generated_dir:
        shutil.rmtree(_generated_dir, ignore_errors=True)


class Collector:
    """An OTLP/HTTP traces receiver: decodes each POST into ExportTraceServiceRequest."""

    def __init__(self):
        self.exports = []  # (path, content_type, request)
        self.lock = threading.Lock()
        self.status = 200
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                with collector.lock:
                    collector.exports.append((self.path, self.headers.get("Content-Type"), request))
                    status = collector.status
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def spans(self):
        out = []
        with self.lock:
            for _, _, req in self.exports:
                for rs in req.resource_spans:
                    for ss in rs.scope_spans:
                        out.extend(ss.spans)
        return out

    def spans_of(self, trace_id_hex):
        return [s for s in self.spans() if s.trace_id.hex() == trace_id_hex]

    def wait_spans(self, trace_id_hex, count, timeout=10):
        wait_until(lambda: len(self.spans_of(trace_id_hex)) >= count, timeout,
                   what="%d spans of trace %s" % (count, trace_id_hex))
        return self.spans_of(trace_id_hex)


def attrs(span):
    out = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out


def header(headers, name):
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def headers_named(headers, name):
    return [v for n, v in headers if n.lower() == name]


CONFIG = r"""
system { workers 1 }
admin { listen "127.0.0.1:@admin@" }
listeners { listener "public" { listen "127.0.0.1:@port@" } }
routes {
    route "ready" { priority 100; match { path "/ready" }; respond 200 { body "ok\n" } }
    route "retry" { priority 50; match { header "X-Route" "retry" }; upstream "all503"
        retry { attempts 3; on "503"; backoff "0s" max="0s" } }
    route "api" { match { path-prefix "/" }; upstream "web" }
}
upstreams {
    upstream "web" { endpoint "@origin@" }
    upstream "all503" { endpoint "@bad1@"; endpoint "@bad2@" }
}
observability {
    tracing {
        otlp-endpoint "127.0.0.1:@collector@"
        path "@path@"
        sample-percent @percent@
        max-queue-spans @queue@
        batch-size @batch@
        flush-interval "100ms"
        export-timeout "1s"
        service-name "sentinel-test"
    }
}
"""


class TracingTest(IntegrationTest):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.collector = Collector()
        cls.addClassCleanup(cls.collector.stop)
        cls.origin = cls.class_origin("web")
        control = os.path.join(cls.class_workdir, "bad.json")
        with open(control, "w") as f:
            json.dump({"status": 503}, f)
        cls.bad1 = cls.class_origin("bad1", control_file=control)
        cls.bad2 = cls.class_origin("bad2", control_file=control)

    def sentinel(self, collector_port=None, percent=100, queue=8192, batch=64, path="/v1/traces"):
        port, admin = free_port(), free_port()
        text = render(CONFIG, port=port, admin=admin, origin=self.origin.address,
                      bad1=self.bad1.address, bad2=self.bad2.address,
                      collector=collector_port or self.collector.port, path=path, percent=percent,
                      queue=queue, batch=batch)
        return self.start_sentinel(text, port=port, admin_port=admin, ready_path="/ready"), port

    def get(self, port, path="/headers", headers=()):
        resp = http_request(port, "GET", path, headers=list(headers))
        return resp

    def test_new_trace_server_and_client_spans(self):
        s, port = self.sentinel()
        resp = self.get(port)
        self.assertEqual(resp.status, 200)
        received = resp.json()["headers"]
        tp = header(received, "traceparent")
        self.assertIsNotNone(tp, "the origin got no traceparent: %r" % received)
        version, trace_id, parent_id, flags = tp.split("-")
        self.assertEqual((version, flags), ("00", "01"))
        self.assertIsNone(header(received, "tracestate"))
        spans = self.collector.wait_spans(trace_id, 2)
        self.assertEqual(len(spans), 2)
        server = [x for x in spans if x.kind == trace_pb2.Span.SPAN_KIND_SERVER]
        client = [x for x in spans if x.kind == trace_pb2.Span.SPAN_KIND_CLIENT]
        self.assertEqual((len(server), len(client)), (1, 1))
        server, client = server[0], client[0]
        self.assertEqual(server.parent_span_id, b"", "a new trace's SERVER span is a root")
        self.assertEqual(client.parent_span_id, server.span_id)
        self.assertEqual(client.span_id.hex(), parent_id, "upstream's parent is the CLIENT span")
        self.assertEqual(len(server.span_id), 8)
        self.assertEqual(len(server.trace_id), 16)
        self.assertEqual(server.name, "GET api")
        self.assertEqual(client.name, "upstream web")
        a = attrs(server)
        self.assertEqual(a["http.request.method"], "GET")
        self.assertEqual(a["url.path"], "/headers")
        self.assertEqual(a["http.route"], "api")
        self.assertEqual(a["http.response.status_code"], 200)
        self.assertEqual(a["sentinel.request_id"], resp.header("x-request-id"))
        self.assertEqual(a["network.peer.address"], "127.0.0.1")
        self.assertIn("server.address", a)
        c = attrs(client)
        self.assertEqual(c["sentinel.upstream.endpoint"], self.origin.address)
        self.assertEqual(c["sentinel.upstream.attempt"], 1)
        self.assertEqual(c["sentinel.upstream.outcome"], "ok")
        self.assertEqual(c["http.response.status_code"], 200)
        for span in (server, client):
            self.assertGreater(span.start_time_unix_nano, 0)
            self.assertGreaterEqual(span.end_time_unix_nano, span.start_time_unix_nano)
            self.assertEqual(span.flags & 0xFF, 1)
            self.assertEqual(span.status.code, trace_pb2.Status.STATUS_CODE_UNSET)
        self.assertLessEqual(server.start_time_unix_nano, client.start_time_unix_nano)
        self.assertGreaterEqual(server.end_time_unix_nano, client.end_time_unix_nano)
        # Resource, scope and transport.
        with self.collector.lock:
            path, ctype, req = next(e for e in self.collector.exports
                                    if any(sp.trace_id.hex() == trace_id for rs in e[2].resource_spans
                                           for ss in rs.scope_spans for sp in ss.spans))
        self.assertEqual(path, "/v1/traces")
        self.assertEqual(ctype, "application/x-protobuf")
        rs = req.resource_spans[0]
        res = {kv.key: kv.value.string_value for kv in rs.resource.attributes}
        self.assertEqual(res["service.name"], "sentinel-test")
        self.assertTrue(res["service.version"])
        self.assertEqual(rs.scope_spans[0].scope.name, "sentinel")
        self.assertGreater(s.metric("sentinel_tracing_spans_exported_total"), 0)

    def test_incoming_sampled_traceparent_is_continued(self):
        s, port = self.sentinel()
        trace_id, caller = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
        resp = self.get(port, headers=[("traceparent", "00-%s-%s-01" % (trace_id, caller)),
                                       ("tracestate", "vendor=abc,other=x y")])
        self.assertEqual(resp.status, 200)
        received = resp.json()["headers"]
        self.assertEqual(len(headers_named(received, "traceparent")), 1, "the incoming one is replaced")
        _, t, parent, flags = header(received, "traceparent").split("-")
        self.assertEqual((t, flags), (trace_id, "01"))
        self.assertNotEqual(parent, caller)
        self.assertEqual(headers_named(received, "tracestate"), ["vendor=abc,other=x y"])
        spans = self.collector.wait_spans(trace_id, 2)
        server = next(x for x in spans if x.kind == trace_pb2.Span.SPAN_KIND_SERVER)
        client = next(x for x in spans if x.kind == trace_pb2.Span.SPAN_KIND_CLIENT)
        self.assertEqual(server.parent_span_id.hex(), caller)
        self.assertEqual(client.span_id.hex(), parent)
        self.assertEqual(server.trace_state, "vendor=abc,other=x y")

    def test_unsampled_traceparent_propagates_but_exports_nothing(self):
        s, port = self.sentinel()
        trace_id, caller = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
        resp = self.get(port, headers=[("traceparent", "00-%s-%s-00" % (trace_id, caller)),
                                       ("tracestate", "k=v")])
        self.assertEqual(resp.status, 200)
        received = resp.json()["headers"]
        _, t, parent, flags = header(received, "traceparent").split("-")
        self.assertEqual((t, flags), (trace_id, "00"))
        self.assertNotEqual(parent, caller)
        self.assertEqual(header(received, "tracestate"), "k=v")
        # A sampled request afterwards is exported: once its spans arrived, the unsampled
        # one's would have too (same worker, same batch order).
        marker = self.get(port).json()["headers"]
        self.collector.wait_spans(header(marker, "traceparent").split("-")[1], 2)
        self.assertEqual(self.collector.spans_of(trace_id), [])

    def test_invalid_traceparent_starts_a_new_trace(self):
        s, port = self.sentinel()
        bad = [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",  # zero trace id
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  # zero parent
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  # other version
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",  # trailing data
            "garbage",
        ]
        for value in bad:
            resp = self.get(port, headers=[("traceparent", value), ("tracestate", "a=b")])
            received = resp.json()["headers"]
            _, t, _, flags = header(received, "traceparent").split("-")
            self.assertNotEqual(t, "4bf92f3577b34da6a3ce929d0e0e4736", value)
            self.assertEqual(flags, "01", value)  # sample-percent 100
            self.assertIsNone(header(received, "tracestate"), "tracestate kept with invalid parent " + value)

    def test_retries_give_one_client_span_per_try(self):
        s, port = self.sentinel()
        resp = self.get(port, "/status", headers=[("X-Route", "retry")])
        self.assertEqual(resp.status, 503)
        trace_hex = None
        wait_until(lambda: any(x.name == "GET retry" for x in self.collector.spans()), 10,
                   what="the retry route's SERVER span")
        server = next(x for x in self.collector.spans() if x.name == "GET retry")
        trace_hex = server.trace_id.hex()
        spans = self.collector.wait_spans(trace_hex, 3)
        clients = sorted((x for x in spans if x.kind == trace_pb2.Span.SPAN_KIND_CLIENT),
                         key=lambda x: attrs(x)["sentinel.upstream.attempt"])
        self.assertEqual(len(clients), 2)
        self.assertEqual([attrs(c)["sentinel.upstream.attempt"] for c in clients], [1, 2])
        self.assertNotEqual(clients[0].span_id, clients[1].span_id)
        self.assertEqual({attrs(c)["sentinel.upstream.endpoint"] for c in clients},
                         {self.bad1.address, self.bad2.address})
        for c in clients:
            self.assertEqual(c.parent_span_id, server.span_id)
            self.assertEqual(c.name, "upstream all503")
            self.assertEqual(attrs(c)["http.response.status_code"], 503)
            self.assertEqual(c.status.code, trace_pb2.Status.STATUS_CODE_ERROR)
        self.assertEqual(server.status.code, trace_pb2.Status.STATUS_CODE_ERROR)
        self.assertLessEqual(clients[0].end_time_unix_nano, clients[1].start_time_unix_nano)

    def test_sample_percent_zero_exports_nothing_for_new_traces(self):
        s, port = self.sentinel(percent=0)
        before = len(self.collector.spans())
        ids = []
        for _ in range(20):
            received = self.get(port).json()["headers"]
            _, t, _, flags = header(received, "traceparent").split("-")
            self.assertEqual(flags, "00")
            ids.append(t)
        # An incoming sampled parent still wins over the ratio (parent-based sampling).
        trace_id = "11111111111111111111111111111111"
        self.get(port, headers=[("traceparent", "00-%s-2222222222222222-01" % trace_id)])
        self.collector.wait_spans(trace_id, 2)
        for t in ids:
            self.assertEqual(self.collector.spans_of(t), [])
        self.assertEqual(len(self.collector.spans()) - before, 2)

    def test_spans_are_batched(self):
        s, port = self.sentinel(batch=512)
        with self.collector.lock:
            first_export = len(self.collector.exports)
        ids = []
        for _ in range(30):
            ids.append(header(self.get(port).json()["headers"], "traceparent").split("-")[1])
        for t in ids:
            self.collector.wait_spans(t, 2)
        with self.collector.lock:
            new = self.collector.exports[first_export:]
        counts = [sum(len(ss.spans) for rs in e[2].resource_spans for ss in rs.scope_spans) for e in new]
        self.assertGreaterEqual(sum(counts), 60)
        self.assertLess(len(new), 60, "one POST per span: %r" % counts)
        self.assertGreater(max(counts), 2, "no batching: %r" % counts)

    def test_collector_down_drops_and_counts_without_slowing_requests(self):
        dead = closed_port()
        s, port = self.sentinel(collector_port=dead, queue=4, batch=2)
        start = time.monotonic()
        for _ in range(100):
            self.assertEqual(self.get(port).status, 200)
        elapsed = time.monotonic() - start
        self.assertLess(elapsed, 20, "requests slowed down by a dead collector")

        def dropped():
            return (s.metric("sentinel_tracing_spans_dropped_total", reason="export_failed") +
                    s.metric("sentinel_tracing_spans_dropped_total", reason="queue_full"))

        wait_until(lambda: dropped() >= 200, 15, what="200 spans counted as dropped")
        self.assertGreater(s.metric("sentinel_tracing_spans_dropped_total", reason="export_failed"), 0)

    def test_rejecting_collector_drops_and_counts(self):
        self.collector.status = 400
        try:
            s, port = self.sentinel()
            self.get(port)
            wait_until(lambda: s.metric("sentinel_tracing_spans_dropped_total", reason="export_failed") >= 2,
                       10, what="rejected spans counted")
        finally:
            self.collector.status = 200


if __name__ == "__main__":
    unittest.main()
