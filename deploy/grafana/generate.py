#!/usr/bin/env python3
"""Writes the Grafana dashboards in this folder (one JSON file each). The dashboards are
committed; edit this script and re-run it rather than editing the JSON by hand:
    python3 deploy/grafana/generate.py
Every query uses the ${datasource} variable, so the dashboards import into any Grafana
with a Prometheus data source. Metric names are checked against a running Sentinel by the
deploy.metric_names test (test/support/check_metric_names.py)."""

import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
DS = {"type": "prometheus", "uid": "${datasource}"}


def variables(extra=()):
    v = [{
        "name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus",
        "current": {}, "hide": 0, "refresh": 1, "regex": "", "options": [],
    }, {
        "name": "job", "label": "Job", "type": "query", "datasource": DS,
        "query": {"query": "label_values(sentinel_build_info, job)", "refId": "job"},
        "definition": "label_values(sentinel_build_info, job)",
        "current": {}, "includeAll": True, "multi": True, "refresh": 2, "options": [], "hide": 0,
    }]
    for name, query in extra:
        v.append({
            "name": name, "label": name.capitalize(), "type": "query", "datasource": DS,
            "query": {"query": query, "refId": name}, "definition": query,
            "current": {}, "includeAll": True, "multi": True, "refresh": 2, "options": [], "hide": 0,
        })
    return {"list": v}


class Layout:
    def __init__(self):
        self.panels, self.x, self.y, self.next_id = [], 0, 0, 1

    def add(self, title, targets, kind="timeseries", unit="short", w=12, h=8, description=""):
        if self.x + w > 24:
            self.x, self.y = 0, self.y + h
        panel = {
            "id": self.next_id, "type": kind, "title": title, "description": description,
            "datasource": DS, "gridPos": {"x": self.x, "y": self.y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
            "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max"]}}
            if kind == "timeseries" else {"reduceOptions": {"calcs": ["lastNotNull"]}},
            "targets": [{"datasource": DS, "expr": expr, "legendFormat": legend, "refId": chr(65 + i)}
                        for i, (expr, legend) in enumerate(targets)],
        }
        self.panels.append(panel)
        self.next_id += 1
        self.x += w

    def row(self, title):
        self.x, self.y = 0, self.y + 8
        self.panels.append({"id": self.next_id, "type": "row", "title": title, "collapsed": False,
                            "gridPos": {"x": 0, "y": self.y, "w": 24, "h": 1}, "panels": []})
        self.next_id += 1
        self.y += 1


def dashboard(uid, title, layout, extra_vars=(), description=""):
    return {
        "uid": uid, "title": title, "description": description, "tags": ["sentinel"],
        "timezone": "browser", "schemaVersion": 38, "version": 1, "editable": True,
        "time": {"from": "now-1h", "to": "now"}, "refresh": "30s",
        "templating": variables(extra_vars), "annotations": {"list": []},
        "panels": layout.panels,
    }


J = 'job=~"$job"'


