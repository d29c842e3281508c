"""The orchestrator service over real HTTP: runs waited and in the background, run lookups, health, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
from aioresponses import CallbackResult, aioresponses
from yarl import URL

from orchestrator.app import create_app
from orchestrator.clients import LLMGatewayClient, MediaGatewayClient
from orchestrator.config import FlowConfig, OrchestratorConfig, RunsConfig
from orchestrator.flow import P0ProductDetailFlow
from orchestrator.runs import FileRunStore, RunRunner
from orchestrator.tools.processes import free_port
from shared_contracts.flows import Product
from tests.orchestrator.answers import LLM_URL, MEDIA_URL, PRODUCT, llm_answer, media_job_of, png
from tests.orchestrator.conftest import client_config
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app

RUNS = "/api/v1/flows/p0-product-detail/runs"


def config_for(llm_url: str, media_url: str, runs_dir: Path) -> OrchestratorConfig:
    return OrchestratorConfig(
        llm_gateway=client_config(llm_url), media_gateway=client_config(media_url), runs=RunsConfig(dir=str(runs_dir))
    )


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[str]:
    """The orchestrator in front of the real gateway apps in mock mode, all served on loopback in-process."""
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    async with serve_app(llm_app) as llm_url, serve_app(media_app) as media_url:
        async with serve_app(create_app(config_for(llm_url, media_url, tmp_path / "runs"))) as url:
            yield url


async def call(method: str, url: str, **kwargs: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.request(method, url, **kwargs) as resp:
        return resp.status, msgspec.json.decode(await resp.read()), {k.lower(): v for k, v in resp.headers.items()}


async def test_a_waited_run_answers_200_with_the_result_and_is_stored(service: str) -> None:
    sent = {"X-Request-ID": "qa-1"}
    status, doc, headers = await call("POST", service + RUNS, json={"product": PRODUCT}, headers=sent)
    assert status == 200, doc
    assert headers["x-request-id"] == "qa-1"
    assert doc["status"] == "succeeded" and doc["mode"] == "mock"
    assert list(doc["outputs"]) == ["brand", "brief", "strategist", "copywriter", "vision", "reviewer"]
    # The image is kept with the run: the document points at the orchestrator's copy, the gateway's URL stays.
    image = doc["images"][0]
    assert image["url"] == f"/runs/{doc['run_id']}/images/{image['id']}"
    assert image["source_url"].startswith("http://127.0.0.1:") and image["source_url"].endswith(image["id"])
    assert doc["outputs"]["vision"]["images"] == doc["images"]
    status, stored, _ = await call("GET", f"{service}/api/v1/runs/{doc['run_id']}")
    assert status == 200 and stored == doc
    status, listing, _ = await call("GET", f"{service}/api/v1/runs")
    assert status == 200 and listing["runs"][0]["run_id"] == doc["run_id"]
    assert listing["runs"][0]["product_name"] == PRODUCT["name"]
    async with aiohttp.ClientSession() as session, session.get(f"{service}/metrics") as resp:
        metrics = await resp.text()
    assert resp.status == 200
    series = 'pdp_flow_step_duration_seconds_count{flow="p0-product-detail",role="vision",status="succeeded"}'
    assert f"{series} 1.0" in metrics


async def test_a_background_run_answers_202_with_its_id_and_location(service: str) -> None:
    status, doc, headers = await call("POST", service + RUNS, json={"product": PRODUCT, "wait": False})
    assert status == 202
    assert headers["location"] == f"/api/v1/runs/{doc['run_id']}"
    assert doc["status"] == "running"
    async with asyncio.timeout(10):  # a hang guard; the run finishes on the service's own loop
        while True:
            status, current, _ = await call("GET", service + headers["location"])
            assert status == 200
            if current["status"] != "running":
                break
            await asyncio.sleep(0.02)
    assert current["status"] == "succeeded" and len(current["outputs"]) == 6


@pytest.mark.parametrize(
    "body,path",
    [
        (b"not json", None),
        (b"{}", "$"),
        (msgspec.json.encode({"product": {**PRODUCT, "colour": "red"}}), "$.product"),
        (msgspec.json.encode({"product": {**PRODUCT, "price": -1}}), "$.product.price"),
        (msgspec.json.encode({"product": {**PRODUCT, "key_features": []}}), "$.product.key_features"),
    ],
)
async def test_bad_bodies_get_the_400_envelope(service: str, body: bytes, path: str | None) -> None:
    status, answer, _ = await call("POST", service + RUNS, data=body, headers={"content-type": "application/json"})
    assert status == 400
    assert answer["error"]["code"] == "invalid_request" and answer["error"]["request_id"]
    if path is not None:
        assert answer["error"]["details"]["path"] == path


async def test_a_body_over_the_cap_gets_413(service: str) -> None:
    status, answer, _ = await call("POST", service + RUNS, data=b"x" * 70_000)
    assert status == 413 and answer["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("run_id", ["20250101T000000Z-deadbeef", "..%2F..%2Fetc%2Fpasswd", "nope"])
async def test_unknown_runs_get_the_404_envelope(service: str, run_id: str) -> None:
    status, answer, _ = await call("GET", f"{service}/api/v1/runs/{run_id}")
    assert status == 404 and answer["error"]["code"] == "not_found"


@pytest.mark.parametrize("limit", ["0", "x", "100000"])
async def test_a_bad_limit_gets_400(service: str, limit: str) -> None:
    status, answer, _ = await call("GET", f"{service}/api/v1/runs?limit={limit}")
    assert status == 400 and answer["error"]["details"] == {"path": "limit"}


async def test_health_and_readiness_with_both_gateways_up(service: str) -> None:
    assert (await call("GET", f"{service}/healthz"))[0] == 200
    status, body, _ = await call("GET", f"{service}/readyz")
    assert status == 200 and body["gateways"] == {"llm_gateway": "ready", "media_gateway": "ready"}


async def test_readiness_names_the_gateway_that_is_down(tmp_path: Path) -> None:
    llm_app, _ = mock_gateway_apps(tmp_path / "media")
    closed = f"http://127.0.0.1:{free_port()}"
    async with serve_app(llm_app) as llm_url, serve_app(create_app(config_for(llm_url, closed, tmp_path))) as url:
        status, body, _ = await call("GET", f"{url}/readyz")
    assert status == 503 and body["error"]["code"] == "not_ready"
    assert set(body["error"]["details"]) == {"media_gateway"}
    assert body["error"]["details"]["media_gateway"]["code"] == "provider_unavailable"


async def test_the_callers_request_id_reaches_the_gateways(tmp_path: Path, upstream: aioresponses) -> None:
    upstream.post(f"{LLM_URL}/api/v1/llm/generate", callback=lambda url, **kw: _answer(kw), repeat=True)
    image = png()
    job = media_job_of(image)
    upstream.post(f"{MEDIA_URL}/api/v1/media/image/generate", payload=job)
    upstream.get(job["images"][0]["url"], body=image, content_type="image/png")
    async with serve_app(create_app(config_for(LLM_URL, MEDIA_URL, tmp_path))) as url:
        status, doc, _ = await call("POST", url + RUNS, json={"product": PRODUCT}, headers={"X-Request-ID": "qa-77"})
    assert status == 200 and doc["status"] == "succeeded"
    calls = upstream.requests[("POST", URL(f"{LLM_URL}/api/v1/llm/generate"))]
    assert len(calls) == 6 and {c.kwargs["headers"]["x-request-id"] for c in calls} == {"qa-77"}
    [image_call] = upstream.requests[("POST", URL(f"{MEDIA_URL}/api/v1/media/image/generate"))]
    assert image_call.kwargs["headers"]["x-request-id"] == "qa-77"
    # Keeping the image with the run is part of the same request: same id.
    [fetch] = upstream.requests[("GET", URL(job["images"][0]["url"]))]
    assert fetch.kwargs["headers"]["x-request-id"] == "qa-77"


def _answer(kwargs: dict[str, Any]) -> CallbackResult:
    return CallbackResult(payload=llm_answer(msgspec.json.decode(kwargs["data"])["role"]))


async def test_a_crash_inside_a_run_marks_it_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flow = P0ProductDetailFlow.build(
        LLMGatewayClient.from_config(client_config(LLM_URL)), MediaGatewayClient.from_config(client_config(MEDIA_URL)),
        FlowConfig(),
    )

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("a bug")

    monkeypatch.setattr(flow, "run", broken)
    store = FileRunStore(tmp_path)
    runner = RunRunner(flow, store)
    doc = flow.new_document(msgspec.convert(PRODUCT, Product))
    result = await runner.run(doc, "req-9")
    assert result.status == "failed" and result.error is not None and result.error.code == "internal_error"
    assert (await store.get(doc.run_id)).status == "failed"


async def test_closing_the_runner_leaves_background_runs_running_for_whoever_resumes_them(tmp_path: Path) -> None:
    flow = P0ProductDetailFlow.build(
        LLMGatewayClient.from_config(client_config(LLM_URL)), MediaGatewayClient.from_config(client_config(MEDIA_URL)),
        FlowConfig(),
    )
    entered = asyncio.Event()

    async def never_ends(*args: Any, **kwargs: Any) -> Any:
        entered.set()
        await asyncio.Event().wait()

    flow.run = never_ends  # type: ignore[method-assign]
    store = FileRunStore(tmp_path)
    runner = RunRunner(flow, store)
    doc = flow.new_document(msgspec.convert(PRODUCT, Product))
    await runner.save(doc)
    runner.start(doc, None)
    await entered.wait()
    await runner.close()
    stored = await store.get(doc.run_id)
    # Stopped, not ended: the next process (or another replica) adopts it and resumes it.
    assert stored.status == "running" and stored.error is None
    assert [d.run_id for d in await store.adopt()] == [doc.run_id]
