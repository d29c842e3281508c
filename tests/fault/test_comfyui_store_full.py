"""A full disk under the media store (issue 13 item 6): each job that cannot keep its images ends `failed`
with 507 `storage_error`, releases its slot and is saved finished; `/readyz` says the store is not
writable while it is not, and everything works again once there is room.

In-process, the failure is injected where the store writes a file (`LocalImageStore._write_file`), and
for the job database where it saves (`SqliteJobRegistry.save`). With a mount namespace available, the real
gateway process also runs on a 1 MiB tmpfs (`unshare`, no root needed where user namespaces are allowed).
"""

from __future__ import annotations

import asyncio
import errno
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from media_gateway.sqlite_jobs import SqliteJobRegistry
from media_gateway.store import LocalImageStore
from orchestrator.tools.processes import REPO_ROOT
from shared_contracts.errors import StorageError
from tests.fakes.child import Child
from tests.fakes.comfyui import FakeComfyUI
from tests.media_gateway.conftest import SMOKE, Client, gateway_config, running_gateway

HARNESS_S = 30.0


class _Disk:
    """The injected disk: full or not, for the image store's writes and (optionally) the job database's."""

    def __init__(self) -> None:
        self.full = False
        self.jobs_full = False


@pytest.fixture
def disk(monkeypatch: pytest.MonkeyPatch) -> Iterator[_Disk]:
    state = _Disk()
    write = LocalImageStore._write_file
    save = SqliteJobRegistry.save

    def full_write(path: Path, data: bytes) -> None:
        if state.full:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write(path, data)

    async def full_save(self: SqliteJobRegistry, job: Any) -> None:
        if state.jobs_full:
            raise StorageError("the job store could not save: database or disk is full", details={"store": "jobs"})
        await save(self, job)

    monkeypatch.setattr(LocalImageStore, "_write_file", staticmethod(full_write))
    monkeypatch.setattr(SqliteJobRegistry, "save", full_save)
    yield state


async def _generate(client: Client, body: dict[str, Any]) -> tuple[int, Any]:
    async with asyncio.timeout(HARNESS_S):
        status, payload, _ = await client.generate(body)
    return status, payload


def _rows(database: Path) -> dict[str, tuple[str, bool]]:
    """Each job's saved status and whether its resume ticket is still kept."""
    with sqlite3.connect(database) as db:
        return {row[0]: (row[1], row[2] is not None) for row in db.execute("SELECT id, status, ticket FROM jobs")}


async def test_a_full_store_fails_each_job_with_507_and_leaks_nothing(
    fake: FakeComfyUI, tmp_path: Path, disk: _Disk
) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url, max_in_flight=2, max_queue=2)
    capacity = 4
    async with running_gateway(config) as client:
        disk.full = True
        for _ in range(3):  # three rounds of a full queue: a leaked slot would turn one round into 429s
            answers = await asyncio.gather(*(_generate(client, {**SMOKE, "seed": n}) for n in range(capacity)))
            assert [status for status, _ in answers] == [507] * capacity, answers
            for _, body in answers:
                assert body["error"]["code"] == "storage_error"
                assert body["error"]["details"]["errno"] == "ENOSPC"
                assert str(tmp_path) not in body["error"]["message"]  # the reason, not the server's folder
        status, ready, _ = await client.call("GET", "/readyz")
        assert status == 503 and ready["error"]["code"] == "not_ready", ready
        assert ready["error"]["details"]["store"]["writable"] is False
        assert ready["error"]["details"]["store"]["error"] == "ENOSPC"
        assert ready["error"]["details"]["providers"]["comfyui"]["jobs"] == 0  # every slot released
        job_id = answers[0][1]["error"]["details"]["job_id"]
        status, job, _ = await client.call("GET", f"/api/v1/media/jobs/{job_id}")
        assert (job["status"], job["error"]["code"]) == ("failed", "storage_error")
        # Saved finished: a restart would not run any of them again.
        rows = _rows(tmp_path / "store" / "jobs.sqlite3")
        assert len(rows) == 3 * capacity and set(rows.values()) == {("failed", False)}

        disk.full = False
        status, ready, _ = await client.call("GET", "/readyz")
        assert status == 200 and ready["store"]["writable"] is True, ready
        status, job = await _generate(client, SMOKE)
        assert status == 200 and job["status"] == "succeeded", job


