"""The schema synthesiser writes documents that validate, for msgspec-generated and hand-written schemas."""

from __future__ import annotations

import datetime
import decimal
import random
import uuid
from typing import Annotated, Any, Literal

import jsonschema
import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from llm_gateway.providers.mock.prose import Prose
from llm_gateway.providers.mock.synth import synthesize


class Bullet(msgspec.Struct):
    text: Annotated[str, msgspec.Meta(min_length=30, max_length=80)]
    icon: Literal["check", "star", "leaf"]


class Section(msgspec.Struct):
    title: Annotated[str, msgspec.Meta(max_length=40)]
    bullets: Annotated[list[Bullet], msgspec.Meta(min_length=3, max_length=5)]


class Copy(msgspec.Struct):
    product_name: str
    headline: Annotated[str, msgspec.Meta(min_length=5, max_length=60)]
    sections: Annotated[list[Section], msgspec.Meta(min_length=1, max_length=2)]
    score: Annotated[int, msgspec.Meta(ge=1, le=10)]
    ratio: Annotated[float, msgspec.Meta(gt=0, lt=1)]
    price: Annotated[float, msgspec.Meta(ge=1, multiple_of=0.5)]
    count: Annotated[int, msgspec.Meta(ge=100, le=120, multiple_of=7)]
    tags: Annotated[list[str], msgspec.Meta(min_length=2, max_length=6)]
    colour: Annotated[str, msgspec.Meta(pattern="^[a-z-]+$")]
    published: datetime.datetime
    ref: uuid.UUID
    created_at: datetime.datetime
    amount: decimal.Decimal
    blob: bytes
    day: datetime.date
    mood: Literal["calm", "bold"] | None = None
    extras: dict[str, str] = {}


PROSE = Prose({"product_name": "Aurora Desk Lamp", "brand": {"name": "Lumen"}}, role="copywriter", task="pdp")


def make(schema: dict[str, Any], seed: int = 1) -> Any:
    return synthesize(schema, prose=PROSE, rng=random.Random(seed))


def test_msgspec_schema_with_refs_validates_and_decodes() -> None:
    schema = msgspec.json.schema(Copy)
    assert "$defs" in schema and "$ref" in schema
    for seed in range(25):
        doc = make(schema, seed)
        jsonschema.validate(doc, schema)
        decoded = msgspec.json.decode(msgspec.json.encode(doc), type=Copy)
        assert decoded.product_name == "Aurora Desk Lamp"  # reused from the payload


def test_strings_reuse_the_product_name_and_read_like_copy() -> None:
    schema = {"type": "object", "properties": {"headline": {"type": "string"}, "description": {"type": "string"}},
              "required": ["headline", "description"]}
    doc = make(schema)
    assert "Aurora Desk Lamp" in doc["headline"] + doc["description"]
    assert "lorem" not in (doc["headline"] + doc["description"]).lower()


def test_same_seed_same_document() -> None:
    schema = msgspec.json.schema(Copy)
    assert make(schema, 3) == make(schema, 3)


def test_hand_written_keywords() -> None:
    schema = {
        "type": "object",
        "properties": {
            "kind": {"const": "pdp"},
            "nullable": {"type": ["string", "null"], "maxLength": 12},
            "combo": {"allOf": [{"properties": {"a": {"type": "integer"}}, "required": ["a"]},
                                {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}]},
            "choice": {"oneOf": [{"type": "null"}, {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 7}]},
            "unique": {"type": "array", "items": {"enum": ["x", "y", "z"]}, "minItems": 3, "uniqueItems": True},
            "pair": {"type": "array", "prefixItems": [{"type": "string", "format": "email"}, {"type": "number"}],
                     "minItems": 2, "maxItems": 2},
            "bag": {"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 2},
            "anything": {},
            "link": {"type": "string", "format": "uri"},
        },
        "required": ["kind", "nullable", "combo", "choice", "unique", "pair", "bag", "anything", "link"],
        "additionalProperties": False,
    }
    doc = make(schema)
    jsonschema.validate(doc, schema, format_checker=jsonschema.FormatChecker())
    assert doc["choice"] == 6 and sorted(doc["unique"]) == ["x", "y", "z"]


def test_recursive_schema_stays_finite() -> None:
    schema = {
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["name"],
            }
        },
    }
    jsonschema.validate(make(schema), schema)


bounds = st.integers(min_value=0, max_value=300)


@settings(max_examples=60, deadline=None)
@given(
    min_len=bounds, extra_len=bounds, min_items=st.integers(0, 6), extra_items=st.integers(0, 4),
    low=st.integers(-1000, 1000), span=st.integers(0, 1000), step=st.sampled_from([None, 1, 3, 25]),
    name=st.sampled_from(["headline", "description", "prompt", "keywords", "sku", "misc", "url", "tone"]),
)
def test_bounds_are_always_respected(
    min_len: int, extra_len: int, min_items: int, extra_items: int, low: int, span: int, step: int | None, name: str
) -> None:
    number: dict[str, Any] = {"type": "integer", "minimum": low, "maximum": low + span}
    if step and (low + span) // step * step >= low:
        number["multipleOf"] = step
    schema = {
        "type": "object",
        "properties": {
            name: {"type": "string", "minLength": min_len, "maxLength": min_len + extra_len},
            "items": {"type": "array", "items": {"type": "string", "maxLength": 40},
                      "minItems": min_items, "maxItems": min_items + extra_items},
            "n": number,
            "x": {"type": "number", "minimum": low / 7, "maximum": (low + span) / 7},
        },
        "required": [name, "items", "n", "x"],
    }
    jsonschema.validate(make(schema), schema)
