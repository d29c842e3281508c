"""What a request's payload says about its product and the earlier steps, found by field names only.

The mock knows no agent: it looks for keys a product record and earlier outputs commonly have (`name`,
`category`, `key_features`, `target_customer`, `brand_voice`, `notes`; `tone_of_voice`, `dont`,
`target_audience`, `sections` with `id`/`kind`/`key_points`, a copy with `headline` and section `body`s)
anywhere in the payload, so the answer is built from the request's own data and stays consistent along a
flow whose steps pass their outputs on.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .korean import has_hangul

__all__ = ["Facts", "find_payload_value"]

# A product record's own name beats any `title` an earlier step wrote (a section's title is no product name).
_NAME_KEYS = ("product_name", "productName", "product", "name", "product_title", "title")
_BRAND_KEYS = ("brand_name", "brandName", "brand")
_FEATURE_KEYS = ("key_features", "features", "highlights", "selling_points", "benefits", "specs")
_AUDIENCE_KEYS = ("target_customer", "target_audience", "audience", "persona", "customer", "target")
_VOICE_KEYS = ("brand_voice", "voice", "tone", "tone_of_voice")
_LANGUAGE_KEYS = ("language", "lang", "locale")
# A sentence of the notes that forbids something: its quoted and bracketed terms must never be written.
_FORBIDS = re.compile(r"금지|하지 ?말|쓰지 ?말|피하|삼가|do not|don't|never|avoid|no claims?|must not", re.IGNORECASE)
_QUOTED = re.compile(r"['‘\"“]([^'’\"”]{1,40})['’\"”]")
_BRACKETED = re.compile(r"\(([^()]{1,80})\)")
_LISTED = re.compile(r"([가-힣A-Za-z]+(?:·[가-힣A-Za-z]+)+)\s*같은")  # `최고·최초·완벽 같은 표현`
_SENTENCE = re.compile(r"[^.!?。]+[.!?。]?")
# A payload is read this far at most: an adversarial one (deep, wide) costs bounded time.
_MAX_NODES = 5_000
_MAX_DEPTH = 6
_NUMBER = re.compile(r"\d[\d,.]*(?:\s?(?:%|[A-Za-z]{1,8}(?![A-Za-z]))|[가-힣]{1,2})?")


def _walk(payload: Any) -> Iterator[tuple[Any, int]]:
    """The payload's objects and lists with their depth, shallowest first, at most _MAX_NODES of them."""
    queue: deque[tuple[Any, int]] = deque([(payload, 0)])
    queued = 1
    while queue:
        node, level = queue.popleft()
        yield node, level
        if level >= _MAX_DEPTH:
            continue
        children = node.values() if isinstance(node, dict) else node[:50] if isinstance(node, list) else ()
        for child in children:
            if queued >= _MAX_NODES:
                break
            if isinstance(child, dict | list):  # a payload is decoded JSON: dicts and lists only
                queue.append((child, level + 1))
                queued += 1


def _flatten(payload: Any) -> dict[str, Any]:
    # First occurrence wins, shallowest first, so top-level keys beat nested ones with the same name.
    out: dict[str, Any] = {}
    for node, _ in _walk(payload):
        if isinstance(node, Mapping):
            for key, item in node.items():
                if isinstance(key, str) and key not in out:
                    out[key] = item
    return out


def find_payload_value(flat: Mapping[str, Any], name: str) -> Any:
    """The payload value stored under `name` (or its camelCase/snake_case twin), else None."""
    if name in flat:
        return flat[name]
    twin = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), name) if "_" in name else re.sub(
        r"([A-Z])", lambda m: "_" + m.group(1).lower(), name
    )
    return flat.get(twin)


def _text(flat: Mapping[str, Any], keys: Sequence[str], *, longest: int = 500) -> str | None:
    for key in keys:
        value = flat.get(key)
        if isinstance(value, Mapping):
            value = value.get("name") or value.get("title")
        if isinstance(value, str) and 0 < len(value.strip()) <= longest:
            return value.strip()
    return None


def _strings(flat: Mapping[str, Any], keys: Sequence[str]) -> list[str]:
    for key in keys:
        value = flat.get(key)
        if isinstance(value, list):
            found = [v.strip() for v in value[:12] if isinstance(v, str) and v.strip()]
            if found:
                return list(dict.fromkeys(found))
    return []


def _records(payload: Any, wanted: set[str]) -> list[Mapping[str, Any]]:
    """The shallowest list of objects whose items all have the `wanted` keys (a page plan's sections)."""
    for node, _ in _walk(payload):
        if isinstance(node, list):
            items = [i for i in node if isinstance(i, Mapping)]
            if items and all(wanted <= set(i) for i in items):
                return items
    return []


def _copy(payload: Any) -> Mapping[str, Any] | None:
    """A page copy in the payload: an object with `sections` whose items have a `body`."""
    for node, _ in _walk(payload):
        if isinstance(node, Mapping):
            sections = node.get("sections")
            if isinstance(sections, list) and any(isinstance(s, Mapping) and "body" in s for s in sections):
                return node
    return None


