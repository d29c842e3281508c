"""Serve ASGI apps on loopback inside the test's event loop (real HTTP, no child process)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import uvicorn
from starlette.types import ASGIApp

__all__ = ["REPO_ROOT", "mock_gateway_apps", "serve_app"]

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def serve_app(app: ASGIApp) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a loopback port bound here; yield its base URL; shut it down after."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_config=None, access_log=False))
    # uvicorn takes SIGINT/SIGTERM in serve(); inside a test run they belong to pytest.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


def mock_gateway_apps(store_dir: Path, environ: Mapping[str, str] | None = None) -> tuple[ASGIApp, ASGIApp]:
    """The real LLM and Media Gateway apps from the repository's YAML, in mock mode."""
    from llm_gateway.app import create_app as create_llm_app
    from llm_gateway.config import load_gateway_config
    from media_gateway.app import create_app as create_media_app
    from media_gateway.config import load_media_config

    env = {"GENERATOR_MODE": "mock", "MEDIA_STORE_DIR": str(store_dir), **(environ or {})}
    llm = create_llm_app(load_gateway_config(REPO_ROOT / "config" / "llm_gateway.yaml", environ=env), environ=env)
    media = create_media_app(load_media_config(REPO_ROOT / "config" / "media_gateway.yaml", env))
    return llm, media
