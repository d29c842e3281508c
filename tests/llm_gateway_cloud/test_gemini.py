"""GeminiProvider against recorded generateContent payloads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aioresponses import aioresponses

from llm_gateway.providers.base import Delta, ProviderResult
from llm_gateway.providers.gemini import GeminiProvider, GeminiSettings
from shared_contracts.errors import UpstreamError, UpstreamRejected, UpstreamUnauthorized
from shared_contracts.llm import Message

from ._support import KEY, SCHEMA, fixture, in_seconds, make_call, sent

BASE = "https://generativelanguage.googleapis.com/v1beta/models/test-model"
URL = f"{BASE}:generateContent"
STREAM_URL = f"{BASE}:streamGenerateContent?alt=sse"


@pytest.fixture
async def gemini() -> AsyncIterator[GeminiProvider]:
    provider = GeminiProvider("gemini", GeminiSettings(api_key=KEY))
    await provider.start()
    yield provider
    await provider.close()


async def collect(provider: GeminiProvider, **call: Any) -> list[Delta | ProviderResult]:
    return [item async for item in provider.stream(make_call(**call), deadline=in_seconds(5))]


async def test_generate_sends_contents_and_generation_config(gemini: GeminiProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("gemini", "generate_content.json"))
    messages = [
        Message(role="system", content="You write product copy."),
        Message(role="user", content="Describe the Aurora kettle."),
        Message(role="assistant", content="A fast kettle."),
        Message(role="user", content="Longer, please."),
    ]
    await gemini.generate(make_call(messages=messages), deadline=in_seconds(5))
    body, headers = sent(upstream, "POST", URL)
    assert headers["x-goog-api-key"] == KEY
    assert body == {
        "systemInstruction": {"parts": [{"text": "You write product copy."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "Describe the Aurora kettle."}]},
            {"role": "model", "parts": [{"text": "A fast kettle."}]},
            {"role": "user", "parts": [{"text": "Longer, please."}]},
        ],
        "generationConfig": {
            "maxOutputTokens": 256,
            "temperature": 0.2,
            "topP": 0.9,
            "seed": 7,
            "stopSequences": ["###"],
        },
    }


async def test_text_and_usage_metadata(gemini: GeminiProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("gemini", "generate_content.json"))
    result = await gemini.generate(make_call(), deadline=in_seconds(5))
    assert result == ProviderResult(
        text="Meet Aurora: a kettle that boils a litre in under three minutes and keeps it warm for an hour.",
        finish_reason="stop",
        input_tokens=27,
        output_tokens=24,
    )


async def test_structured_output_sends_mime_type_and_schema(gemini: GeminiProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("gemini", "generate_content_json.json"))
    result = await gemini.generate(make_call(response_schema=SCHEMA), deadline=in_seconds(5))
    body, _ = sent(upstream, "POST", URL)
    assert body["generationConfig"]["responseMimeType"] == "application/json"
    assert body["generationConfig"]["responseJsonSchema"] == SCHEMA
    assert result.text.startswith('{"headline": "Boil faster')
    # Thinking tokens are billed as output.
    assert (result.input_tokens, result.output_tokens) == (96, 31 + 118)


async def test_route_extras_merge_into_generation_config(upstream: aioresponses) -> None:
    provider = GeminiProvider("gemini", GeminiSettings(api_key=KEY, schema_field="responseSchema"))
    await provider.start()
    try:
        upstream.post(URL, body=fixture("gemini", "generate_content.json"))
        extra = {"generationConfig": {"thinkingConfig": {"thinkingBudget": 0}}}
        await provider.generate(make_call(response_schema=SCHEMA, extra=extra), deadline=in_seconds(5))
    finally:
        await provider.close()
    body, _ = sent(upstream, "POST", URL)
    config = body["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 0}
    assert config["responseSchema"] == SCHEMA and config["temperature"] == 0.2


async def test_blocked_prompt_is_a_clear_rejection(gemini: GeminiProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("gemini", "prompt_blocked.json"))
    with pytest.raises(UpstreamRejected, match=r"prompt was blocked \(SAFETY\)") as caught:
        await gemini.generate(make_call(), deadline=in_seconds(5))
    assert caught.value.details["block_reason"] == "SAFETY"


async def test_blocked_prompt_in_a_stream(gemini: GeminiProvider, upstream: aioresponses) -> None:
    frame = b"data: " + fixture("gemini", "prompt_blocked.json").replace(b"\n", b"") + b"\r\n\r\n"
    upstream.post(STREAM_URL, body=frame, content_type="text/event-stream")
    with pytest.raises(UpstreamRejected, match="blocked"):
        await collect(gemini)


async def test_stream_uses_alt_sse_and_crlf_frames(gemini: GeminiProvider, upstream: aioresponses) -> None:
    upstream.post(STREAM_URL, body=fixture("gemini", "stream.txt"), content_type="text/event-stream")
    items = await collect(gemini)
    assert items == [
        Delta("Meet Aurora:"),
        Delta(" a kettle that boils a litre"),
        Delta(" in under three minutes."),
        ProviderResult(
            text="Meet Aurora: a kettle that boils a litre in under three minutes.",
            finish_reason="stop",
            input_tokens=27,
            output_tokens=16,
        ),
    ]


async def test_stream_without_finish_reason_is_an_error(gemini: GeminiProvider, upstream: aioresponses) -> None:
    first = fixture("gemini", "stream.txt").split(b"\r\n\r\n")[0] + b"\r\n\r\n"
    upstream.post(STREAM_URL, body=first, content_type="text/event-stream")
    with pytest.raises(UpstreamError, match="ended early"):
        await collect(gemini)


async def test_api_key_invalid_names_the_reason(gemini: GeminiProvider, upstream: aioresponses) -> None:
    upstream.post(URL, status=400, body=fixture("gemini", "error_400_api_key_invalid.json"))
    with pytest.raises(UpstreamUnauthorized) as caught:
        await gemini.generate(make_call(), deadline=in_seconds(5))
    assert caught.value.details["reason"] == "API_KEY_INVALID"


async def test_health_lists_models(gemini: GeminiProvider, upstream: aioresponses) -> None:
    upstream.get(
        "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1",
        status=400,
        body=fixture("gemini", "error_400_api_key_invalid.json"),
    )
    with pytest.raises(UpstreamUnauthorized):
        await gemini.health(deadline=in_seconds(5))
