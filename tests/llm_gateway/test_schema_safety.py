"""A client's `response_schema` can make the gateway fetch nothing, crash on nothing and block on nothing."""

from __future__ import annotations

import random
import urllib.request
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config
from llm_gateway.providers.base import ProviderCall
from llm_gateway.providers.mock import MockProvider, MockSettings
from llm_gateway.providers.mock.prose import Prose
from llm_gateway.providers.mock.synth import synthesize
from llm_gateway.structured import OutputSchema
from shared_contracts.errors import InvalidOutput, InvalidRequest
from shared_contracts.llm import GenerateOptions, Message
from tests.fakes.asgi import AsgiClient

GENERATE = "/api/v1/llm/generate"
BODY = {"role": "brand", "task": "x", "messages": [{"role": "user", "content": "hi"}]}
MOCK_ONLY = {"mode": "mock", "llm_routing": {"default": {"provider": "mock", "model": "m"}}}


@pytest.fixture
def no_urlopen(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Record any attempt to open a URL (jsonschema's remote `$ref` retrieval uses urlopen) instead of making it."""
    calls: list[Any] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        raise AssertionError("the gateway tried to fetch a URL named by a client")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return calls


def _object(prop: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": {"a": prop}, "required": ["a"]}


@pytest.mark.parametrize(
    "schema",
    [
        _object({"$ref": "http://127.0.0.1:9/secret"}),
        _object({"type": "array", "items": {"$ref": "https://example.com/s.json"}}),
        {"type": "object", "allOf": [{"$dynamicRef": "file:///etc/passwd"}]},
        {"$ref": "//internal.host/x", "type": "object"},
    ],
)
def test_a_reference_outside_the_schema_is_refused_before_any_fetch(
    schema: dict[str, Any], no_urlopen: list[Any]
) -> None:
    with pytest.raises(InvalidRequest, match="points outside the schema"):
        OutputSchema(schema)
    assert no_urlopen == []


def test_an_unresolvable_reference_is_a_400_and_fetches_nothing(no_urlopen: list[Any]) -> None:
    schema = {"$id": "http://127.0.0.1:9/root.json", **_object({"$ref": "#/$defs/missing"})}
    # Refused up front (issue 15), before any model is asked: before, only the answer's check found it.
    with pytest.raises(InvalidRequest, match="does not resolve"):
        OutputSchema(schema)
    assert no_urlopen == []


def test_local_references_still_work(no_urlopen: list[Any]) -> None:
    schema = {**_object({"$ref": "#/$defs/name"}), "$defs": {"name": {"type": "string", "minLength": 2}}}
    assert OutputSchema(schema).parse('{"a": "ok"}') == {"a": "ok"}
    assert no_urlopen == []


async def test_remote_reference_over_http_is_the_400_envelope(no_urlopen: list[Any]) -> None:
    app = create_app(parse_gateway_config(MOCK_ONLY))
    async with AsgiClient(app) as client:
        reply = await client.post(GENERATE, json={**BODY, "response_schema": _object({"$ref": "http://127.0.0.1:9/x"})})
    assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_request"
    assert no_urlopen == []


def _synth(schema: dict[str, Any]) -> Any:
    return synthesize(schema, prose=Prose({"name": "Lamp"}, role="brand", task="x"), rng=random.Random(1))


@pytest.mark.parametrize(
    "prop",
    [
        {"type": "string", "minLength": 10**9},
        {"type": "array", "minItems": 10**9},
        {"type": "array", "minItems": 2000, "items": {"type": "array", "minItems": 2000}},
    ],
)
def test_mock_refuses_a_document_too_large_to_write(prop: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match="larger document"):
        _synth(_object(prop))


def test_mock_refuses_a_huge_object() -> None:
    with pytest.raises(InvalidRequest, match="larger document"):
        _synth({"type": "object", "minProperties": 10**9})


@pytest.mark.parametrize(
    ("prop", "check"),
    [
        ({"type": "integer", "minimum": 10**30}, lambda v: v >= 10**30),
        ({"type": "integer", "maximum": -(10**30)}, lambda v: v <= -(10**30)),
        ({"type": "number", "multipleOf": 1e-9, "minimum": 0.5, "maximum": 1e9}, lambda v: 0.5 <= v <= 1e9),
    ],
)
def test_mock_numbers_beyond_the_usual_range(prop: dict[str, Any], check: Any) -> None:
    assert check(_synth(_object(prop))["a"])


@pytest.mark.parametrize(
    "prop", [{"type": "number", "minimum": 5, "maximum": 1}, {"type": "integer", "minimum": 1.5, "maximum": 1.7}]
)
def test_mock_refuses_an_empty_number_range(prop: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequest, match="no value"):
        _synth(_object(prop))


# `(a|aa)+$` backtracks exponentially on a run of a's followed by another character.
SLOW_PATTERN = "(a|aa)+$"


def test_a_backtracking_pattern_is_a_400_not_a_blocked_event_loop() -> None:
    checked = OutputSchema(_object({"type": "string", "pattern": SLOW_PATTERN}))
    with pytest.raises(InvalidRequest, match="took over"):
        checked.parse('{"a": "' + "a" * 60 + 'b"}')


def test_patterns_still_validate() -> None:
    checked = OutputSchema(_object({"type": "string", "pattern": "^[a-z]+-[0-9]+$"}))
    assert checked.parse('{"a": "hero-1"}') == {"a": "hero-1"}
    with pytest.raises(InvalidOutput, match="does not match"):
        checked.parse('{"a": "Hero"}')


def test_property_names_patterns_run_bounded_too() -> None:
    checked = OutputSchema({"type": "object", "propertyNames": {"pattern": SLOW_PATTERN}})
    with pytest.raises(InvalidRequest, match="took over"):
        checked.parse('{"' + "a" * 60 + 'b": 1}')


def test_pattern_properties_are_refused_up_front() -> None:
    with pytest.raises(InvalidRequest, match="patternProperties is not supported"):
        OutputSchema({"type": "object", "patternProperties": {SLOW_PATTERN: {"type": "string"}}})


async def test_a_backtracking_pattern_in_mock_mode_still_gets_a_matching_answer() -> None:
    app = create_app(parse_gateway_config(MOCK_ONLY))
    schema = _object({"type": "string", "pattern": SLOW_PATTERN, "minLength": 1})
    async with AsgiClient(app) as client:
        reply = await client.post(GENERATE, json={**BODY, "response_schema": schema})
    assert reply.status == 200
    assert set(reply.json()["json"]["a"]) == {"a"}  # only a's can match the pattern


# Issue 13 item 3: schemas that made mock synthesis block the event loop or crash.


def _doubling_chain(levels: int) -> dict[str, Any]:
    """`allOf` + `$ref` where each level applies the next one twice: 2**levels subschemas at one place."""
    defs: dict[str, Any] = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2} for i in range(levels)}
    defs[f"d{levels}"] = {"type": "object", "properties": {"x": {"type": "string"}}, "required": ["x"]}
    return {**_object({"$ref": "#/$defs/d0"}), "$defs": defs}


def test_an_exponential_allof_chain_is_refused_naming_the_limit() -> None:
    with pytest.raises(InvalidRequest, match="more than 256 subschemas") as caught:
        _synth(_doubling_chain(16))
    assert caught.value.details["limit"] == 256


def test_a_long_linear_ref_chain_still_works() -> None:
    defs: dict[str, Any] = {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"minLength": 1}]} for i in range(20)}
    defs["d20"] = {"type": "string"}
    schema = {**_object({"$ref": "#/$defs/d0"}), "$defs": defs}
    assert OutputSchema(schema).parse(msgspec.json.encode(_synth(schema)).decode())["a"]


