"""`/v1/chat/completions` with `stream: true`: a structured answer is validated (and repaired) before it is sent,
so the stream never delivers what the gateway would reject; unknown usage is `null`, never 0."""

from __future__ import annotations

import json
from typing import Any

from llm_gateway.app import create_app
from llm_gateway.config import parse_gateway_config
from tests.fakes.asgi import AsgiClient

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 7}}, "required": ["n"],
          "additionalProperties": False}
MESSAGES = [{"role": "user", "content": "Pick a number."}]


def app(replies: list[str], *, report_usage: bool = True) -> Any:
    config = parse_gateway_config({
        "mode": "live",
        "providers": {"scripted": {"class": "tests.llm_gateway._support:ReplyProvider", "replies": replies,
                                   "report_usage": report_usage}},
        "llm_routing": {"default": {"provider": "scripted", "model": "m"}},
    })
    return create_app(config)


def chat(*, schema: dict[str, Any] | None = SCHEMA, **more: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": "role:brand", "messages": MESSAGES, "stream": True, **more}
    if schema is not None:
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": "n", "schema": schema}}
    return body


def chunks(raw: bytes) -> list[Any]:
    """The `data:` payloads of a chat-completion stream, `[DONE]` kept as a string."""
    out: list[Any] = []
    for frame in raw.decode().split("\n\n"):
        if frame.startswith("data: "):
            data = frame[len("data: "):]
            out.append(data if data == "[DONE]" else json.loads(data))
    return out


def content(frames: list[Any]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in frames if isinstance(c, dict)
                   and c.get("choices"))


async def test_a_valid_structured_answer_is_sent_whole_after_validation() -> None:
    async with AsgiClient(app(['{"n": 14}'])) as client:
        reply = await client.post("/v1/chat/completions", json=chat())
    frames = chunks(reply.body)
    assert reply.status == 200 and frames[-1] == "[DONE]"
    contents = [c["choices"][0]["delta"]["content"] for c in frames[1:-1] if c["choices"][0]["delta"].get("content")]
    assert contents == ['{"n": 14}']  # one piece, after the gateway accepted it
    assert frames[-2]["choices"][0]["finish_reason"] == "stop"


async def test_a_repaired_answer_is_the_only_one_the_stream_delivers() -> None:
    # Before: the first try's deltas went out as they came, so the client got {"n": 3} while the native
    # `done` event and the non-streamed answer carried the repaired {"n": 0}.
    async with AsgiClient(app(['{"n": 3}', '{"n": 0}'])) as client:
        reply = await client.post("/v1/chat/completions", json=chat())
        native = await client.post("/api/v1/llm/generate", json={
            "role": "brand", "task": "chat", "messages": MESSAGES, "response_schema": SCHEMA})
    assert content(chunks(reply.body)) == '{"n": 0}'
    assert b'"n": 3' not in reply.body and b'\\"n\\": 3' not in reply.body
    assert native.json()["json"] == {"n": 0}  # the third and fourth answer: the same repair, natively


async def test_an_answer_still_invalid_after_the_repair_is_an_http_422_with_no_content() -> None:
    # Before issue 15: a 200 whose last chunk was the error. Nothing is sent before the first piece exists now,
    # and a validated answer's first piece is the whole answer, so the failure is an ordinary HTTP error.
    async with AsgiClient(app(['{"n": 3}', '{"n": 5}'])) as client:
        reply = await client.post("/v1/chat/completions", json=chat())
    assert reply.status == 422
    assert reply.json() == {"error": {"message": reply.json()["error"]["message"], "type": "api_error",
                                      "param": None, "code": "invalid_output"}}
    assert reply.headers["x-should-retry"] == "false"


async def test_a_plain_stream_still_streams_piece_by_piece() -> None:
    async with AsgiClient(app(["one two three"])) as client:
        reply = await client.post("/v1/chat/completions", json=chat(schema=None))
    frames = chunks(reply.body)
    pieces = [c["choices"][0]["delta"].get("content") for c in frames[1:-2]]
    assert pieces == ["one ", "two ", "three"]


async def test_unknown_usage_is_null_on_both_surfaces_never_zero() -> None:
    async with AsgiClient(app(["fine"], report_usage=False)) as client:
        streamed = await client.post(
            "/v1/chat/completions", json=chat(schema=None, stream_options={"include_usage": True}))
        whole = await client.post("/v1/chat/completions", json={"model": "role:brand", "messages": MESSAGES})
        native = await client.post("/api/v1/llm/generate", json={"role": "brand", "task": "chat",
                                                                  "messages": MESSAGES})
    frames = chunks(streamed.body)
    assert frames[-2]["choices"] == [] and frames[-2]["usage"] is None
    assert whole.json()["usage"] is None
    assert native.json()["usage"] == {"input_tokens": None, "output_tokens": None}


async def test_known_usage_is_reported_on_both_surfaces() -> None:
    async with AsgiClient(app(["fine words"])) as client:
        whole = await client.post("/v1/chat/completions", json={"model": "role:brand", "messages": MESSAGES})
        native = await client.post("/api/v1/llm/generate", json={"role": "brand", "task": "chat",
                                                                  "messages": MESSAGES})
    assert whole.json()["usage"] == {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    assert native.json()["usage"] == {"input_tokens": 1, "output_tokens": 2}
