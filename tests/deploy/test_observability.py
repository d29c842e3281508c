"""Observability of the running services: `GET /metrics` series, and trace context across the three."""

from __future__ import annotations

import json

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from .conftest import REQUESTS, TIMEOUT, Services

pytestmark = [pytest.mark.slow, pytest.mark.asyncio(loop_scope="package")]


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples]


def _total(samples: list[tuple[str, dict[str, str], float]], name: str, **labels: str) -> float:
    return sum(value for n, found, value in samples if n == name and labels.items() <= found.items())


async def _metrics(base: str) -> list[tuple[str, dict[str, str], float]]:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session, session.get(f"{base}/metrics") as response:
        assert response.status == 200
        assert response.headers["content-type"].startswith("text/plain")
        return _samples(await response.text())


async def test_llm_gateway_metrics(services: Services) -> None:
    samples = await _metrics(services.bases["llm_base"])
    generate = {"endpoint": "/api/v1/llm/generate", "method": "POST"}
    assert _total(samples, "pdp_requests_total", **generate, role="brand", task="tone_keywords",
                  provider="mock", outcome="ok") == 1
    # The collection's three malformed bodies and its unknown X-Mock-Scenario.
    assert _total(samples, "pdp_requests_total", **generate, outcome="invalid_request") == 4
    # Its scenarios are counted under the code of the live fault they imitate.
    assert _total(samples, "pdp_requests_total", **generate, outcome="provider_unavailable") == 1
    assert _total(samples, "pdp_upstream_duration_seconds_count", upstream="mock", outcome="rate_limited") == 2
    assert _total(samples, "pdp_request_duration_seconds_count", endpoint="/api/v1/llm/generate/stream",
                  role="copywriter", provider="mock", outcome="ok") == 1
    assert _total(samples, "pdp_requests_total", endpoint="/healthz", outcome="ok") >= 1
    assert _total(samples, "pdp_llm_tokens_total", provider="mock", direction="in") > 0
    assert _total(samples, "pdp_llm_tokens_total", provider="mock", direction="out") > 0
    assert _total(samples, "pdp_upstream_duration_seconds_count", upstream="mock", outcome="ok") >= 3
    # This scrape is itself in flight.
    assert _total(samples, "pdp_requests_in_flight") == 1


async def test_media_gateway_metrics(services: Services) -> None:
    samples = await _metrics(services.bases["media_base"])
    # The collection's two requests, plus the vision step of each orchestrator run.
    assert _total(samples, "pdp_requests_total", endpoint="/api/v1/media/image/generate", outcome="ok") >= 2
    # The width that is not a multiple of 8, and the unknown X-Mock-Scenario.
    assert _total(samples, "pdp_requests_total", endpoint="/api/v1/media/image/generate",
                  outcome="invalid_request") == 2
    assert _total(samples, "pdp_requests_total", endpoint="/api/v1/media/image/generate",
                  outcome="upstream_error") == 1  # the exec_error scenario
    assert _total(samples, "pdp_requests_total", endpoint="/api/v1/media/jobs/{job_id}", method="DELETE",
                  outcome="ok") == 1  # the slow job cancelled
    # Like the LLM Gateway's, the generate series name the role, task, provider and (as model) the workflow.
    assert _total(samples, "pdp_requests_total", endpoint="/api/v1/media/image/generate", role="vision",
                  task="product_shot", provider="mock", model="product_shot_v1", outcome="ok") >= 2
    assert _total(samples, "pdp_requests_total", endpoint="/api/v1/media/jobs/{job_id}", method="DELETE",
                  outcome="conflict") == 1
    assert _total(samples, "pdp_requests_total", endpoint="/api/v1/media/images/{image_id}", outcome="not_found") == 1
    assert _total(samples, "pdp_media_job_duration_seconds_count", status="succeeded") >= 3
    assert any(name == "pdp_media_queue_depth" for name, _, _ in samples)


async def test_orchestrator_metrics(services: Services) -> None:
    samples = await _metrics(services.bases["orch_base"])
    # Waited, in the background, and the one failed at the copywriter by its scenarios (still a 200).
    assert _total(samples, "pdp_requests_total", endpoint="/api/v1/flows/p0-product-detail/runs", outcome="ok") == 3
    assert _total(samples, "pdp_flow_run_duration_seconds_count", status="succeeded") >= 1
    for role in ("brand", "brief", "strategist", "copywriter", "vision", "reviewer"):
        assert _total(samples, "pdp_flow_step_duration_seconds_count", role=role, status="succeeded") >= 1, role
    assert _total(samples, "pdp_upstream_duration_seconds_count", upstream="media_gateway") >= 1


async def test_trace_and_request_id_reach_both_gateways_logs(services: Services) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    headers = {"x-request-id": "trace-check-1", "traceparent": f"00-{trace_id}-b7ad6b7169203331-01"}
    product = json.loads(next(r.body for r in REQUESTS if r.folder == "Orchestrator" and r.expected_status == 200
                              and r.body))["product"]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        async with session.post(f"{services.bases['orch_base']}/api/v1/flows/p0-product-detail/runs",
                                json={"product": product, "wait": True}, headers=headers) as response:
            assert response.status == 200
            assert response.headers["x-request-id"] == "trace-check-1"
    for name in ("orch", "llm", "media"):
        lines = [json.loads(line) for line in services.logs[name].read_text().splitlines() if line.startswith("{")]
        mine = [line for line in lines if line.get("request_id") == "trace-check-1"]
        assert mine, f"{name}: no log line carries the request id"
        assert all(line.get("trace_id") == trace_id for line in mine), name
    # The orchestrator's own span is the gateways' parent, not the caller's.
    orch_lines = [json.loads(line) for line in services.logs["orch"].read_text().splitlines() if line.startswith("{")]
    orch_span = next(line["span_id"] for line in orch_lines if line.get("request_id") == "trace-check-1")
    llm_lines = [json.loads(line) for line in services.logs["llm"].read_text().splitlines() if line.startswith("{")]
    assert {line.get("parent_span_id") for line in llm_lines if line.get("request_id") == "trace-check-1"} == {
        orch_span
    }
