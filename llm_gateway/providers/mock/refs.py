"""The subschemas that apply at one place of a mock document: `$ref`s followed, `allOf` parts merged, all bounded.

References stay inside the schema: `#`, JSON pointers (`#/$defs/Item`) and anchors (`#item` with `$anchor`).
Every step is counted against a Budget, so a chain of `allOf` parts that doubles at each level is refused
with a 400 naming the limit instead of blocking the event loop, and a `$ref` that comes back to the same
place without any nesting in between (`{"allOf": [{"$ref": "#"}]}`) is reported as a cycle, never recursed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared_contracts.errors import InvalidRequest

__all__ = ["FORBIDDEN", "MAX_EXPANSIONS", "MAX_IN_PLACE", "Budget", "Cycle", "Refs", "refused"]

MAX_IN_PLACE = 256
"""Most subschemas (`$ref` targets and `allOf` parts) that may apply to one value."""
MAX_EXPANSIONS = 100_000
"""Most `$ref`/`allOf` steps for a whole document."""
_MAX_NESTING = 64
FORBIDDEN: Mapping[str, Any] = {"not": {}}
"""What the boolean schema `false` resolves to: nothing validates against it."""

_LOWER = ("minimum", "exclusiveMinimum", "minLength", "minItems", "minProperties", "minContains")
_UPPER = ("maximum", "exclusiveMaximum", "maxLength", "maxItems", "maxProperties", "maxContains")


def refused(message: str, **details: Any) -> InvalidRequest:
    """The 400 for a schema the mock will not write a document for."""
    return InvalidRequest(f"response_schema: {message}", details={"path": "$.response_schema", **details})


class Cycle(Exception):
    """A `$ref` led back to a schema already applying at this place: that branch can never end."""


class Budget:
    """Counts the steps spent on one document; past a limit the request is refused (400), never left to run."""

    def __init__(self) -> None:
        self.expansions = 0

    def expand(self, in_place: int, *, followed: bool) -> None:
        """One more subschema applies to the current value (`in_place` of them so far); `followed` when it
        was reached through a `$ref` or an `allOf` part, which is what the document-wide cap counts."""
        self.expansions += followed
        if in_place > MAX_IN_PLACE:
            raise refused(
                f"more than {MAX_IN_PLACE} subschemas (allOf parts and $refs) apply to one value; "
                "the mock provider's limit is reached",
                limit=MAX_IN_PLACE,
            )
        if self.expansions > MAX_EXPANSIONS:
            raise refused(
                f"writing a document takes more than {MAX_EXPANSIONS} $ref/allOf expansions; "
                "the mock provider's limit is reached",
                limit=MAX_EXPANSIONS,
            )


def _anchors(root: Any) -> dict[str, Mapping[str, Any]]:
    found: dict[str, Mapping[str, Any]] = {}
    stack: list[Any] = [root]
    while stack:  # a loop, not recursion: a schema may nest as deep as the JSON decoder allows
        node = stack.pop()
        if isinstance(node, Mapping):
            for key in ("$anchor", "$dynamicAnchor"):
                name = node.get(key)
                if isinstance(name, str):
                    found.setdefault(name, node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Both schemas at once (as allOf), as one schema: bounds take the stricter, properties combine."""
    out = dict(base)
    for key, value in extra.items():
        mine = out.get(key)
        if key not in out:
            out[key] = value
        elif key == "properties" and isinstance(mine, Mapping) and isinstance(value, Mapping):
            props = dict(mine)
            for name, sub in value.items():
                props[name] = {"allOf": [props[name], sub]} if name in props else sub
            out[key] = props
        elif key == "required" and isinstance(mine, list) and isinstance(value, list):
            out[key] = list(dict.fromkeys([*mine, *value]))
        elif key in _LOWER and _is_number(mine) and _is_number(value):
            out[key] = max(mine, value)
        elif key in _UPPER and _is_number(mine) and _is_number(value):
            out[key] = min(mine, value)
        elif key == "enum" and isinstance(mine, list) and isinstance(value, list):
            out[key] = [v for v in mine if v in value]
        elif key == "type":
            out[key] = _types(mine) & _types(value)
            out[key] = sorted(out[key]) if len(out[key]) != 1 else next(iter(out[key]))
        elif key in ("items", "additionalProperties", "contains") and isinstance(mine, Mapping | bool):
            out[key] = {"allOf": [mine, value]}
        else:
            out[key] = value
    return out


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _types(value: Any) -> set[str]:
    if isinstance(value, str):
        found = {value}
    elif isinstance(value, list):
        found = {v for v in value if isinstance(v, str)}
    else:
        return {"object", "array", "string", "number", "integer", "boolean", "null"}
    if "number" in found:
        found.add("integer")  # every integer is a number, so the two intersect in integers
    return found


class Refs:
    """The schema a document is written for, with its anchors indexed once."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self._anchors = _anchors(root)

    def target(self, ref: str) -> Any:
        """The subschema `ref` points at; a 400 when it points nowhere (or outside the schema)."""
        if ref in ("#", ""):
            return self.root
        if ref.startswith("#/"):
            node: Any = self.root
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if isinstance(node, Mapping) and part in node:
                    node = node[part]
                elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                    node = node[int(part)]
                else:
                    raise refused(f"$ref {ref[:80]!r} does not resolve", ref=ref[:200])
            return node
        if ref.startswith("#") and ref[1:] in self._anchors:
            return self._anchors[ref[1:]]
        raise refused(f"$ref {ref[:80]!r} does not resolve", ref=ref[:200])

    def resolve(
        self, schema: Any, seen: frozenset[int], budget: Budget
    ) -> tuple[Mapping[str, Any], frozenset[int]]:
        """`schema` with its `$ref`s followed and `allOf` merged, and the ref targets now applying here.

        `seen` holds the ref targets already applying at this place; meeting one again raises Cycle.
        """
        counter = [0]
        return self._resolve(schema, seen, budget, counter, 0)

    def _resolve(
        self, schema: Any, seen: frozenset[int], budget: Budget, counter: list[int], nesting: int
    ) -> tuple[Mapping[str, Any], frozenset[int]]:
        if schema is False:
            return FORBIDDEN, seen
        if not isinstance(schema, Mapping):
            return {}, seen
        counter[0] += 1
        budget.expand(counter[0], followed=nesting > 0)
        if nesting > _MAX_NESTING:
            raise refused(f"allOf/$ref nest more than {_MAX_NESTING} levels at one place", limit=_MAX_NESTING)
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self.target(ref)
            if id(target) in seen:
                raise Cycle(ref)
            base, seen = self._resolve(target, seen | {id(target)}, budget, counter, nesting + 1)
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = _merge(base, rest) if rest else base
        parts = schema.get("allOf")
        if isinstance(parts, list):
            merged: Mapping[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            applying = seen
            for part in parts:
                # Each part sees only its ancestors: the same $ref twice side by side is no cycle.
                resolved, part_seen = self._resolve(part, seen, budget, counter, nesting + 1)
                merged = _merge(merged, resolved)
                applying |= part_seen
            return merged, applying
        return schema, seen
