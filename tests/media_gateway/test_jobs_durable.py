"""Durable jobs: the SQLite registry, and a gateway started on a file an earlier process left unfinished jobs in.

A crash is reproduced by writing the rows a killed process leaves behind (a `running` job whose prompt
ComfyUI holds), then starting the app on that file against the fake ComfyUI.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from media_gateway.config import MediaConfig
from media_gateway.jobs import JobTicket
from media_gateway.sqlite_jobs import SqliteJobRegistry
from media_gateway.workflows import load_workflows
from shared_contracts.media import ImageRequest, Job
from tests.fakes.comfyui import FakeComfyUI

from .conftest import PRODUCT, SMOKE, Client, gateway_config, running_gateway
from .test_comfyui_live import _events


def _job(job_id: str, status: str = "running", provider: str = "comfyui") -> Job:
    return Job(
        id=job_id, status=status, mode="live", provider=provider, workflow="smoke_v1",  # type: ignore[arg-type]
        progress=0.0, images=[], seed=7, error=None, created_at=datetime.now(UTC), started_at=None,
        finished_at=None, latency_ms=None,
    )


def _ticket(
    config: MediaConfig,
    prompt: str,
    *,
    deadline_in: float = 60.0,
    upstream_id: str | None = None,
    workflow_name: str = "smoke_v1",
) -> JobTicket:
    workflow = load_workflows(config.workflows, base_dir=Path(config.base_dir))[workflow_name]
    body = SMOKE if workflow_name == "smoke_v1" else PRODUCT
    values = workflow.resolve(msgspec.convert({**body, "prompt": prompt}, ImageRequest), seed=7)
    return JobTicket(
        provider="comfyui", workflow=workflow_name, params=dict(values), graph=workflow.inject(values),
        output_nodes=list(workflow.spec.outputs), deadline_at=time.time() + deadline_in, upstream_id=upstream_id,
    )


async def _left_behind(config: MediaConfig, job: Job, ticket: JobTicket | None) -> None:
    """The rows a gateway killed mid-job leaves in its SQLite file."""
    registry = SqliteJobRegistry(config.jobs.sqlite_file(config.store), max_jobs=100, retention_s=3600)
    await registry.open()
    await registry.save(job)
    if ticket is not None:
        await registry.track(job.id, ticket)
        if ticket.upstream_id:
            await registry.set_upstream(job.id, ticket.upstream_id)
    await registry.close()


async def _post_prompt(fake: FakeComfyUI, graph: dict[str, Any] | None) -> str:
    """Queue a prompt on the fake as an earlier gateway process (another client id) did."""
    async with aiohttp.ClientSession() as session, session.post(
        f"{fake.url}/prompt", json={"prompt": graph, "client_id": "earlier-process"}
    ) as resp:
        assert resp.status == 200
        prompt_id: str = (await resp.json())["prompt_id"]
        return prompt_id


async def _final(client: Client, job_id: str) -> dict[str, Any]:
    event, job = (await _events(client, job_id))[-1]
    assert event == "job"
    return job  # type: ignore[no-any-return]


# ---- the registry itself

async def test_sqlite_registry_keeps_jobs_and_tickets_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    config = gateway_config(tmp_path / "store")
    first = SqliteJobRegistry(path, max_jobs=10, retention_s=3600)
    await first.open()
    await first.save(_job("a", "queued"))
    await first.track("a", _ticket(config, "one"))
    await first.set_upstream("a", "prompt-1")
    await first.save(_job("b", "succeeded"))
    await first.close()

    again = SqliteJobRegistry(path, max_jobs=10, retention_s=3600)
    await again.open()
    try:
        kept = await again.get("a")
        assert kept is not None and kept.status == "queued"
        [(job, ticket)] = await again.unfinished()
        assert job.id == "a" and ticket is not None and ticket.upstream_id == "prompt-1"
        assert ticket.graph == _ticket(config, "one").graph
        assert (await again.get("b")) is not None and (await again.get("missing")) is None
        # A final save drops the ticket: nothing is left to resume.
        await again.save(_job("a", "failed"))
        assert await again.unfinished() == []
    finally:
        await again.close()


async def test_sqlite_registry_forgets_old_and_excess_finished_jobs(tmp_path: Path) -> None:
    now = [1000.0]
    registry = SqliteJobRegistry(tmp_path / "j.sqlite3", max_jobs=2, retention_s=10, clock=lambda: now[0])
    await registry.open()
    try:
        await registry.save(_job("running", "running"))
        for index in range(3):
            await registry.save(_job(f"done{index}", "succeeded"))
        now[0] += 5
        # Pruning runs every 64 saves; these saves are what a busy gateway would make.
        for _ in range(64):
            await registry.save(_job("running", "running"))
        assert await registry.get("done0") is None  # beyond max_jobs finished
        assert await registry.get("done2") is not None
        now[0] += 20
        for _ in range(64):
            await registry.save(_job("running", "running"))
        assert await registry.get("done2") is None  # older than retention_s
        assert await registry.get("running") is not None  # unfinished jobs are never dropped
    finally:
        await registry.close()


# ---- a gateway started on what a killed one left behind

async def test_prompt_finished_while_down_is_downloaded_and_succeeds(fake: FakeComfyUI, tmp_path: Path) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    ticket = _ticket(config, "finished while down")
    prompt_id = await _post_prompt(fake, ticket.graph)
    await fake.wait_for(lambda: prompt_id in fake.history)
    await _left_behind(config, _job("j1"), msgspec.structs.replace(ticket, upstream_id=prompt_id))

    async with running_gateway(config) as client:
        job = await _final(client, "j1")
        assert job["status"] == "succeeded", job
        [image] = job["images"]
        assert (image["width"], image["height"]) == (128, 64)
        async with client.session.get(image["url"]) as resp:
            assert resp.status == 200 and resp.headers["content-type"] == "image/png"
    # Resumed, not run again.
    assert len(fake.calls("POST", "/prompt")) == 1


async def test_prompt_still_queued_upstream_is_followed_to_its_end(fake: FakeComfyUI, tmp_path: Path) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    # smoke_v1 has no prompt input, so the blocker is a product shot whose prompt carries the marker.
    blocker = await _post_prompt(fake, _ticket(config, "[hang]", workflow_name="product_shot_v1").graph)
    await fake.wait_for(lambda: fake.hanging == blocker)
    ticket = _ticket(config, "waiting behind the blocker")
    prompt_id = await _post_prompt(fake, ticket.graph)
    await _left_behind(config, _job("j2", "queued"), msgspec.structs.replace(ticket, upstream_id=prompt_id))

    async with running_gateway(config) as client:
        status, job, _ = await client.call("GET", "/api/v1/media/jobs/j2")
        assert status == 200 and job["status"] in ("queued", "running")
        # The blocker ends; ComfyUI runs the resumed prompt next.
        async with client.session.post(f"{fake.url}/interrupt", json={"prompt_id": blocker}) as resp:
            assert resp.status == 200
        job = await _final(client, "j2")
        assert job["status"] == "succeeded", job
        assert len(job["images"]) == 1


async def test_prompt_unknown_upstream_fails_with_a_clear_error(fake: FakeComfyUI, tmp_path: Path) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    ticket = _ticket(config, "lost", upstream_id="00000000-0000-0000-0000-000000000000")
    await _left_behind(config, _job("j3"), ticket)

    async with running_gateway(config) as client:
        job = await _final(client, "j3")
        assert job["status"] == "failed"
        assert job["error"]["code"] == "upstream_error"
        assert "lost prompt" in job["error"]["message"]
        status, _, _ = await client.call("GET", "/healthz")
        assert status == 200


async def test_job_still_waiting_in_the_gateway_is_submitted_again(fake: FakeComfyUI, tmp_path: Path) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    await _left_behind(config, _job("j4", "queued"), _ticket(config, "never submitted"))

    async with running_gateway(config) as client:
        job = await _final(client, "j4")
        assert job["status"] == "succeeded", job
    assert len(fake.calls("POST", "/prompt")) == 1


async def test_jobs_that_cannot_be_resumed_end_failed(fake: FakeComfyUI, tmp_path: Path) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    await _left_behind(config, _job("expired", "queued"), _ticket(config, "too late", deadline_in=-1))
    await _left_behind(config, _job("no-ticket", "running"), None)
    await _left_behind(config, _job("gone", "running", provider="retired"), msgspec.structs.replace(
        _ticket(config, "x"), provider="retired"))

    async with running_gateway(config) as client:
        codes = {}
        for job_id in ("expired", "no-ticket", "gone"):
            status, job, _ = await client.call("GET", f"/api/v1/media/jobs/{job_id}")
            assert status == 200 and job["status"] == "failed", job
            codes[job_id] = job["error"]["code"]
        assert codes == {"expired": "upstream_timeout", "no-ticket": "upstream_error", "gone": "upstream_error"}
    assert fake.calls("POST", "/prompt") == []


async def test_memory_registry_is_still_selectable(fake: FakeComfyUI, tmp_path: Path) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    config = msgspec.structs.replace(config, jobs=msgspec.structs.replace(config.jobs, registry="memory"))
    async with running_gateway(config) as client:
        status, job, _ = await client.generate(SMOKE)
        assert status == 200 and job["status"] == "succeeded"
    assert not config.jobs.sqlite_file(config.store).exists()


async def _bound(config: MediaConfig, job_id: str, prompt_id: str, instance: str) -> None:
    """What a process killed between saving a prompt's id and ComfyUI's answer leaves: bound, not accepted."""
    registry = SqliteJobRegistry(config.jobs.sqlite_file(config.store), max_jobs=100, retention_s=3600)
    await registry.open()
    await registry.bind(job_id, instance=instance, upstream_id=prompt_id)
    await registry.close()


async def test_a_prompt_saved_but_never_posted_is_submitted_once_under_its_id(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    await _left_behind(config, _job("j5", "queued"), _ticket(config, "cut before the POST"))
    await _bound(config, "j5", "11111111-2222-4333-8444-555555555555", fake.url)

    async with running_gateway(config) as client:
        job = await _final(client, "j5")
        assert job["status"] == "succeeded", job
    assert fake.prompt_ids == ["11111111-2222-4333-8444-555555555555"]


async def test_a_prompt_posted_whose_answer_was_lost_is_followed_not_posted_again(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    ticket = _ticket(config, "the POST reached ComfyUI")
    await _left_behind(config, _job("j6", "queued"), ticket)
    prompt_id = "66666666-2222-4333-8444-555555555555"
    async with aiohttp.ClientSession() as session, session.post(
        f"{fake.url}/prompt", json={"prompt": ticket.graph, "client_id": "earlier-process", "prompt_id": prompt_id}
    ) as resp:
        assert resp.status == 200 and (await resp.json())["prompt_id"] == prompt_id
    await _bound(config, "j6", prompt_id, fake.url)

    async with running_gateway(config) as client:
        job = await _final(client, "j6")
        assert job["status"] == "succeeded", job
    assert fake.prompt_ids == [prompt_id] and len(fake.calls("POST", "/prompt")) == 1
