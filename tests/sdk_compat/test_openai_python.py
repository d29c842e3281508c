"""The official `openai` Python package against the gateway's /v1, in mock mode and in front of each provider."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pydantic
import pytest

from .conftest import ALIAS, Gateway

MESSAGES: list[Any] = [{"role": "system", "content": "You write product copy."},
                       {"role": "user", "content": "Write a headline for the Aurora kettle."}]
TOOLS: list[Any] = [{"type": "function", "function": {
    "name": "get_stock", "description": "Units in stock for a product.",
    "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"],
                   "additionalProperties": False}}}]


class Headline(pydantic.BaseModel):
    headline: str
    bullets: list[str]


@pytest.fixture
async def client(gateway: Gateway) -> AsyncIterator[openai.AsyncOpenAI]:
    sdk = openai.AsyncOpenAI(base_url=gateway.v1, api_key="not-needed", max_retries=0, timeout=20)
    yield sdk
    await sdk.close()


async def test_create_answers_with_the_alias_as_model(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.create(model=ALIAS, messages=MESSAGES)
    assert completion.model == ALIAS and completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "stop" and completion.system_fingerprint


async def test_stream_with_usage(client: openai.AsyncOpenAI) -> None:
    stream = await client.chat.completions.create(model=ALIAS, messages=MESSAGES, stream=True,
                                                  stream_options={"include_usage": True})
    chunks = [chunk async for chunk in stream]
    assert {c.model for c in chunks} == {ALIAS}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert chunks[-1].choices == [] and chunks[-1].usage is not None


async def test_parse_gives_a_validated_pydantic_object(client: openai.AsyncOpenAI) -> None:
    completion = await client.chat.completions.parse(model=ALIAS, messages=MESSAGES, response_format=Headline)
    parsed = completion.choices[0].message.parsed
    assert isinstance(parsed, Headline)


async def test_a_tool_round_trip(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(model=ALIAS, messages=MESSAGES, tools=TOOLS,
                                                 tool_choice="required")
    message = first.choices[0].message
    assert first.choices[0].finish_reason == "tool_calls" and message.tool_calls
    call = message.tool_calls[0]
    assert call.function.name == "get_stock" and "sku" in json.loads(call.function.arguments)
    conversation = [*MESSAGES, message.model_dump(exclude_none=True),
                    {"role": "tool", "tool_call_id": call.id, "content": "12 units"}]
    second = await client.chat.completions.create(model=ALIAS, messages=conversation, tools=TOOLS)
    assert second.choices[0].message.content and not second.choices[0].message.tool_calls


async def test_streamed_tool_calls_accumulate(client: openai.AsyncOpenAI) -> None:
    async with client.chat.completions.stream(model=ALIAS, messages=MESSAGES, tools=TOOLS,
                                              tool_choice={"type": "function", "function": {"name": "get_stock"}}
                                              ) as stream:
        final = await stream.get_final_completion()
    [call] = final.choices[0].message.tool_calls or []
    assert call.function.name == "get_stock" and "sku" in json.loads(call.function.arguments)


async def test_errors_are_the_sdks_typed_errors(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        await client.chat.completions.create(model="no-such-model", messages=MESSAGES)
    assert missing.value.code == "model_not_found" and missing.value.param == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        await client.chat.completions.create(model=ALIAS, messages=MESSAGES, temperature=3.5)
    assert bad.value.param == "temperature" and bad.value.type == "invalid_request_error"
    model = await client.models.retrieve(ALIAS)
    assert model.id == ALIAS


async def test_embeddings_in_the_sdks_default_base64(client: openai.AsyncOpenAI, gateway: Gateway) -> None:
    if gateway.kind == "anthropic":
        with pytest.raises(openai.NotFoundError):
            await client.embeddings.create(model="role:search", input=["a lamp"])
        return
    result = await client.embeddings.create(model="role:search", input=["a lamp", "a kettle"], dimensions=8)
    again = await client.embeddings.create(model="role:search", input="a lamp", dimensions=8, encoding_format="float")
    assert [len(item.embedding) for item in result.data] == [8, 8]
    assert result.data[0].embedding == pytest.approx(again.data[0].embedding, rel=1e-6)
    assert result.model == "role:search"
