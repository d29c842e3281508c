"""The mock provider: real PNGs of the requested size, deterministic, with a legible prompt label."""

from __future__ import annotations

import asyncio
import io
from typing import Any

from PIL import Image, ImageChops

from media_gateway.providers.base import RenderCall
from media_gateway.providers.mock import MockImageProvider, MockSettings


def _render(prompt: str, *, width: int = 512, height: int = 384, label: bool = True, seed: int = 1) -> Image.Image:
    return _images(prompt, width=width, height=height, label=label, seed=seed)[0]


def _images(prompt: str, *, width: int, height: int, label: bool, seed: int, count: int = 1) -> list[Image.Image]:
    provider = MockImageProvider("mock", MockSettings(label=label))
    params = {"prompt": prompt, "width": width, "height": height, "seed": seed, "count": count}
    call = RenderCall(job_id="j", workflow="wf", params=params)
    seen: list[Any] = []
    rendered = asyncio.run(provider.render(call, progress=lambda status, fraction: seen.append((status, fraction))))
    assert seen[-1] == ("running", 1.0)
    assert all(image.mime_type == "image/png" for image in rendered)
    return [Image.open(io.BytesIO(image.data)) for image in rendered]


def _ink_box(prompt: str, **kw: Any) -> tuple[int, int, int, int]:
    """Bounding box of what the label adds to the unlabelled image."""
    box = ImageChops.difference(_render(prompt, **kw).convert("RGB"), _render(prompt, label=False, **kw).convert("RGB"))
    found = box.getbbox()
    assert found is not None, "no label was drawn"
    return found


def test_png_of_requested_size_and_count() -> None:
    images = _images("a mug", width=640, height=96, label=True, seed=3, count=3)
    assert [(img.format, img.size) for img in images] == [("PNG", (640, 96))] * 3
    # Each image of a batch differs (its index is part of the colour key).
    assert len({img.tobytes() for img in images}) == 3


def test_same_request_same_bytes() -> None:
    assert _render("a mug", seed=5).tobytes() == _render("a mug", seed=5).tobytes()
    assert _render("a mug", seed=5).tobytes() != _render("a mug", seed=6).tobytes()


def test_label_keeps_the_spaces_between_words() -> None:
    # The fixed bitmap font dropped spaces ("white wirelessearbudson"); the spaced label must be wider.
    spaced = _ink_box("ww ww ww ww")
    joined = _ink_box("wwwwwwww")
    assert spaced[2] - spaced[0] > joined[2] - joined[0] + 3 * 4


def test_label_scales_with_the_image() -> None:
    small = _ink_box("mug", width=128, height=128)
    large = _ink_box("mug", width=1024, height=1024)
    assert (large[3] - large[1]) >= 4 * (small[3] - small[1]) > 0


def test_long_label_wraps_inside_the_image() -> None:
    _, _, right, bottom = _ink_box("ceramic espresso mug", width=64, height=256)
    assert right < 64 and bottom < 256
    one_line = _ink_box("mug", width=64, height=256)
    assert bottom - one_line[1] > 2 * (one_line[3] - one_line[1])  # three words, three lines
