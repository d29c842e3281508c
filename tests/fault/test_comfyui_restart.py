"""The real `media-gateway` process against the fake ComfyUI: SIGTERM answers every waiting client with
503 `shutting_down` and exits 0, leaving its jobs to the next process exactly as a crash would; after a
SIGTERM or a SIGKILL, a new process on the same SQLite file finishes them.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest

from orchestrator.tools.processes import REPO_ROOT
from tests.fakes.child import Child
from tests.fakes.comfyui import FakeComfyUI
from tests.media_gateway.conftest import GENERATE, PRODUCT, SMOKE

pytestmark = pytest.mark.slow


def _config_file(folder: Path) -> Path:
    """The shipped YAML with a short shutdown grace and fast polling, next to a copy of its workflows."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copytree(REPO_ROOT / "config" / "workflows", folder / "workflows")
    text = (REPO_ROOT / "config" / "media_gateway.yaml").read_text("utf-8")
    for old, new in (
        ("shutdown_grace_s: 10", "shutdown_grace_s: 0.5"),
        ("poll_interval_s: 1.0", "poll_interval_s: 0.1"),
    ):
        assert old in text
        text = text.replace(old, new)
    path = folder / "media_gateway.yaml"
    path.write_text(text, "utf-8")
    return path


def _gateway(tmp_path: Path, fake: FakeComfyUI, name: str) -> Child:
    env = {"GENERATOR_MODE": "live", "COMFYUI_BASE_URL": fake.url, "MEDIA_STORE_DIR": str(tmp_path / "store")}
    return Child("media_gateway", _config_file(tmp_path / name), env)


async def _call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    headers = {} if body is None else {"content-type": "application/json"}
    async with aiohttp.ClientSession() as session, session.request(
        method, url, data=None if body is None else msgspec.json.encode(body), headers=headers
    ) as resp:
        return resp.status, msgspec.json.decode(await resp.read())


async def _submit(url: str, body: dict[str, Any]) -> str:
    status, job = await _call("POST", url + GENERATE, {**body, "wait": False})
    assert status == 202, job
    job_id: str = job["id"]
    return job_id


async def _final(url: str, job_id: str) -> dict[str, Any]:
    """Follow the job's SSE stream to its final `job` event."""
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v1/media/jobs/{job_id}/events") as resp:
        data = b""
        async for line in resp.content:
            if line.startswith(b"data: "):
                data = line[6:]
    final: dict[str, Any] = msgspec.json.decode(data)
    return final


async def _hang_and_pending(gateway: Child, fake: FakeComfyUI) -> tuple[str, str]:
    """One job hanging in ComfyUI and one queued behind it there, both recorded by the gateway."""
    hanging = await _submit(gateway.url, {**PRODUCT, "prompt": "[hang] blocker"})
    await fake.wait_for(lambda: fake.hanging is not None)
    pending = await _submit(gateway.url, SMOKE)
    await fake.wait_for(lambda: len(fake.pending) == 1)
    # Logged once the prompt id is in the SQLite file.
    await gateway.logged(b'"job_upstream_recorded"', count=2)
    return hanging, pending


async def _waiting_client(url: str, body: dict[str, Any]) -> tuple[int, str, Any]:
    """A `wait: true` request: its status, content type and body."""
    async with aiohttp.ClientSession() as session, session.post(
        url + GENERATE, data=msgspec.json.encode(body), headers={"content-type": "application/json"}
    ) as resp:
        return resp.status, resp.headers.get("content-type", ""), await resp.read()


