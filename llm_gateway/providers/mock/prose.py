"""Plausible marketing prose for mock answers, built from the request's payload (product name, brand, facts).

Deterministic: every choice comes from the `random.Random` the caller seeds from the request.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from typing import Any

from .slot import Slot

__all__ = ["Prose", "find_payload_value"]

_BENEFITS = (
    "built to last",
    "designed for everyday comfort",
    "made with care in every detail",
    "easy to use from the first day",
    "crafted from carefully chosen materials",
    "a smart choice for daily routines",
    "reliable when it matters most",
    "simple to care for and easy to love",
)
_ADJECTIVES = ("durable", "lightweight", "versatile", "refined", "practical", "reliable", "compact", "thoughtful")
_KEYWORDS = ("quality", "comfort", "design", "value", "everyday", "durable", "gift", "modern", "craft", "reliable")
_COLOURS = ("deep navy", "warm sand", "forest green", "soft ivory", "charcoal grey", "terracotta")
_HEX = ("#1F3A5F", "#D8C3A5", "#2E5E4E", "#F4F1EA", "#3C3C3C", "#C0623B")
_AUDIENCES = (
    "busy professionals who value quality",
    "first-time buyers looking for a dependable choice",
    "design-minded shoppers who care about details",
    "families who want something that lasts",
)
_TONES = ("warm, confident and clear", "friendly and practical", "calm, premium and precise", "upbeat and helpful")
_SENTENCES = (
    "{P} is {benefit}.",
    "Every part of {p} feels {adj} and {adj2}.",
    "{P} fits naturally into your day, at home or on the go.",
    "People choose {p} because it is {adj} without being complicated.",
    "With {p}, {brand} keeps the promise of {benefit2}.",
    "{P} pairs {adj} materials with a {adj2} finish.",
)
_NAME_KEYS = ("product_name", "productName", "product_title", "title", "name", "product")
_BRAND_KEYS = ("brand_name", "brandName", "brand")
_WORD = re.compile(r"[A-Za-z0-9]+")


def _flatten(value: Any, out: dict[str, Any], depth: int = 0) -> None:
    # First occurrence wins, so top-level keys beat nested ones with the same name.
    if depth > 6 or not isinstance(value, Mapping):
        return
    for key, item in value.items():
        if isinstance(key, str) and key not in out:
            out[key] = item
    for item in value.values():
        if isinstance(item, Mapping):
            _flatten(item, out, depth + 1)
        elif isinstance(item, list):
            for element in item[:20]:
                _flatten(element, out, depth + 1)


def find_payload_value(flat: Mapping[str, Any], name: str) -> Any:
    """The payload value stored under `name` (or its camelCase/snake_case twin), else None."""
    if name in flat:
        return flat[name]
    twin = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name) if "_" in name else re.sub(
        r"([A-Z])", lambda m: "_" + m.group(1).lower(), name
    )
    return flat.get(twin)


def _first_text(flat: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    for key in keys:
        value = flat.get(key)
        if isinstance(value, Mapping):
            value = value.get("name") or value.get("title")
        if isinstance(value, str) and 0 < len(value.strip()) <= 120:
            return value.strip()
    return None


class Prose:
    """Writes short phrases and sentences about the payload's product, keyed by a field's name."""

    def __init__(
        self, payload: Mapping[str, Any], *, role: str, task: str, messages: Sequence[Any] = ()
    ) -> None:
        self.flat: dict[str, Any] = {}
        _flatten(payload, self.flat)
        self.product = _first_text(self.flat, _NAME_KEYS) or "the product"
        self.brand = _first_text(self.flat, _BRAND_KEYS) or "the brand"
        self.role = role
        self.task = task.replace("_", " ").replace("-", " ")

    def _fill(self, template: str, rng: random.Random) -> str:
        adj, adj2 = rng.sample(_ADJECTIVES, 2)
        benefit, benefit2 = rng.sample(_BENEFITS, 2)
        product_cap = self.product[:1].upper() + self.product[1:]
        return template.format(
            P=product_cap, p=self.product, brand=self.brand, adj=adj, adj2=adj2, benefit=benefit, benefit2=benefit2
        )

    def sentences(self, rng: random.Random, count: int = 2) -> str:
        """`count` distinct sentences about the product."""
        picked = rng.sample(_SENTENCES, min(count, len(_SENTENCES)))
        return " ".join(self._fill(t, rng) for t in picked)

    def plain_answer(self, rng: random.Random) -> str:
        """An answer for a task without a schema: a short paragraph naming the product and the task."""
        return f"{self.task.capitalize()} for {self.product}: {self.sentences(rng, 3)}"

    def padding(self, slot: Slot, rng: random.Random) -> str:
        """More text to reach a minimum length."""
        return " " + self.sentences(rng, 1)

    def reuse(self, name: str) -> Any:
        """The payload's value for a field called `name`, if it has one."""
        return find_payload_value(self.flat, name)

    def text(self, slot: Slot, rng: random.Random) -> str:
        """The text for the string at `slot`."""
        return self.for_field(slot.name, rng)

    def count(self, slot: Slot, low: int, high: int, rng: random.Random) -> int | None:
        """How many items the array at `slot` should have; None leaves it to the schema walker."""
        return None

    def pick(self, slot: Slot, options: list[Any], rng: random.Random) -> Any:
        """One of an enum's `options` for `slot`."""
        return rng.choice(options)

    def integer(self, slot: Slot, low: int, high: int, rng: random.Random) -> int | None:
        """An integer for `slot` in [low, high]; None leaves it to the schema walker."""
        return None

    def pattern_candidates(self) -> tuple[str, ...]:
        """Strings about the product to try on a `pattern` before generating one from it."""
        return (self.slug(), self.product, *self.product_words())

    def free_properties(self) -> dict[str, Any]:
        """Keys (and their schemas) for an object schema that names none, as in JSON mode."""
        return {"summary": {"type": "string"}}

    def for_field(self, name: str, rng: random.Random) -> str:
        """A value that reads right for a field called `name` (headline, description, prompt, ...)."""
        words = {w.lower() for w in re.findall(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", name)}
        p = self.product
        if words & {"url", "link", "href", "uri"}:
            return f"https://example.com/products/{self.slug()}"
        if words & {"email"}:
            return "hello@example.com"
        if words & {"hex"}:
            return rng.choice(_HEX)
        if words & {"color", "colour", "colors", "colours", "palette"}:
            return rng.choice(_COLOURS)
        if words & {"negative"}:
            return "blurry, low quality, distorted text, watermark, extra objects"
        if words & {"prompt", "scene", "shot"}:
            return (
                f"Studio product photograph of {p}, soft natural daylight, clean neutral background, "
                f"{rng.choice(_COLOURS)} accents, sharp focus, shallow depth of field"
            )
        if words & {"tone", "voice", "style", "mood", "personality"}:
            return rng.choice(_TONES)
        if words & {"audience", "persona", "segment", "customer", "customers", "target"}:
            return rng.choice(_AUDIENCES)
        if words & {"keyword", "keywords", "tag", "tags", "hashtag", "hashtags", "term", "terms"}:
            return rng.choice((*_KEYWORDS, *self.product_words()))
        if words & {"cta", "action", "button"}:
            return f"Shop {p} now"
        if words & {"id", "sku", "code", "slug", "handle"}:
            return f"{self.slug()}-{rng.randint(100, 999)}"
        if words & {"language", "locale", "lang"}:
            return "en"
        if words & {"verdict", "status", "decision"}:
            return "approved"
        if words & {"brand"}:
            return self.brand
        if words & {"headline", "title", "heading", "tagline", "slogan", "name", "label", "subject", "hook"}:
            return self._fill(rng.choice(("{P}, {benefit}", "{P}: {adj} by design", "Meet {p}")), rng)
        if words & {"bullet", "bullets", "feature", "features", "benefit", "benefits", "point", "points", "usp"}:
            return self._fill(rng.choice(("{adj} build that is {benefit}", "{benefit}", "a {adj}, {adj2} design")), rng)
        return self.sentences(rng, 2 if words & _LONG_FIELDS else 1)

    def slug(self) -> str:
        """The product name as a URL slug."""
        return "-".join(w.lower() for w in _WORD.findall(self.product)) or "product"

    def product_words(self) -> tuple[str, ...]:
        """The product name's words, lower-cased."""
        return tuple(w.lower() for w in _WORD.findall(self.product) if len(w) > 2)


_LONG_FIELDS = frozenset(
    {"description", "body", "copy", "text", "paragraph", "summary", "rationale", "reason", "feedback", "content",
     "story", "overview", "notes", "comment", "comments", "explanation", "message", "details", "intro", "answer"}
)
