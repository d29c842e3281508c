"""Replicas of the services as real processes on one PostgreSQL database, for the scale tests.

Each service runs from its shipped YAML with only its timings shortened (leases of 2 s, heartbeats of
0.3 s), so the tests exercise the configuration people deploy.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from orchestrator.tools.processes import REPO_ROOT
from tests.fakes.child import Child

__all__ = ["LEASE_S", "call", "final_job", "media_replica", "orchestrator_replica", "wait_until"]

LEASE_S = 2
_HARNESS_S = 60.0


def _config(folder: Path, name: str, replacements: dict[str, str], *, workflows: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    if workflows and not (folder / "workflows").exists():
        shutil.copytree(REPO_ROOT / "config" / "workflows", folder / "workflows")
    text = (REPO_ROOT / "config" / name).read_text("utf-8")
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = folder / name
    path.write_text(text, "utf-8")
    return path


def media_replica(
    folder: Path, *, dsn: str, comfyui: list[str], store: Path, max_in_flight: int = 1, lease_s: float = LEASE_S
) -> Child:
    """A live media gateway replica on the shared job database and image folder."""
    config = _config(folder, "media_gateway.yaml", {
        "lease_s: 15": f"lease_s: {lease_s}", "heartbeat_s: 5": "heartbeat_s: 0.3", "poll_s: 0.5": "poll_s: 0.1",
        "max_in_flight: 2 ": f"max_in_flight: {max_in_flight} ", "poll_interval_s: 1.0": "poll_interval_s: 0.1",
        "shutdown_grace_s: 10": "shutdown_grace_s: 0.5",
    }, workflows=True)
    env = {"GENERATOR_MODE": "live", "COMFYUI_BASE_URL": ",".join(comfyui), "MEDIA_STORE_DIR": str(store),
           "MEDIA_JOBS_URL": dsn}
    return Child("media_gateway", config, env)


def orchestrator_replica(folder: Path, *, dsn: str, llm: str, media: str, lease_s: float = LEASE_S) -> Child:
    """An orchestrator replica on the shared run database."""
    config = _config(folder, "orchestrator.yaml", {
        "lease_s: 15": f"lease_s: {lease_s}", "heartbeat_s: 5": "heartbeat_s: 0.3",
        "events_poll_s: 2": "events_poll_s: 0.2", "shutdown_grace_s: 10": "shutdown_grace_s: 0.2",
    })
    env = {"ORCHESTRATOR_RUNS_URL": dsn, "ORCHESTRATOR_RUNS_DIR": str(folder / "runs"),
           "ORCHESTRATOR_IMAGES_DIR": str(folder.parent / "run-images"), "LLM_GATEWAY_URL": llm,
           "MEDIA_GATEWAY_URL": media}
    return Child("orchestrator", config, env)


async def call(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    """One JSON request; (status, decoded body)."""
    headers = {} if body is None else {"content-type": "application/json"}
    async with asyncio.timeout(_HARNESS_S), aiohttp.ClientSession() as session, session.request(
        method, url, data=None if body is None else msgspec.json.encode(body), headers=headers
    ) as resp:
        return resp.status, msgspec.json.decode(await resp.read())


async def final_job(url: str, job_id: str) -> dict[str, Any]:
    """Follow a job's SSE stream on `url` to its final `job` event."""
    async with asyncio.timeout(_HARNESS_S), aiohttp.ClientSession() as session, session.get(
        f"{url}/api/v1/media/jobs/{job_id}/events"
    ) as resp:
        data = b""
        async for line in resp.content:
            if line.startswith(b"data: "):
                data = line[6:]
    final: dict[str, Any] = msgspec.json.decode(data)
    return final


async def wait_until(check: Any, what: str) -> None:
    """Poll `await check()` every 0.1 s until it is true (bounded: a broken test fails, it does not hang)."""
    try:
        async with asyncio.timeout(_HARNESS_S):
            while not await check():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {_HARNESS_S:g} s: {what}") from None
