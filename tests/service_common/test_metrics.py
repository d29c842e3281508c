"""service_common.metrics: per-app registries, request labels and outcomes, and the service-specific series."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

import service_common.metrics as metrics_module
from llm_gateway.metrics import LLMMetrics
from media_gateway.metrics import MediaMetrics
from orchestrator.metrics import FlowMetrics
from service_common.http import RequestMiddleware, error_handlers
from service_common.metrics import Metrics, label_request, metrics_route
from shared_contracts.errors import NoRoute, UpstreamTimeout
from shared_contracts.flows import MediaCall, Product, RunDocument, StepRecord
from shared_contracts.llm import Attempt, GenerateRequest, GenerateResponse, Message, Usage
from shared_contracts.media import Job
from tests.fakes.asgi import AsgiClient


def _value(metrics: Metrics, name: str, **labels: str) -> float:
    return sum(
        sample.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for sample in family.samples
        if sample.name == name and labels.items() <= sample.labels.items()
    )


async def _labelled(request: Request) -> Response:
    label_request(role="brand", task="profile", provider="mock", model="m1")
    return PlainTextResponse("ok")


async def _missing(request: Request) -> Response:
    raise NoRoute("no rule")


async def _crash(request: Request) -> Response:
    raise RuntimeError("boom")


async def _stream_failed(request: Request) -> Response:
    label_request(role="copywriter", provider="mock", model="m1", outcome="upstream_timeout")
    return PlainTextResponse("event: error\n\n")


def _app(metrics: Metrics) -> Starlette:
    app = Starlette(
        routes=[
            Route("/items/{item_id}", _labelled, methods=["POST"]),
            Route("/missing", _missing),
            Route("/crash", _crash),
            Route("/stream", _stream_failed),
            metrics_route(metrics),
        ],
        middleware=[Middleware(RequestMiddleware, metrics=metrics)],
        exception_handlers=dict(error_handlers()),
    )
    return app


async def test_requests_are_counted_by_route_template_labels_and_outcome() -> None:
    metrics = Metrics()
    async with AsgiClient(_app(metrics)) as client:
        assert (await client.post("/items/1", json={})).status == 200
        assert (await client.post("/items/2", json={})).status == 200
        assert (await client.get("/missing")).status == 404
        assert (await client.get("/nowhere")).status == 404
        assert (await client.get("/stream")).status == 200
        scrape = await client.get("/metrics")
    assert scrape.status == 200 and scrape.headers["content-type"].startswith("text/plain")
    assert _value(metrics, "pdp_requests_total", endpoint="/items/{item_id}", method="POST", role="brand",
                  task="profile", provider="mock", model="m1", outcome="ok") == 2
    assert _value(metrics, "pdp_request_duration_seconds_count", endpoint="/items/{item_id}") == 2
    assert _value(metrics, "pdp_requests_total", endpoint="/missing", outcome="no_route") == 1
    assert _value(metrics, "pdp_requests_total", endpoint="unmatched", outcome="not_found") == 1
    assert _value(metrics, "pdp_requests_total", endpoint="/stream", role="copywriter",
                  outcome="upstream_timeout") == 1
    assert _value(metrics, "pdp_requests_in_flight") == 0


async def test_an_unhandled_error_is_counted_as_internal_error() -> None:
    metrics = Metrics()
    async with AsgiClient(_app(metrics)) as client:
        # Starlette re-raises after answering 500, so the server can log it; the client got its envelope.
        with pytest.raises(RuntimeError, match="boom"):
            await client.get("/crash")
    assert _value(metrics, "pdp_requests_total", endpoint="/crash", outcome="internal_error") == 1
    assert _value(metrics, "pdp_requests_in_flight") == 0


async def test_two_apps_in_one_process_keep_their_own_series() -> None:
    first, second = Metrics(), Metrics()
    async with AsgiClient(_app(first)) as one, AsgiClient(_app(second)) as two:
        await one.post("/items/1", json={})
        await one.post("/items/1", json={})
        await two.post("/items/1", json={})
    assert _value(first, "pdp_requests_total", endpoint="/items/{item_id}") == 2
    assert _value(second, "pdp_requests_total", endpoint="/items/{item_id}") == 1


def test_label_request_outside_a_request_is_a_no_op() -> None:
    label_request(role="brand")


def test_caller_chosen_labels_are_folded_past_the_series_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics_module, "_MAX_REQUEST_SERIES", 2)
    metrics = Metrics()
    for task in ("a", "b", "c", "d"):
        metrics.observe_request(("/x", "POST", "brand", task, "mock", "m", "ok"), 0.01)
    assert _value(metrics, "pdp_requests_total", task="a") == 1
    assert _value(metrics, "pdp_requests_total", role="_other", task="_other") == 2


def _request(role: str = "brand") -> GenerateRequest:
    return GenerateRequest(role=role, task="profile", messages=[Message(role="user", content="hi")])


def test_llm_generation_counts_tokens_and_each_attempt() -> None:
    metrics = LLMMetrics()
    response = GenerateResponse(
        id="r1",
        role="brand",
        task="profile",
        mode="live",
        provider="local",
        model="m2",
        text="t",
        json=None,
        finish_reason="stop",
        usage=Usage(input_tokens=12, output_tokens=30),
        latency_ms=250.0,
        attempts=[
            Attempt(
                provider="local", model="m1", outcome="upstream_error", latency_ms=100.0, error_code="upstream_error"
            ),
            Attempt(provider="local", model="m2", outcome="ok", latency_ms=150.0),
        ],
    )
    metrics.observe_generation(_request(), response, None)
    assert _value(metrics, "pdp_llm_tokens_total", provider="local", model="m2", direction="in") == 12
    assert _value(metrics, "pdp_llm_tokens_total", provider="local", model="m2", direction="out") == 30
    assert _value(metrics, "pdp_upstream_duration_seconds_count", upstream="local", model="m1",
                  outcome="upstream_error") == 1
    assert _value(metrics, "pdp_upstream_duration_seconds_sum", upstream="local", model="m2", outcome="ok") == 0.15


def test_llm_failure_times_the_attempts_it_made() -> None:
    metrics = LLMMetrics()
    error = UpstreamTimeout("late", details={"attempts": [
        Attempt(provider="local", model="m1", outcome="upstream_timeout", latency_ms=5000.0)]})
    metrics.observe_generation(_request(), None, error)
    assert _value(metrics, "pdp_upstream_duration_seconds_count", outcome="upstream_timeout") == 1
    assert _value(metrics, "pdp_llm_tokens_total") == 0


def _job(status: str, latency_ms: float) -> Job:
    now = datetime.now(UTC)
    return Job(id="j", status=status, mode="mock", provider="mock", workflow="smoke_v1",  # type: ignore[arg-type]
               progress=1.0, images=[], seed=1, error=None, created_at=now, started_at=now, finished_at=now,
               latency_ms=latency_ms)


def test_media_jobs_and_queue_depth() -> None:
    metrics = MediaMetrics()
    depth = {("comfy", "queued"): 3.0, ("comfy", "running"): 1.0}
    metrics.track_queue(lambda: depth)
    metrics.observe_job(_job("succeeded", 1500.0))
    metrics.observe_job(_job("failed", 10.0))
    assert _value(metrics, "pdp_media_job_duration_seconds_count", workflow="smoke_v1", status="succeeded") == 1
    assert _value(metrics, "pdp_media_job_duration_seconds_sum", status="succeeded") == 1.5
    assert _value(metrics, "pdp_media_queue_depth", provider="comfy", state="queued") == 3
    depth[("comfy", "queued")] = 0.0
    assert _value(metrics, "pdp_media_queue_depth", provider="comfy", state="queued") == 0
    metrics.track_queue(lambda: {("mock", "running"): 2.0})
    assert _value(metrics, "pdp_media_queue_depth", provider="mock", state="running") == 2
    assert _value(metrics, "pdp_media_queue_depth", provider="comfy") == 0


def test_flow_run_steps_and_the_gateway_calls_they_made() -> None:
    metrics = FlowMetrics()
    product = Product(name="Lamp", category="lighting", price=10, currency="USD", key_features=["warm"],
                      target_customer="readers", brand_name="Lumo", brand_voice="calm")
    steps = {
        "brand": StepRecord(role="brand", task="profile", status="succeeded", model="m1", latency_ms=200.0),
        "vision": StepRecord(role="vision", task="image", status="succeeded", model="m1", latency_ms=1200.0,
                             media=MediaCall(job_id="j", provider="mock", workflow="smoke_v1", latency_ms=1000.0)),
        "reviewer": StepRecord(role="reviewer", task="review", status="pending"),
    }
    doc = RunDocument(run_id="r", flow="p0", status="succeeded", mode="mock", product=product, outputs={},
                      images=[], steps=steps, started_at=datetime.now(UTC), finished_at=None, duration_ms=1400.0)
    metrics.observe_run(doc)
    assert _value(metrics, "pdp_flow_run_duration_seconds_count", flow="p0", status="succeeded") == 1
    assert _value(metrics, "pdp_flow_step_duration_seconds_count", role="brand") == 1
    assert _value(metrics, "pdp_flow_step_duration_seconds_count", role="reviewer") == 0
    assert _value(metrics, "pdp_upstream_duration_seconds_sum", upstream="media_gateway") == 1.0
    assert _value(metrics, "pdp_upstream_duration_seconds_sum", upstream="llm_gateway") == pytest.approx(0.4)


def test_breaker_state_is_read_when_scraped() -> None:
    metrics = LLMMetrics()
    states = {"ollama": "closed"}
    metrics.track_breakers(lambda: states)
    assert _value(metrics, "pdp_breaker_state", provider="ollama", state="closed") == 1
    assert _value(metrics, "pdp_breaker_state", provider="ollama", state="open") == 0
    states["ollama"] = "open"
    assert _value(metrics, "pdp_breaker_state", provider="ollama", state="open") == 1
    assert _value(metrics, "pdp_breaker_state", provider="ollama") == 1
