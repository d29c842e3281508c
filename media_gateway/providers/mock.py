"""The mock provider: real PNGs of the requested size, drawn locally and deterministic per request.

Each image is a small product shot stand-in a person can tell apart: the prompt's subject (a product
name in quotes, or its first phrase) drawn as the title, the gist of the rest of the prompt under it, and a
`MOCK · seed` footer, on a composition that changes with the seed (where the product stand-in stands,
the light's direction, the shapes around it) in colours that stay with the product. The same parameters
always give the same bytes (so the same image id).

Korean and other CJK text needs a font that has the glyphs: the first existing file of `fonts` (Debian's
fonts-nanum by default, which deploy/Dockerfile and .ci/system_deps.sh install). Without one, Hangul is
drawn romanised in Pillow's own font, still legible, and the start-up log says which font is in use.
"""

from __future__ import annotations

import asyncio
import colorsys
import hashlib
import io
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import structlog
from PIL import Image, ImageDraw, ImageFont

from .base import MediaProvider, ProgressCallback, ProviderSettings, RenderCall, RenderedImage

__all__ = ["Layout", "MockImageProvider", "MockSettings", "describe", "layout", "romanize"]

_log = structlog.get_logger(component="media.mock")

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_DEFAULT_FONTS = (
    "/usr/share/fonts/truetype/nanum/NanumGothicBold.ttf",
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/unfonts-core/UnDotum.ttf",
)
# Leading words of a prompt that say what kind of picture it is, not what is in it.
_PREAMBLE = re.compile(
    r"^(?:an?\s+)?(?:(?:studio|professional|e-?commerce|high[- ]quality)\s+)*"
    r"(?:product\s+)?(?:photo(?:graph)?|image|picture|shot|render(?:ing)?|illustration)\s+of\s+",
    re.IGNORECASE,
)
# Phrases about style and camera rather than the subject: left out of the gist.
_STYLE = re.compile(
    r"\b(?:focus|details?|lighting|light|daylight|composition|photography|resolution|4k|8k|hdr|colours?|colors?|"
    r"frame|bokeh|field|realistic|quality|style)$",
    re.IGNORECASE,
)
_QUOTED = re.compile(r"[\"“”「『]([^\"“”」』]{1,80})[\"“”」』]")


class MockSettings(ProviderSettings, frozen=True):
    """Mock options."""

    # Draw the subject, the gist and the seed on the image, so a person can tell mock images apart.
    label: bool = True
    # Font files to try in order; the first that exists draws every label (it must have Hangul glyphs).
    fonts: tuple[str, ...] = _DEFAULT_FONTS


def describe(prompt: str) -> tuple[str, list[str]]:
    """(the subject, up to three phrases of gist) of an image prompt.

    >>> describe('Product photograph of "Aurora Lamp", a desk lamp, on oak, soft light, sharp focus')
    ('Aurora Lamp', ['a desk lamp', 'on oak'])
    """
    text = " ".join(prompt.split())
    quoted = _QUOTED.search(text)
    if quoted:
        title = quoted.group(1).strip()
        rest = (text[: quoted.start()] + text[quoted.end() :]).strip()
        phrases = [p.strip() for p in re.split(r"[,;]", rest)]
        phrases = [p for p in phrases if p and not _PREAMBLE.match(p + " of ") and not _PREAMBLE.match(p)]
    else:
        phrases = [p.strip() for p in re.split(r"[,;]", _PREAMBLE.sub("", text)) if p.strip()]
        title = phrases.pop(0) if phrases else ""
    gist = [p for p in phrases if not _STYLE.search(p)][:3]
    return title[:80], [g[:60] for g in gist]


_INITIALS = ("g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h")
_VOWELS = ("a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we", "wi",
           "yu", "eu", "ui", "i")
_FINALS = ("", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p", "t", "t",
           "ng", "t", "t", "k", "t", "p", "t")


