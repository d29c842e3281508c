"""What the mock's writers in every language share: the facts, their short forms, and the English image prompt.

A language's writer (write_en.py, write_ko.py) turns the same facts into that language's sentences; the
image prompt is English in every case, since text-to-image models are prompted in English.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .facts import Facts
from .korean import has_hangul

__all__ = ["Writer", "head"]

_CLAUSE = re.compile(r"\s*(?:(?<!\d),|,(?!\d)|;|:)\s*|\s+[–—-]\s+")
_EN_JOINT = re.compile(r"\s+(?:with|for|and|so)\s+")
_EN_RELATIVE = re.compile(r"\s+(?:who|that|which|looking|wanting|with)\s+", re.IGNORECASE)
_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
# Korean product words an English image prompt needs (a text-to-image model reads English).
_GLOSSARY = {
    "진공": "vacuum-insulated", "스테인리스": "stainless steel", "텀블러": "tumbler", "머그": "mug", "컵": "cup",
    "보틀": "bottle", "물병": "water bottle", "세라믹": "ceramic", "실리콘": "silicone", "유리": "glass",
    "크림": "cream jar", "세럼": "serum bottle", "앰플": "ampoule bottle", "토너": "toner bottle", "로션": "lotion",
    "선크림": "sunscreen tube", "마스크팩": "sheet mask", "클렌저": "cleanser", "립": "lipstick", "향수": "perfume",
    "가방": "bag", "백팩": "backpack", "지갑": "wallet", "신발": "shoes", "운동화": "sneakers", "셔츠": "shirt",
    "티셔츠": "t-shirt", "자켓": "jacket", "재킷": "jacket", "니트": "knit sweater", "모자": "cap",
    "헤드폰": "headphones", "이어폰": "earbuds", "스피커": "speaker", "키보드": "keyboard", "마우스": "mouse",
    "충전기": "charger", "램프": "lamp", "조명": "lamp", "의자": "chair", "책상": "desk", "쿠션": "cushion",
    "이불": "duvet", "베개": "pillow", "수건": "towel", "냄비": "pot", "프라이팬": "frying pan",
    "도마": "cutting board",
    "시카": "cica", "수분": "hydrating", "진정": "soothing", "원목": "solid wood", "가죽": "leather", "면": "cotton",
    "세이지 그린": "sage green", "오트밀": "oatmeal", "블랙": "black", "화이트": "white", "네이비": "navy",
}
_SCENES = (
    (("tumbler", "mug", "cup", "bottle", "kitchen", "주방"),
     "on a light wooden desk beside a laptop, morning window light"),
    (("cream", "serum", "skincare", "beauty", "lotion", "뷰티", "스킨케어", "cosmetic"),
     "on a pale stone bathroom shelf, soft diffused daylight, a few drops of water"),
    (("backpack", "bag", "가방"), "on a city street at golden hour, a bicycle blurred in the background"),
    (("headphone", "earbud", "audio", "speaker", "electronics", "가전"),
     "on a tidy home-office desk, soft side light, a notebook in the background"),
    (("shoe", "sneaker", "jacket", "shirt", "apparel", "의류", "fashion"), "on a clean studio floor, soft shadow"),
)


def head(text: str, longest: int = 60) -> str:
    """The first clause of a fact (`이중 진공 단열로 보온 12시간, 보냉 24시간` → `이중 진공 단열로 보온 12시간`)."""
    first = _CLAUSE.split(text.strip(), maxsplit=1)[0].strip()
    if len(first) > longest:
        shorter = _EN_JOINT.split(first, maxsplit=1)[0]
        first = shorter if len(shorter) >= 20 else first
    return first


class Writer:
    """Short forms of the facts that sentences in any language are built from."""

    def __init__(self, facts: Facts) -> None:
        self.f = facts
        self.name = facts.name
        self.brand = facts.brand or facts.name.split()[0]
        self.category = facts.category or ("제품" if facts.language == "ko" else "product")

    def point(self, index: int) -> str:
        """Product fact `index`, wrapping round (general ones when the payload lists none)."""
        points = self.f.features or self.fallback_points()
        return points[index % len(points)]

    def point_head(self, index: int) -> str:
        """The first clause of product fact `index`."""
        return head(self.point(index))

    def fallback_points(self) -> list[str]:
        """What is said about a product whose facts the payload does not list."""
        return [self.name]

    def review_summary(self, verdict: str, counts: dict[str, int]) -> str:
        """A review's one-line summary for `verdict` and the issue counts by severity (each language's own)."""
        raise NotImplementedError

    def audience_first(self) -> str:
        """The audience's first clause (`출퇴근길에 ... 직장인`, `City commuters who bike ...`)."""
        return head(self.f.audience, longest=120) if self.f.audience else ""

    def audience_core(self) -> str:
        """Who the audience is, in a few words (`25~40세 직장인`, `city commuters`)."""
        first = self.audience_first()
        if not first:
            return ""
        if has_hangul(first):
            words = first.split()
            core = words[-1]
            if len(words) > 1 and re.search(r"\d", words[-2]):
                core = f"{words[-2]} {core}"
            return core
        core = _EN_RELATIVE.split(first, maxsplit=1)[0]
        return core[:1].lower() + core[1:] if not core[:2].isupper() else core

    def price_text(self) -> str:
        """The price as a shopper reads it (`32,900원`, `$149.00`), or '' when the payload has none."""
        price, currency = self.f.price, self.f.currency.upper()
        if price is None:
            return ""
        if currency == "KRW":
            return f"{price:,.0f}원"
        if currency in _SYMBOLS:
            return f"{_SYMBOLS[currency]}{price:,.2f}"
        return f"{price:,.2f} {currency}".strip()

    def distinct(self, lines: Sequence[str]) -> list[str]:
        """`lines` without repeats, without empty lines and without anything the notes forbid."""
        return [line for line in dict.fromkeys(x.strip() for x in lines) if line and not self.f.is_banned(line)]

    # The image prompt is English for every product: text-to-image models are prompted in English.

    def english_subject(self) -> str:
        """What the product is, in English words (from the glossary for a Korean name)."""
        source = f"{self.f.name} {self.f.category}"
        if not has_hangul(source):
            return self.f.category or "product"
        found = [en for ko, en in _GLOSSARY.items() if ko in source]
        kinds = [w for w in found if w not in ("vacuum-insulated", "hydrating", "soothing", "cica")]
        adjectives = [w for w in found if w not in kinds]
        noun = kinds[-1] if kinds else "product"
        materials = [w for w in kinds[:-1] if w != noun]
        return " ".join([*adjectives, *materials, noun])

    def scene(self) -> str:
        """A setting that suits the product's category."""
        source = f"{self.f.category} {self.english_subject()} {self.f.name}".lower()
        for words, scene in _SCENES:
            if any(w in source for w in words):
                return scene
        return "on a light neutral surface, soft natural daylight"

    def image_prompt(self) -> str:
        """A text-to-image prompt: the product named in quotes first (what it is), then setting and style."""
        colours = [en for ko, en in _GLOSSARY.items() if ko in self.f.notes and en in
                   ("sage green", "oatmeal", "black", "white", "navy")]
        subject = self.english_subject()
        article = "" if subject.endswith("s") and not subject.endswith("ss") else (
            "an " if subject[:1].lower() in "aeiou" else "a "
        )
        parts = [
            f'Product photograph of "{self.f.name}", {article}{subject}',
            self.scene(),
            f"in {colours[0]}" if colours else "true-to-life colours",
            "centred hero composition, the whole product in frame",
            "soft natural light, sharp focus, high detail, e-commerce photography",
        ]
        return ", ".join(parts)

    def negative_prompt(self) -> str:
        """What the image must not show."""
        return "text, watermark, logos of other brands, distorted shape, extra objects, blurry, low quality"