async def _events(url: str, job_id: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    async with aiohttp.ClientSession() as session, session.get(f"{url}/api/v1/media/jobs/{job_id}/events") as resp:
        name = ""
        async for raw in resp.content:
            line = raw.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                found.append((name, msgspec.json.decode(line[6:])))
    return found


async def test_sigterm_answers_every_waiting_client_and_the_next_process_finishes_the_jobs(
    fake: FakeComfyUI, tmp_path: Path
) -> None:
    async with _gateway(tmp_path, fake, "first") as gateway:
        # Three clients wait: one job hangs in ComfyUI, one is queued there, one waits here for a slot.
        hanging = asyncio.create_task(_waiting_client(gateway.url, {**PRODUCT, "prompt": "[hang] blocker"}))
        await fake.wait_for(lambda: fake.hanging is not None)
        pending = asyncio.create_task(_waiting_client(gateway.url, SMOKE))
        await fake.wait_for(lambda: len(fake.pending) == 1)
        await gateway.logged(b'"job_upstream_recorded"', count=2)
        here = asyncio.create_task(_waiting_client(gateway.url, {**SMOKE, "seed": 3}))
        async with asyncio.timeout(30):  # the third job is recorded, waiting for one of ComfyUI's two slots
            while len(_job_ids(tmp_path)) < 3:
                await asyncio.sleep(0.05)
        blocker, behind = fake.prompt_ids
        first = _job_ids(tmp_path)[0]
        stream = asyncio.create_task(_events(gateway.url, first))
        await gateway.logged(b'"job_upstream_recorded"', count=2)
        assert await gateway.exit_code(signal.SIGTERM) == 0, gateway.log()
        answers = await asyncio.gather(hanging, pending, here)
        events = await stream
    job_ids = []
    for status, content_type, raw in answers:
        # The error envelope, never uvicorn's bare 500 text/plain.
        assert status == 503 and content_type.startswith("application/json"), (status, raw)
        error = msgspec.json.decode(raw)["error"]
        assert error["code"] == "shutting_down" and "restarted gateway" in error["message"]
        job_ids.append(error["details"]["job_id"])
    assert events[-1][0] == "error" and events[-1][1]["error"]["code"] == "shutting_down", events
    # Nothing was released in ComfyUI: the prompts ran on, as after a crash.
    assert not fake.interrupts and not fake.calls("POST", "/queue")
    assert fake.prompt_ids == [blocker, behind]
    assert job_ids == _job_ids(tmp_path) and first == job_ids[0]
    # Saved as they were, queued or running with their tickets: what a crash would have left.
    assert _unfinished(tmp_path) == 3

    async with _gateway(tmp_path, fake, "second") as again:
        fake.unhang()
        async with asyncio.timeout(30):
            finals = [await _final(again.url, job_id) for job_id in job_ids]
        assert [final["status"] for final in finals] == ["succeeded"] * 3, finals
    # The two prompts ComfyUI held were followed, only the job that never reached it was submitted.
    assert fake.prompt_ids[:2] == [blocker, behind] and len(fake.prompt_ids) == 3


def _job_ids(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "store" / "jobs.sqlite3") as db:
        return [row[0] for row in db.execute("SELECT id FROM jobs ORDER BY rowid")]


def _unfinished(tmp_path: Path) -> int:
    """Jobs saved queued or running with their resume ticket."""
    with sqlite3.connect(tmp_path / "store" / "jobs.sqlite3") as db:
        query = "SELECT count(*) FROM jobs WHERE ticket IS NOT NULL AND status IN ('queued', 'running')"
        count: int = db.execute(query).fetchone()[0]
        return count


async def test_after_sigkill_a_new_process_resumes_what_comfyui_still_holds(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with _gateway(tmp_path, fake, "first") as gateway:
        hanging, pending = await _hang_and_pending(gateway, fake)
        blocker, _ = fake.prompt_ids
        assert await gateway.exit_code(signal.SIGKILL) == -signal.SIGKILL

    async with _gateway(tmp_path, fake, "second") as again:
        status, job = await _call("GET", f"{again.url}/api/v1/media/jobs/{pending}")
        assert status == 200 and job["status"] in ("queued", "running"), job
        # The blocker ends upstream; the resumed job behind it then runs to success.
        async with aiohttp.ClientSession() as session, session.post(
            f"{fake.url}/interrupt", json={"prompt_id": blocker}
        ) as resp:
            assert resp.status == 200
        async with asyncio.timeout(30):
            done = await _final(again.url, pending)
            cut = await _final(again.url, hanging)
        assert done["status"] == "succeeded", done
        assert cut["status"] == "failed" and cut["error"]["code"] == "upstream_error"
        async with aiohttp.ClientSession() as session, session.get(done["images"][0]["url"]) as resp:
            assert resp.status == 200 and resp.headers["content-type"] == "image/png"
    assert len(fake.prompt_ids) == 2  # followed, not submitted again