def overview():
    l = Layout()
    l.add("Requests per second", [(f'sum(rate(sentinel_http_requests_total{{{J}}}[$__rate_interval]))', "all")],
          kind="stat", unit="reqps", w=6, h=4)
    l.add("5xx ratio", [(f'sum(rate(sentinel_http_requests_total{{{J},status_class="5xx"}}[$__rate_interval])) / '
                         f'sum(rate(sentinel_http_requests_total{{{J}}}[$__rate_interval]))', "5xx")],
          kind="stat", unit="percentunit", w=6, h=4)
    l.add("Open connections", [(f'sum(sentinel_downstream_connections_active{{{J}}})', "open")],
          kind="stat", w=6, h=4)
    l.add("Availability budget burn (1h)", [(f'job:sentinel_slo_availability_errors:ratio_rate1h{{{J}}} / 0.001', "{{job}}")],
          kind="stat", unit="x", w=6, h=4,
          description="1 = burning the 30-day 99.9% budget exactly as fast as it allows; 14.4 pages.")
    l.y += 4
    l.x = 0
    l.add("Requests by route", [(f'sum by (route) (rate(sentinel_http_requests_total{{{J},route=~"$route"}}[$__rate_interval]))', "{{route}}")],
          unit="reqps")
    l.add("Requests by status class", [(f'sum by (status_class) (rate(sentinel_http_requests_total{{{J},route=~"$route"}}[$__rate_interval]))', "{{status_class}}")],
          unit="reqps")
    l.add("p99 latency by route", [(f'histogram_quantile(0.99, sum by (route, le) (rate(sentinel_http_request_duration_seconds_bucket{{{J},route=~"$route"}}[$__rate_interval])))', "{{route}}")],
          unit="s")
    l.add("p50 latency by route", [(f'histogram_quantile(0.5, sum by (route, le) (rate(sentinel_http_request_duration_seconds_bucket{{{J},route=~"$route"}}[$__rate_interval])))', "{{route}}")],
          unit="s")
    l.add("Error ratio by route (recorded, 5m)", [(f'route:sentinel_http_errors:ratio_rate5m{{{J},route=~"$route"}}', "{{route}}")],
          unit="percentunit")
    l.add("Requests by method", [(f'sum by (method) (rate(sentinel_http_requests_total{{{J}}}[$__rate_interval]))', "{{method}}")],
          unit="reqps")
    l.row("Listeners")
    l.add("Open connections by listener", [(f'sum by (listener, protocol) (sentinel_downstream_connections_active{{{J}}})', "{{listener}} {{protocol}}")])
    l.add("Requests by listener", [(f'sum by (listener) (rate(sentinel_http_requests_total{{{J}}}[$__rate_interval]))', "{{listener}}")],
          unit="reqps")
    l.add("Throughput by listener", [
        (f'sum by (listener) (rate(sentinel_http_request_bytes_total{{{J}}}[$__rate_interval]))', "{{listener}} in"),
        (f'sum by (listener) (rate(sentinel_http_response_bytes_total{{{J}}}[$__rate_interval]))', "{{listener}} out")],
          unit="Bps")
    l.add("Local replies by reason", [(f'sum by (reason) (rate(sentinel_local_replies_total{{{J}}}[$__rate_interval])) > 0', "{{reason}}")],
          unit="reqps")
    l.add("Timeouts by kind", [(f'sum by (kind) (rate(sentinel_timeouts_total{{{J}}}[$__rate_interval])) > 0', "{{kind}}")],
          unit="ops")
    l.add("Connections accepted / rejected", [
        (f'sum(rate(sentinel_downstream_connections_accepted_total{{{J}}}[$__rate_interval]))', "accepted"),
        (f'sum(rate(sentinel_downstream_connections_rejected_total{{{J}}}[$__rate_interval]))', "rejected")],
          unit="ops")
    l.row("Process")
    l.add("CPU", [(f'rate(sentinel_process_cpu_seconds_total{{{J}}}[$__rate_interval])', "{{instance}}")], unit="percentunit", w=8)
    l.add("Resident memory", [(f'sentinel_process_resident_memory_bytes{{{J}}}', "{{instance}}")], unit="bytes", w=8)
    l.add("Open file descriptors", [(f'sentinel_process_open_fds{{{J}}}', "{{instance}} open"),
                                    (f'sentinel_process_max_fds{{{J}}}', "{{instance}} limit")], w=8)
    return dashboard("sentinel-overview", "Sentinel / Overview", l,
                     [("route", "label_values(sentinel_http_requests_total{job=~\"$job\"}, route)")],
                     "Traffic, errors and latency per route and listener.")


def upstreams():
    l = Layout()
    U = f'{J},upstream=~"$upstream"'
    l.add("Tries by upstream", [(f'upstream:sentinel_upstream_tries:rate5m{{{U}}}', "{{upstream}}")], unit="ops")
    l.add("Error ratio by upstream (5xx + failed tries)", [(f'upstream:sentinel_upstream_errors:ratio_rate5m{{{U}}}', "{{upstream}}")],
          unit="percentunit")
    l.add("Responses by status class", [(f'sum by (upstream, status_class) (rate(sentinel_upstream_responses_total{{{U}}}[$__rate_interval])) > 0', "{{upstream}} {{status_class}}")],
          unit="ops")
    l.add("Failed tries by reason", [(f'sum by (upstream, reason) (rate(sentinel_upstream_try_failures_total{{{U}}}[$__rate_interval])) > 0', "{{upstream}} {{reason}}")],
          unit="ops")
    l.add("p99 time to response head", [(f'histogram_quantile(0.99, sum by (upstream, le) (rate(sentinel_upstream_response_header_duration_seconds_bucket{{{U}}}[$__rate_interval])))', "{{upstream}}")],
          unit="s")
    l.add("p99 upstream request duration", [(f'histogram_quantile(0.99, sum by (upstream, le) (rate(sentinel_upstream_request_duration_seconds_bucket{{{U}}}[$__rate_interval])))', "{{upstream}}")],
          unit="s")
    l.add("p99 connect duration", [(f'histogram_quantile(0.99, sum by (upstream, le) (rate(sentinel_upstream_connect_duration_seconds_bucket{{{U}}}[$__rate_interval])))', "{{upstream}}")],
          unit="s")
    l.add("Connections opened / reused", [
        (f'sum(rate(sentinel_upstream_pool_connections_created_total{{{J}}}[$__rate_interval]))', "opened"),
        (f'sum(rate(sentinel_upstream_pool_connections_reused_total{{{J}}}[$__rate_interval]))', "reused")], unit="ops")
    l.row("Endpoints")
    l.add("Endpoint health (1 = healthy)", [(f'sentinel_upstream_endpoint_healthy{{{U}}}', "{{upstream}} {{endpoint}}")])
    l.add("Breaker open", [(f'sentinel_upstream_endpoint_breaker_state{{{U},state="open"}}', "{{upstream}} {{endpoint}}")])
    l.add("Ejected by outlier detection", [(f'sentinel_upstream_endpoint_ejected{{{U}}}', "{{upstream}} {{endpoint}}")])
    l.add("Endpoint latency (peak EWMA)", [(f'sentinel_upstream_endpoint_latency_ewma_seconds{{{U}}}', "{{upstream}} {{endpoint}}")], unit="s")
    l.add("In flight", [(f'sentinel_upstream_endpoint_in_flight_requests{{{U}}}', "{{upstream}} {{endpoint}}")])
    l.add("Open connections and pending connects", [
        (f'sentinel_upstream_open_connections{{{U}}}', "{{upstream}} open"),
        (f'sentinel_upstream_pending_connects{{{U}}}', "{{upstream}} pending")])
    l.row("Retries and refusals")
    l.add("Retries", [(f'sum(rate(sentinel_upstream_retries_total{{{J}}}[$__rate_interval]))', "retries"),
                      (f'sum(rate(sentinel_upstream_retry_budget_exhausted_total{{{J}}}[$__rate_interval]))', "budget exhausted"),
                      (f'sum(rate(sentinel_upstream_stale_connection_retries_total{{{J}}}[$__rate_interval]))', "stale connection")], unit="ops")
    l.add("Refused (503) by reason", [(f'sum by (reason) (rate(sentinel_upstream_refused_total{{{J}}}[$__rate_interval])) > 0', "{{reason}}"),
                                      (f'sum(rate(sentinel_upstream_breaker_refusals_total{{{J}}}[$__rate_interval]))', "breaker refusals")], unit="ops")
    return dashboard("sentinel-upstreams", "Sentinel / Upstreams", l,
                     [("upstream", "label_values(sentinel_upstream_responses_total{job=~\"$job\"}, upstream)")],
                     "Upstream tries, errors, latency, endpoints, breakers and retries.")


