"""The image store: content-addressed bytes behind a small interface, with a local-directory default.

An image's id is the sha256 of its bytes (64 lowercase hex characters). Ids are checked against that
exact pattern before any path is built, so no id can name a file outside the store.

A write the disk refuses (full, read-only, gone) is a `StorageError` (507 `storage_error`) for the job
that needed it, and the store reports itself not writable (`/readyz`) until a write would succeed again.
"""

from __future__ import annotations

import abc
import asyncio
import errno
import hashlib
import io
import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

import msgspec
from PIL import Image, UnidentifiedImageError

from service_common.files import write_atomically
from shared_contracts.errors import StorageError, UpstreamError

__all__ = ["ImageStore", "LocalImageStore", "StoreHealth", "StoredImage", "is_image_id", "probe_image"]

_PROBE = b"media-gateway write probe\n"

_ID = re.compile(r"[0-9a-f]{64}")
_EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
_MIME_BY_EXT = {ext: mime for mime, ext in _EXTENSIONS.items()}
_PIL_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


@dataclass(frozen=True, slots=True)
class StoredImage:
    """Metadata of one stored image."""

    id: str
    mime_type: str
    width: int
    height: int
    bytes: int
    sha256: str


def is_image_id(value: str) -> bool:
    """True only for a well-formed id (a sha256 hex digest)."""
    return _ID.fullmatch(value) is not None


def probe_image(data: bytes) -> tuple[str, int, int]:
    """(mime type, width, height) of encoded image bytes; anything else is an upstream error."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            mime = _PIL_MIME.get(img.format or "")
            size = img.size
    except (UnidentifiedImageError, OSError) as exc:
        raise UpstreamError("the image backend returned bytes that are not an image") from exc
    if mime is None:
        raise UpstreamError(f"the image backend returned an unsupported format: {img.format}")
    return mime, size[0], size[1]


class StoreHealth(msgspec.Struct, kw_only=True):
    """Whether the store accepts writes now; `error` says why not (e.g. `ENOSPC`)."""

    writable: bool
    error: str | None = None
    # Bytes free where the store writes (local disks), and the size of the write that failed last.
    free_bytes: int | None = None
    needed_bytes: int | None = None


def _errno_name(exc: OSError) -> str:
    return errno.errorcode.get(exc.errno or 0, type(exc).__name__)


class ImageStore(abc.ABC):
    """Where image bytes live: a local folder (`LocalImageStore`) or a bucket (`s3_store.S3ImageStore`)."""

    async def health(self) -> StoreHealth:
        """Whether a write would succeed now; `/readyz` reports it."""
        return StoreHealth(writable=True)

    @abc.abstractmethod
    async def put(self, data: bytes) -> StoredImage:
        """Store `data` (idempotent: same bytes, same id) and describe it."""

    @abc.abstractmethod
    async def get(self, image_id: str) -> tuple[StoredImage, bytes] | None:
        """The image and its bytes, or None when the id is unknown or malformed."""

    async def start(self) -> None:
        """Open resources (an object store's HTTP session). Called once in the app's lifespan."""

    async def close(self) -> None:
        """Release resources. Called once on shutdown."""

    async def exists(self, image_id: str) -> bool:
        """Whether the image is kept (answers a conditional GET without reading the bytes when it can)."""
        return await self.get(image_id) is not None

    def redirect_url(self, image_id: str) -> str | None:
        """Where a client may fetch the bytes directly (a presigned URL); None: the gateway serves them."""
        return None


class LocalImageStore(ImageStore):
    """Files under `root/<id[:2]>/<id>.<ext>`, written to a temp file and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # The last write the disk refused: (errno name, its size); None once a write succeeded.
        self._refused: tuple[str, int] | None = None

    async def put(self, data: bytes) -> StoredImage:
        mime, width, height = probe_image(data)
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest, _EXTENSIONS[mime])
        try:
            await asyncio.to_thread(self._write, path, data)
        except OSError as exc:
            name = _errno_name(exc)
            self._refused = (name, len(data))
            # The message names the reason, never the server's folder.
            raise StorageError(
                f"the image store could not keep the image: {exc.strerror or name}",
                details={"errno": name, "bytes": len(data)},
            ) from exc
        self._refused = None
        return StoredImage(id=digest, mime_type=mime, width=width, height=height, bytes=len(data), sha256=digest)

    async def health(self) -> StoreHealth:
        """A small probe write, and (after a refused write) room for a write of that size."""
        return await asyncio.to_thread(self._health)

    def _health(self) -> StoreHealth:
        try:
            # A name of its own: two probes at once must not remove each other's file.
            probe = self.root / f".probe-{uuid.uuid4().hex}"
            self._write_file(probe, _PROBE)
            probe.unlink()
            stats = os.statvfs(self.root)
        except OSError as exc:
            return StoreHealth(writable=False, error=_errno_name(exc))
        free = stats.f_bavail * stats.f_frsize
        if self._refused is not None and free < self._refused[1]:
            name, needed = self._refused
            return StoreHealth(writable=False, error=name, free_bytes=free, needed_bytes=needed)
        return StoreHealth(writable=True, free_bytes=free)

    async def get(self, image_id: str) -> tuple[StoredImage, bytes] | None:
        if not is_image_id(image_id):
            return None
        return await asyncio.to_thread(self._read, image_id)

    def _path(self, digest: str, ext: str) -> Path:
        return self.root / digest[:2] / f"{digest}.{ext}"

    def _write(self, path: Path, data: bytes) -> None:
        # The name is the content's hash: a file already there holds these very bytes.
        if not path.exists():
            self._write_file(path, data)

    @staticmethod
    def _write_file(path: Path, data: bytes) -> None:
        """Every byte the store writes goes through here (images and the health probe)."""
        write_atomically(path, data)

    def _read(self, image_id: str) -> tuple[StoredImage, bytes] | None:
        for ext, mime in _MIME_BY_EXT.items():
            path = self._path(image_id, ext)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                continue
            _, width, height = probe_image(data)
            meta = StoredImage(
                id=image_id, mime_type=mime, width=width, height=height, bytes=len(data), sha256=image_id
            )
            return meta, data
        return None