async def test_a_final_snapshot_the_job_store_refuses_is_released_now_and_saved_later(
    fake: FakeComfyUI, tmp_path: Path, disk: _Disk
) -> None:
    config = gateway_config(tmp_path / "store", comfyui_url=fake.url)
    database = tmp_path / "store" / "jobs.sqlite3"
    async with running_gateway(config) as client:
        disk.full = disk.jobs_full = True
        # A job that cannot even be recorded is refused at once.
        status, body = await _generate(client, {**SMOKE, "wait": False})
        assert status == 507 and body["error"]["code"] == "storage_error", body
        disk.jobs_full = False
        fake.hold = True  # the prompt waits in ComfyUI until the job database is full too
        status, body = await _generate(client, {**SMOKE, "seed": 6, "wait": False})
        assert status == 202
        job_id = body["id"]
        await fake.wait_for(lambda: len(fake.pending) == 1)
        disk.jobs_full = True
        fake.release()
        async with asyncio.timeout(HARNESS_S):
            while (await client.call("GET", f"/api/v1/media/jobs/{job_id}"))[1]["status"] != "failed":
                await asyncio.sleep(0.05)
        status, ready, _ = await client.call("GET", "/readyz")
        assert status == 503 and ready["error"]["details"]["job_store"]["writable"] is False, ready
        assert ready["error"]["details"]["providers"]["comfyui"]["jobs"] == 0  # released though unsaved
        assert _rows(database)[job_id] == ("queued", True)  # what the store took last
        disk.full = disk.jobs_full = False
        async with asyncio.timeout(HARNESS_S):  # retried in the background until the store takes it
            while _rows(database)[job_id] != ("failed", False):
                await asyncio.sleep(0.05)
        status, ready, _ = await client.call("GET", "/readyz")
        assert status == 200, ready


def _can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
        capture_output=True, check=False,
    )
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.skipif(not _can_mount_tmpfs(), reason="no mount namespace here (unshare -rm denied)")
async def test_the_real_process_on_a_1_mib_tmpfs(fake: FakeComfyUI, tmp_path: Path) -> None:
    store = tmp_path / "tiny"
    store.mkdir()
    # The gateway runs in its own mount namespace with a 1 MiB tmpfs over its store (job database inside).
    script = 'mount -t tmpfs -o size=1m tmpfs "$MEDIA_STORE_DIR" && exec "$@"'
    command = ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", sys.executable, "-m",
               "media_gateway"]
    env = {"GENERATOR_MODE": "live", "COMFYUI_BASE_URL": fake.url, "MEDIA_STORE_DIR": str(store)}
    config = REPO_ROOT / "config" / "media_gateway.yaml"
    async with Child("media_gateway", config, env, command=command, cwd=REPO_ROOT) as gateway:
        async with aiohttp.ClientSession() as session:
            client = Client(gateway.url, session)
            # 512x512 noise: about 700 KB a PNG, so the second image does not fit any more.
            statuses = []
            for seed in range(4):
                status, body = await _generate(client, {**SMOKE, "width": 512, "height": 512, "seed": seed})
                statuses.append(status)
                if status != 200:
                    assert status == 507 and body["error"]["code"] == "storage_error", body
                    assert body["error"]["details"]["errno"] == "ENOSPC"
            assert statuses[0] == 200 and 507 in statuses, statuses
            status, ready, _ = await client.call("GET", "/readyz")
            assert status == 503 and ready["error"]["details"]["store"]["writable"] is False, ready
            assert ready["error"]["details"]["providers"]["comfyui"]["jobs"] == 0
            # Still answering, and small images still fit where big ones did not.
            status, small = await _generate(client, {**SMOKE, "width": 64, "height": 64})
            assert status == 200, small
