"""Prometheus metrics for the three apps: one registry per app, a pure-ASGI middleware, `GET /metrics`.

The middleware does the per-request work: a clock read, one in-flight inc/dec, and one cached
counter + histogram child. Handlers add what only they know with `label_request(role=..., task=...,
provider=..., model=...)`; the failed request's stable error code comes from the error handlers.
Series of one service only (tokens, media jobs, flow steps) live in small subclasses.
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
from shared_contracts.flows import RunDocument
from shared_contracts.llm import Attempt, GenerateRequest, GenerateResponse
from shared_contracts.media import Job

__all__ = [
    "LATENCY_BUCKETS",
    "FlowMetrics",
    "LLMMetrics",
    "MediaMetrics",
    "Metrics",
    "MetricsMiddleware",
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
        self._upstream_children: dict[tuple[str, str, str], Any] = {}

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
        _child(self._upstream_children, self.upstream_latency, (upstream, model, outcome)).observe(seconds)

    def render(self) -> bytes:
        """The registry in Prometheus text format."""
        return generate_latest(self.registry)


def _child(cache: dict[tuple[str, str, str], Any], metric: Counter | Histogram, labels: tuple[str, str, str]) -> Any:
    # `.labels()` locks and validates on every call; a child once made is reused. The cache stops growing
    # at the series cap (labels here come from config and the error tree, so it is never reached in practice).
    child = cache.get(labels)
    if child is None:
        child = metric.labels(*labels)
        if len(cache) < _MAX_REQUEST_SERIES:
            cache[labels] = child
    return child


class LLMMetrics(Metrics):
    """LLM Gateway: tokens in and out per provider and model, and every attempt as an upstream call."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry=registry)
        self.tokens = Counter(
            "pdp_llm_tokens", "Tokens the providers reported (estimated in mock mode); direction is in or out.",
            ("provider", "model", "direction"), registry=self.registry,
        )
        self._token_children: dict[tuple[str, str, str], Any] = {}

    def count_tokens(self, provider: str, model: str, *, input_tokens: int, output_tokens: int) -> None:
        """Add one answer's usage."""
        _child(self._token_children, self.tokens, (provider, model, "in")).inc(input_tokens)
        _child(self._token_children, self.tokens, (provider, model, "out")).inc(output_tokens)

    def observe_generation(
        self, request: GenerateRequest | None, response: GenerateResponse | None, error: GatewayError | None
    ) -> None:
        """Label the current request by route and answer, count tokens, and time each attempt upstream."""
        role, task = (request.role, request.task) if request is not None else ("", "")
        if response is not None:
            label_request(role=role, task=task, provider=response.provider, model=response.model)
            self.count_tokens(response.provider, response.model, input_tokens=response.usage.input_tokens,
                              output_tokens=response.usage.output_tokens)
            attempts: Iterable[Any] = response.attempts
        else:
            attempts = (error.details.get("attempts") or []) if error is not None else []
            last = attempts[-1] if attempts else None
            label_request(role=role, task=task, provider=getattr(last, "provider", ""),
                          model=getattr(last, "model", ""), outcome=error.code if error is not None else None)
        for attempt in attempts:
            if isinstance(attempt, Attempt):
                self.observe_upstream(attempt.provider, attempt.model, attempt.outcome, attempt.latency_ms / 1000)

    def track_breakers(self, read: Callable[[], Mapping[str, str]]) -> None:
        """Report `read()` ({provider: breaker state}) as `pdp_breaker_state` whenever the registry is scraped."""
        self.registry.register(_BreakerCollector(read))


_BREAKER_STATES = ("closed", "half_open", "open")


class _BreakerCollector(Collector):
    """`pdp_breaker_state`: one series per provider and state, 1 for the state it is in now."""

    def __init__(self, read: Callable[[], Mapping[str, str]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "pdp_breaker_state", "Circuit breaker per provider: 1 on its current state (closed, half_open, open).",
            labels=("provider", "state"),
        )
        for provider, current in sorted(self.read().items()):
            for state in _BREAKER_STATES:
                family.add_metric((provider, state), 1.0 if state == current else 0.0)
        yield family


class _QueueCollector(Collector):
    """`pdp_media_queue_depth`, computed when scraped so the job path pays nothing for it."""

    def __init__(self, read: Callable[[], Mapping[tuple[str, str], float]]) -> None:
        self.read = read

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "pdp_media_queue_depth", "Image jobs queued or running, per provider.", labels=("provider", "state")
        )
        for (provider, state), value in sorted(self.read().items()):
            family.add_metric((provider, state), value)
        yield family


class MediaMetrics(Metrics):
    """Media Gateway: job durations by final status, and the queue depth read at scrape time."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry=registry)
        self.job_duration = Histogram(
            "pdp_media_job_duration_seconds", "Image jobs from creation to their final status.",
            ("provider", "workflow", "status"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self._queue: _QueueCollector | None = None

    def observe_job(self, job: Job) -> None:
        """A job reached its final status; its own `latency_ms` is the duration."""
        self.job_duration.labels(job.provider, job.workflow, job.status).observe((job.latency_ms or 0.0) / 1000)

    def track_queue(self, read: Callable[[], Mapping[tuple[str, str], float]]) -> None:
        """Report `read()` ({(provider, state): count}) as the queue depth whenever the registry is scraped.

        A later call replaces the source (an app whose lifespan runs again gets a new job runner).
        """
        if self._queue is None:
            self._queue = _QueueCollector(read)
            self.registry.register(self._queue)
        else:
            self._queue.read = read


class FlowMetrics(Metrics):
    """Orchestrator: flow runs and each agent step, by final status."""

    def __init__(self, *, registry: CollectorRegistry | None = None) -> None:
        super().__init__(registry=registry)
        self.step_duration = Histogram(
            "pdp_flow_step_duration_seconds", "One agent step of a flow, by role and final status.",
            ("flow", "role", "status"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )
        self.run_duration = Histogram(
            "pdp_flow_run_duration_seconds", "A whole flow run, by final status.",
            ("flow", "status"), buckets=LATENCY_BUCKETS, registry=self.registry,
        )

    def observe_run(self, doc: RunDocument) -> None:
        """A run ended: its duration, and each step that ran, with the gateway call it made."""
        self.run_duration.labels(doc.flow, doc.status).observe((doc.duration_ms or 0.0) / 1000)
        for role, step in doc.steps.items():
            if step.latency_ms is None:
                continue
            self.step_duration.labels(doc.flow, role, step.status).observe(step.latency_ms / 1000)
            outcome = "ok" if step.error is None else step.error.code
            # A step is one LLM Gateway call, then (vision) one waited Media Gateway job: split it so.
            media_ms = (step.media.latency_ms or 0.0) if step.media is not None else 0.0
            if step.media is not None:
                self.observe_upstream("media_gateway", step.media.workflow, outcome, media_ms / 1000)
            self.observe_upstream("llm_gateway", step.model or "", outcome, max(0.0, step.latency_ms - media_ms) / 1000)


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
