"""The mock provider: real PNGs of the requested size, deterministic, distinct per product and request, with the
subject (Hangul included) and the gist of the prompt drawn legibly on a composition that changes with the seed."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageFont

from media_gateway.providers.base import RenderCall
from media_gateway.providers.mock import MockImageProvider, MockSettings, describe, layout, romanize

KO_PROMPT = ('Product photograph of "아르띠 진공 스테인리스 텀블러 500ml", a vacuum-insulated stainless steel tumbler, '
             "on a light wooden desk beside a laptop, soft natural light, sharp focus")
NO_FONT = MockSettings(fonts=("/nonexistent/font.ttf",))


def _images(prompt: str, *, width: int = 512, height: int = 384, label: bool = True, seed: int = 1,
            count: int = 1, settings: MockSettings | None = None) -> list[Image.Image]:
    provider = MockImageProvider("mock", settings or MockSettings(label=label))
    params = {"prompt": prompt, "width": width, "height": height, "seed": seed, "count": count}
    call = RenderCall(job_id="j", workflow="wf", params=params)
    seen: list[Any] = []
    rendered = asyncio.run(provider.render(call, progress=lambda status, fraction: seen.append((status, fraction))))
    assert seen[-1] == ("running", 1.0)
    assert all(image.mime_type == "image/png" for image in rendered)
    return [Image.open(io.BytesIO(image.data)) for image in rendered]


def _render(prompt: str, **kw: Any) -> Image.Image:
    return _images(prompt, **kw)[0].convert("RGB")


def _ink_box(prompt: str, **kw: Any) -> tuple[int, int, int, int]:
    """Bounding box of what the subject and gist add to the unlabelled image (the footer band left out)."""
    labelled, plain = _render(prompt, **kw), _render(prompt, label=False, **kw)
    height = labelled.size[1]
    top = (0, 0, labelled.size[0], height - max(12, height // 8))
    found = ImageChops.difference(labelled.crop(top), plain.crop(top)).getbbox()
    assert found is not None, "no label was drawn"
    return found


def _font_or_skip(provider: MockImageProvider) -> str:
    if provider.font_path is None:
        reason = "no CJK font for the mock images (apt-get install fonts-nanum; .ci/system_deps.sh does)"
        if os.environ.get("PDP_REQUIRE_ENGINES", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return provider.font_path


def test_png_of_requested_size_and_count() -> None:
    images = _images("a mug", width=640, height=96, label=True, seed=3, count=3)
    assert [(img.format, img.size) for img in images] == [("PNG", (640, 96))] * 3
    # Each image of a batch differs (its index is part of the key).
    assert len({img.tobytes() for img in images}) == 3


def test_same_request_same_bytes_and_another_seed_another_image() -> None:
    assert _render("a mug", seed=5).tobytes() == _render("a mug", seed=5).tobytes()
    assert _render("a mug", seed=5).tobytes() != _render("a mug", seed=6).tobytes()


def test_the_composition_changes_with_the_seed() -> None:
    plans = [layout(hashlib.sha256(f"wf\x00{KO_PROMPT}\x00{seed}\x000".encode()).digest()) for seed in range(12)]
    assert {p.text_left for p in plans} == {True, False} and len({p.light for p in plans}) >= 3
    assert len({round(p.stand_x, 2) for p in plans}) >= 6
    # The text block follows the layout: beside the product stand-in, on the side the seed chose.
    left = next(seed for seed, p in enumerate(plans) if p.text_left)
    right = next(seed for seed, p in enumerate(plans) if not p.text_left)
    on_left = _ink_box(KO_PROMPT, width=1024, height=1024, seed=left)
    on_right = _ink_box(KO_PROMPT, width=1024, height=1024, seed=right)
    assert on_left[0] < 100 and on_right[0] > 300


def test_each_product_has_its_own_colours() -> None:
    tumbler = _render('Product photograph of "Artti tumbler", a tumbler', label=False, seed=1)
    cream = _render('Product photograph of "Onkyeol cream", a cream jar', label=False, seed=1)
    assert tumbler.getpixel((2, 2)) != cream.getpixel((2, 2))


def test_subject_and_gist_come_from_the_prompt() -> None:
    gist = ["a vacuum-insulated stainless steel tumbler", "on a light wooden desk beside a laptop"]
    assert describe(KO_PROMPT) == ("아르띠 진공 스테인리스 텀블러 500ml", gist)
    assert describe("Studio product photograph of white wireless earbuds, on marble, sharp focus") == (
        "white wireless earbuds", ["on marble"])
    assert describe("a mug") == ("a mug", [])


def test_hangul_is_drawn_with_real_glyphs() -> None:
    provider = MockImageProvider("mock", MockSettings())
    font = ImageFont.truetype(_font_or_skip(provider), 40)

    def glyph(char: str) -> bytes:
        image = Image.new("L", (60, 60))
        ImageDraw.Draw(image).text((5, 5), char, font=font, fill=255)
        return image.tobytes()

    # A font without Hangul draws every syllable as the same box; real glyphs differ.
    assert glyph("가") != glyph("나") and glyph("가") != glyph("\U000f0000")
    first = _render('Product photograph of "가나다 텀블러", a tumbler', width=800, height=800)
    second = _render('Product photograph of "라마바 텀블러", a tumbler', width=800, height=800)
    assert ImageChops.difference(first, second).getbbox() is not None


def test_without_a_cjk_font_hangul_is_romanised_and_still_drawn() -> None:
    assert MockImageProvider("mock", NO_FONT).font_path is None
    assert romanize("아르띠 텀블러 500ml") == "Areutti Teombeulreo 500ml"
    labelled = _render(KO_PROMPT, settings=NO_FONT)
    plain = _render(KO_PROMPT, settings=MockSettings(label=False, fonts=NO_FONT.fonts))
    assert ImageChops.difference(labelled, plain).getbbox() is not None


def test_label_keeps_the_spaces_between_words() -> None:
    # The fixed bitmap font dropped spaces ("white wirelessearbudson"); the spaced label must be wider.
    spaced = _ink_box("ww ww ww ww", width=1024)
    joined = _ink_box("wwwwwwww", width=1024)
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


def test_the_font_setting_is_used_when_it_exists(tmp_path: Path) -> None:
    provider = MockImageProvider("mock", MockSettings(fonts=(str(tmp_path / "missing.ttf"), *MockSettings().fonts)))
    assert provider.font_path is None or Path(provider.font_path).is_file()
