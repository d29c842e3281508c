"""The image store: content-addressed bytes behind a small interface, with a local-directory default.

An image's id is the sha256 of its bytes (64 lowercase hex characters). Ids are checked against that
exact pattern before any path is built, so no id can name a file outside the store.
"""

from __future__ import annotations

import abc
import asyncio
import hashlib
import io
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from service_common.files import write_atomically
from shared_contracts.errors import UpstreamError

__all__ = ["ImageStore", "LocalImageStore", "StoredImage", "is_image_id", "probe_image"]

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


class ImageStore(abc.ABC):
    """Where image bytes live; a shared backend (object storage) implements the same three calls."""

    @abc.abstractmethod
    async def put(self, data: bytes) -> StoredImage:
        """Store `data` (idempotent: same bytes, same id) and describe it."""

    @abc.abstractmethod
    async def get(self, image_id: str) -> tuple[StoredImage, bytes] | None:
        """The image and its bytes, or None when the id is unknown or malformed."""


class LocalImageStore(ImageStore):
    """Files under `root/<id[:2]>/<id>.<ext>`, written to a temp file and renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def put(self, data: bytes) -> StoredImage:
        mime, width, height = probe_image(data)
        digest = hashlib.sha256(data).hexdigest()
        path = self._path(digest, _EXTENSIONS[mime])
        await asyncio.to_thread(self._write, path, data)
        return StoredImage(id=digest, mime_type=mime, width=width, height=height, bytes=len(data), sha256=digest)

    async def get(self, image_id: str) -> tuple[StoredImage, bytes] | None:
        if not is_image_id(image_id):
            return None
        return await asyncio.to_thread(self._read, image_id)

    def _path(self, digest: str, ext: str) -> Path:
        return self.root / digest[:2] / f"{digest}.{ext}"

    def _write(self, path: Path, data: bytes) -> None:
        # The name is the content's hash: a file already there holds these very bytes.
        if not path.exists():
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
