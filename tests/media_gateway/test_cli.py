"""The `media-gateway` console script as a real process in mock mode."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import sys
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from .conftest import CONFIG_PATH, GENERATE, PRODUCT

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _script() -> str:
    found = shutil.which("media-gateway", path=str(Path(sys.executable).parent))
    assert found, "media-gateway console script is not installed in this venv"
    return found


async def test_process_in_mock_mode_serves_a_png_of_the_requested_size(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "GENERATOR_MODE": "mock", "MEDIA_STORE_DIR": str(tmp_path / "store"), "LOG_LEVEL": "info"}
    env.pop("MEDIA_PUBLIC_BASE_URL", None)
    proc = await asyncio.create_subprocess_exec(
        _script(), "--host", "127.0.0.1", "--port", str(port), "--config", str(CONFIG_PATH),
        env=env, stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stderr is not None
        async with asyncio.timeout(30):  # readiness is the log line, not a timer
            while b"Uvicorn running on" not in (line := await proc.stderr.readline()):
                assert line, "media-gateway exited before it was ready"
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:
            body = {**PRODUCT, "width": 136, "height": 96}
            async with session.post(base + GENERATE, json=body) as resp:
                assert resp.status == 200
                job = await resp.json()
            assert job["mode"] == "mock" and job["images"][0]["url"].startswith(base)
            async with session.get(job["images"][0]["url"]) as resp:
                assert resp.status == 200 and resp.headers["content-type"] == "image/png"
                data = await resp.read()
            async with session.get(base + "/readyz") as resp:
                assert resp.status == 200
        with Image.open(io.BytesIO(data)) as img:
            assert (img.format, img.size) == ("PNG", (136, 96))
        assert list((tmp_path / "store").rglob("*.png"))
    finally:
        proc.terminate()
        await proc.wait()


async def test_python_dash_m_with_a_broken_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("mode: sideways\n")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "media_gateway", "--config", str(bad),
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )
    _, err = await proc.communicate()
    assert proc.returncode == 2
    assert b"configuration error" in err and b"mode" in err
