"""Prometheus metrics every service shares: one registry per app, what each request records, `GET /metrics`.

`service_common.http.RequestMiddleware` does the per-request work: a clock read, the in-flight count (a
plain integer read at scrape time) and one cached counter + histogram child (`Metrics.end_request`).
Handlers add what only they know with `label_request(role=..., task=..., provider=..., model=...)`; the
failed request's stable error code comes from the error handlers.
Series of one service only (tokens, media jobs, flow steps) live in that service's own `metrics.py`,
as a subclass of `Metrics`.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar, Token

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Scope

__all__ = [
    "LATENCY_BUCKETS",
    "CounterSeries",
    "HistogramSeries",
    "Metrics",
    "ScrapedGauge",
    "label_request",
    "metrics_route",
    "request_labels",
    "reset_request_labels",
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


def request_labels() -> tuple[dict[str, str], Token[dict[str, str] | None]]:
    """A fresh label dict for the request starting in this context (`label_request` fills it); reset the token."""
    labels: dict[str, str] = {}
    return labels, _request_labels.set(labels)


def reset_request_labels(token: Token[dict[str, str] | None]) -> None:
    """End the labels `request_labels` made."""
    _request_labels.reset(token)


def label_request(
    *, role: str = "", task: str = "", provider: str = "", model: str = "", outcome: str | None = None
) -> None:
    """Attach what the handler learnt to the current request's metric labels (a no-op outside one).

    `outcome` overrides the status-derived one, for failures reported inside a 200 stream.
    """
    labels = _request_labels.get()
    if labels is not None:
        labels["role"] = role
        labels["task"] = task
        labels["provider"] = provider
        labels["model"] = model
        if outcome is not None:
            labels["outcome"] = outcome


class CounterSeries(Collector):
    """A counter family kept as plain numbers per label tuple, rendered when the registry is scraped.

    prometheus_client's children take a lock and walk Python objects on every update; these series are
    updated only on the service's event loop thread (requests, their upstream calls), which also answers
    the scrape, so a dict of floats does the same job at a fraction of the cost.
    """

    def __init__(self, name: str, documentation: str, labels: tuple[str, ...], registry: CollectorRegistry) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.values: dict[tuple[str, ...], float] = {}
        registry.register(self)

    def inc(self, labels: tuple[str, ...], amount: float = 1.0) -> None:
        """Add `amount` to the series of `labels`."""
        values = self.values
        values[labels] = values.get(labels, 0.0) + amount

    def collect(self) -> Iterable[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in list(self.values.items()):
            family.add_metric(labels, value)
        yield family


class HistogramSeries(Collector):
    """A histogram family kept as plain bucket counts per label tuple (see `CounterSeries` for why)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...],
        registry: CollectorRegistry,
        *,
        buckets: tuple[float, ...] = LATENCY_BUCKETS,
    ) -> None:
        self.name, self.documentation, self.labels = name, documentation, labels
        self.bounds = tuple(sorted(buckets))
        # Per label tuple: one count per bucket (the last one is +Inf), then the sum of observed values.
        self.series: dict[tuple[str, ...], list[float]] = {}
        registry.register(self)

    def observe(self, labels: tuple[str, ...], value: float) -> None:
        """Count one observation of `value` in the series of `labels`."""
        counts = self.series.get(labels)
        if counts is None:
            counts = self.series[labels] = [0.0] * (len(self.bounds) + 2)
        counts[bisect.bisect_left(self.bounds, value)] += 1
        counts[-1] += value

    def collect(self) -> Iterable[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labels)
        names = [*map(floatToGoString, self.bounds), "+Inf"]
        for labels, counts in list(self.series.items()):
            cumulative = list(itertools.accumulate(counts[:-1]))
            family.add_metric(labels, buckets=list(zip(names, cumulative, strict=True)), sum_value=counts[-1])
        yield family


class Metrics:
    """The series every service exposes, in a registry of its own (several apps may share a process)."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = CounterSeries(
            "pdp_requests", "Requests handled, by endpoint and outcome (ok or the error code).",
            REQUEST_LABELS, self.registry,
        )
        self.request_latency = HistogramSeries(
            "pdp_request_duration_seconds", "Time from request to the last byte of the response.",
            REQUEST_LABELS, self.registry,
        )
        self.in_flight = Gauge("pdp_requests_in_flight", "Requests being handled now.", registry=self.registry)
        # A plain count on the request path, read when the registry is scraped (no lock per request).
        self.requests_in_flight = 0
        self.in_flight.set_function(lambda: self.requests_in_flight)
        self.upstream_latency = HistogramSeries(
            "pdp_upstream_duration_seconds", "One call to an upstream (a provider, a gateway), by outcome.",
            ("upstream", "model", "outcome"), self.registry,
        )

    def observe_request(self, labels: tuple[str, ...], seconds: float) -> None:
        """Count one request and its latency; `labels` follows REQUEST_LABELS."""
        if labels not in self.requests.values and len(self.requests.values) >= _MAX_REQUEST_SERIES:
            labels = (labels[0], labels[1], "_other", "_other", *labels[4:])
        self.requests.inc(labels)
        self.request_latency.observe(labels, seconds)

    def end_request(
        self, scope: Scope, labels: Mapping[str, str], status: int, raised: str | None, seconds: float
    ) -> None:
        """A request ended (answered with `status`, or `raised` a failure): count it and its latency once.

        `labels` is what its handler learnt (`label_request`); a failure's stable code comes from the
        error handlers (`scope["state"]["error_code"]`).
        """
        outcome = labels.get("outcome") or raised
        if outcome is None:
            if status < 400:
                outcome = "ok"
            else:
                state = scope.get("state") or _NO_LABELS
                outcome = state.get("error_code") or f"http_{status}"
        self.observe_request(
            (
                getattr(scope.get("route"), "path", "unmatched"),
                scope["method"],
                labels.get("role", ""),
                labels.get("task", ""),
                labels.get("provider", ""),
                labels.get("model", ""),
                outcome,
            ),
            seconds,
        )

    def observe_upstream(self, upstream: str, model: str, outcome: str, seconds: float) -> None:
        """One call to an upstream and how it ended (`ok` or the error code)."""
        self.upstream_latency.observe((upstream, model, outcome), seconds)

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


def metrics_route(metrics: Metrics) -> Route:
    """`GET /metrics`: the registry in Prometheus text format."""

    async def metrics_endpoint(request: Request) -> Response:
        return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics_endpoint, methods=["GET"])
