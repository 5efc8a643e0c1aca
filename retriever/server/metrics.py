"""Prometheus metrics: requests by route template and status, and their latency.

Each app gets its own registry (several apps in one process, as in the tests, would
otherwise collide on metric names). Routes are labelled by their template
(``/collections/{name}``), never the raw path, so a client cannot grow the label set.
"""

from __future__ import annotations

__all__ = ["Metrics", "MetricsMiddleware"]

import time
from typing import Any


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("retriever_http_requests_total", "HTTP requests served",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("retriever_http_request_duration_seconds",
                                 "Time to serve an HTTP request", ["method", "route"],
                                 registry=self.registry,
                                 buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10,
                                          30, 60, 120))
        self.in_flight = Gauge("retriever_http_requests_in_flight",
                               "HTTP requests being served", registry=self.registry)
        self.indexed_pages = Counter("retriever_indexed_pages_total",
                                     "Pages committed by uploads", registry=self.registry)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST



class MetricsMiddleware:
    """Pure ASGI middleware counting every answer (the size cap's 413 included) by the
    route template FastAPI matched, and timing it."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]  # an exception before the response starts is a 500

        async def sent(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        metrics = self.metrics
        start = time.perf_counter()
        metrics.in_flight.inc()
        try:
            await self.app(scope, receive, sent)
        finally:
            metrics.in_flight.dec()
            route = scope.get("route")  # set by the router in this same scope dict
            label = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "?")
            metrics.requests.labels(method, label, str(status[0])).inc()
            metrics.latency.labels(method, label).observe(time.perf_counter() - start)
