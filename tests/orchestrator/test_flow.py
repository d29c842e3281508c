"""The P0 flow: order, copywriter ∥ vision, the run document, failing steps, progress updates."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aioresponses import CallbackResult, aioresponses

from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import FlowConfig
from orchestrator.flow import P0ProductDetailFlow
from orchestrator.runs import FileRunStore
from shared_contracts.flows import Product, RunDocument
from tests.orchestrator.answers import LLM_URL, MEDIA_URL, PRODUCT, envelope, llm_answer, media_job

GENERATE = f"{LLM_URL}/api/v1/llm/generate"
IMAGE = f"{MEDIA_URL}/api/v1/media/image/generate"
ROLES = ["brand", "brief", "strategist", "copywriter", "vision", "reviewer"]
Hook = Callable[[str], Awaitable[CallbackResult | None]]


def product() -> Product:
    return msgspec.convert(PRODUCT, Product)


def answer_llm(upstream: aioresponses, log: list[str], hook: Hook | None = None) -> None:
    """Answer every generate call with the recorded answer for its role; `hook` may wait or fail first."""

    async def callback(url: Any, **kwargs: Any) -> CallbackResult:
        role = msgspec.json.decode(kwargs["data"])["role"]
        log.append(f"{role}:start")
        result = await hook(role) if hook else None
        log.append(f"{role}:end")
        return result or CallbackResult(payload=llm_answer(role))

    upstream.post(GENERATE, callback=callback, repeat=True)


def flow_of(llm: LLMGatewayClient, media: MediaGatewayClient) -> P0ProductDetailFlow:
    return P0ProductDetailFlow.build(llm, media, FlowConfig())


async def test_a_run_produces_the_whole_document(
    llm: LLMGatewayClient, media: MediaGatewayClient, upstream: aioresponses
) -> None:
    log: list[str] = []
    answer_llm(upstream, log)
    upstream.post(IMAGE, payload=media_job())
    doc = await flow_of(llm, media).run(product(), run_id="20250101T000000Z-0000abcd")

    assert doc.status == "succeeded" and doc.failed_step is None and doc.error is None
    assert doc.run_id == "20250101T000000Z-0000abcd" and doc.mode == "mock"
    assert list(doc.outputs) == ROLES
    assert list(doc.steps) == ROLES
    assert [url.url for url in doc.images] == [media_job()["images"][0]["url"]]
    for role, step in doc.steps.items():
        assert step.status == "succeeded", role
        assert step.provider == "mock" and step.model and step.latency_ms is not None
        assert step.attempts and step.attempts[0].outcome == "ok"
        assert step.started_at is not None and step.finished_at is not None
    assert doc.steps["vision"].media is not None and doc.steps["vision"].media.workflow == "product_shot_v1"
    assert doc.finished_at is not None and doc.duration_ms is not None and doc.duration_ms >= 0
    assert log.index("brand:end") < log.index("brief:start") < log.index("strategist:start")
    assert log.index("strategist:end") < log.index("copywriter:start")
    assert max(log.index("copywriter:end"), log.index("vision:end")) < log.index("reviewer:start")


async def test_copywriter_and_vision_run_concurrently(
    llm: LLMGatewayClient, media: MediaGatewayClient, upstream: aioresponses
) -> None:
    """Each of the two calls waits until the other has started: run one after the other, they would deadlock."""
    started = {"copywriter": asyncio.Event(), "vision": asyncio.Event()}
    log: list[str] = []

    async def hold_until_both_started(role: str) -> None:
        if role in started:
            started[role].set()
            other = "vision" if role == "copywriter" else "copywriter"
            await started[other].wait()
        return None

    answer_llm(upstream, log, hold_until_both_started)
    upstream.post(IMAGE, payload=media_job())
    async with asyncio.timeout(10):  # a hang guard for the deadlock, not a speed assertion
        doc = await flow_of(llm, media).run(product())
    assert doc.status == "succeeded"
    both_started = max(log.index("copywriter:start"), log.index("vision:start"))
    assert both_started < min(log.index("copywriter:end"), log.index("vision:end"))


async def test_a_failing_step_fails_the_run_and_keeps_earlier_outputs(
    llm: LLMGatewayClient, media: MediaGatewayClient, upstream: aioresponses
) -> None:
    async def strategist_fails(role: str) -> CallbackResult | None:
        if role == "strategist":
            return CallbackResult(status=502, payload=envelope("upstream_error", "ollama answered 500", status=500))
        return None

    log: list[str] = []
    answer_llm(upstream, log, strategist_fails)
    doc = await flow_of(llm, media).run(product())

    assert doc.status == "failed" and doc.failed_step == "strategist"
    assert doc.error is not None and doc.error.code == "upstream_error"
    assert doc.error.message == "ollama answered 500" and doc.error.details == {"status": 500}
    assert list(doc.outputs) == ["brand", "brief"]
    statuses = {role: step.status for role, step in doc.steps.items()}
    assert statuses == {
        "brand": "succeeded", "brief": "succeeded", "strategist": "failed",
        "copywriter": "skipped", "vision": "skipped", "reviewer": "skipped",
    }
    assert doc.steps["strategist"].error == doc.error
    assert doc.images == [] and doc.finished_at is not None
    assert "copywriter:start" not in log and "reviewer:start" not in log


async def test_a_failing_concurrent_step_keeps_its_sibling_output(
    llm: LLMGatewayClient, media: MediaGatewayClient, upstream: aioresponses
) -> None:
    error = {"code": "upstream_timeout", "message": "comfyui did not finish in 180 s", "details": {}}
    answer_llm(upstream, [])
    upstream.post(IMAGE, payload=media_job(status="failed", error=error))
    doc = await flow_of(llm, media).run(product())

    assert doc.status == "failed" and doc.failed_step == "vision"
    assert doc.error is not None and doc.error.code == "upstream_timeout"
    assert list(doc.outputs) == ["brand", "brief", "strategist", "copywriter"]
    assert doc.steps["copywriter"].status == "succeeded"
    assert doc.steps["reviewer"].status == "skipped"


async def test_an_unreachable_gateway_fails_the_first_step_with_a_typed_error(
    llm: LLMGatewayClient, media: MediaGatewayClient, upstream: aioresponses
) -> None:
    upstream.post(GENERATE, exception=aiohttp.ClientConnectionError("refused"))
    doc = await flow_of(llm, media).run(product(), request_id="req-x")
    assert doc.failed_step == "brand" and doc.outputs == {}
    assert doc.error is not None and doc.error.code == "provider_unavailable"
    assert doc.error.request_id == "req-x" and doc.error.details["gateway"] == "llm"


async def test_modes_that_differ_make_a_mixed_run(
    llm: LLMGatewayClient, media: MediaGatewayClient, upstream: aioresponses
) -> None:
    answer_llm(upstream, [])
    upstream.post(IMAGE, payload=media_job(mode="live"))
    doc = await flow_of(llm, media).run(product())
    assert doc.mode == "mixed"


async def test_progress_is_published_and_the_last_snapshot_is_the_result(
    llm: LLMGatewayClient, media: MediaGatewayClient, upstream: aioresponses, tmp_path: Path
) -> None:
    answer_llm(upstream, [])
    upstream.post(IMAGE, payload=media_job())
    store = FileRunStore(tmp_path)
    seen: list[tuple[str, int]] = []

    async def on_update(doc: RunDocument) -> None:
        seen.append((doc.status, len(doc.outputs)))
        await store.save(doc)

    doc = await flow_of(llm, media).run(product(), on_update=on_update)
    assert seen[0] == ("running", 0)
    assert seen[-1] == ("succeeded", 6)
    assert [count for _, count in seen] == sorted(count for _, count in seen)
    assert await store.get(doc.run_id) == doc


async def test_the_whole_flow_against_the_real_gateways_in_mock_mode(
    real_gateways: tuple[LLMGatewayClient, MediaGatewayClient]
) -> None:
    llm, media = real_gateways
    media_url = media.http.base_url
    doc = await flow_of(llm, media).run(product())
    async with aiohttp.ClientSession() as session, session.get(doc.images[0].url) as resp:
        png = await resp.read()
    assert doc.status == "succeeded" and doc.mode == "mock"
    assert list(doc.outputs) == ROLES
    assert all(step.provider == "mock" and step.model for step in doc.steps.values())
    assert doc.images[0].url.startswith(media_url)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    vision = doc.outputs["vision"]
    assert (doc.images[0].width, doc.images[0].height) == (vision["width"], vision["height"])


@pytest.mark.parametrize("sample", ["ko_tumbler", "ko_skincare", "en_headphones", "en_backpack"])
def test_every_sample_product_is_valid(sample: str) -> None:
    root = Path(__file__).resolve().parents[2]
    parsed = msgspec.json.decode((root / "orchestrator" / "samples" / f"{sample}.json").read_bytes(), type=Product)
    assert parsed.language == sample[:2]