def _category_leaf(category: str) -> str:
    leaf = re.split(r"\s*[>/›|]\s*", category)[-1].strip()
    if leaf and not has_hangul(leaf):
        leaf = leaf.lower()
        leaf = leaf[:-1] if leaf.endswith("s") and not leaf.endswith(("ss", "phones")) else leaf
    return leaf


def _forbidden(notes: str, dont: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the notes' sentences that forbid something, the terms they forbid, quoted or bracketed)."""
    rules = [s.strip() for s in _SENTENCE.findall(notes) if s.strip() and _FORBIDS.search(s)]
    terms: list[str] = []
    for line in [*rules, *dont]:
        terms.extend(t.strip() for t in _QUOTED.findall(line))
        for group in _LISTED.findall(line):
            terms.extend(group.split("·"))
        for group in _BRACKETED.findall(line):
            if _FORBIDS.search(line) or line in dont:
                terms.extend(t.strip() for t in re.split(r"[,、·/]", group))
    return rules, [t for t in dict.fromkeys(terms) if len(t) >= 2]


@dataclass
class Facts:
    """The product and the flow so far, as the mock's writers use them."""

    language: str = "en"
    name: str = "the product"
    brand: str = ""
    category: str = ""
    features: list[str] = field(default_factory=list)
    audience: str = ""
    voice: str = ""
    notes: str = ""
    price: float | None = None
    currency: str = ""
    rules: list[str] = field(default_factory=list)
    banned: list[str] = field(default_factory=list)
    # Earlier steps' outputs, when the payload carries them.
    tones: list[str] = field(default_factory=list)
    tagline: str = ""
    plan: list[Mapping[str, Any]] = field(default_factory=list)
    copy: Mapping[str, Any] | None = None
    flat: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], messages: Sequence[Any] = ()) -> Facts:
        """Everything the payload tells (the messages only hint at the language when the payload is silent)."""
        flat = _flatten(payload)
        name = _text(flat, _NAME_KEYS, longest=120) or _topic(messages) or "the product"
        notes = _text(flat, ("notes", "note", "remarks"), longest=2000) or ""
        dont = _strings(flat, ("dont", "donts", "avoid", "do_not"))
        rules, banned = _forbidden(notes, dont)
        price = flat.get("price")
        facts = cls(
            language=_language(flat, name, messages),
            name=name,
            brand=_text(flat, _BRAND_KEYS, longest=120) or "",
            category=_category_leaf(_text(flat, ("category", "product_type", "type"), longest=200) or ""),
            features=_strings(flat, _FEATURE_KEYS),
            audience=_text(flat, _AUDIENCE_KEYS) or "",
            voice=_text(flat, _VOICE_KEYS) or "",
            notes=notes,
            price=float(price) if isinstance(price, int | float) and not isinstance(price, bool) else None,
            currency=_text(flat, ("currency",), longest=8) or "",
            rules=rules,
            banned=banned,
            tones=_strings(flat, ("tone_of_voice", "tone", "voice")),
            tagline=_text(flat, ("tagline", "slogan"), longest=200) or "",
            plan=_records(payload, {"id", "kind"}),
            copy=_copy(payload),
            flat=flat,
        )
        return facts

    def feature(self, index: int) -> str:
        """Feature `index` (wrapping round), or the product's name when it lists none."""
        return self.features[index % len(self.features)] if self.features else self.name

    def numbers(self) -> list[str]:
        """Figures the product facts state (`12시간`, `290g`, `40 hours`), the only ones copy may quote."""
        found = [m.group(0).strip(" ,.") for text in self.features for m in _NUMBER.finditer(text)]
        return list(dict.fromkeys(f for f in found if f))

    def is_banned(self, text: str) -> bool:
        """Whether `text` contains a term the notes or the brand's don'ts forbid."""
        lowered = text.lower()
        return any(term.lower() in lowered for term in self.banned)


_TOPIC = re.compile(
    r"[\"“'‘]([^\"”'’]{3,60})[\"”'’]|\b(?:for|about|of|describing)\s+((?:the|a|an|our|my)\s+[^.,;:!?\n]{2,50})",
    re.IGNORECASE,
)


def _last_user(messages: Sequence[Any]) -> str:
    last = next((getattr(m, "content", "") for m in reversed(messages) if getattr(m, "role", "") == "user"), "")
    return last if isinstance(last, str) else ""


def _topic(messages: Sequence[Any]) -> str | None:
    """What a request without a product record is about: a quoted name, or `for the lamp` in its last message."""
    found = _TOPIC.search(_last_user(messages)[:2000])
    return (found.group(1) or found.group(2)).strip() if found else None


def _language(flat: Mapping[str, Any], name: str, messages: Sequence[Any]) -> str:
    code = _text(flat, _LANGUAGE_KEYS, longest=20)
    if code:
        return "ko" if code.lower().startswith("ko") else "en"
    if has_hangul(name):
        return "ko"
    return "ko" if has_hangul(_last_user(messages)) else "en"
