"""`GET /api/v1/runs/{run_id}/events`: step_started / step_finished per step as they happen, then run_finished."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import msgspec
import pytest

from orchestrator.app import create_app
from orchestrator.config import OrchestratorConfig, RunsConfig
from orchestrator.runs import events_between
from orchestrator.tools.processes import free_port
from shared_contracts.flows import Product, RunDocument, StepRecord
from tests.orchestrator.answers import PRODUCT
from tests.orchestrator.conftest import client_config
from tests.orchestrator.gated import Gate, gated, read_sse
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app

RUNS = "/api/v1/flows/p0-product-detail/runs"
ROLES = ["brand", "brief", "strategist", "copywriter", "vision", "reviewer"]
HANG_GUARD_S = 30


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[str, Gate]]:
    """The orchestrator in front of the real gateway apps (mock mode), its LLM calls through a gate."""
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    async with serve_app(llm_app) as llm_url, serve_app(media_app) as media_url, gated(llm_url) as (gate_url, gate):
        config = OrchestratorConfig(
            llm_gateway=client_config(gate_url), media_gateway=client_config(media_url),
            runs=RunsConfig(dir=str(tmp_path / "runs")),
        )
        async with serve_app(create_app(config)) as url:
            yield url, gate


async def start(session: aiohttp.ClientSession, url: str, product: dict[str, object] = PRODUCT) -> str:
    async with session.post(url + RUNS, json={"product": product, "wait": False}) as resp:
        assert resp.status == 202
        run_id: str = (await resp.json())["run_id"]
        return run_id


async def all_events(session: aiohttp.ClientSession, url: str, run_id: str) -> list[tuple[str, dict[str, object]]]:
    async with asyncio.timeout(HANG_GUARD_S), session.get(f"{url}/api/v1/runs/{run_id}/events") as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        return [event async for event in read_sse(resp)]


def names(events: list[tuple[str, dict[str, object]]]) -> list[str]:
    out = []
    for name, data in events:
        step = data.get("step")
        out.append(f"{name} {step['role']} {step['status']}" if isinstance(step, dict) else f"{name} {data['status']}")
    return out


def check_order(events: list[str]) -> None:
    """Every step starts before it finishes; stages in flow order; run_finished last and once."""
    position = {line: index for index, line in enumerate(events)}
    for role in ROLES:
        assert position[f"step_started {role} running"] < position[f"step_finished {role} succeeded"]
    for earlier, later in [("brand", "brief"), ("brief", "strategist"), ("strategist", "copywriter"),
                           ("strategist", "vision"), ("copywriter", "reviewer"), ("vision", "reviewer")]:
        assert position[f"step_finished {earlier} succeeded"] < position[f"step_started {later} running"]
    assert events[-1] == "run_finished succeeded" and sum(e.startswith("run_finished") for e in events) == 1


async def test_events_arrive_while_the_run_runs_then_the_stream_ends(service: tuple[str, Gate]) -> None:
    url, gate = service
    gate.hold.add("strategist")
    async with aiohttp.ClientSession() as session:
        run_id = await start(session, url)
        seen: list[str] = []
        async with asyncio.timeout(HANG_GUARD_S), session.get(f"{url}/api/v1/runs/{run_id}/events") as resp:
            assert resp.headers["cache-control"].startswith("no-cache")
            stream = read_sse(resp)
            async for name, data in stream:
                seen.extend(names([(name, data)]))
                if seen[-1] == "step_started strategist running":
                    break
            # The run is held at the strategist: these events came while it was running, not after.
            async with session.get(f"{url}/api/v1/runs/{run_id}") as current:
                assert (await current.json())["status"] == "running"
            assert seen == ["step_started brand running", "step_finished brand succeeded",
                            "step_started brief running", "step_finished brief succeeded",
                            "step_started strategist running"]
            gate.release()
            seen.extend(names([event async for event in stream]))
    check_order(seen)
    assert len(seen) == 13


async def test_a_late_follower_gets_the_whole_run_replayed(service: tuple[str, Gate]) -> None:
    url, _ = service
    async with aiohttp.ClientSession() as session:
        async with session.post(url + RUNS, json={"product": PRODUCT}) as resp:
            doc = await resp.json()
        events = await all_events(session, url, doc["run_id"])
    check_order(names(events))
    finished = events[-1][1]
    assert finished == {"run_id": doc["run_id"], "status": "succeeded", "mode": "mock",
                        "duration_ms": doc["duration_ms"], "failed_step": None, "error": None}
    step = next(data["step"] for name, data in events if name == "step_finished")
    assert step == doc["steps"]["brand"]


async def test_a_failed_run_names_its_step_and_skips_the_rest(tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    config = OrchestratorConfig(llm_gateway=client_config(closed), media_gateway=client_config(closed),
                                runs=RunsConfig(dir=str(tmp_path)))
    async with serve_app(create_app(config)) as url, aiohttp.ClientSession() as session:
        run_id = await start(session, url)
        events = await all_events(session, url, run_id)
    assert names(events) == [
        "step_started brand running", "step_finished brand failed",
        *(f"step_finished {role} skipped" for role in ROLES[1:]),
        "run_finished failed",
    ]
    finished = events[-1][1]
    assert finished["failed_step"] == "brand"
    assert isinstance(finished["error"], dict) and finished["error"]["code"] == "provider_unavailable"


@pytest.mark.parametrize("run_id", ["20250101T000000Z-deadbeef", "nope", "..%2F..%2Fetc"])
async def test_events_of_an_unknown_run_are_a_404_envelope(service: tuple[str, Gate], run_id: str) -> None:
    url, _ = service
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v1/runs/{run_id}/events") as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"


def _doc(**steps: StepRecord) -> RunDocument:
    return RunDocument(
        run_id="20250101T000000Z-0a0b0c0d", flow="p0-product-detail", status="running", mode="mock",
        product=msgspec.convert(PRODUCT, Product), outputs={}, images=[], steps=dict(steps),
        started_at=datetime(2025, 1, 1, tzinfo=UTC), finished_at=None, duration_ms=None,
    )


def test_a_step_started_again_after_a_resume_starts_again_for_followers() -> None:
    t0 = datetime(2025, 1, 1, tzinfo=UTC)
    first = _doc(brand=StepRecord(role="brand", task="t", status="running", started_at=t0))
    again = _doc(brand=StepRecord(role="brand", task="t", status="running", started_at=t0 + timedelta(seconds=9)))
    assert [name for name, _ in events_between(None, first)] == ["step_started"]
    assert events_between(first, first) == []
    assert [name for name, _ in events_between(first, again)] == ["step_started"]