SELF_REQUIRED = {"type": "object", "properties": {"a": {"$ref": "#"}}, "required": ["a"]}
SELF_ANYOF_ROOT = {"type": "object", "anyOf": [{"$ref": "#"}]}
SELF_ANYOF_PROPERTY = _object({"anyOf": [{"$ref": "#/properties/a"}, {"type": "string", "minLength": 2}]})
UNKNOWN_ANCHOR = _object({"$ref": "#foo"})
HUGE_MULTIPLE = _object({"type": "number", "multipleOf": 1e-300, "minimum": 1e300})


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        (SELF_REQUIRED, "nests deeper than 48 levels"),
        (SELF_ANYOF_ROOT, "leads back to where it started"),
        (SELF_ANYOF_PROPERTY, "leads back to where it started"),
        (UNKNOWN_ANCHOR, "'#foo' does not resolve"),
        ({"type": "object", "allOf": [{"$ref": "#"}]}, "leads back to where it started"),
    ],
)
def test_schemas_with_no_finite_document_are_refused_not_recursed(schema: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        _synth(schema)


@pytest.mark.parametrize(
    "schema",
    [
        HUGE_MULTIPLE,
        {**_object({"$ref": "#foo"}), "$defs": {"x": {"$anchor": "foo", "type": "integer", "minimum": 3}}},
        _object({"type": "number", "multipleOf": 0.1, "exclusiveMinimum": 0, "maximum": 1}),
        _object({"type": "integer", "multipleOf": 0.3, "minimum": 1}),
    ],
)
def test_hard_but_satisfiable_schemas_get_a_valid_document(schema: dict[str, Any]) -> None:
    doc = _synth(schema)
    assert OutputSchema(schema).parse(msgspec.json.encode(doc).decode()) == doc


@pytest.mark.parametrize(
    ("schema", "status"),
    [
        (_doubling_chain(16), 400),
        (SELF_REQUIRED, 400),
        (SELF_ANYOF_ROOT, 400),
        (UNKNOWN_ANCHOR, 400),
        (SELF_ANYOF_PROPERTY, 400),
        (HUGE_MULTIPLE, 200),
    ],
)
async def test_schema_bombs_over_http_are_a_400_or_an_answer_never_a_500(schema: dict[str, Any], status: int) -> None:
    app = create_app(parse_gateway_config(MOCK_ONLY))
    async with AsgiClient(app) as client:
        reply = await client.post(GENERATE, json={**BODY, "response_schema": schema})
        health = await client.get("/healthz")
    assert reply.status == status, reply.json()
    if status == 400:
        assert reply.json()["error"]["code"] == "invalid_request"
        assert reply.json()["error"]["details"]["path"] == "$.response_schema"
    else:
        assert reply.json()["json"] is not None
    assert health.status == 200


def _schemas() -> st.SearchStrategy[dict[str, Any]]:
    """Small schemas mixing every keyword the synthesiser handles, with refs into four `$defs` (cycles too)."""
    names = st.sampled_from(["d0", "d1", "d2", "d3"])
    leaf = st.one_of(
        st.fixed_dictionaries({"type": st.sampled_from(["string", "integer", "number", "boolean", "null"])}),
        st.fixed_dictionaries({"type": st.just("string")}, optional={
            "minLength": st.integers(0, 20), "maxLength": st.integers(0, 40),
            "pattern": st.sampled_from(["^[a-z]+$", r"^\d{2,4}$", "x", "^(a|b)c?$"]),
            "format": st.sampled_from(["date", "uuid", "email", "uri"])}),
        st.fixed_dictionaries({"type": st.sampled_from(["integer", "number"])}, optional={
            "minimum": st.integers(-50, 50), "maximum": st.integers(-50, 100),
            "exclusiveMinimum": st.integers(-60, 0), "multipleOf": st.sampled_from([1, 2, 0.5, 0.1, 7])}),
        st.fixed_dictionaries({"enum": st.lists(st.integers(0, 3) | st.text(max_size=3), min_size=1, max_size=3)}),
        st.fixed_dictionaries({"const": st.integers(0, 3)}),
        names.map(lambda n: {"$ref": f"#/$defs/{n}"}),
        st.just({"$ref": "#"}),
    )

    def grow(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        props = st.dictionaries(st.sampled_from(["a", "b", "c"]), inner, max_size=3)
        return st.one_of(
            props.flatmap(lambda p: st.fixed_dictionaries({"type": st.just("object"), "properties": st.just(p)},
                                                          optional={"required": st.just(sorted(p)[:2])})),
            st.fixed_dictionaries({"type": st.just("array"), "items": inner},
                                  optional={"minItems": st.integers(0, 3), "maxItems": st.integers(0, 5),
                                            "uniqueItems": st.booleans()}),
            st.lists(inner, min_size=1, max_size=3).map(lambda parts: {"allOf": parts}),
            st.lists(inner, min_size=1, max_size=3).map(lambda parts: {"anyOf": parts}),
            st.lists(inner, min_size=1, max_size=3).map(lambda parts: {"oneOf": parts}),
        )

    node = st.recursive(leaf, grow, max_leaves=12)
    return st.fixed_dictionaries({
        "type": st.just("object"),
        "properties": st.dictionaries(st.sampled_from(["x", "y", "z"]), node, max_size=3),
        "$defs": st.fixed_dictionaries({name: node for name in ("d0", "d1", "d2", "d3")}),
    }, optional={"required": st.just(["x"])})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(schema=_schemas(), seed=st.integers(0, 3))
def test_any_schema_gets_a_valid_answer_or_a_400_never_a_crash_or_a_422(schema: dict[str, Any], seed: int) -> None:
    try:
        checked = OutputSchema(schema)
    except InvalidRequest:
        return  # the gateway refuses it before any provider is called
    provider = MockProvider("mock", MockSettings(fixtures_dir="/nonexistent"))
    call = ProviderCall(model="m", messages=[Message(role="user", content=str(seed))], options=GenerateOptions(),
                        response_schema=schema, role="brand", task="x", payload={"name": "Lamp"})
    try:
        text = provider.answer(call)
    except InvalidRequest as refusal:
        assert refusal.details["path"] == "$.response_schema"
        return
    checked.parse(text)  # InvalidOutput here would be a 422 no live model following the schema gives


# Issue 15 (carried over): the gateway's own check of live answers, refused up front in every mode.


def _multiplying(copies: int) -> dict[str, Any]:
    """A definition whose child applies it `copies` times: copies**depth checks for a deep answer."""
    part = {"properties": {"x": {"$ref": "#/$defs/a"}}}
    return {**_object({"$ref": "#/$defs/a"}), "$defs": {"a": {"allOf": [part] * copies}}}


@pytest.mark.parametrize(
    ("schema", "limit"),
    [
        (_doubling_chain(16), {"limit": 256}),
        (_multiplying(20), {"limit": 256}),
        ({"type": "object", "allOf": [{"$ref": "#"}]}, {"reason": "cycle"}),
        (SELF_ANYOF_ROOT, {"reason": "cycle"}),
        (SELF_ANYOF_PROPERTY, {"reason": "cycle"}),
        (_object({"anyOf": [{"type": "string", "minLength": 2}, {"$ref": "#/properties/a"}]}), {"reason": "cycle"}),
    ],
)
def test_the_gateway_refuses_schemas_it_could_not_check_in_bounded_time(
    schema: dict[str, Any], limit: dict[str, Any]
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        OutputSchema(schema)
    assert caught.value.details == {"path": "$.response_schema", **limit}
    assert "limit" in caught.value.message or "never end" in caught.value.message


@pytest.mark.parametrize(
    "schema",
    [
        SELF_REQUIRED,  # recursion through nesting is bounded by the answer's own depth
        _multiplying(1),
        {**_object({"$ref": "#/$defs/tree"}), "$defs": {"tree": {"type": "object", "properties": {
            "left": {"$ref": "#/$defs/tree"}, "right": {"$ref": "#/$defs/tree"}}}}},
    ],
)
def test_recursive_schemas_that_check_in_bounded_time_are_accepted(schema: dict[str, Any]) -> None:
    OutputSchema(schema)


async def test_a_schema_bomb_is_a_400_in_live_mode_before_any_provider_call() -> None:
    config = parse_gateway_config({
        "mode": "live",
        "providers": {"scripted": {"class": "tests.llm_gateway._support:ReplyProvider", "replies": ['{"a": "x"}']}},
        "llm_routing": {"default": {"provider": "scripted", "model": "m"}},
    })
    app = create_app(config)
    async with AsgiClient(app) as client:
        reply = await client.post(GENERATE, json={**BODY, "response_schema": _doubling_chain(16)})
    assert reply.status == 400
    assert reply.json()["error"]["details"]["limit"] == 256
    provider = app.state.gateway.providers["scripted"]
    assert provider.calls == []
