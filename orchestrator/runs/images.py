"""Run images kept with the run, so a page outlives the Media Gateway's copy: content-addressed bytes behind
a small interface (a local folder by default, or an S3-compatible bucket through `service_common.objects`).

An image is kept under the sha256 of its bytes (64 lowercase hex characters, checked before any path is
built), so the same picture in two runs is stored once, and a key can never name a file outside the store.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import msgspec

from orchestrator.clients import MediaGatewayClient
from service_common.files import write_atomically
from service_common.objects import ObjectStore, S3Location, S3Settings
from shared_contracts.errors import StorageError
from shared_contracts.flows import RunImage
from shared_contracts.media import ImageInfo

__all__ = [
    "FileRunImageStore", "ImageKeeper", "RunImageStore", "S3RunImageStore", "is_digest", "run_image", "run_image_url",
]

_DIGEST = re.compile(r"[0-9a-f]{64}")


def is_digest(value: str) -> bool:
    """True only for a sha256 hex digest, the only key the store accepts."""
    return _DIGEST.fullmatch(value) is not None


def run_image_url(run_id: str, image_id: str) -> str:
    """Where the orchestrator serves a run's kept image: a path, valid on whatever host serves it."""
    return f"/runs/{quote(run_id, safe='')}/images/{quote(image_id, safe='')}"


def run_image(image: ImageInfo, *, url: str | None = None) -> RunImage:
    """`image` as a run image: `source_url` is the Media Gateway's URL; `url` the kept copy's, if any."""
    fields = msgspec.structs.asdict(image)
    fields["url"] = url or image.url
    return RunImage(**fields, source_url=image.url)


class RunImageStore(ABC):
    """Where kept run images live, keyed by the sha256 of their bytes: a folder, or an S3-compatible bucket."""

    async def start(self) -> None:
        """Open resources (a bucket's HTTP session); called once in the lifespan."""

    async def close(self) -> None:
        """Release them on shutdown."""

    @abstractmethod
    async def put(self, data: bytes, *, sha256: str) -> None:
        """Keep `data` (idempotent). A digest that does not match the bytes is a ValueError; a write that
        fails is StorageError (507)."""

    @abstractmethod
    async def get(self, sha256: str) -> bytes | None:
        """The bytes, or None when nothing is kept under `sha256` (or it is not a digest)."""


class FileRunImageStore(RunImageStore):
    """`<root>/<sha256[:2]>/<sha256>`, written to a temp file and renamed into place."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    async def put(self, data: bytes, *, sha256: str) -> None:
        if not is_digest(sha256) or hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("the image bytes do not match their sha256")
        try:
            await asyncio.to_thread(self._write, self._path(sha256), data)
        except OSError as exc:
            raise StorageError(
                f"could not keep the run image: {exc.strerror or type(exc).__name__}",
                details={"store": str(self.root)},
            ) from exc

    async def get(self, sha256: str) -> bytes | None:
        if not is_digest(sha256):
            return None
        try:
            return await asyncio.to_thread(self._path(sha256).read_bytes)
        except FileNotFoundError:
            return None

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        # The name is the content's hash: a file already there holds these very bytes.
        if not path.exists():
            write_atomically(path, data)


class S3RunImageStore(RunImageStore):
    """`<prefix>/<sha256[:2]>/<sha256>` in a bucket every replica shares (`runs.images_url: s3://bucket/prefix`)."""

    def __init__(self, location: S3Location, settings: S3Settings) -> None:
        self.objects = ObjectStore(location, settings, name="run-images")

    async def start(self) -> None:
        await self.objects.start()

    async def close(self) -> None:
        await self.objects.close()

    async def put(self, data: bytes, *, sha256: str) -> None:
        if not is_digest(sha256) or hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError("the image bytes do not match their sha256")
        await self.objects.put(f"{sha256[:2]}/{sha256}", data, content_type="application/octet-stream")

    async def get(self, sha256: str) -> bytes | None:
        if not is_digest(sha256):
            return None
        found = await self.objects.get(f"{sha256[:2]}/{sha256}")
        return found.body if found is not None else None


class ImageKeeper:
    """Copies a finished job's images from the Media Gateway into the run image store."""

    def __init__(self, media: MediaGatewayClient, store: RunImageStore) -> None:
        self.media = media
        self.store = store

    async def keep(
        self, run_id: str, images: Sequence[ImageInfo], *, request_id: str | None = None, deadline: float | None = None
    ) -> list[RunImage]:
        """Each image fetched (checked against its sha256), kept, and pointed at the orchestrator's copy."""
        kept: list[RunImage] = []
        for image in images:
            data = await self.media.image_bytes(image, request_id=request_id, deadline=deadline)
            await self.store.put(data, sha256=image.sha256)
            kept.append(run_image(image, url=run_image_url(run_id, image.id)))
        return kept