def tls():
    l = Layout()
    l.add("Downstream handshakes by version", [(f'sum by (version) (rate(sentinel_tls_handshakes_total{{{J}}}[$__rate_interval]))', "{{version}}")], unit="ops")
    l.add("Session resumption ratio", [(f'sum(rate(sentinel_tls_resumed_handshakes_total{{{J}}}[$__rate_interval])) / sum(rate(sentinel_tls_handshakes_total{{{J}}}[$__rate_interval]))', "resumed")],
          unit="percentunit")
    l.add("Downstream handshake failures by reason", [(f'sum by (reason) (rate(sentinel_tls_handshake_failures_total{{{J}}}[$__rate_interval])) > 0', "{{reason}}")], unit="ops")
    l.add("Open HTTPS connections by listener", [(f'sum by (listener) (sentinel_downstream_connections_active{{{J},protocol="https"}})', "{{listener}}")])
    l.row("Towards upstreams")
    l.add("Upstream handshakes (resumed or full)", [(f'sum by (resumed) (rate(sentinel_upstream_tls_handshakes_total{{{J}}}[$__rate_interval]))', "resumed={{resumed}}")], unit="ops")
    l.add("Upstream handshake failures", [(f'sum(rate(sentinel_upstream_tls_handshake_failures_total{{{J}}}[$__rate_interval]))', "failures")], unit="ops")
    return dashboard("sentinel-tls", "Sentinel / TLS", l, (), "Downstream and upstream TLS handshakes, resumption and failures.")


def reloads():
    l = Layout()
    l.add("Reloads by result", [(f'sum by (result) (increase(sentinel_config_reloads_total{{{J}}}[$__rate_interval]))', "{{result}}")], unit="short")
    l.add("Active configuration", [(f'sentinel_config_info{{{J}}}', "{{instance}} {{hash}}")], kind="table")
    l.add("Configuration age", [(f'time() - sentinel_config_load_timestamp_seconds{{{J}}}', "{{instance}}")], unit="s")
    l.add("Routes, upstreams, listeners, workers", [
        (f'sentinel_routes{{{J}}}', "{{instance}} routes"), (f'sentinel_upstreams{{{J}}}', "{{instance}} upstreams"),
        (f'sentinel_listeners{{{J}}}', "{{instance}} listeners"), (f'sentinel_workers{{{J}}}', "{{instance}} workers")])
    l.add("Uptime", [(f'sentinel_process_uptime_seconds{{{J}}}', "{{instance}}")], unit="s")
    l.add("Access-log lines dropped", [(f'sum(rate(sentinel_access_log_dropped_lines_total{{{J}}}[$__rate_interval]))', "dropped")], unit="ops")
    l.add("Build", [(f'sentinel_build_info{{{J}}}', "{{instance}} {{version}}")], kind="table")
    l.add("Open connections during reloads", [(f'sum by (listener) (sentinel_downstream_connections_active{{{J}}})', "{{listener}}")])
    return dashboard("sentinel-reloads", "Sentinel / Reloads and configuration", l, (),
                     "Configuration reloads, the active config hash, and what it contains.")


def main():
    for name, build in (("overview", overview), ("upstreams", upstreams), ("tls", tls), ("reloads", reloads)):
        with open(os.path.join(HERE, "sentinel-%s.json" % name), "w") as f:
            json.dump(build(), f, indent=2, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
