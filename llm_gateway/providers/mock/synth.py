"""Deterministic, schema-valid JSON documents from a JSON Schema, for mock answers.

Covers what generated schemas use (msgspec's `$ref` into `$defs`, `anyOf` with null, enums, const,
array and string length bounds, numeric bounds and multipleOf, `allOf`). `pattern` is best effort.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Mapping
from typing import Any

from shared_contracts.errors import InvalidRequest

from ...patterns import pattern_search
from .prose import Prose, find_payload_value

__all__ = ["synthesize"]

_MAX_DEPTH = 12
# One mock document's size bounds: a schema asking for more (`minLength: 1e9`, nested `minItems`) is refused
# at once instead of being built, since building it would block the event loop.
_MAX_VALUES = 50_000
_MAX_CHARS = 1_000_000
_MAX_STEPS = 10_000
_DEFAULT_ITEMS = 3
_FORMATS = {
    "date-time": "2025-01-15T09:30:00Z",
    "date": "2025-01-15",
    "time": "09:30:00Z",
    "email": "hello@example.com",
    "idn-email": "hello@example.com",
    "hostname": "example.com",
    "ipv4": "192.0.2.10",
    "ipv6": "2001:db8::10",
    "duration": "P1D",
    "decimal": "49.90",
}
# msgspec's schema for datetime is a bare string, so a timestamp-like name is the only hint to go on.
_TIMESTAMP_NAME = re.compile(r"(^|_)(at|date|time|timestamp|datetime)$|^(created|updated|published|modified)")


def synthesize(schema: Mapping[str, Any], *, prose: Prose, rng: random.Random) -> Any:
    """A document that validates against `schema`, with text from `prose` and choices from `rng`."""
    return _Walker(schema, prose, rng).value(schema, "", 0)


class _Walker:
    def __init__(self, root: Mapping[str, Any], prose: Prose, rng: random.Random) -> None:
        self.root = root
        self.prose = prose
        self.rng = rng
        self.values = 0
        self.chars = 0

    def spend(self, *, values: int = 0, chars: int = 0) -> None:
        """Count what the document holds so far; past the bounds the request is refused."""
        self.values += values
        self.chars += chars
        if self.values > _MAX_VALUES or self.chars > _MAX_CHARS:
            raise InvalidRequest(
                "response_schema asks for a larger document than the mock provider writes "
                f"(at most {_MAX_VALUES} values and {_MAX_CHARS} characters)",
                details={"path": "$.response_schema"},
            )

    def resolve(self, schema: Any) -> Mapping[str, Any]:
        seen = 0
        while isinstance(schema, Mapping) and isinstance(schema.get("$ref"), str) and seen < 32:
            target = self._pointer(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if rest else target
            seen += 1
        if schema is True or not isinstance(schema, Mapping):
            return {}
        if "allOf" in schema:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for part in schema["allOf"]:
                part = self.resolve(part)
                merged["properties"] = {**merged.get("properties", {}), **part.get("properties", {})}
                merged["required"] = [*merged.get("required", []), *part.get("required", [])]
                merged.update({k: v for k, v in part.items() if k not in ("properties", "required")})
            return merged
        return schema

    def _pointer(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#"):
            return {}
        node: Any = self.root
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            node = node.get(part) if isinstance(node, Mapping) else None
        return node if isinstance(node, Mapping) else {}

    def value(self, schema: Any, name: str, depth: int) -> Any:
        self.spend(values=1)
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                branches = [b for b in schema[key] if self.resolve(b).get("type") != "null"] or schema[key]
                return self.value(branches[0], name, depth)
        kind = _kind(schema)
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name, depth)
        if kind == "integer":
            return self.integer(schema, name)
        if kind == "number":
            return self.number(schema, name)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self.string(schema, name)

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = schema.get("properties") or {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        # Deep in a recursive schema only required keys are written, so the document stays finite.
        names = required if depth >= _MAX_DEPTH else [*props, *(r for r in required if r not in props)]
        out = {key: self.value(props.get(key, {}), key, depth + 1) for key in names}
        extra_schema = schema.get("additionalProperties")
        wanted = int(schema.get("minProperties", 0))
        index = 1
        while len(out) < wanted and extra_schema is not False:
            key = f"item_{index}"
            if key not in out:
                out[key] = self.value(extra_schema if isinstance(extra_schema, Mapping) else {}, key, depth + 1)
            index += 1
        return out

    def array(self, schema: Mapping[str, Any], name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        count = low if depth >= _MAX_DEPTH else max(low, _DEFAULT_ITEMS)
        if isinstance(high, int):
            count = min(count, high)
        prefix = schema.get("prefixItems") or []
        items = schema.get("items", {})
        item_name = name[:-1] if name.endswith("s") and len(name) > 3 else name
        out: list[Any] = []
        attempts = 0
        while len(out) < count and attempts < count * 4:
            attempts += 1
            sub = prefix[len(out)] if len(out) < len(prefix) else (items if isinstance(items, Mapping) else {})
            element = self.value(sub, item_name, depth + 1)
            if schema.get("uniqueItems") and element in out:
                continue
            out.append(element)
        return out

    def string(self, schema: Mapping[str, Any], name: str) -> str:
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        fmt = schema.get("format")
        reused = find_payload_value(self.prose.flat, name) if name else None
        if isinstance(reused, str) and reused:
            text = reused
        elif fmt in _FORMATS:
            text = _FORMATS[fmt]
        elif schema.get("contentEncoding") == "base64":
            text = "QXVyb3Jh"
        elif fmt is None and _TIMESTAMP_NAME.search(name.lower()):
            text = _FORMATS["date-time"]
        elif fmt in ("uri", "url", "iri", "uri-reference"):
            text = f"https://example.com/products/{self.prose.slug()}"
        elif fmt == "uuid":
            bits = self.rng.getrandbits
            text = f"{bits(32):08x}-{bits(16):04x}-4{bits(12):03x}-8{bits(12):03x}-{bits(48):012x}"
        else:
            text = self.prose.for_field(name, self.rng)
        self.spend(chars=max(low, len(text)))
        while len(text) < low:
            text += self.prose.padding(self.rng)
        if isinstance(high, int) and len(text) > high:
            text = _truncate(text, high, low)
        pattern = schema.get("pattern")
        if isinstance(pattern, str) and not _matches(pattern, text):
            text = _pattern_candidate(pattern, low, high, self.prose) or text
        return text

    def integer(self, schema: Mapping[str, Any], name: str) -> int:
        low, high = _bounds(schema, integer=True)
        reused = find_payload_value(self.prose.flat, name) if name else None
        if isinstance(reused, int) and not isinstance(reused, bool) and low <= reused <= high:
            return reused
        pick = max(low, min(high, _typical(name, low, high, self.rng)))
        step = schema.get("multipleOf")
        if isinstance(step, int) and step > 0:
            pick = math.ceil(pick / step) * step
            if pick > high:
                pick = math.floor(high / step) * step
        return int(pick)

    def number(self, schema: Mapping[str, Any], name: str) -> float | int:
        step = schema.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool):
            return self.integer(schema, name)
        low, high = _bounds(schema, integer=False)
        reused = find_payload_value(self.prose.flat, name) if name else None
        if isinstance(reused, int | float) and not isinstance(reused, bool) and low <= reused <= high:
            return reused
        value = float(_typical(name, math.ceil(low), math.floor(high), self.rng)) if high - low >= 1 else low
        value = max(low, min(high, value))
        if isinstance(step, float) and step > 0:
            # Whole multiples of the step keep jsonschema's float check (quotient is an int) happy.
            k = math.ceil(low / step)
            for _ in range(_MAX_STEPS):  # a step far below the range would loop for ever
                if k * step > high:
                    break
                candidate = round(k * step, 10)
                if low <= candidate <= high and float(candidate / step).is_integer():
                    return candidate
                k += 1
        return value


def _kind(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), kind[0] if kind else None)
    if isinstance(kind, str):
        return kind
    if "properties" in schema or "additionalProperties" in schema or "required" in schema:
        return "object"
    if "items" in schema or "prefixItems" in schema or "minItems" in schema:
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _bounds(schema: Mapping[str, Any], *, integer: bool) -> tuple[float, float]:
    low: float = -1e9
    high: float = 1e9
    # An exclusive bound moves inwards by one for integers, by a small margin for numbers.
    nudge = 1 if integer else 1e-6
    if isinstance(schema.get("minimum"), int | float):
        low = schema["minimum"]
    if isinstance(schema.get("exclusiveMinimum"), int | float):
        low = max(low, schema["exclusiveMinimum"] + nudge)
    if isinstance(schema.get("maximum"), int | float):
        high = schema["maximum"]
    if isinstance(schema.get("exclusiveMaximum"), int | float):
        high = min(high, schema["exclusiveMaximum"] - nudge)
    # The defaults give way to a one-sided bound beyond them (`minimum: 1e30`).
    if not any(isinstance(schema.get(k), int | float) for k in ("maximum", "exclusiveMaximum")):
        high = max(high, low)
    if not any(isinstance(schema.get(k), int | float) for k in ("minimum", "exclusiveMinimum")):
        low = min(low, high)
    if integer:
        low, high = math.ceil(low), math.floor(high)
    if low > high:
        raise InvalidRequest(
            "response_schema has a number range with no value in it", details={"path": "$.response_schema"}
        )
    return low, high


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
    return int(low + (guess % 10) if guess < low else high - (guess % 10))


def _truncate(text: str, high: int, low: int) -> str:
    cut = text[:high]
    space = cut.rfind(" ")
    if space >= max(low, 1):
        cut = cut[:space]
    cut = cut.rstrip(" ,;:-")
    return cut if len(cut) >= low else text[:high]


def _matches(pattern: str, text: str) -> bool:
    # Best effort: a pattern that is invalid or too slow counts as matched, and validation reports it.
    try:
        return pattern_search(pattern, text)
    except InvalidRequest:
        return True


def _pattern_candidate(pattern: str, low: int, high: Any, prose: Prose) -> str | None:
    limit = high if isinstance(high, int) else 10_000
    for candidate in (prose.slug(), prose.product, "example", "abc", "ABC", "A1", "a", "1", "2025-01-15", "en"):
        if low <= len(candidate) <= limit and _matches(pattern, candidate):
            return candidate
    return None
