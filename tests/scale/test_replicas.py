"""Scale-out on real engines: replicas of the media gateway and the orchestrator on one PostgreSQL, in front
of two fake ComfyUI instances; one replica killed (SIGKILL) mid-work, the other finishes its work.

What the fakes record proves the promises: both instances get work, neither ever holds more prompts than
its cap, and every prompt reaches ComfyUI exactly once, the killed replica's included.
"""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from orchestrator.tools.processes import REPO_ROOT
from tests.fakes.child import Child
from tests.fakes.comfyui import FakeComfyUI
from tests.media_gateway.conftest import GENERATE, SMOKE
from tests.orchestrator.answers import PRODUCT
from tests.scale._stack import call, final_job, media_replica, orchestrator_replica, wait_until

pytestmark = pytest.mark.slow

JOBS = "/api/v1/media/jobs/"
RUNS = "/api/v1/flows/p0-product-detail/runs"


@pytest_asyncio.fixture
async def comfy_pair() -> AsyncIterator[tuple[FakeComfyUI, FakeComfyUI]]:
    """Two ComfyUI instances that hold every prompt in their queue until `release()`."""
    fakes = FakeComfyUI(), FakeComfyUI()
    for fake in fakes:
        await fake.start()
        fake.hold = True
    try:
        yield fakes
    finally:
        for fake in fakes:
            await fake.close()


def _seeds(fake: FakeComfyUI) -> list[int]:
    """The seed of every prompt the instance received (smoke_v1 puts it on node 2)."""
    return [int(graph["2"]["inputs"]["seed"]) for graph in fake.prompts]


async def test_two_media_replicas_share_jobs_hold_per_instance_caps_and_survive_a_kill(
    postgres_dsn: str, comfy_pair: tuple[FakeComfyUI, FakeComfyUI], tmp_path: Path
) -> None:
    x, y = comfy_pair
    urls = [x.url, y.url]
    store = tmp_path / "images"
    async with media_replica(tmp_path / "a", dsn=postgres_dsn, comfyui=urls, store=store) as a, \
            media_replica(tmp_path / "b", dsn=postgres_dsn, comfyui=urls, store=store) as b:
        jobs: list[dict[str, Any]] = []
        for seed in range(4):
            status, job = await call("POST", a.url + GENERATE, {**SMOKE, "seed": seed, "wait": False})
            assert status == 202, job
            jobs.append(job)
        # One prompt per instance (cap 1), the other two jobs wait in the gateway.
        await x.wait_for(lambda: len(x.pending) == 1)
        await y.wait_for(lambda: len(y.pending) == 1)
        await a.logged(b'"job_upstream_recorded"', count=2)
        in_comfy = set(_seeds(x) + _seeds(y))
        waiting = [job for job in jobs if job["seed"] not in in_comfy]
        assert len(waiting) == 2

        # Replica B answers every job replica A took.
        for job in jobs:
            status, seen = await call("GET", f"{b.url}{JOBS}{job['id']}")
            assert status == 200 and seen["id"] == job["id"] and seen["status"] in ("queued", "running"), seen
        # ... and cancels one through A, which drives it.
        status, canceled = await call("DELETE", f"{b.url}{JOBS}{waiting[0]['id']}")
        assert status == 200 and canceled["status"] == "canceled", canceled
        status, again = await call("DELETE", f"{b.url}{JOBS}{waiting[0]['id']}")
        assert status == 409 and again["error"]["code"] == "conflict"

        # A dies with two prompts in ComfyUI and one job waiting for a slot.
        assert await a.exit_code(signal.SIGKILL) == -signal.SIGKILL
        x.release()
        y.release()
        left = [job for job in jobs if job["id"] != waiting[0]["id"]]
        finals = [await final_job(b.url, job["id"]) for job in left]
        assert [final["status"] for final in finals] == ["succeeded"] * 3, finals
        await b.logged(b'"jobs_adopted"')
        status, ready = await call("GET", b.url + "/readyz")
        assert status == 200 and set(ready["providers"]["comfyui"]["instances"]) == set(urls), ready
        # The images are served by the surviving replica, from the store both share.
        status, _ = await call("GET", f"{b.url}/api/v1/media/jobs/{left[0]['id']}")
        assert status == 200

    # Both instances got work; neither ever held more than its cap of one prompt.
    assert _seeds(x) and _seeds(y)
    assert (x.peak, y.peak) == (1, 1)
    # Every job that ran reached ComfyUI exactly once, the adopted ones included; the canceled one never.
    assert sorted(_seeds(x) + _seeds(y)) == sorted(job["seed"] for job in left)
    assert len(set(x.prompt_ids + y.prompt_ids)) == len(x.prompt_ids + y.prompt_ids)


