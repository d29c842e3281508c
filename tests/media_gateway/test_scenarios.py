"""X-Mock-Scenario on the Media Gateway: slow jobs with progress (followed and cancelled), ComfyUI-like execution
errors, an unreachable backend, jobs past their deadline; each shaped like the live fault; refused in live mode."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from media_gateway.scenarios import progress_steps
from shared_contracts.scenarios import MEDIA_SCENARIOS
from tests.fakes.comfyui import FakeComfyUI

from .conftest import GENERATE, PRODUCT, Client, gateway_config, running_gateway

SMALL = {**PRODUCT, "width": 64, "height": 64}


@pytest.fixture
async def mock(tmp_path: Path) -> AsyncIterator[Client]:
    async with running_gateway(gateway_config(tmp_path / "store", mode="mock")) as client:
        yield client


async def scenario(client: Client, value: str, body: dict[str, Any] | None = None,
                   timeout: str | None = None) -> tuple[int, Any, Any]:
    headers = {"x-mock-scenario": value, **({"x-request-timeout": timeout} if timeout else {})}
    return await client.call("POST", GENERATE, {**SMALL, **(body or {})}, headers)


async def events(client: Client, job_id: str) -> list[tuple[str, Any]]:
    """The job's SSE stream read to its end: [(event, data), ...]."""
    found: list[tuple[str, Any]] = []
    async with client.session.get(f"{client.base}/api/v1/media/jobs/{job_id}/events") as resp:
        assert resp.headers["x-generator-mode"] == "mock"
        event = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                found.append((event, msgspec.json.decode(line[6:])))
    return found


def test_every_scenario_of_the_contract_is_tested() -> None:
    tested = {"slow", "exec_error", "unavailable", "timeout"}
    assert set(MEDIA_SCENARIOS) == tested


async def test_slow_runs_that_long_reporting_progress_then_succeeds(mock: Client) -> None:
    status, job, headers = await scenario(mock, "slow=1000", {"wait": False})
    assert status == 202 and headers["x-generator-mode"] == "mock"
    seen = await events(mock, job["id"])
    progress = [data for name, data in seen if name == "progress"]
    running = [p["progress"] for p in progress if p["status"] == "running"]
    # Several distinct, rising running reports (one per 200 ms of the wait), then the finished job.
    assert len(running) >= progress_steps(1000) - 1
    assert running == sorted(running) and len(set(running)) == len(running)
    assert seen[-1][0] == "job" and seen[-1][1]["status"] == "succeeded" and seen[-1][1]["images"]
    assert seen[-1][1]["latency_ms"] >= 900


async def test_a_slow_job_can_be_cancelled(mock: Client) -> None:
    status, job, _ = await scenario(mock, "slow=30000", {"wait": False})
    assert status == 202
    status, canceled, headers = await mock.call("DELETE", f"/api/v1/media/jobs/{job['id']}")
    assert status == 200 and canceled["status"] == "canceled" and canceled["images"] == []
    assert headers["x-generator-mode"] == "mock"
    status, again, _ = await mock.call("DELETE", f"/api/v1/media/jobs/{job['id']}")
    assert status == 409 and again["error"]["code"] == "conflict"


async def test_exec_error_fails_the_job_like_comfyui(mock: Client) -> None:
    status, body, headers = await scenario(mock, "exec_error")
    assert status == 502 and headers["x-generator-mode"] == "mock"
    error = body["error"]
    assert error["code"] == "upstream_error"
    assert error["details"]["node_id"] == "3" and error["details"]["node_type"] == "KSampler"
    assert error["details"]["exception_type"] == "torch.OutOfMemoryError"
    assert error["message"].startswith("ComfyUI failed in node 3 (KSampler)")
    _, job, _ = await mock.call("GET", f"/api/v1/media/jobs/{error['details']['job_id']}")
    assert job["status"] == "failed" and job["error"]["code"] == "upstream_error" and job["progress"] > 0


