"""The mock provider: real PNGs of the requested size, drawn locally and deterministic per request.

The same parameters always give the same bytes (so the same image id): the colours come from a hash of
the workflow, prompt, seed and image index, and the prompt's first words are drawn on the image.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
from typing import ClassVar, Literal

from PIL import Image, ImageDraw, ImageFont

from .base import MediaProvider, ProgressCallback, ProviderSettings, RenderCall, RenderedImage

__all__ = ["MockImageProvider"]


class MockSettings(ProviderSettings, frozen=True):
    """Mock options."""

    # Draw the prompt's first words on the image, so a person can tell mock images apart.
    label: bool = True


def _wrap(label: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, room: float) -> str:
    """`label` broken into lines no wider than `room` pixels (a single long word keeps its own line)."""
    lines: list[str] = []
    for word in label.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= room:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def _draw(width: int, height: int, key: bytes, label: str) -> bytes:
    digest = hashlib.sha256(key).digest()
    top, bottom = tuple(digest[0:3]), tuple(digest[3:6])
    # A 1-pixel-wide vertical gradient stretched to size: cheap for any size, and clearly not blank.
    column = Image.new("RGB", (1, 256))
    column.putdata([tuple(t + (b - t) * y // 255 for t, b in zip(top, bottom, strict=True)) for y in range(256)])
    img = column.resize((width, height), Image.Resampling.BILINEAR)
    if label:
        ink, halo = ((255, 255, 255), (0, 0, 0)) if sum(top) < 384 else ((0, 0, 0), (255, 255, 255))
        margin = max(4, width // 32)
        # Pillow's scalable default font (the fixed bitmap one drops the spaces), sized to the image.
        font = ImageFont.load_default(size=max(10, min(width, height) // 16))
        text = _wrap(label, font, width - 2 * margin)
        ImageDraw.Draw(img).multiline_text(
            (margin, max(4, height // 32)), text, fill=ink, font=font, stroke_width=1, stroke_fill=halo
        )
    out = io.BytesIO()
    img.save(out, format="PNG", compress_level=1)
    return out.getvalue()


class MockImageProvider(MediaProvider):
    """Renders without any upstream; reports the same queued → running → done progress as live."""

    Settings = MockSettings
    kind: ClassVar[Literal["live", "mock"]] = "mock"

    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        assert isinstance(self.settings, MockSettings)
        params = call.params
        width, height, count = int(params["width"]), int(params["height"]), int(params.get("count", 1))
        prompt = str(params.get("prompt", ""))
        label = " ".join(prompt.split()[:4])[:60] if self.settings.label else ""
        progress("running", 0.0)
        images: list[RenderedImage] = []
        for index in range(count):
            key = f"{call.workflow}\x00{prompt}\x00{params.get('seed')}\x00{index}".encode()
            data = await asyncio.to_thread(_draw, width, height, key, label)
            images.append(RenderedImage(data=data, mime_type="image/png"))
            progress("running", (index + 1) / count)
        return images
