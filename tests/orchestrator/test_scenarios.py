"""A run's `scenarios`: each step's gateway call carries its own X-Mock-Scenario, and the run document shows
what QA asked for (the failed step, the gateway's error, the attempts), in front of the real gateway apps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from orchestrator.app import create_app
from orchestrator.flow import SCENARIO_KEYS, check_scenarios
from shared_contracts.errors import InvalidRequest
from tests.orchestrator.answers import PRODUCT
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app
from tests.orchestrator.test_app import config_for

RUNS = "/api/v1/flows/p0-product-detail/runs"


async def run(url: str, scenarios: dict[str, str], *, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session:
        body = {"product": PRODUCT, "scenarios": scenarios}
        async with session.post(url + RUNS, json=body, headers=headers) as resp:
            return resp.status, msgspec.json.decode(await resp.read())


async def get(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as resp:
        return msgspec.json.decode(await resp.read())


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[str]:
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    async with serve_app(llm_app) as llm_url, serve_app(media_app) as media_url:
        async with serve_app(create_app(config_for(llm_url, media_url, tmp_path / "runs"))) as url:
            yield url


def statuses(doc: dict[str, Any]) -> dict[str, str]:
    return {role: step["status"] for role, step in doc["steps"].items()}


async def test_a_failed_copywriter_step_is_in_the_run_document(service: str) -> None:
    status, doc = await run(service, {"copywriter": "upstream_error"})
    assert status == 200
    assert doc["status"] == "failed" and doc["failed_step"] == "copywriter"
    assert doc["scenarios"] == {"copywriter": "upstream_error"}
    assert doc["error"]["code"] == "upstream_error" and "X-Mock-Scenario" in doc["error"]["message"]
    step = doc["steps"]["copywriter"]
    assert step["error"]["code"] == "upstream_error"
    # The gateway's envelope is kept: its attempts show the route tried as live (the shipped YAML tries the
    # primary twice, then the fallback twice).
    attempts = step["error"]["details"]["attempts"]
    assert [a["outcome"] for a in attempts] == ["upstream_error"] * 4
    assert len({a["model"] for a in attempts}) == 2
    # Only the step asked to fail fails: vision ran beside it, the reviewer never started.
    assert statuses(doc) == {"brand": "succeeded", "brief": "succeeded", "strategist": "succeeded",
                             "copywriter": "failed", "vision": "succeeded", "reviewer": "skipped"}
    stored = await get(f"{service}/api/v1/runs/{doc['run_id']}")
    assert stored["scenarios"] == doc["scenarios"] and stored["failed_step"] == "copywriter"


async def test_a_fallback_shows_in_the_steps_attempts_and_the_run_succeeds(service: str) -> None:
    status, doc = await run(service, {"strategist": "fallback"})
    assert status == 200 and doc["status"] == "succeeded"
    step = doc["steps"]["strategist"]
    assert [a["outcome"] for a in step["attempts"]] == ["provider_unavailable", "provider_unavailable", "ok"]
    assert step["model"] == step["attempts"][-1]["model"] != step["attempts"][0]["model"]


async def test_the_vision_steps_two_calls_are_addressed_apart(service: str) -> None:
    _, image_failed = await run(service, {"vision.image": "exec_error"})
    _, prompt_failed = await run(service, {"vision": "rejected"})
    assert image_failed["failed_step"] == prompt_failed["failed_step"] == "vision"
    image_error = image_failed["steps"]["vision"]["error"]
    assert image_error["code"] == "upstream_error" and image_error["details"]["node_type"] == "KSampler"
    assert prompt_failed["steps"]["vision"]["error"]["code"] == "upstream_rejected"
    # The copy beside it was written either way.
    assert image_failed["steps"]["copywriter"]["status"] == prompt_failed["steps"]["copywriter"]["status"] == (
        "succeeded")


async def test_a_step_that_times_out_ends_the_run_failed_at_its_deadline(service: str) -> None:
    status, doc = await run(service, {"copywriter": "timeout"}, headers={"X-Request-Timeout": "1.5"})
    # Either the step's 504 or the run's own deadline ends it (they fall together); both are recorded.
    assert status in (200, 504)
    run_id = doc["run_id"] if status == 200 else doc["error"]["details"]["run_id"]
    stored = await get(f"{service}/api/v1/runs/{run_id}")
    assert stored["status"] == "failed" and stored["failed_step"] == "copywriter"
    assert stored["steps"]["copywriter"]["error"]["code"] == "upstream_timeout"


@pytest.mark.parametrize(
    ("scenarios", "path"),
    [
        ({"writer": "timeout"}, "$.scenarios.writer"),
        ({"copywriter": "exec_error"}, "$.scenarios.copywriter"),  # a Media Gateway scenario on an LLM call
        ({"vision.image": "fallback"}, "$.scenarios.vision.image"),  # and the other way round
        ({"brand": "slow"}, "$.scenarios.brand"),  # slow needs its milliseconds
    ],
)
async def test_scenarios_the_gateways_would_refuse_are_a_400_before_the_run(
    service: str, scenarios: dict[str, str], path: str
) -> None:
    status, body = await run(service, scenarios)
    assert status == 400
    assert body["error"]["code"] == "invalid_request" and body["error"]["details"]["path"] == path
    listing = await get(f"{service}/api/v1/runs")
    assert listing["runs"] == []  # nothing was started


def test_every_step_and_the_image_call_can_be_addressed() -> None:
    assert SCENARIO_KEYS == ("brand", "brief", "strategist", "copywriter", "vision", "reviewer", "vision.image")
    check_scenarios({key: "unavailable" for key in SCENARIO_KEYS})
    with pytest.raises(InvalidRequest):
        check_scenarios({"reviewer": "slow=-1"})


async def test_a_live_gateway_refuses_the_scenario_and_the_step_says_so(tmp_path: Path) -> None:
    # A live LLM Gateway whose model is nowhere: the scenario is refused before any call is tried.
    llm_app, media_app = mock_gateway_apps(
        tmp_path / "media", environ={"GENERATOR_MODE": "live", "OLLAMA_BASE_URL": "http://127.0.0.1:9"}
    )
    async with serve_app(llm_app) as llm_url, serve_app(media_app) as media_url:
        async with serve_app(create_app(config_for(llm_url, media_url, tmp_path / "runs"))) as url:
            _, doc = await run(url, {"brand": "timeout"})
    assert doc["status"] == "failed" and doc["failed_step"] == "brand"
    error = doc["steps"]["brand"]["error"]
    assert error["code"] == "invalid_request" and error["details"]["header"] == "x-mock-scenario"
    assert "only in mock mode" in error["message"]
