"""Refuse, before any model is called, a `response_schema` that jsonschema could not check in bounded time.

jsonschema follows `$ref`, `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else` and `dependentSchemas` at the
same place of the document (in place), and each subschema again. So a chain whose levels apply the next one
twice costs 2**levels checks for one value, a `$ref` that leads back to itself with no nesting in between
(`{"allOf": [{"$ref": "#"}]}`) never ends (a RecursionError), and subschemas that multiply from one nesting
level to the next cost their product for a deep answer. Here the schema is walked once, without a document:
in-place references must form no cycle, at most `MAX_IN_PLACE` subschemas may apply to one value, and the walk
from level to level stops when a level repeats one already seen (an ordinary recursive schema), or is refused
past `MAX_EXPANSIONS` steps. The limits are the mock provider's (`providers/mock/refs.py`), so both modes
refuse the same schemas with the same words.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

from .providers.mock.refs import MAX_EXPANSIONS, MAX_IN_PLACE, Refs, refused

__all__ = ["check_schema_bounds"]

_IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
_IN_PLACE_ONE = ("not", "if", "then", "else")
# Keywords whose subschema applies to a child value: (keyword, position of the child).
_CHILD_ONE = ("items", "additionalProperties", "contains", "propertyNames", "unevaluatedProperties",
              "unevaluatedItems", "additionalItems")

_Node = Mapping[str, Any]
_Level = Counter[int]


class _Walk:
    def __init__(self, root: _Node) -> None:
        self.refs = Refs(root)
        self.nodes: dict[int, _Node] = {}
        self.steps = 0
        self._edges: dict[int, list[_Node]] = {}

    def step(self, count: int = 1) -> None:
        self.steps += count
        if self.steps > MAX_EXPANSIONS:
            raise refused(
                f"checking an answer takes more than {MAX_EXPANSIONS} $ref/allOf expansions; the gateway's limit "
                "is reached",
                limit=MAX_EXPANSIONS,
            )

    def edges(self, node: _Node) -> list[_Node]:
        """The subschemas that apply in place of `node` (a `$ref` resolved), with repeats."""
        found = self._edges.get(id(node))
        if found is not None:
            return found
        out: list[Any] = []
        for key in ("$ref", "$dynamicRef"):
            ref = node.get(key)
            if isinstance(ref, str):
                out.append(self.refs.target(ref))
        for key in _IN_PLACE_LISTS:
            parts = node.get(key)
            if isinstance(parts, list):
                out.extend(parts)
        out.extend(node[key] for key in _IN_PLACE_ONE if key in node)
        dependent = node.get("dependentSchemas")
        if isinstance(dependent, Mapping):
            out.extend(dependent.values())
        kept: list[_Node] = [part for part in out if isinstance(part, Mapping)]
        for part in kept:
            self.nodes[id(part)] = part
        self._edges[id(node)] = kept
        return kept

    def order(self, starts: list[int]) -> list[int]:
        """Nodes reachable in place from `starts`, parents before children; a cycle is refused."""
        done: list[int] = []
        state: dict[int, int] = {}  # 1 = on the path, 2 = finished
        for start in starts:
            if start in state:
                continue
            state[start] = 1
            stack: list[tuple[_Node, int]] = [(self.nodes[start], 0)]
            while stack:  # iterative depth-first search: a schema may nest as deep as the JSON decoder allows
                node, index = stack.pop()
                children = self.edges(node)
                if index == len(children):
                    state[id(node)] = 2
                    done.append(id(node))
                    continue
                stack.append((node, index + 1))
                child = children[index]
                mark = state.get(id(child))
                if mark == 1:
                    raise refused(
                        "a $ref (or allOf/anyOf/oneOf part) leads back to where it started with no nesting in "
                        "between, so checking an answer would never end",
                        reason="cycle",
                    )
                if mark is None:
                    self.step()
                    state[id(child)] = 1
                    stack.append((child, 0))
        done.reverse()
        return done

    def expand(self, level: _Level) -> _Level:
        """Every subschema applying to one value, with how many times it applies (in-place paths counted)."""
        applying: _Level = Counter(level)
        for key in self.order(list(level)):
            times = applying[key]
            for child in self.edges(self.nodes[key]):
                applying[id(child)] += times
        total = sum(applying.values())
        if total > MAX_IN_PLACE:
            raise refused(
                f"more than {MAX_IN_PLACE} subschemas (allOf parts and $refs) apply to one value; "
                "the gateway's limit is reached",
                limit=MAX_IN_PLACE,
            )
        self.step(total)
        return applying

    def children(self, level: _Level) -> dict[tuple[str, Any], _Level]:
        """The subschemas applying to each child value (by property name or array position)."""
        out: dict[tuple[str, Any], _Level] = {}

        def add(where: tuple[str, Any], schema: Any, times: int) -> None:
            if isinstance(schema, Mapping):
                self.nodes[id(schema)] = schema
                out.setdefault(where, Counter())[id(schema)] += times

        for key, times in level.items():
            node = self.nodes[key]
            properties = node.get("properties")
            if isinstance(properties, Mapping):
                for name, schema in properties.items():
                    add(("property", name), schema, times)
            prefix = node.get("prefixItems")
            if isinstance(prefix, list):
                for index, schema in enumerate(prefix):
                    add(("item", index), schema, times)
            items = node.get("items")
            if isinstance(items, list):  # draft 4-7 tuples
                for index, schema in enumerate(items):
                    add(("item", index), schema, times)
            for keyword in _CHILD_ONE:
                if not isinstance(node.get(keyword), list):
                    add((keyword, None), node.get(keyword), times)
        return out


def check_schema_bounds(schema: Mapping[str, Any]) -> None:
    """Raise InvalidRequest (400, `details.limit`) when checking answers against `schema` would not be bounded."""
    walk = _Walk(schema)
    walk.nodes[id(schema)] = schema
    seen: set[frozenset[tuple[int, int]]] = set()
    pending: list[_Level] = [Counter({id(schema): 1})]
    while pending:
        level = walk.expand(pending.pop())
        state = frozenset(level.items())
        if state in seen:
            continue  # the same subschemas, as often, at a deeper level: an ordinary recursive schema
        seen.add(state)
        pending.extend(walk.children(level).values())
