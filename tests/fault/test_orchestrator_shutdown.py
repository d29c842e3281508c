"""The real `orchestrator` process on SIGTERM: the in-flight request finishes, background runs get their
grace and are then left `running` for the next process (or another replica) to resume, the process
exits 0, and its gateway key is never logged.
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
from tests.fault.test_orchestrator_faults import LLM_KEY, RUNS, fake_gateway
from tests.orchestrator.answers import PRODUCT

pytestmark = pytest.mark.slow


def _config_file(folder: Path) -> Path:
    text = (REPO_ROOT / "config" / "orchestrator.yaml").read_text("utf-8")
    assert "shutdown_grace_s: 10" in text
    path = folder / "orchestrator.yaml"
    path.write_text(text.replace("shutdown_grace_s: 10", "shutdown_grace_s: 0.5"), "utf-8")
    return path


async def test_sigterm_lets_the_request_in_flight_finish_stops_runs_and_exits_0(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    async with fake_gateway("stall") as (url, fake):
        gate = asyncio.Event()
        fake.readyz_gate = gate
        env = {"LLM_GATEWAY_URL": url, "MEDIA_GATEWAY_URL": url, "ORCHESTRATOR_RUNS_DIR": str(runs),
               "LLM_GATEWAY_API_KEY": LLM_KEY}
        async with Child("orchestrator", _config_file(tmp_path), env) as orchestrator, aiohttp.ClientSession() as s:
            async with s.post(orchestrator.url + RUNS, json={"product": PRODUCT, "wait": False}) as resp:
                assert resp.status == 202
                run_id = (await resp.json())["run_id"]
            async with asyncio.timeout(10):
                await fake.arrived.wait()  # the run's first step is waiting on the stalled gateway
            in_flight = asyncio.create_task(s.get(orchestrator.url + "/readyz"))
            async with asyncio.timeout(10):
                await fake.readyz_waiting.wait()
            proc = orchestrator.proc
            assert proc is not None
            proc.send_signal(signal.SIGTERM)
            await orchestrator.logged(b"Shutting down")
            gate.set()
            async with asyncio.timeout(10):
                response = await in_flight
            assert response.status == 200, await response.text()
            async with asyncio.timeout(30):
                assert await proc.wait() == 0, orchestrator.log()
    doc = msgspec.json.decode((runs / f"{run_id}.json").read_bytes())
    # Not ended: left as a crash would leave it, so whoever starts next resumes it from its last finished step.
    assert doc["status"] == "running" and doc["error"] is None
    assert doc["steps"]["brand"]["status"] == "running"
    assert b'"run_left_for_adoption"' in b"".join(orchestrator.lines)
    assert LLM_KEY not in orchestrator.log()
