"""Fixtures: the fake ComfyUI, the gateway's real YAML pointed at it, and the app served by uvicorn on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import pytest
import uvicorn

from media_gateway.app import create_app
from media_gateway.config import MediaConfig, Timeouts, load_media_config
from tests.fakes.comfyui import FakeComfyUI

REPO = Path(__file__).resolve().parents[2]
CONFIG_PATH = REPO / "config" / "media_gateway.yaml"
GENERATE = "/api/v1/media/image/generate"
PRODUCT = {"role": "vision", "task": "product_image", "prompt": "a ceramic mug on oak", "width": 256, "height": 192}
SMOKE = {"role": "qa", "task": "smoke", "prompt": "wiring check", "width": 128, "height": 64}


def gateway_config(
    store: Path,
    *,
    comfyui_url: str = "http://127.0.0.1:9",
    mode: str = "live",
    live_timeout: float = 20.0,
    **comfy: Any,
) -> MediaConfig:
    """The shipped YAML, pointed at the fake and a temp store, with fast polling/reconnects for tests."""
    environ = {"GENERATOR_MODE": mode, "COMFYUI_BASE_URL": comfyui_url, "MEDIA_STORE_DIR": str(store)}
    config = load_media_config(CONFIG_PATH, environ)
    providers = dict(config.providers)
    providers["comfyui"] = {
        **providers["comfyui"],
        "poll_interval_s": 0.05,
        "reconnect_min_s": 0.01,
        "reconnect_max_s": 0.05,
        **comfy,
    }
    # Jobs a test leaves running end at once when its gateway stops, instead of after the shipped grace.
    jobs = msgspec.structs.replace(config.jobs, shutdown_grace_s=0.0)
    return msgspec.structs.replace(
        config, providers=providers, allow_mode_header=True, timeouts=Timeouts(mock=5.0, live=live_timeout), jobs=jobs
    )


@contextlib.asynccontextmanager
async def serve(config: MediaConfig) -> AsyncIterator[str]:
    """Run the app under uvicorn on a pre-bound loopback socket; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # connections wait in the backlog until the lifespan has started
    server = uvicorn.Server(uvicorn.Config(create_app(config), lifespan="on", log_level="warning", ws="none"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


class Client:
    """A tiny JSON client over one aiohttp session."""

    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session

    async def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, Any]:
        data = msgspec.json.encode(body) if body is not None else None
        sent = {"content-type": "application/json"} if data is not None else {}
        headers = {**sent, **(headers or {})}
        async with self.session.request(method, self.base + path, data=data, headers=headers) as resp:
            raw = await resp.read()
            ctype = resp.headers.get("content-type", "")
            payload = msgspec.json.decode(raw) if raw and ctype.startswith("application/json") else raw
            return resp.status, payload, resp.headers

    async def generate(self, body: dict[str, Any], *, mode: str | None = None) -> tuple[int, Any, Any]:
        return await self.call("POST", GENERATE, body, {"x-generator-mode": mode} if mode else None)


@pytest.fixture
async def fake() -> AsyncIterator[FakeComfyUI]:
    comfy = FakeComfyUI()
    await comfy.start()
    try:
        yield comfy
    finally:
        await comfy.close()


@contextlib.asynccontextmanager
async def running_gateway(config: MediaConfig) -> AsyncIterator[Client]:
    """The gateway served on loopback plus a client for it."""
    async with serve(config) as base, aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        yield Client(base, session)


@pytest.fixture
async def gateway(fake: FakeComfyUI, tmp_path: Path) -> AsyncIterator[Client]:
    async with running_gateway(gateway_config(tmp_path / "store", comfyui_url=fake.url)) as client:
        yield client
