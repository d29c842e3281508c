"""Mock behaves like live where a test notices (issue 14 item 2): max_tokens, stop, JSON mode, patterns,
and a 400 naming the keyword for what the mock cannot honour; over the native, streamed and /v1 endpoints."""

from __future__ import annotations

import re
from typing import Any

import msgspec
import pytest

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config
from tests.fakes.asgi import AsgiClient, AsgiResponse, sse_events

GENERATE = "/api/v1/llm/generate"
STREAM = "/api/v1/llm/generate/stream"
CHAT = "/v1/chat/completions"
MOCK_ONLY = {"mode": "mock", "llm_routing": {"default": {"provider": "mock", "model": "m"}}}
PRODUCT = {"name": "Aurora Desk Lamp", "category": "Home > Lighting", "key_features": ["Dimmable warm LED"],
           "target_customer": "students", "language": "en"}
BODY: dict[str, Any] = {"role": "copywriter", "task": "blurb", "payload": {"product": PRODUCT, "language": "en"},
                        "messages": [{"role": "user", "content": "Write a blurb for the lamp."}]}


async def _native(extra: dict[str, Any]) -> dict[str, Any]:
    async with AsgiClient(create_app(parse_gateway_config(MOCK_ONLY))) as client:
        reply = await client.post(GENERATE, json={**BODY, **extra})
    assert reply.status == 200, reply.json()
    body: dict[str, Any] = reply.json()
    return body


async def _streamed(extra: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    async with AsgiClient(create_app(parse_gateway_config(MOCK_ONLY))) as client:
        reply = await client.post(STREAM, json={**BODY, **extra})
    assert reply.status == 200
    events = sse_events(reply.body)
    text = "".join(data["text"] for name, data in events if name == "delta")
    done = next(data for name, data in events if name == "done")
    return text, done


def _chunks(reply: AsgiResponse) -> list[dict[str, Any]]:
    lines = [line[len("data: ") :] for line in reply.body.decode().split("\n") if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [msgspec.json.decode(line) for line in lines[:-1]]


async def _chat(extra: dict[str, Any]) -> AsgiResponse:
    body = {"model": "role:copywriter/task:blurb", "messages": BODY["messages"], **extra}
    async with AsgiClient(create_app(parse_gateway_config(MOCK_ONLY))) as client:
        return await client.post(CHAT, json=body)


async def test_max_tokens_truncates_with_finish_reason_length() -> None:
    full = await _native({})
    cut = await _native({"options": {"max_tokens": 5}})
    assert full["usage"]["output_tokens"] > 5
    assert cut["finish_reason"] == "length" and cut["usage"]["output_tokens"] <= 5
    assert full["text"].startswith(cut["text"]) and len(cut["text"]) < len(full["text"])


async def test_stop_ends_the_text_before_the_stop_string() -> None:
    full = await _native({})
    assert "." in full["text"]
    cut = await _native({"options": {"stop": ["."]}})
    assert cut["finish_reason"] == "stop" and "." not in cut["text"]
    assert cut["text"] == full["text"][: full["text"].index(".")]


async def test_a_stop_string_past_max_tokens_does_not_count() -> None:
    full = await _native({})
    last_word = full["text"].split()[-1]
    cut = await _native({"options": {"max_tokens": 3, "stop": [last_word]}})
    assert cut["finish_reason"] == "length" and cut["usage"]["output_tokens"] <= 3


@pytest.mark.parametrize("options", [{"max_tokens": 5}, {"stop": ["."]}, {"max_tokens": 7, "stop": [","]}])
async def test_the_stream_ends_where_the_complete_answer_does(options: dict[str, Any]) -> None:
    whole = await _native({"options": options})
    text, done = await _streamed({"options": options})
    assert text == whole["text"] == done["text"]
    assert done["finish_reason"] == whole["finish_reason"]
    assert done["usage"]["output_tokens"] == whole["usage"]["output_tokens"]


async def test_openai_endpoint_max_tokens_and_stop_streamed_and_not() -> None:
    reply = await _chat({"max_tokens": 4})
    choice = reply.json()["choices"][0]
    assert choice["finish_reason"] == "length" and reply.json()["usage"]["completion_tokens"] <= 4
    streamed = _chunks(await _chat({"max_tokens": 4, "stream": True}))
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in streamed if c["choices"])
    assert text == choice["message"]["content"]
    assert [c["choices"][0]["finish_reason"] for c in streamed if c["choices"]][-1] == "length"
    stopped = (await _chat({"stop": "."})).json()["choices"][0]
    assert stopped["finish_reason"] == "stop" and "." not in stopped["message"]["content"]


async def test_json_mode_answers_a_non_empty_object() -> None:
    native = await _native({"response_schema": {"type": "object"}})
    assert isinstance(native["json"], dict) and native["json"]
    reply = await _chat({"response_format": {"type": "json_object"}})
    doc = msgspec.json.decode(reply.json()["choices"][0]["message"]["content"])
    assert isinstance(doc, dict) and doc and all(value not in ("", [], {}) for value in doc.values())


@pytest.mark.parametrize("pattern", [r"^\d{3}$", r"^[0-9]{5}$", r"^#[0-9a-fA-F]{6}$", r"^(red|green|blue)$",
                                     r"^[a-z]+(-[a-z]+)*$", r"^SKU-[A-Z]{2}\d{4}$", r"^(?!none)[a-z]{4,8}$"])
async def test_pattern_strings_are_generated_to_match(pattern: str) -> None:
    schema = {"type": "object", "properties": {"value": {"type": "string", "pattern": pattern}}, "required": ["value"]}
    body = await _native({"response_schema": schema})
    assert re.search(pattern, body["json"]["value"])
    reply = await _chat({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}})
    assert reply.status == 200
    assert re.search(pattern, msgspec.json.decode(reply.json()["choices"][0]["message"]["content"])["value"])


@pytest.mark.parametrize(
    ("prop", "keyword"),
    [
        ({"type": "string", "not": {"maxLength": 1000}}, "not"),
        ({"type": "array", "items": {"enum": ["a", "b"]}, "minItems": 3, "uniqueItems": True}, "uniqueItems"),
        ({"oneOf": [{"type": "string"}, {"type": "string", "maxLength": 5000}]}, "oneOf"),
        ({"type": "string", "pattern": "^[\\x00-\\U0010ffff]{60}$"}, "pattern"),
    ],
)
@pytest.mark.parametrize("path", [GENERATE, STREAM])
async def test_what_the_mock_cannot_honour_is_a_400_naming_the_keyword(
    prop: dict[str, Any], keyword: str, path: str
) -> None:
    schema = {"type": "object", "properties": {"a": prop}, "required": ["a"]}
    async with AsgiClient(create_app(parse_gateway_config(MOCK_ONLY))) as client:
        reply = await client.post(path, json={**BODY, "response_schema": schema})
    # Streamed too (issue 15): nothing is sent before the first piece, so the refusal is an ordinary 400.
    assert reply.status == 400, reply.body
    error = reply.json()["error"]
    assert error["code"] == "invalid_request" and error["details"]["keyword"] == keyword
    assert keyword in error["message"]
