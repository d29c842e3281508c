"""kill -9 of a real `orchestrator` process with background runs in flight, then a restart on the same runs folder:
every run accepted with 202 ends `succeeded`, resumed from its last finished step (issue 13, item 5).

The LLM Gateway (a real app in mock mode) sits behind a gate that holds every strategist call, so at the
kill each run has brand and brief finished and its strategist call open. The restarted process must not
ask brand or brief again, and must finish every run without anyone calling it.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import msgspec
import pytest

from orchestrator.tools.processes import REPO_ROOT
from tests.fakes.child import Child
from tests.orchestrator.answers import PRODUCT
from tests.orchestrator.gated import gated, read_sse
from tests.orchestrator.inprocess import mock_gateway_apps, serve_app

pytestmark = pytest.mark.slow

RUNS = "/api/v1/flows/p0-product-detail/runs"
CONFIG = REPO_ROOT / "config" / "orchestrator.yaml"
COUNT = 12
HANG_GUARD_S = 60


async def test_runs_in_flight_at_a_kill_9_are_resumed_by_the_next_process(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    llm_app, media_app = mock_gateway_apps(tmp_path / "media")
    async with serve_app(llm_app) as llm_url, serve_app(media_app) as media_url, gated(
        llm_url, hold={"strategist"}
    ) as (gate_url, gate):
        env = {"LLM_GATEWAY_URL": gate_url, "MEDIA_GATEWAY_URL": media_url, "ORCHESTRATOR_RUNS_DIR": str(runs),
               "LLM_GATEWAY_TIMEOUT_S": "30", "MEDIA_GATEWAY_TIMEOUT_S": "30"}
        async with Child("orchestrator", CONFIG, env) as first, aiohttp.ClientSession() as session:
            run_ids = []
            for _ in range(COUNT):
                async with session.post(first.url + RUNS, json={"product": PRODUCT, "wait": False}) as resp:
                    assert resp.status == 202
                    run_ids.append((await resp.json())["run_id"])
            async with asyncio.timeout(HANG_GUARD_S):
                await gate.wait_held("strategist", COUNT)
            assert first.proc is not None
            assert await first.exit_code(signal.SIGKILL) == -signal.SIGKILL
        for run_id in run_ids:
            left = msgspec.json.decode((runs / f"{run_id}.json").read_bytes())
            assert left["status"] == "running" and left["steps"]["strategist"]["status"] == "running"
            assert left["steps"]["brief"]["status"] == "succeeded"

        gate.release()
        async with Child("orchestrator", CONFIG, env) as second, aiohttp.ClientSession() as session:
            async with asyncio.timeout(HANG_GUARD_S):
                for run_id in run_ids:
                    async with session.get(f"{second.url}/api/v1/runs/{run_id}/events") as resp:
                        last = [name async for name, _ in read_sse(resp)][-1]
                    assert last == "run_finished"
            for run_id in run_ids:
                async with session.get(f"{second.url}/api/v1/runs/{run_id}") as resp:
                    doc = await resp.json()
                assert doc["status"] == "succeeded", doc["error"]
                assert doc["resumed_at"] is not None and len(doc["outputs"]) == 6
                async with session.get(second.url + doc["images"][0]["url"]) as resp:
                    assert resp.status == 200 and resp.content_type == "image/png"
        assert "run_recovered" in second.log()
    for run_id in run_ids:
        # Asked once each before the kill (brand, brief) or after it (the rest); the strategist twice.
        assert [gate.calls[(role, run_id)] for role in ("brand", "brief", "strategist", "copywriter", "reviewer")] \
            == [1, 1, 2, 1, 1], run_id
