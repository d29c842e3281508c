"""A detail page's shape as the mock plans it: which section kinds, in which order, and which facts each makes.

Kinds are read from a schema's enum by their common names (hero, benefits, features, how_to_use, specs,
faq, social_proof, cta and close variants), so a plan starts with the hero, ends with the call to action,
and leaves out sections that would need facts the product record does not give (reviews).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["allocate", "kind_of", "plan_kinds"]

_ORDER = ("hero", "benefits", "features", "how_to_use", "specs", "faq", "social_proof", "cta")
_ALIASES = {
    "hero": ("hero", "intro", "main", "top", "headline"),
    "benefits": ("benefit", "why", "value"),
    "features": ("feature", "detail", "highlight"),
    "how_to_use": ("how", "use", "usage", "care", "guide"),
    "specs": ("spec", "size", "technical", "info"),
    "faq": ("faq", "question"),
    "social_proof": ("social", "review", "testimonial", "proof"),
    "cta": ("cta", "buy", "purchase", "order", "action", "closing"),
}
# Needs customer voices or questions the product record does not hold: planned only when little else is left.
_LAST_RESORT = ("social_proof", "faq")


def kind_of(value: Any) -> str:
    """The common kind a section kind or id names (`how-to-use` → how_to_use), else `other`."""
    text = str(value).lower().replace("-", "_")
    for kind, words in _ALIASES.items():
        if text == kind or any(w in text for w in words):
            return kind
    return "other"


def plan_kinds(options: Sequence[Any], count: int) -> list[Any]:
    """`count` of the enum's `options` in page order: hero first, the call to action last, when present."""
    ranked = sorted(options, key=lambda o: (kind_of(o) in _LAST_RESORT, _rank(o)))
    closing = [o for o in ranked if kind_of(o) == "cta"][:1]
    body = [o for o in ranked if o not in closing]
    chosen = body[: max(0, count - len(closing))] + closing
    while len(chosen) < count:  # more sections than kinds: repeat the middle ones
        chosen.insert(-1 if closing else len(chosen), body[len(chosen) % max(1, len(body))] if body else options[0])
    return sorted(chosen[:count], key=_rank) if closing else chosen[:count]


def _rank(value: Any) -> int:
    kind = kind_of(value)
    return _ORDER.index(kind) if kind in _ORDER else len(_ORDER) - 1


def allocate(kinds: Sequence[Any], features: Sequence[str], *, most: int = 4) -> list[list[str]]:
    """The product facts each section makes: the hero the first, the middle sections the rest in order."""
    normal = [kind_of(k) for k in kinds]
    out: list[list[str]] = [[] for _ in kinds]
    if not features:
        return out
    middle = [i for i, k in enumerate(normal) if k not in ("hero", "cta")]
    heroes = [i for i, k in enumerate(normal) if k == "hero"]
    rest = list(features)
    for i in heroes[:1]:
        out[i] = [rest.pop(0)] if middle else rest[:most]
    if middle and rest:
        per, extra = divmod(len(rest), len(middle))
        start = 0
        for n, i in enumerate(middle):
            size = per + (1 if n < extra else 0)
            out[i] = rest[start : start + size][:most]
            start += size
    for i in middle:
        if not out[i]:  # more middle sections than facts: each still makes one
            out[i] = [features[i % len(features)]]
    return out
