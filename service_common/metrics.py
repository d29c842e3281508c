"""Prometheus metrics every service shares: one registry per app, a pure-ASGI middleware, `GET /metrics`.

The middleware does the per-request work: a clock read, one in-flight inc/dec, and one cached
counter + histogram child. Handlers add what only they know with `label_request(role=..., task=...,
provider=..., model=...)`; the failed request's stable error code comes from the error handlers.
Series of one service only (tokens, media jobs, flow steps) live in that service's own `metrics.py`,
as a subclass of `Metrics`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared_contracts.errors import GatewayError

__all__ = [
    "LATENCY_BUCKETS",
    "Metrics",
    "MetricsMiddleware",
    "ScrapedGauge",
    "cached_child",
    "instrument",
    "label_request",
]

# Mock answers take milliseconds, live ones up to the 180 s deadline: the buckets span both.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 180, 300)
REQUEST_LABELS = ("endpoint", "method", "role", "task", "provider", "model", "outcome")
_NO_LABELS: Mapping[str, str] = {}
# Role and task are caller-chosen strings: past this many series they are folded into "_other".
_MAX_REQUEST_SERIES = 2_000


# The current request's extra labels. Set by the middleware to a fresh dict, so handlers (and tasks they
# spawn, which copy the context but share the dict) can add to it without being handed the request.
_request_labels: ContextVar[dict[str, str] | None] = ContextVar("pdp_request_labels", default=None)


def label_request(
    *, role: str = "", task: str = "", provider: str = "", model: str = "", outcome: str | None = None
) -> None:
    """Attach what the handler learnt to the current request's metric labels (a no-op outside one).

    `outcome` overrides the status-derived one, for failures reported inside a 200 stream.
    """
    labels = _request_labels.get()
    if labels is not None:
        labels.update(role=role, task=task, provider=provider, model=model)
        if outcome is not None:
            labels["outcome"] = outcome


class Metrics:
    """The series every service exposes, in a registry of its own (several apps may share a process)."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = Counter(
            "pdp_requests", "Requests handled, by endpoint and outcome (ok or the error code).",
            REQUEST_LABELS, registry=self.registry,
        )
        self.request_latency = Histogram(
            "pdp_request_duration_seconds", "Time from request to the last byte of the response.",
            REQUEST_LABELS, buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.in_flight = Gauge("pdp_requests_in_flight", "Requests being handled now.", registry=self.registry)
        self.upstream_latency = Histogram(
            "pdp_upstream_duration_seconds", "One call to an upstream (a provider, a gateway), by outcome.",
            ("upstream", "model", "outcome"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}
        self._upstream_children: dict[tuple[str, ...], Any] = {}

    def observe_request(self, labels: tuple[str, ...], seconds: float) -> None:
        """Count one request and its latency; `labels` follows REQUEST_LABELS."""
        children = self._children.get(labels)
        if children is None:
            if len(self._children) >= _MAX_REQUEST_SERIES:
                labels = (labels[0], labels[1], "_other", "_other", *labels[4:])
            children = self._children.get(labels)
            if children is None:
                children = (self.requests.labels(*labels), self.request_latency.labels(*labels))
                self._children[labels] = children
        children[0].inc()
        children[1].observe(seconds)

    def observe_upstream(self, upstream: str, model: str, outcome: str, seconds: float) -> None:
        """One call to an upstream and how it ended (`ok` or the error code)."""
        cached_child(self._upstream_children, self.upstream_latency, (upstream, model, outcome)).observe(seconds)

    def track(self, name: str, documentation: str, labels: tuple[str, ...], read: ReadGauge) -> ScrapedGauge:
        """Report `read()` ({label values: value}) as gauge `name` whenever the registry is scraped."""
        gauge = ScrapedGauge(name, documentation, labels, read)
        self.registry.register(gauge)
        return gauge

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


ReadGauge = Callable[[], Mapping[tuple[str, ...], float]]


class ScrapedGauge(Collector):
    """A gauge computed when the registry is scraped, so the request path pays nothing for it.

    `read` may be replaced (an app whose lifespan runs again has a new source).
    """

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...], read: ReadGauge) -> None:
        self.name, self.documentation, self.labels, self.read = name, documentation, labels, read

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for values, value in sorted(self.read().items()):
            family.add_metric(values, value)
        yield family


def cached_child(cache: dict[tuple[str, ...], Any], metric: Counter | Histogram, labels: tuple[str, ...]) -> Any:
    """`metric.labels(*labels)`, made once and reused.

    `.labels()` locks and validates on every call. The cache stops growing at the series cap (labels
    here come from config and the error tree, so it is never reached in practice).
    """
    child = cache.get(labels)
    if child is None:
        child = metric.labels(*labels)
        if len(cache) < _MAX_REQUEST_SERIES:
            cache[labels] = child
    return child


class MetricsMiddleware:
    """Pure ASGI: in-flight gauge, then one count and one latency per HTTP request when it has answered."""

    def __init__(self, app: ASGIApp, *, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_flight = self.metrics.in_flight
        in_flight.inc()
        extra: dict[str, str] = {}
        token = _request_labels.set(extra)
        raised: str | None = None
        try:
            await self.app(scope, receive, send_status)
        except asyncio.CancelledError:
            raised = "canceled"
            raise
        except Exception:
            # Starlette's ServerErrorMiddleware sits outside us: it answers 500 after we have seen this.
            raised = GatewayError.code
            raise
        finally:
            _request_labels.reset(token)
            in_flight.dec()
            outcome = extra.get("outcome") or raised
            if outcome is None:
                if status < 400:
                    outcome = "ok"
                else:
                    state = scope.get("state") or _NO_LABELS
                    outcome = state.get("error_code") or f"http_{status}"
            self.metrics.observe_request(
                (
                    getattr(scope.get("route"), "path", "unmatched"),
                    scope["method"],
                    extra.get("role", ""),
                    extra.get("task", ""),
                    extra.get("provider", ""),
                    extra.get("model", ""),
                    outcome,
                ),
                time.perf_counter() - started,
            )


def instrument(app: Starlette, metrics: Metrics) -> None:
    """Add the middleware (outermost) and `GET /metrics` to an app before it starts."""

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.router.routes.append(Route("/metrics", metrics_endpoint, methods=["GET"]))
