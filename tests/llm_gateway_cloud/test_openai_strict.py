"""strict_compatible: which JSON Schemas OpenAI's strict structured output accepts unchanged."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from llm_gateway.providers.openai import strict_compatible

from ._support import SCHEMA


def _closed(properties: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        **more,
    }


NESTED: dict[str, Any] = _closed(
    {
        "headline": {"type": "string", "description": "One line."},
        "sections": {"type": "array", "items": {"$ref": "#/$defs/Section"}, "minItems": 1, "maxItems": 8},
        "cta": {"anyOf": [{"$ref": "#/$defs/Cta"}, {"type": "null"}]},
        "tone": {"type": "string", "enum": ["calm", "bold"]},
        "score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
    },
    title="Page",
    **{
        "$defs": {
            "Section": _closed({"id": {"type": "string", "pattern": "^[a-z]+$"}, "body": {"type": "string"}}),
            "Cta": _closed({"label": {"type": "string"}}),
        }
    },
)


def _spoiled(path: list[str], key: str, value: Any = None, *, drop: bool = False) -> dict[str, Any]:
    schema = copy.deepcopy(NESTED)
    node = schema
    for step in path:
        node = node[int(step)] if isinstance(node, list) else node[step]
    if drop:
        del node[key]
    else:
        node[key] = value
    return schema


def test_closed_schemas_with_defs_refs_items_and_any_of_are_compatible() -> None:
    assert strict_compatible(SCHEMA)
    assert strict_compatible(NESTED)


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(_spoiled([], "additionalProperties", drop=True), id="root-open"),
        pytest.param(_spoiled(["$defs", "Section"], "additionalProperties", True), id="def-open"),
        pytest.param(_spoiled(["$defs", "Cta"], "required", []), id="def-optional-field"),
        pytest.param(_spoiled([], "required", ["headline"]), id="root-optional-field"),
        pytest.param(_spoiled(["properties", "headline"], "minLength", 1), id="unsupported-keyword"),
        pytest.param(_spoiled(["properties", "tone"], "default", "calm"), id="default"),
        pytest.param(_spoiled(["properties", "cta", "anyOf", "1"], "maxLength", 3), id="keyword-in-any-of"),
        pytest.param(
            _spoiled(["properties", "sections", "items"], "$ref", "https://example.test/s.json"), id="remote-ref"
        ),
        pytest.param(_closed({"free": {}}), id="untyped-property"),
        pytest.param(_closed({"tone": {"enum": ["calm", "bold"]}}), id="bare-enum"),
        pytest.param(_spoiled(["properties", "sections"], "items", {"type": "object"}), id="open-item-object"),
        pytest.param({"anyOf": [NESTED, {"type": "null"}]}, id="root-not-an-object"),
        pytest.param({"type": "object", "properties": "headline", "additionalProperties": False}, id="malformed"),
    ],
)
def test_schemas_strict_mode_would_refuse(schema: dict[str, Any]) -> None:
    assert not strict_compatible(schema)