async def test_a_run_survives_the_kill_of_its_orchestrator_replica(
    postgres_dsn: str, comfy_pair: tuple[FakeComfyUI, FakeComfyUI], tmp_path: Path
) -> None:
    comfy, _ = comfy_pair
    llm = Child("llm_gateway", REPO_ROOT / "config" / "llm_gateway.yaml", {"GENERATOR_MODE": "mock"})
    media = media_replica(tmp_path / "media", dsn=postgres_dsn, comfyui=[comfy.url], store=tmp_path / "images")
    async with llm, media:
        first = orchestrator_replica(tmp_path / "o1", dsn=postgres_dsn, llm=llm.url, media=media.url)
        second = orchestrator_replica(tmp_path / "o2", dsn=postgres_dsn, llm=llm.url, media=media.url)
        async with first, second:
            status, run = await call("POST", first.url + RUNS, {"product": PRODUCT, "wait": False})
            assert status == 202, run
            run_id = run["run_id"]
            # The run is mid-flight: its image prompt sits in ComfyUI's queue.
            await comfy.wait_for(lambda: len(comfy.pending) == 1)
            assert await first.exit_code(signal.SIGKILL) == -signal.SIGKILL
            comfy.release()

            async def finished() -> bool:
                status, doc = await call("GET", f"{second.url}/api/v1/runs/{run_id}")
                assert status == 200, doc
                return bool(doc["status"] != "running")

            await wait_until(finished, f"run {run_id} finished through the second replica")
            status, doc = await call("GET", f"{second.url}/api/v1/runs/{run_id}")
            assert doc["status"] == "succeeded", doc
            assert doc["resumed_at"] is not None
            assert doc["images"] and all(step["status"] == "succeeded" for step in doc["steps"].values())
            await second.logged(b'"runs_adopted"')


# Longer than any test runs: work another replica takes over under it was handed over, not left to expire.
NEVER_EXPIRES_S = 600


async def test_a_media_replica_stopped_with_sigterm_hands_its_jobs_over_at_once(
    postgres_dsn: str, comfy_pair: tuple[FakeComfyUI, FakeComfyUI], tmp_path: Path
) -> None:
    x, _ = comfy_pair
    store = tmp_path / "images"
    async with media_replica(tmp_path / "a", dsn=postgres_dsn, comfyui=[x.url], store=store,
                             lease_s=NEVER_EXPIRES_S) as a, \
            media_replica(tmp_path / "b", dsn=postgres_dsn, comfyui=[x.url], store=store,
                          lease_s=NEVER_EXPIRES_S) as b:
        status, job = await call("POST", a.url + GENERATE, {**SMOKE, "wait": False})
        assert status == 202, job
        await x.wait_for(lambda: len(x.pending) == 1)
        await a.logged(b'"job_upstream_recorded"')
        assert await a.exit_code(signal.SIGTERM) == 0, a.log()
        assert b'"jobs_released"' in b"".join(a.lines)
        x.release()
        final = await final_job(b.url, job["id"])
        assert final["status"] == "succeeded", final
    assert len(x.prompt_ids) == 1  # followed by B, not submitted again


async def test_an_orchestrator_replica_stopped_with_sigterm_hands_its_run_over_at_once(
    postgres_dsn: str, comfy_pair: tuple[FakeComfyUI, FakeComfyUI], tmp_path: Path
) -> None:
    comfy, _ = comfy_pair
    llm = Child("llm_gateway", REPO_ROOT / "config" / "llm_gateway.yaml", {"GENERATOR_MODE": "mock"})
    media = media_replica(tmp_path / "media", dsn=postgres_dsn, comfyui=[comfy.url], store=tmp_path / "images")
    async with llm, media:
        first = orchestrator_replica(tmp_path / "o1", dsn=postgres_dsn, llm=llm.url, media=media.url,
                                     lease_s=NEVER_EXPIRES_S)
        second = orchestrator_replica(tmp_path / "o2", dsn=postgres_dsn, llm=llm.url, media=media.url,
                                      lease_s=NEVER_EXPIRES_S)
        async with first, second:
            status, run = await call("POST", first.url + RUNS, {"product": PRODUCT, "wait": False})
            assert status == 202, run
            await comfy.wait_for(lambda: len(comfy.pending) == 1)
            assert await first.exit_code(signal.SIGTERM) == 0, first.log()
            assert b'"runs_released"' in b"".join(first.lines)
            comfy.release()

            async def finished() -> bool:
                status, doc = await call("GET", f"{second.url}/api/v1/runs/{run['run_id']}")
                return bool(status == 200 and doc["status"] != "running")

            await wait_until(finished, "the run finished through the second replica")
            status, doc = await call("GET", f"{second.url}/api/v1/runs/{run['run_id']}")
            assert doc["status"] == "succeeded", doc
