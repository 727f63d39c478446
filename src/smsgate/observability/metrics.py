"""Prometheus metrics; multi-process safe when PROMETHEUS_MULTIPROC_DIR is set (serve --workers).

Labels come only from bounded sets: route templates, status codes, channel numbers (from
configuration), outcomes and error kinds. Never a phone number or a request id.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter(
    "smsgate_http_requests_total",
    "HTTP requests by route and status",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "smsgate_http_request_seconds", "HTTP request duration by route", ["method", "route"]
)
MESSAGES = Counter(
    "smsgate_messages_total",
    "Messages by channel and outcome of the provider call (accepted, rejected, or the "
    "error kind of a failed call)",
    ["channel", "outcome"],
)
PROVIDER_SECONDS = Histogram(
    "smsgate_provider_call_seconds",
    "Provider call latency by channel",
    ["channel"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

CONTENT_TYPE = CONTENT_TYPE_LATEST


def observe_provider_call(channel: str, seconds: float, outcomes: dict[str, int]) -> None:
    PROVIDER_SECONDS.labels(channel).observe(seconds)
    for outcome, count in outcomes.items():
        if count:
            MESSAGES.labels(channel, outcome).inc(count)


def render(extra: CollectorRegistry | None = None) -> bytes:
    """This process's metrics, or every process's in multi-process mode, plus `extra`
    (gauges read from the database at scrape time)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        from prometheus_client import REGISTRY

        body = generate_latest(REGISTRY)
    if extra is not None:
        body += generate_latest(extra)
    return body


def database_gauges(
    quota_left: dict[str, int], queue_depth: int, queue_lag_seconds: float
) -> CollectorRegistry:
    registry = CollectorRegistry()
    quota = Gauge(
        "smsgate_app_quota_remaining",
        "available_number - use_number per app",
        ["app"],
        registry=registry,
    )
    for app_no, left in quota_left.items():
        quota.labels(app_no).set(left)
    Gauge("smsgate_queue_depth", "QUEUED messages that are due now", registry=registry).set(
        queue_depth
    )
    Gauge(
        "smsgate_queue_lag_seconds",
        "How long the oldest due QUEUED message has been waiting",
        registry=registry,
    ).set(queue_lag_seconds)
    return registry


class MetricsMiddleware:
    """Counts requests by route template (not the raw path: bounded labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            if template.startswith("/admin/static"):
                template = "/admin/static"
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(method, template, str(status["code"])).inc()
            HTTP_SECONDS.labels(method, template).observe(time.perf_counter() - started)