def romanize(text: str) -> str:
    """Hangul in Latin letters (Revised Romanisation, syllable by syllable), for a font without Hangul."""
    out: list[str] = []
    for char in text:
        code = ord(char) - 0xAC00
        if 0 <= code < 11172:
            out.append(_INITIALS[code // 588] + _VOWELS[(code % 588) // 28] + _FINALS[code % 28])
        else:
            out.append(char)
    words = "".join(out).split(" ")
    return " ".join(w[:1].upper() + w[1:] if w[:1].isalpha() else w for w in words)


@dataclass(frozen=True, slots=True)
class Layout:
    """Where things go on one image, all as fractions of its size, chosen by the seed."""

    stand_x: float  # centre of the product stand-in
    stand_y: float
    stand_w: float
    stand_h: float
    text_left: bool  # the text block beside the stand-in: on the left (else the right)
    light: int  # direction the background brightens towards: 0 down, 1 right, 2 down-right, 3 down-left
    dots: tuple[tuple[float, float, float], ...]  # decorative circles: x, y, radius
    hue_shift: float


def layout(seed: bytes) -> Layout:
    """The composition for `seed` (a hash of the seed and the image's index): varies with every seed."""
    rng = random.Random(seed)
    text_left = rng.random() < 0.5
    return Layout(
        stand_x=rng.uniform(0.66, 0.76) if text_left else rng.uniform(0.24, 0.34),
        stand_y=rng.uniform(0.5, 0.6),
        stand_w=rng.uniform(0.18, 0.26),
        stand_h=rng.uniform(0.34, 0.5),
        text_left=text_left,
        light=rng.randrange(4),
        dots=tuple((rng.random(), rng.random(), rng.uniform(0.04, 0.16)) for _ in range(rng.randint(2, 4))),
        hue_shift=rng.uniform(-0.06, 0.06),
    )


def _palette(product: str, shift: float) -> tuple[tuple[int, int, int], ...]:
    """Light and dark background, the stand-in's colour and an accent: the hue follows the product's name."""
    hue = (int.from_bytes(hashlib.sha256(product.encode()).digest()[:2], "big") / 65536 + shift) % 1.0

    def rgb(h: float, lightness: float, saturation: float) -> tuple[int, int, int]:
        r, g, b = colorsys.hls_to_rgb(h % 1.0, lightness, saturation)
        return round(r * 255), round(g * 255), round(b * 255)

    return rgb(hue, 0.92, 0.35), rgb(hue, 0.72, 0.35), rgb(hue, 0.38, 0.45), rgb(hue + 0.5, 0.55, 0.55)


RGB = tuple[int, int, int]


def _background(width: int, height: int, light: int, top: RGB, bottom: RGB) -> Image.Image:
    # A 1-pixel strip stretched to size: cheap for any size; the light comes from the side the seed picked.
    steps = [tuple(round(a + (b - a) * t / 63) for a, b in zip(top, bottom, strict=True)) for t in range(64)]
    if light in (2, 3):
        steps.reverse()
    strip = Image.new("RGB", (1, 64) if light in (0, 2) else (64, 1))
    strip.putdata(steps)
    return strip.resize((width, height), Image.Resampling.BILINEAR)


def _mix(colour: tuple[int, int, int], other: tuple[int, int, int], share: float) -> tuple[int, int, int]:
    return tuple(round(a + (b - a) * share) for a, b in zip(colour, other, strict=True))  # type: ignore[return-value]


def _wrap(text: str, font: Font, room: float) -> list[str]:
    """`text` in lines no wider than `room` pixels; a word wider than the room is broken between characters."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= room:
            lines[-1] = f"{lines[-1]} {word}"
            continue
        lines.append("")
        for char in word:
            if lines[-1] and font.getlength(lines[-1] + char) > room:
                lines.append("")
            lines[-1] += char
    return lines


_SHAPES = (
    ("headphones", ("headphone", "earphone", "headset", "헤드폰", "헤드셋")),
    ("bag", ("backpack", "bag", "tote", "가방", "백팩")),
    ("jar", ("jar", "cream", "pot", "box", "balm", "크림", "밤", "상자")),
)


def _shape_of(text: str) -> str:
    """Which silhouette stands in for the product: a few kinds read from its name and the prompt's gist."""
    lowered = text.lower()
    return next((shape for shape, words in _SHAPES if any(w in lowered for w in words)), "bottle")


def _stand_in(
    shapes: ImageDraw.ImageDraw, shape: str, box: tuple[float, float, float, float],
    body: tuple[int, int, int], accent: tuple[int, int, int], shadow: tuple[int, int, int],
) -> None:
    """A flat silhouette of the product with its shadow; `box` is its centre and half-size."""
    cx, cy, w, h = box
    if shape == "jar":
        h *= 0.55
        cy += h * 0.6
        w *= 1.35
    shapes.ellipse((cx - w * 1.3, cy + h - h * 0.12, cx + w * 1.3, cy + h + h * 0.16), fill=shadow)
    corner = max(1, round(min(w, h) * 0.35))
    shine = _mix(body, (255, 255, 255), 0.3)
    if shape == "headphones":
        band = max(2, round(w * 0.28))
        shapes.arc((cx - w * 1.2, cy - h, cx + w * 1.2, cy + h * 0.9), 180, 360, fill=accent, width=band)
        for side in (-1, 1):
            x = cx + side * w * 1.05
            shapes.rounded_rectangle((x - w * 0.42, cy - h * 0.05, x + w * 0.42, cy + h * 0.85),
                                     radius=corner, fill=body)
        return
    shapes.rounded_rectangle((cx - w, cy - h, cx + w, cy + h), radius=corner, fill=body)
    if shape == "bag":
        strap = max(2, round(w * 0.16))
        shapes.arc((cx - w * 0.6, cy - h * 1.35, cx + w * 0.6, cy - h * 0.6), 180, 360, fill=accent,
                   width=strap)
        shapes.rounded_rectangle((cx - w * 0.7, cy + h * 0.1, cx + w * 0.7, cy + h * 0.7),
                                 radius=max(1, corner // 2), fill=accent)
        return
    lid = (cx - w * 0.8, cy - h * 1.12, cx + w * 0.8, cy - h * 0.92) if shape == "bottle" else \
        (cx - w * 1.04, cy - h * 1.3, cx + w * 1.04, cy - h * 0.8)
    shapes.rounded_rectangle(lid, radius=max(1, corner // 2), fill=accent)
    shapes.rectangle((cx - w * 0.55, cy - h * 0.5, cx - w * 0.35, cy + h * 0.6), fill=shine)


class _Painter:
    """Draws one image; fonts are loaded once per provider and size (`fonts` is the provider's cache)."""

    def __init__(self, font_path: str | None, fonts: dict[int, Font]) -> None:
        self.font_path = font_path
        self.fonts = fonts

    def font(self, size: int) -> Font:
        found = self.fonts.get(size)
        if found is None:
            found = (ImageFont.truetype(self.font_path, size) if self.font_path
                     else ImageFont.load_default(size=size))
            self.fonts[size] = found
        return found

    def text(self, value: str) -> str:
        return value if self.font_path else romanize(value)

    def draw(
        self, width: int, height: int, key: bytes, title: str, gist: list[str], footer: str, *, label: bool
    ) -> bytes:
        """The PNG: colours and silhouette from the subject, layout from `key`, the text only with `label`."""
        plan = layout(hashlib.sha256(key).digest())
        light, dark, body, accent = _palette(title, plan.hue_shift)
        image = _background(width, height, plan.light, light, dark)
        shapes = ImageDraw.Draw(image)
        side = min(width, height)
        for x, y, r in plan.dots:
            cx, cy, radius = x * width, y * height, r * side
            shapes.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=_mix(light, accent, 0.25))
        cx, cy = plan.stand_x * width, plan.stand_y * height
        w, h = plan.stand_w * width / 2, plan.stand_h * height / 2
        _stand_in(shapes, _shape_of(" ".join([title, *gist])), (cx, cy, w, h), body, accent, _mix(dark, (0, 0, 0), 0.2))
        if label:
            self.label(image, plan, title, gist, footer)
        out = io.BytesIO()
        image.save(out, format="PNG", compress_level=1)
        return out.getvalue()

    def label(self, image: Image.Image, plan: Layout, title: str, gist: list[str], footer: str) -> None:
        width, height = image.size
        side = min(width, height)
        margin = max(4, width // 24)
        stand_edge = (plan.stand_x - plan.stand_w / 2) * width if plan.text_left else \
            (plan.stand_x + plan.stand_w / 2) * width
        left = margin if plan.text_left else stand_edge + margin
        right = stand_edge - margin if plan.text_left else width - margin
        if right - left < width * 0.3:  # a narrow image: the text takes the whole width, over the shapes
            left, right = margin, width - margin
        draw = ImageDraw.Draw(image)
        y = float(max(4, height // 10))
        for text, size, fill in ((title, max(10, side // 13), (20, 20, 24)), *(
                (g, max(8, side // 26), (45, 45, 52)) for g in gist)):
            if not text:
                continue
            font = self.font(size)
            for line in _wrap(self.text(text), font, right - left):
                draw.text((left, y), line, font=font, fill=fill, stroke_width=max(1, size // 14),
                          stroke_fill=(255, 255, 255))
                y += size * 1.25
            y += size * 0.4
        if footer and side >= 128:  # on a thumbnail the footer would only cover the subject
            size = max(8, side // 40)
            draw.text((margin, height - margin - size), footer, font=self.font(size), fill=(30, 30, 30),
                      stroke_width=1, stroke_fill=(255, 255, 255))


class MockImageProvider(MediaProvider):
    """Renders without any upstream; reports the same queued → running → done progress as live."""

    Settings = MockSettings
    kind: ClassVar[Literal["live", "mock"]] = "mock"

    def __init__(self, name: str, settings: ProviderSettings) -> None:
        super().__init__(name, settings)
        assert isinstance(settings, MockSettings)
        self.font_path: str | None = next((f for f in settings.fonts if Path(f).is_file()), None)
        self._fonts: dict[int, Font] = {}

    async def start(self) -> None:
        # Said once when serving starts (not at configuration, so `check-config` prints only its verdict).
        _log.info("mock_image_font", font=self.font_path or "pillow default (Hangul romanised)")

    async def render(self, call: RenderCall, *, progress: ProgressCallback) -> list[RenderedImage]:
        assert isinstance(self.settings, MockSettings)
        params = call.params
        width, height, count = int(params["width"]), int(params["height"]), int(params.get("count", 1))
        prompt = str(params.get("prompt", ""))
        title, gist = describe(prompt)
        painter = _Painter(self.font_path, self._fonts)
        progress("running", 0.0)
        images: list[RenderedImage] = []
        for index in range(count):
            key = f"{call.workflow}\x00{prompt}\x00{params.get('seed')}\x00{index}".encode()
            footer = f"MOCK · seed {params.get('seed')}" + (f" · {index + 1}/{count}" if count > 1 else "")
            data = await asyncio.to_thread(painter.draw, width, height, key, title, gist, footer,
                                           label=self.settings.label)
            images.append(RenderedImage(data=data, mime_type="image/png"))
            progress("running", (index + 1) / count)
        return images
