"""Deterministic, schema-valid JSON documents from a JSON Schema, for mock answers.

Covers what generated and hand-written schemas use: `$ref` (pointers and anchors) into `$defs`, `allOf`,
`anyOf`/`oneOf`, enums, const, array, string and property-count bounds, `prefixItems`, `contains`,
numeric bounds and multipleOf, formats, and `pattern` (strings generated to match). The words come
from the Prose writer, keyed by each value's place (Slot).

Bounded: the document's size (values, characters), the `$ref`/`allOf` expansions (refs.py) and its depth
are capped, so no schema blocks the event loop or exhausts the stack: past a cap the request is refused
with a 400 naming the limit. A schema with no finite document (a required property that contains itself)
is refused the same way.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from shared_contracts.errors import InvalidRequest

from ...patterns import pattern_search
from .numbers import bounds, integer_in, is_multiple, number_in
from .pattern_text import pattern_text
from .prose import Prose
from .refs import FORBIDDEN, Budget, Cycle, Refs, refused
from .slot import Slot

__all__ = ["MAX_DEPTH", "MAX_VALUES", "synthesize"]

MAX_DEPTH = 48
"""Deepest nesting of a mock document; a schema whose every document is deeper gets a 400."""
MAX_VALUES = 50_000
MAX_CHARS = 1_000_000
# Past this depth only required properties and minItems items are written, so recursive schemas end.
_SHALLOW = 12
_DEFAULT_ITEMS = 3
_FORMATS = {
    "date-time": "2025-01-15T09:30:00Z",
    "date": "2025-01-15",
    "time": "09:30:00Z",
    "email": "hello@example.com",
    "idn-email": "hello@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.10",
    "ipv6": "2001:db8::10",
    "duration": "P1D",
    "decimal": "49.90",
    "json-pointer": "/sections/0",
    "regex": "^[a-z]+$",
}
# msgspec's schema for datetime is a bare string, so a timestamp-like name is the only hint to go on.
_TIMESTAMP_NAME = re.compile(r"(^|_)(at|date|time|timestamp|datetime)$|^(created|updated|published|modified)")
# Keywords that only describe; a oneOf/anyOf branch is merged with the keywords beside it except these.
_ANNOTATIONS = frozenset({"title", "description", "examples", "default", "$comment", "$defs", "definitions",
                          "$schema", "$id", "$anchor", "deprecated", "readOnly", "writeOnly"})
_CHEAP = {"null": 0, "boolean": 1, "integer": 1, "number": 1, "string": 1, "array": 2, "object": 3}


def synthesize(schema: Mapping[str, Any], *, prose: Prose, rng: random.Random) -> Any:
    """A document that validates against `schema`, with text from `prose` and choices from `rng`.

    Raises InvalidRequest (400) for a schema the mock will not or cannot write a document for.
    """
    walker = _Walker(schema, prose, rng)
    try:
        return walker.value(schema, Slot(), 0, frozenset())
    except Cycle as exc:
        raise refused(
            f"$ref {str(exc)[:80]!r} leads back to where it started with no nesting in between, "
            "so no finite document matches",
            ref=str(exc)[:200],
        ) from None
    except RecursionError:  # the caps keep recursion far below Python's limit; this is the last guard
        raise refused(f"nests too deeply for the mock provider (limit {MAX_DEPTH} levels)", limit=MAX_DEPTH) from None


def _count(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return int(min(value, 2**31))


def _description(schema: Any) -> str:
    text = schema.get("description") if isinstance(schema, Mapping) else None
    return text if isinstance(text, str) else ""


def _is_choice(schema: Any) -> bool:
    return isinstance(schema, Mapping) and ("const" in schema or "enum" in schema)


def _cheapness(schema: Any) -> int:
    if not isinstance(schema, Mapping):
        return 4
    if "const" in schema or "enum" in schema:
        return 1
    kind = schema.get("type")
    return _CHEAP.get(kind, 4) if isinstance(kind, str) else 4


class _Walker:
    def __init__(self, root: Mapping[str, Any], prose: Prose, rng: random.Random) -> None:
        self.refs = Refs(root)
        self.budget = Budget()
        self.prose = prose
        self.rng = rng
        self.values = 0
        self.chars = 0

    def spend(self, *, values: int = 0, chars: int = 0) -> None:
        """Count what the document holds so far; past the bounds the request is refused."""
        self.values += values
        self.chars += chars
        if self.values > MAX_VALUES or self.chars > MAX_CHARS:
            raise refused(
                "asks for a larger document than the mock provider writes "
                f"(at most {MAX_VALUES} values and {MAX_CHARS} characters)",
                limit=MAX_VALUES if self.values > MAX_VALUES else MAX_CHARS,
            )

    def value(self, schema: Any, slot: Slot, depth: int, seen: frozenset[int]) -> Any:
        self.spend(values=1)
        if depth > MAX_DEPTH:
            raise refused(
                f"every document it allows nests deeper than {MAX_DEPTH} levels "
                "(does a required property contain itself?)",
                limit=MAX_DEPTH,
            )
        if isinstance(schema, Mapping):
            seen = seen | {id(schema)}
        resolved, seen = self.refs.resolve(schema, seen, self.budget)
        if resolved is FORBIDDEN:
            raise refused(f"allows no value at {_where(slot)} (a false schema)", keyword="false")
        if "const" in resolved:
            return resolved["const"]
        if isinstance(resolved.get("enum"), list):
            if not resolved["enum"]:
                raise refused(f"the enum at {_where(slot)} allows no value", keyword="enum")
            return self.prose.pick(slot, resolved["enum"], self.rng)
        for key in ("anyOf", "oneOf"):
            if isinstance(resolved.get(key), list) and resolved[key]:
                return self.branch(resolved, key, slot, depth, seen)
        kind = _kind(resolved)
        if kind == "object":
            return self.object(resolved, slot, depth)
        if kind == "array":
            return self.array(resolved, slot, depth)
        if kind == "integer":
            return self.integer(resolved, slot)
        if kind == "number":
            return self.number(resolved, slot)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self.string(resolved, slot)

    def branch(self, schema: Mapping[str, Any], key: str, slot: Slot, depth: int, seen: frozenset[int]) -> Any:
        """A value for one branch of anyOf/oneOf, merged with the keywords beside it.

        A branch that leads back to this place raises Cycle even when another would do: a validator
        recurses into it for ever too, so the schema is refused rather than answered unverifiably.
        """
        rest = {k: v for k, v in schema.items() if k != key}
        branches: list[Any] = list(schema[key])
        if depth >= _SHALLOW:
            branches.sort(key=_cheapness)  # deep down, the branch most likely to end the document
        else:
            branches.sort(key=lambda b: isinstance(b, Mapping) and b.get("type") == "null")
        choice = branches[0]
        sub = {"allOf": [rest, choice]} if any(k not in _ANNOTATIONS for k in rest) else choice
        return self.value(sub, slot, depth + 1, seen)

    def object(self, schema: Mapping[str, Any], slot: Slot, depth: int) -> dict[str, Any]:
        found = schema.get("properties")
        props: Mapping[str, Any] = found if isinstance(found, Mapping) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        extra = schema.get("additionalProperties")
        extra_schema: Any = extra if isinstance(extra, Mapping) else {}
        names = list(dict.fromkeys(required if depth >= _SHALLOW else [*props, *required]))
        dependent = schema.get("dependentRequired")
        if isinstance(dependent, Mapping):
            for name in list(names):
                names.extend(n for n in dependent.get(name, []) if isinstance(n, str) and n not in names)
        out: dict[str, Any] = {}
        # Choices first (an enum `kind`, a const id), so free text can follow what was chosen.
        for name in sorted(names, key=lambda n: not _is_choice(props.get(n))):
            sub = props.get(name, extra_schema)
            if sub is False:
                if name in required:
                    raise refused(f"property {name!r} is required but its schema is false", keyword="required")
                continue
            out[name] = self.value(sub, slot.child(name, out, _description(sub)), depth + 1, frozenset())
        out = {name: out[name] for name in names if name in out}
        if not props and not required and depth == 0 and extra is not False:
            # A bare `{"type": "object"}` (the JSON mode): a live model writes some keys, never `{}`.
            for name, sub in self.prose.free_properties().items():
                chosen = extra_schema if extra_schema else sub
                out[name] = self.value(chosen, slot.child(name, out), depth + 1, frozenset())
        wanted = _count(schema.get("minProperties"), 0)
        if wanted > MAX_VALUES:
            self.spend(values=wanted)
        index = 1
        while len(out) < wanted and extra is not False:
            key = f"item_{index}"
            if key not in out:
                out[key] = self.value(extra_schema, slot.child(key, out), depth + 1, frozenset())
            index += 1
        most = _count(schema.get("maxProperties"), len(out))
        for name in [n for n in reversed(out) if n not in required][: max(0, len(out) - most)]:
            del out[name]
        return out

    def array(self, schema: Mapping[str, Any], slot: Slot, depth: int) -> list[Any]:
        low = _count(schema.get("minItems"), 0)
        high = _count(schema.get("maxItems"), 2**31)
        if low > MAX_VALUES:
            self.spend(values=low)
        items: Any = schema.get("items", {})
        listed = schema.get("prefixItems")
        prefix: list[Any] = listed if isinstance(listed, list) else []
        if isinstance(items, list):  # drafts before 2020-12 spell prefixItems as an `items` array
            prefix, items = items, schema.get("additionalItems", {})
        if items is False:
            high = min(high, len(prefix))
        wanted = low if depth >= _SHALLOW else self.prose.count(slot, low, high, self.rng)
        count = max(low, min(high, wanted if wanted is not None else max(low, _DEFAULT_ITEMS, len(prefix))))
        contains = schema.get("contains")
        out: list[Any] = []
        attempts = 0
        while len(out) < count and attempts < count * 4 + 8:
            attempts += 1
            at = len(out)
            sub: Any = prefix[at] if at < len(prefix) else items
            if isinstance(contains, Mapping | bool) and at == len(prefix):
                sub = {"allOf": [sub if isinstance(sub, Mapping | bool) else {}, contains]}
            element = self.value(sub, slot.item(at, _description(sub)), depth + 1, frozenset())
            if schema.get("uniqueItems") and element in out:
                continue
            out.append(element)
        if len(out) < low:
            raise refused(
                f"the mock provider cannot honour 'uniqueItems': found no {low} distinct items for {_where(slot)}",
                keyword="uniqueItems",
            )
        return out

    def string(self, schema: Mapping[str, Any], slot: Slot) -> str:
        low = _count(schema.get("minLength"), 0)
        high = _count(schema.get("maxLength"), 2**31)
        text = self._text(schema, slot)
        self.spend(chars=max(low, len(text)))
        while len(text) < low:
            text += self.prose.padding(slot, self.rng)
        if len(text) > high:
            text = _truncate(text, high, low)
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _matches(pattern, text):
            # Words of the product first (a slug fits `^[a-z-]+$`), else a string built from the pattern.
            fits = (c for c in self.prose.pattern_candidates() if low <= len(c) <= high and _matches(pattern, c))
            text = next(fits, None) or pattern_text(pattern, self.rng, low=low, high=min(high, MAX_CHARS))
        return text

    def _text(self, schema: Mapping[str, Any], slot: Slot) -> str:
        fmt = schema.get("format")
        reused = self.prose.reuse(slot.name) if slot.name and slot.index is None else None
        if fmt in _FORMATS:
            return _FORMATS[fmt]
        if fmt in ("uri", "url", "iri", "uri-reference", "iri-reference", "uri-template"):
            return f"https://example.com/products/{self.prose.slug()}"
        if fmt == "uuid":
            bits = self.rng.getrandbits
            return f"{bits(32):08x}-{bits(16):04x}-4{bits(12):03x}-8{bits(12):03x}-{bits(48):012x}"
        if schema.get("contentEncoding") == "base64":
            return "QXVyb3Jh"
        if isinstance(reused, str) and reused:
            return reused
        if fmt is None and _TIMESTAMP_NAME.search(slot.name.lower()):
            return _FORMATS["date-time"]
        return self.prose.text(slot, self.rng)

    def integer(self, schema: Mapping[str, Any], slot: Slot) -> int:
        low, high = bounds(schema, integer=True)
        step = schema.get("multipleOf")
        reused = self.prose.reuse(slot.name) if slot.name else None
        if isinstance(reused, int) and not isinstance(reused, bool) and low <= reused <= high:
            if not isinstance(step, int | float) or is_multiple(reused, step):
                return reused
        guess = self.prose.integer(slot, int(low), int(high), self.rng)
        return integer_in(schema, guess if guess is not None else _typical(slot.name, low, high, self.rng))

    def number(self, schema: Mapping[str, Any], slot: Slot) -> float | int:
        low, high = bounds(schema, integer=False)
        step = schema.get("multipleOf")
        reused = self.prose.reuse(slot.name) if slot.name else None
        if isinstance(reused, int | float) and not isinstance(reused, bool) and low <= reused <= high:
            if not isinstance(step, int | float) or is_multiple(reused, step):
                return reused
        if high - low < 20:
            guess: float = round(low + (high - low) / 2, 2)
            guess = guess if low <= guess <= high else low
        else:
            guess = float(_typical(slot.name, low, high, self.rng))
        return number_in(schema, guess)


def _where(slot: Slot) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in slot.path)


def _kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "additionalProperties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema or "minItems" in schema or "contains" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _typical(name: str, low: float, high: float, rng: random.Random) -> int:
    lowered = name.lower()
    if "year" in lowered:
        guess = 2025
    elif any(w in lowered for w in ("price", "cost", "amount")):
        guess = 49
    elif any(w in lowered for w in ("score", "rating", "confidence")):
        guess = rng.randint(3, 5) if high <= 10 else rng.randint(70, 95)
    elif any(w in lowered for w in ("width", "height", "size")):
        guess = 1024
    else:
        guess = rng.randint(1, 10)
    if low <= guess <= high:
        return guess
    if high - low <= 20:
        return int(rng.randint(int(low), int(high)))
    return int(low) + (guess % 10) if guess < low else int(high) - (guess % 10)


def _truncate(text: str, high: int, low: int) -> str:
    cut = text[:high]
    space = cut.rfind(" ")
    if space >= max(low, 1):
        cut = cut[:space]
    cut = cut.rstrip(" ,;:-")
    return cut if len(cut) >= low else text[:high]


def _matches(pattern: str, text: str) -> bool:
    # A pattern too slow on our own text counts as unmatched: a string is then generated for it.
    try:
        return pattern_search(pattern, text)
    except InvalidRequest:
        return False
