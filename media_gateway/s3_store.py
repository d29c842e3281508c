"""The image store in an S3-compatible bucket (`store.url: s3://bucket/prefix`), shared by every replica.

Images stay content-addressed: the key is `<prefix>/<id[:2]>/<id>`, the id the sha256 of the bytes, and the
MIME type, width and height travel as the object's content type and metadata. The gateway serves them at
the same URLs as from a folder (ETag, 304), or, with `store.presigned_urls`, redirects to a presigned URL
so the bytes go from the bucket straight to the client.
"""

from __future__ import annotations

import hashlib

from service_common.objects import ObjectStore, S3Location, S3Settings
from shared_contracts.errors import StorageError

from .store import ImageStore, StoredImage, StoreHealth, is_image_id, probe_image

__all__ = ["S3ImageStore"]


def _name(image_id: str) -> str:
    return f"{image_id[:2]}/{image_id}"


class S3ImageStore(ImageStore):
    """Images as objects in one bucket; `presign_s` > 0 makes `redirect_url` answer presigned URLs."""

    def __init__(self, location: S3Location, settings: S3Settings, *, presign_s: int = 0) -> None:
        self.objects = ObjectStore(location, settings, name="image-store")
        self._presign_s = presign_s
        # Why the last write was refused; None once one succeeded.
        self._refused: str | None = None

    async def start(self) -> None:
        await self.objects.start()

    async def close(self) -> None:
        await self.objects.close()

    async def health(self) -> StoreHealth:
        """Writable unless the last write was refused (a bucket that does not answer is told by that write)."""
        return StoreHealth(writable=self._refused is None, error=self._refused)

    async def put(self, data: bytes) -> StoredImage:
        mime, width, height = probe_image(data)
        digest = hashlib.sha256(data).hexdigest()
        try:
            # Same bytes, same key: a second put writes the same object again, which is harmless.
            await self.objects.put(_name(digest), data, content_type=mime,
                                   metadata={"width": str(width), "height": str(height)})
        except StorageError as exc:
            self._refused = exc.details.get("code") or exc.message
            raise StorageError(f"the image store could not keep the image: {exc.message}",
                               details={**exc.details, "bytes": len(data)}) from exc
        self._refused = None
        return StoredImage(id=digest, mime_type=mime, width=width, height=height, bytes=len(data), sha256=digest)

    async def get(self, image_id: str) -> tuple[StoredImage, bytes] | None:
        if not is_image_id(image_id):
            return None
        found = await self.objects.get(_name(image_id))
        if found is None or found.body is None:
            return None
        data = found.body
        try:
            width, height = int(found.metadata["width"]), int(found.metadata["height"])
            mime = found.content_type
        except (KeyError, ValueError):
            mime, width, height = probe_image(data)
        meta = StoredImage(id=image_id, mime_type=mime, width=width, height=height, bytes=len(data), sha256=image_id)
        return meta, data

    async def exists(self, image_id: str) -> bool:
        return is_image_id(image_id) and await self.objects.head(_name(image_id)) is not None

    def redirect_url(self, image_id: str) -> str | None:
        if self._presign_s <= 0 or not is_image_id(image_id):
            return None
        return self.objects.presign(_name(image_id), expires_s=self._presign_s)
