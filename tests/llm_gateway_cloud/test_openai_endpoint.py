"""The OpenAI-compatible endpoint, driven by the official `openai` SDK against the gateway on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import openai
import pytest

from llm_gateway.app import create_app
from llm_gateway.config import load_gateway_config
from tests.fakes.serving import serve_app

CONFIG = Path(__file__).resolve().parents[2] / "config" / "llm_gateway.yaml"
MESSAGES: list[Any] = [
    {"role": "system", "content": "You write product copy."},
    {"role": "user", "content": "Write a headline for the Aurora kettle."},
]
SCHEMA = {
    "type": "object",
    "properties": {"headline": {"type": "string"}, "bullets": {"type": "array", "items": {"type": "string"}}},
    "required": ["headline", "bullets"],
    "additionalProperties": False,
}


@pytest.fixture
async def gateway() -> AsyncIterator[str]:
    """The shipped YAML in mock mode, served by uvicorn on loopback."""
    config = load_gateway_config(CONFIG, environ={"GENERATOR_MODE": "mock"})
    async with serve_app(create_app(config)) as url:
        yield url


@pytest.fixture
async def client(gateway: str) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key="not-needed", max_retries=0, timeout=20)
    yield sdk
    await sdk.close()


async def native(gateway: str, body: dict[str, Any]) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{gateway}/api/v1/llm/generate", json=body) as resp:
            assert resp.status == 200, await resp.text()
            return msgspec.json.decode(await resp.read())  # type: ignore[no-any-return]


async def test_chat_completion_matches_the_native_mock_answer(gateway: str, client: openai.AsyncOpenAI) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="role:copywriter", messages=MESSAGES, max_tokens=200)
    completion = raw.parse()
    expected = await native(gateway, {"role": "copywriter", "task": "chat", "messages": MESSAGES})
    choice = completion.choices[0]
    assert completion.object == "chat.completion"
    assert choice.message.role == "assistant"
    assert choice.message.content == expected["text"]
    assert choice.finish_reason == expected["finish_reason"] == "stop"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens == expected["usage"]["input_tokens"]
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    # The model the client asked for; the one that answered is in a header (issue 15).
    assert completion.model == "role:copywriter"
    assert raw.headers["x-gateway-model"] == expected["model"] and raw.headers["x-gateway-provider"] == "mock"
    assert completion.system_fingerprint == "fp_mock"


async def test_streaming_chunks_add_up_to_the_same_text(gateway: str, client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(
        model="role:copywriter/task:chat", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    expected = await native(gateway, {"role": "copywriter", "task": "chat", "messages": MESSAGES})
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == expected["text"]
    finishing = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishing == ["stop"]
    # include_usage: the last chunk has no choices and carries the usage.
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == expected["usage"]["input_tokens"]


async def test_structured_output_through_response_format(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(
        model="role:strategist/task:positioning",
        messages=MESSAGES,
        response_format={"type": "json_schema", "json_schema": {"name": "copy", "schema": SCHEMA, "strict": True}},
    )
    document = msgspec.json.decode(completion.choices[0].message.content or "")
    assert set(document) == {"headline", "bullets"}
    assert isinstance(document["headline"], str) and isinstance(document["bullets"], list)


async def test_models_lists_route_aliases_and_configured_models(client: openai.AsyncOpenAI) -> None:
    models = [m.id async for m in client.models.list()]
    for role in ("strategist", "copywriter", "brand", "brief", "vision", "reviewer"):
        assert f"role:{role}" in models
    configured = [m for m in models if not m.startswith("role:")]
    assert configured, models
    # A configured model is itself a valid `model`.
    completion = await client.chat.completions.create(model=configured[0], messages=MESSAGES)
    assert completion.choices[0].message.content


async def test_unknown_model_and_bad_options_raise_sdk_errors(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert missing.value.code == "model_not_found" and missing.value.param == "model"
    assert missing.value.type == "not_found_error" and missing.value.request_id
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="role:copywriter", messages=MESSAGES, temperature=3.5)
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(model="role:copywriter/colour:blue", messages=MESSAGES)
    # n > 1 is honoured now (issue 15): one gateway call per choice, each with its own seed.
    two = await client.chat.completions.create(model="role:copywriter", messages=MESSAGES, n=2)
    assert [c.index for c in two.choices] == [0, 1] and two.choices[0].message.content


async def test_errors_are_openai_error_objects(gateway: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.post(
            f"{gateway}/v1/chat/completions", json={"model": "role:x", "messages": [], "x": 1}
        ) as resp:
            assert resp.status == 400
            error = msgspec.json.decode(await resp.read())["error"]
    assert error["code"] == "invalid_request" and error["type"] == "invalid_request_error"
    assert set(error) == {"message", "type", "param", "code"}
