"""What the cloud image providers share: key-bearing settings, the pooled client, a per-call deadline."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from typing import Annotated

import msgspec

from service_common.upstream import KeyedSettings, UpstreamOwner
from shared_contracts.errors import UpstreamError

from .base import MediaProvider, ProviderSettings, RenderedImage

__all__ = ["CloudImageProvider", "CloudImageSettings", "decode_image", "prompt_text"]


class CloudImageSettings(ProviderSettings, KeyedSettings, kw_only=True, frozen=True):
    """YAML section of a keyed cloud image provider; a workflow's `options.model` overrides `model`."""

    model: str
    # Upper bound of one upstream call; the job's own deadline (timeouts.live) cancels earlier.
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 120.0


class CloudImageProvider(UpstreamOwner, MediaProvider):
    """An image API reached over HTTPS with a key: refuses to be built without one, owns one UpstreamClient."""

    settings: CloudImageSettings

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        if not isinstance(settings, CloudImageSettings):
            raise TypeError(f"{type(self).__name__} needs {type(self).Settings.__name__}, got {type(settings).__name__}")
        super().__init__(name, settings)
        self.settings = settings
        self.attach_client(name, settings)

    def call_deadline(self) -> float:
        """The absolute deadline of one upstream call made now."""
        return asyncio.get_running_loop().time() + self.settings.request_timeout_s


def prompt_text(params: Mapping[str, object]) -> str:
    """The prompt for APIs without a negative prompt: the negative one becomes an `Avoid:` sentence."""
    prompt = str(params.get("prompt", "")).strip()
    negative = str(params.get("negative_prompt", "") or "").strip()
    return f"{prompt}\n\nAvoid: {negative}" if negative else prompt


# Magic numbers of the formats the image store accepts.
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))


def _sniff(data: bytes) -> str | None:
    for magic, mime in _SIGNATURES:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def decode_image(name: str, b64: str) -> RenderedImage:
    """Base64 image data (no `data:` prefix) → an image whose MIME type is what the bytes really are."""
    try:
        data = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise UpstreamError(f"{name}: image data is not base64", details={"provider": name}) from exc
    mime = _sniff(data)
    if mime is None:
        raise UpstreamError(f"{name}: image data is not PNG, JPEG or WebP", details={"provider": name})
    return RenderedImage(data=data, mime_type=mime)
