"""Runs a stopped process left `running`: resumed from their last finished step at start-up, or ended `failed`
with an error that says why; never `running` with no process behind them. (The real kill -9 is in
tests/fault/test_orchestrator_restart.py.)"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from orchestrator.app import create_app
from orchestrator.config import OrchestratorConfig, RunsConfig
from orchestrator.runs import FileRunStore, new_run_id
from service_common.config import ConfigError
from shared_contracts.flows import RunDocument, StepRecord
from tests.orchestrator.answers import PRODUCT
from tests.orchestrator.conftest import client_config
from tests.orchestrator.gated import Gate, gated, read_sse
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app

RUNS = "/api/v1/flows/p0-product-detail/runs"
HANG_GUARD_S = 30


@pytest.fixture
async def gateways(tmp_path: Path) -> AsyncIterator[tuple[str, str, Gate]]:
    """The real gateway apps in mock mode; the LLM Gateway behind a gate that counts calls per role and run."""
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    async with serve_app(llm_app) as llm_url, serve_app(media_app) as media_url, gated(llm_url) as (gate_url, gate):
        yield gate_url, media_url, gate


def config_of(gateways: tuple[str, str, Gate], runs: Path, **runs_fields: Any) -> OrchestratorConfig:
    llm_url, media_url, _ = gateways
    return OrchestratorConfig(
        llm_gateway=client_config(llm_url), media_gateway=client_config(media_url),
        runs=RunsConfig(dir=str(runs), **runs_fields),
    )


async def finished_run(gateways: tuple[str, str, Gate], runs: Path) -> RunDocument:
    async with serve_app(create_app(config_of(gateways, runs))) as url, aiohttp.ClientSession() as session:
        async with session.post(url + RUNS, json={"product": PRODUCT}) as resp:
            return msgspec.json.decode(await resp.read(), type=RunDocument)


def crashed_at(doc: RunDocument, role: str) -> RunDocument:
    """`doc` as a process killed while `role` was running would have left it."""
    roles = list(doc.steps)
    cut = roles.index(role)
    steps = dict(doc.steps)
    for index, name in enumerate(roles):
        record = steps[name]
        if index == cut:
            steps[name] = StepRecord(role=name, task=record.task, status="running", started_at=record.started_at)
        elif index > cut:
            steps[name] = StepRecord(role=name, task=record.task, status="pending")
    return msgspec.structs.replace(
        doc, status="running", outputs={r: doc.outputs[r] for r in roles[:cut]}, images=[], steps=steps,
        finished_at=None, duration_ms=None,
    )


async def wait_finished(url: str, run_id: str) -> dict[str, Any]:
    async with asyncio.timeout(HANG_GUARD_S), aiohttp.ClientSession() as session:
        async with session.get(f"{url}/api/v1/runs/{run_id}/events") as resp:
            assert resp.status == 200
            events = [name async for name, _ in read_sse(resp)]
        assert events[-1] == "run_finished"
        async with session.get(f"{url}/api/v1/runs/{run_id}") as resp:
            doc: dict[str, Any] = await resp.json()
            return doc


async def test_a_run_left_running_resumes_from_its_last_finished_step(
    tmp_path: Path, gateways: tuple[str, str, Gate]
) -> None:
    runs = tmp_path / "runs"
    done = await finished_run(gateways, runs)
    left = crashed_at(done, "strategist")
    await FileRunStore(runs).save(left)
    gate = gateways[2]
    gate.calls.clear()
    async with serve_app(create_app(config_of(gateways, runs))) as url:
        doc = await wait_finished(url, left.run_id)
    assert doc["status"] == "succeeded" and doc["resumed_at"] is not None
    assert list(doc["outputs"]) == list(done.steps)
    # Finished steps were not asked again; the one cut off and the later ones were.
    asked = {role for role, run_id in gate.calls if run_id == left.run_id}
    assert asked == {"strategist", "copywriter", "vision", "reviewer"}
    assert doc["outputs"]["brand"] == done.outputs["brand"] and doc["outputs"]["brief"] == done.outputs["brief"]
    for role in ("brand", "brief"):
        assert doc["steps"][role]["started_at"] == done.steps[role].started_at.isoformat().replace("+00:00", "Z")
    assert doc["images"][0]["url"].startswith(f"/runs/{left.run_id}/images/")
    # Its duration counts from the run's first start, not from the pick-up.
    assert doc["duration_ms"] >= (datetime.fromisoformat(doc["resumed_at"]) - done.started_at).total_seconds() * 1000


async def test_with_on_restart_fail_the_run_ends_failed_and_says_why(
    tmp_path: Path, gateways: tuple[str, str, Gate]
) -> None:
    runs = tmp_path / "runs"
    left = crashed_at(await finished_run(gateways, runs), "copywriter")
    await FileRunStore(runs).save(left)
    async with serve_app(create_app(config_of(gateways, runs, on_restart="fail"))) as url:
        doc = await wait_finished(url, left.run_id)
    assert doc["status"] == "failed" and doc["failed_step"] == "copywriter"
    assert doc["error"]["code"] == "canceled" and "runs.on_restart" in doc["error"]["message"]
    assert doc["error"]["details"]["finished_steps"] == ["brand", "brief", "strategist"]
    assert [doc["steps"][r]["status"] for r in doc["steps"]] == [
        "succeeded", "succeeded", "succeeded", "failed", "skipped", "skipped"
    ]
    assert doc["finished_at"] is not None and doc["duration_ms"] >= 0


async def test_a_run_whose_deadline_passed_while_down_ends_failed(
    tmp_path: Path, gateways: tuple[str, str, Gate]
) -> None:
    runs = tmp_path / "runs"
    left = crashed_at(await finished_run(gateways, runs), "brief")
    old = msgspec.structs.replace(left, started_at=datetime.now(UTC) - timedelta(hours=2), timeout_s=900.0)
    await FileRunStore(runs).save(old)
    gate = gateways[2]
    gate.calls.clear()
    async with serve_app(create_app(config_of(gateways, runs))) as url:
        doc = await wait_finished(url, old.run_id)
    assert doc["status"] == "failed" and doc["error"]["code"] == "upstream_timeout"
    assert "while no orchestrator process was running it" in doc["error"]["message"]
    assert not any(run_id == old.run_id for _, run_id in gate.calls)


async def test_finished_runs_are_left_alone(tmp_path: Path, gateways: tuple[str, str, Gate]) -> None:
    runs = tmp_path / "runs"
    done = await finished_run(gateways, runs)
    before = (runs / f"{done.run_id}.json").read_bytes()
    async with serve_app(create_app(config_of(gateways, runs))):
        pass
    assert (runs / f"{done.run_id}.json").read_bytes() == before


async def test_one_process_per_runs_folder(tmp_path: Path) -> None:
    first, second = FileRunStore(tmp_path), FileRunStore(tmp_path)
    await first.open()
    try:
        with pytest.raises(ConfigError, match=r"runs.dir: .* is in use by another orchestrator process"):
            await second.open()
    finally:
        await first.close()
    await second.open()  # free again once the first let go
    await second.close()


async def test_unfinished_lists_only_running_runs(tmp_path: Path, gateways: tuple[str, str, Gate]) -> None:
    runs = tmp_path / "runs"
    done = await finished_run(gateways, runs)
    left = msgspec.structs.replace(crashed_at(done, "vision"), run_id=new_run_id())
    await FileRunStore(runs).save(left)
    assert [d.run_id for d in await FileRunStore(runs).unfinished()] == [left.run_id]