async def test_unavailable_is_a_503_naming_the_backend(mock: Client) -> None:
    status, body, _ = await scenario(mock, "unavailable")
    assert status == 503
    assert body["error"]["code"] == "provider_unavailable"
    assert body["error"]["details"]["websocket"] == "down"


async def test_timeout_ends_at_the_jobs_deadline_and_honours_x_request_timeout(mock: Client) -> None:
    status, body, headers = await scenario(mock, "timeout", timeout="0.5")
    assert status == 504 and headers["x-generator-mode"] == "mock"
    assert body["error"]["code"] == "upstream_timeout"
    job_id = body["error"]["details"]["job_id"]
    seen = await events(mock, job_id)
    assert seen[-1][1]["status"] == "failed" and seen[-1][1]["error"]["code"] == "upstream_timeout"
    assert "0.5 s" in seen[-1][1]["error"]["message"]


async def test_a_background_job_times_out_too(mock: Client) -> None:
    status, job, _ = await scenario(mock, "timeout", {"wait": False}, timeout="0.3")
    assert status == 202
    seen = await events(mock, job["id"])
    assert seen[0][1]["status"] == "queued" and seen[-1][1]["status"] == "failed"


@pytest.mark.parametrize("value", ["rejected", "slow", "slow=x", "exec_error=1", "timeout=2"])
async def test_a_malformed_scenario_is_a_400(mock: Client, value: str) -> None:
    status, body, headers = await scenario(mock, value)
    assert status == 400 and headers["x-generator-mode"] == "mock"
    assert body["error"]["details"]["header"] == "x-mock-scenario"
    assert body["error"]["details"]["known"] == sorted(MEDIA_SCENARIOS)


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    comfy = FakeComfyUI()
    await comfy.start()
    try:
        yield comfy
    finally:
        await comfy.close()


async def test_live_mode_refuses_the_header_before_comfyui_sees_anything(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path / "store", comfyui_url=fake.url, mode="live")) as live:
        status, body, headers = await scenario(live, "exec_error", {"role": "qa", "task": "smoke"})
    assert status == 400 and headers["x-generator-mode"] == "live"
    assert "only in mock mode" in body["error"]["message"]
    assert fake.calls("POST", "/prompt") == []


async def test_exec_error_matches_a_real_comfyui_execution_error(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with running_gateway(gateway_config(tmp_path / "live", comfyui_url=fake.url, mode="live")) as live:
        live_status, live_body, _ = await live.generate({**SMALL, "prompt": "a mug [fail]"})
    async with running_gateway(gateway_config(tmp_path / "mock", mode="mock")) as mocked:
        mock_status, mock_body, _ = await scenario(mocked, "exec_error")
    assert mock_status == live_status == 502
    live_error, mock_error = live_body["error"], mock_body["error"]
    assert mock_error["code"] == live_error["code"]
    assert set(mock_error["details"]) == set(live_error["details"])
    for key in ("node_id", "node_type", "exception_type"):
        assert mock_error["details"][key] == live_error["details"][key]


async def test_unavailable_matches_comfyui_down(tmp_path: Path) -> None:
    down = gateway_config(tmp_path / "live", comfyui_url="http://127.0.0.1:9", mode="live", connect_timeout_s=0.5)
    async with running_gateway(down) as live:
        live_status, live_body, _ = await live.generate(SMALL)
    async with running_gateway(gateway_config(tmp_path / "mock", mode="mock")) as mocked:
        mock_status, mock_body, _ = await scenario(mocked, "unavailable")
    assert mock_status == live_status == 503
    assert mock_body["error"]["code"] == live_body["error"]["code"] == "provider_unavailable"
    assert set(mock_body["error"]["details"]) == set(live_body["error"]["details"])


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/api/v1/media/workflows", "/api/v1/media/jobs/nope",
                                  "/metrics", "/nowhere"])
async def test_every_response_says_the_mode(mock: Client, path: str) -> None:
    _, _, headers = await mock.call("GET", path)
    assert headers["x-generator-mode"] == "mock"
