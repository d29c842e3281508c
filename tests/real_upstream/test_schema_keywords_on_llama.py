"""Which JSON-Schema keywords llama.cpp's grammar enforces, measured on llama-server (docs/llm_gateway.md's table).

Each case sends one schema under `response_format: json_schema` for a few seeds and checks the answers
with jsonschema. "Enforced": every answer is valid. "Ignored": the schema is built so that only the keyword
could make an answer valid (e.g. `multipleOf: 7` between 1 and 6 has no valid value at all, so an answer
proves the keyword was not part of the grammar). Ollama builds its `format` grammar with the same converter.
The gateway validates every answer whatever the decoder did, and repairs once.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import jsonschema
import pytest

from tests.upstreams.llama_server import LlamaServer

pytestmark = pytest.mark.real_upstream

SEEDS = (1, 2, 3, 4)

ENFORCED: dict[str, dict[str, Any]] = {
    "type, properties, required": {"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]},
    "enum": {"enum": [1, "two", None, True]},
    "const": {"const": {"k": [1, 2]}},
    "minLength/maxLength": {"type": "string", "minLength": 5, "maxLength": 6},
    "pattern": {"type": "string", "pattern": "^[ab]{3}-[0-9]{2}$"},
    "minimum/maximum (integer)": {"type": "integer", "minimum": 10, "maximum": 12},
    "exclusiveMinimum/exclusiveMaximum (integer)": {"type": "integer", "exclusiveMinimum": 10, "exclusiveMaximum": 13},
    "minItems/maxItems": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3},
    "prefixItems (without items)": {"type": "array", "prefixItems": [{"const": "a"}, {"type": "boolean"}]},
    "anyOf": {"anyOf": [{"const": "x"}, {"const": 7}]},
    "oneOf": {"oneOf": [{"type": "integer"}, {"type": "boolean"}]},
    "type list with null": {"type": ["string", "null"], "maxLength": 2},
    "format uuid": {"type": "string", "format": "uuid"},
    "$ref/$defs": {"$defs": {"x": {"enum": ["p", "q"]}}, "type": "object", "properties": {"v": {"$ref": "#/$defs/x"}},
                   "required": ["v"]},
}

IGNORED: dict[str, dict[str, Any]] = {
    "multipleOf": {"type": "integer", "multipleOf": 7, "minimum": 1, "maximum": 6},
    "minimum/maximum (number)": {"type": "number", "minimum": 1000.25, "maximum": 1000.5},
    "uniqueItems": {"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 3, "uniqueItems": True},
    "minProperties": {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 3,
                      "maxProperties": 3},
    "not": {"type": "string", "maxLength": 0, "not": {"const": ""}},
    "contains": {"type": "array", "items": {"type": "integer"}, "contains": {"const": 123456}, "maxItems": 2},
    "dependentRequired": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                          "required": ["a"], "dependentRequired": {"a": ["b"]}},
    "if/then": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a"], "if": {"required": ["a"]}, "then": {"required": ["b"]}},
    "format email": {"type": "string", "format": "email", "maxLength": 3},
}


async def answers(server: LlamaServer, value: dict[str, Any]) -> list[tuple[Any, bool]]:
    """(value, valid) for each seed, the keyword's schema as the one property `v` of the root object.

    `$defs` in `value` move to the root, where its `#/$defs/...` references point.
    """
    value = dict(value)
    defs = value.pop("$defs", None)
    schema = {"type": "object", "properties": {"v": value}, "required": ["v"], "additionalProperties": False}
    if defs is not None:
        schema["$defs"] = defs
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    out = []
    async with aiohttp.ClientSession() as session:
        for seed in SEEDS:
            body = {"messages": [{"role": "user", "content": "Answer."}], "seed": seed, "max_tokens": 300,
                    "response_format": {"type": "json_schema", "json_schema": {"name": "v", "schema": schema}}}
            async with session.post(server.base_url + "/v1/chat/completions", json=body) as resp:
                assert resp.status == 200, await resp.text()
                doc = json.loads((await resp.json())["choices"][0]["message"]["content"])
            out.append((doc["v"], validator.is_valid(doc)))
    return out


@pytest.mark.parametrize("keyword", ENFORCED)
async def test_enforced_keywords(llama: LlamaServer, keyword: str) -> None:
    got = await answers(llama, ENFORCED[keyword])
    assert all(valid for _, valid in got), got


@pytest.mark.parametrize("keyword", IGNORED)
async def test_ignored_keywords(llama: LlamaServer, keyword: str) -> None:
    got = await answers(llama, IGNORED[keyword])
    assert not any(valid for _, valid in got), got


async def test_items_wins_over_prefix_items(llama: LlamaServer) -> None:
    """With both keywords the grammar is built from `items` alone (the copywriter schema's old bug)."""
    got = await answers(llama, {"type": "array", "prefixItems": [{"const": "a"}], "items": {"type": "boolean"},
                                "minItems": 1})
    assert all(v and all(isinstance(x, bool) for x in v) and not valid for v, valid in got), got


async def test_items_false_is_refused(llama: LlamaServer) -> None:
    body = {"messages": [{"role": "user", "content": "Answer."}], "max_tokens": 20, "response_format": {
        "type": "json_schema", "json_schema": {"name": "v", "schema": {
            "type": "object", "properties": {"v": {"type": "array", "prefixItems": [{"const": 1}], "items": False}}}}}}
    async with aiohttp.ClientSession() as session:
        async with session.post(llama.base_url + "/v1/chat/completions", json=body) as resp:
            assert resp.status == 400


async def test_format_date_is_shaped_but_not_a_calendar(llama: LlamaServer) -> None:
    """`format: date` gives YYYY-MM-DD shapes, not checked against the calendar (e.g. 8497-02-29 comes out)."""
    got = await answers(llama, {"type": "string", "format": "date"})
    assert all(len(v) == 10 and v[4] == v[7] == "-" for v, _ in got), got
