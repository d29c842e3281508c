"""What the cloud image providers share beyond the key: their settings, prompt text and image decoding."""

from __future__ import annotations

import asyncio
import base64
import binascii
from collections.abc import Mapping
from typing import Annotated

import msgspec

from service_common.providers import KeyedSettings
from shared_contracts.errors import UpstreamError

from .base import RenderedImage

__all__ = ["ImageApiSettings", "call_deadline", "decode_image", "prompt_text"]


class ImageApiSettings(KeyedSettings, kw_only=True, frozen=True):
    """YAML section of a keyed cloud image provider; a workflow's `options.model` overrides `model`."""

    model: str
    # Upper bound of one upstream call; the job's own deadline (timeouts.live) cancels earlier.
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0)] = 120.0


def call_deadline(settings: ImageApiSettings) -> float:
    """The absolute deadline of one upstream call made now."""
    return asyncio.get_running_loop().time() + settings.request_timeout_s


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
