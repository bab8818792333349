"""Prometheus metrics of one ``vd serve`` process (its own registry, text format at /metrics).

Request side: ``vd_http_request_seconds`` (histogram by route, method, status; observed by the
:class:`Observe` middleware, whose labels come only from the app's own routes and the usual
methods — anything else is ``unmatched`` / ``other``, so a client cannot add series),
``vd_predict_clips_total{outcome}``, ``vd_predict_rejected_total{reason}``,
``vd_scoring_queue`` (requests admitted and not done).
Watch side, read from the engine at scrape time (per ``source``): frames decoded, backbone
frames scored, windows, dropped windows/frames, lag, reconnects, decode errors, incidents;
webhook failures.
"""

from __future__ import annotations

import logging
import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self, live=None, gate=None):
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram("vd_http_request_seconds", "HTTP request latency, seconds",
                                 ["route", "method", "status"], buckets=BUCKETS,
                                 registry=self.registry)
        self.clips = Counter("vd_predict_clips_total", "Uploaded clips by outcome (scored, "
                             "undecodable, failed, invalid, too_large, cancelled)", ["outcome"],
                             registry=self.registry)
        self.rejected = Counter("vd_predict_rejected_total", "Uploads refused before scoring "
                                "(too_large, stalled, busy, loading)", ["reason"],
                                registry=self.registry)
        queue = Gauge("vd_scoring_queue", "Predict requests admitted and not finished",
                      registry=self.registry)
        if gate is not None:
            queue.set_function(lambda: gate.admitted)
        self.live = live
        self.registry.register(_WatchCollector(self))


KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
log = logging.getLogger("vd.serve")


class Observe:
    """Pure ASGI middleware: times every HTTP request into ``vd_http_request_seconds``, marks
    the static files ``Cache-Control: no-cache`` (a new vd's page, not the old one), and turns
    an exception that escaped a handler into a one-line 500 (the details go to the log)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.latency = app, metrics.latency

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        from starlette.datastructures import MutableHeaders

        from vd.errors import one_line
        from vd.serve.replies import err

        t0 = time.perf_counter()
        static = scope["path"].startswith("/static/")
        status = None

        async def sending(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                if static:
                    MutableHeaders(scope=message)["Cache-Control"] = "no-cache"
            await send(message)

        try:
            await self.app(scope, receive, sending)
        except Exception as exc:  # noqa: BLE001 — one line to the client, the rest to the log
            log.error("internal error on %s: %s: %s", scope["path"][:200], type(exc).__name__,
                      one_line(exc), exc_info=exc)
            if status is None:
                await err(500, "internal error (see the server's log)")(scope, receive, send)
            status = 500
        finally:
            route = getattr(scope.get("route"), "path", None)
            label = route or ("/static" if static else "unmatched")
            method = scope["method"] if scope["method"] in KNOWN_METHODS else "other"
            self.latency.labels(label, method, str(status or 500)).observe(time.perf_counter() - t0)


class _WatchCollector:
    def __init__(self, metrics: Metrics):
        self.m = metrics

    def describe(self):
        return []

    def collect(self):
        live = self.m.live
        w = None if live is None else live.watcher
        fams = {
            "frames": CounterMetricFamily("vd_frames_decoded", "Frames decoded from the source",
                                          labels=["source"]),
            "scored": CounterMetricFamily("vd_frames_scored", "Sampled frames through the "
                                          "backbone (all TTA views)", labels=["source"]),
            "windows": CounterMetricFamily("vd_windows", "Windows scored", labels=["source"]),
            "dw": CounterMetricFamily("vd_dropped_windows", "Windows given up when scoring fell "
                                      "behind or a stream dropped", labels=["source"]),
            "df": CounterMetricFamily("vd_dropped_frames", "Sampled frames given up",
                                      labels=["source"]),
            "rc": CounterMetricFamily("vd_reconnects", "Reconnections after the first",
                                      labels=["source"]),
            "de": CounterMetricFamily("vd_decode_errors", "Failed opens or reads of the source",
                                      labels=["source"]),
            "inc": CounterMetricFamily("vd_incidents", "Incidents started", labels=["source"]),
            "lag": GaugeMetricFamily("vd_lag_seconds", "Stream seconds between the newest frame "
                                     "and the end of the last scored window", labels=["source"]),
        }
        wh = CounterMetricFamily("vd_webhook_failures", "Webhook deliveries that failed")
        wh.add_metric([], float(getattr(getattr(live, "hook", None), "failures", 0) or 0))
        if w is not None:
            per_source = dict(live.started)
            for s in w.sources:
                n = [s.spec.name]
                fams["frames"].add_metric(n, s.frames_decoded)
                fams["scored"].add_metric(n, s.backbone_frames)
                fams["windows"].add_metric(n, s.windows)
                fams["dw"].add_metric(n, s.dropped_windows)
                fams["df"].add_metric(n, s.dropped_frames)
                fams["rc"].add_metric(n, max(0, s.connections - 1))
                fams["de"].add_metric(n, s.failures)
                fams["inc"].add_metric(n, per_source.get(s.spec.name, 0))
                fams["lag"].add_metric(n, max(0.0, s.last_t - s.last_end) if s.windows else 0.0)
        yield from fams.values()
        yield wh
