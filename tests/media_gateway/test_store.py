"""The local image store and the in-memory job registry."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from media_gateway.jobs import MemoryJobRegistry
from media_gateway.store import LocalImageStore
from shared_contracts.errors import UpstreamError
from shared_contracts.media import Job, JobStatus


def _png(width: int = 16, height: int = 8) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (1, 2, 3)).save(out, "PNG")
    return out.getvalue()


async def test_put_is_content_addressed_atomic_and_idempotent(tmp_path: Path) -> None:
    store = LocalImageStore(tmp_path)
    data = _png()
    first = await store.put(data)
    again = await store.put(data)
    assert first == again
    assert first.id == first.sha256 == hashlib.sha256(data).hexdigest()
    assert (first.mime_type, first.width, first.height, first.bytes) == ("image/png", 16, 8, len(data))
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert [p.name for p in files] == [f"{first.id}.png"]  # no temp file left behind
    found = await store.get(first.id)
    assert found is not None and found[1] == data


@pytest.mark.parametrize("bad", ["../etc/passwd", "/etc/passwd", "A" * 64, "a" * 63, "a" * 65, "", "..", "%2e%2e"])
async def test_malformed_ids_never_touch_the_disk(tmp_path: Path, bad: str) -> None:
    assert await LocalImageStore(tmp_path).get(bad) is None


async def test_non_image_bytes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UpstreamError):
        await LocalImageStore(tmp_path).put(b"<html>not an image</html>")


def _job(job_id: str, status: JobStatus) -> Job:
    now = datetime.now(UTC)
    return Job(id=job_id, status=status, mode="mock", provider="mock", workflow="w", progress=0.0, images=[],
               seed=1, error=None, created_at=now, started_at=None, finished_at=None, latency_ms=None)


async def test_registry_retention_drops_old_finished_jobs_only() -> None:
    clock = [0.0]
    registry = MemoryJobRegistry(max_jobs=2, retention_s=10, clock=lambda: clock[0])
    await registry.save(_job("run", "running"))
    await registry.save(_job("a", "succeeded"))
    await registry.save(_job("b", "failed"))
    assert await registry.get("a") is None  # over the cap: the oldest finished one goes
    assert await registry.get("run") is not None and await registry.get("b") is not None
    clock[0] = 11
    assert await registry.get("b") is None  # expired
    assert await registry.get("run") is not None  # running jobs never expire
