"""The `media-gateway` console script as a real process in mock mode."""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from media_gateway.sqlite_jobs import SqliteJobRegistry

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


async def _start_fails(env: dict[str, str], *, command: tuple[str, ...] = ()) -> tuple[int, str]:
    """Start `python -m media_gateway` (behind `command`) and return its exit status and stderr."""
    proc = await asyncio.create_subprocess_exec(
        *command, sys.executable, "-m", "media_gateway", "--port", "0", "--config", str(CONFIG_PATH),
        env={**os.environ, "GENERATOR_MODE": "mock", **env},
        stderr=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
    )
    async with asyncio.timeout(60):  # it must exit by itself, not serve
        _, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, err.decode("utf-8", "replace")


async def test_a_store_folder_that_cannot_be_created_exits_2_naming_path_and_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = blocker / "media"
    code, err = await _start_fails({"MEDIA_STORE_DIR": str(store)})
    assert code == 2, err
    assert "configuration error" in err and str(store) in err and "MEDIA_STORE_DIR" in err and "store.dir" in err
    assert "Traceback" not in err and "OperationalError" not in err


async def test_a_job_database_that_cannot_be_opened_exits_2_naming_it(tmp_path: Path) -> None:
    database = tmp_path / "jobs.sqlite3"
    database.mkdir()  # a folder where the file should be
    code, err = await _start_fails({"MEDIA_STORE_DIR": str(tmp_path / "store"), "MEDIA_JOBS_DB": str(database)})
    assert code == 2, err
    assert str(database) in err and "MEDIA_JOBS_DB" in err and "jobs.sqlite_path" in err
    assert "Traceback" not in err


def _read_only_mounts() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount --bind -o ro /tmp /tmp"]
    return subprocess.run(probe, capture_output=True, check=False).returncode == 0


@pytest.mark.skipif(not _read_only_mounts(), reason="no mount namespace here (unshare -rm denied)")
@pytest.mark.parametrize("which", ["store", "database"])
async def test_a_read_only_store_or_job_database_exits_2_naming_it(tmp_path: Path, which: str) -> None:
    # The folder is really read-only (a read-only bind mount in the process's own mount namespace), so the
    # check holds for root as well, whom file modes do not stop.
    store, elsewhere = tmp_path / "store", tmp_path / "db"
    store.mkdir()
    elsewhere.mkdir()
    env = {"MEDIA_STORE_DIR": str(store)}
    read_only, setting = store, "MEDIA_STORE_DIR"
    if which == "database":
        # The database exists from an earlier run; only its folder turned read-only.
        database = elsewhere / "jobs.sqlite3"
        await asyncio.to_thread(SqliteJobRegistry.check_file, database)
        env["MEDIA_JOBS_DB"] = str(database)
        read_only, setting = elsewhere, "MEDIA_JOBS_DB"
    script = f'mount --bind -o ro "{read_only}" "{read_only}" && exec "$@"'
    command = ("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh")
    code, err = await _start_fails(env, command=command)
    assert code == 2, err
    assert "configuration error" in err and str(read_only) in err and setting in err
    assert "Read-only file system" in err and "Traceback" not in err
