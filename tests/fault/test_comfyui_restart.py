"""The real `media-gateway` process against the fake ComfyUI: SIGTERM ends jobs cleanly and exits 0; after a
SIGKILL, a new process on the same SQLite file resumes what ComfyUI still holds.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
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
    async with aiohttp.ClientSession() as session, session.request(
        method, url, data=None if body is None else msgspec.json.encode(body)
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


async def test_sigterm_ends_jobs_releases_comfyui_work_and_exits_0(fake: FakeComfyUI, tmp_path: Path) -> None:
    async with _gateway(tmp_path, fake, "first") as gateway:
        hanging, pending = await _hang_and_pending(gateway, fake)
        blocker, behind = fake.prompt_ids
        # Both ComfyUI slots are taken, so this one waits in the gateway.
        waiting = await _submit(gateway.url, SMOKE)
        status, job = await _call("GET", f"{gateway.url}/api/v1/media/jobs/{waiting}")
        assert status == 200 and job["status"] == "queued"
        assert await gateway.exit_code(signal.SIGTERM) == 0, gateway.log()
    # The queued prompt was deleted from ComfyUI's queue, the running one interrupted by its id.
    assert {"delete": [behind]} in [r.body for r in fake.calls("POST", "/queue")]
    assert {"prompt_id": blocker} in fake.interrupts
    assert None not in fake.interrupts

    async with _gateway(tmp_path, fake, "second") as again:
        for job_id in (hanging, pending, waiting):
            status, job = await _call("GET", f"{again.url}/api/v1/media/jobs/{job_id}")
            assert status == 200 and job["status"] == "failed", job
            assert job["error"]["code"] == "provider_unavailable" and "shut down" in job["error"]["message"]
    assert len(fake.prompt_ids) == 2  # nothing was submitted again


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
