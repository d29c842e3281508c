"""AnthropicProvider against recorded Messages API payloads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aioresponses import aioresponses

from llm_gateway.providers.anthropic import AnthropicProvider, AnthropicSettings
from llm_gateway.providers.base import Delta, ProviderResult
from shared_contracts.errors import UpstreamError, UpstreamRejected
from shared_contracts.llm import GenerateOptions

from ._support import KEY, SCHEMA, fixture, in_seconds, make_call, sent

URL = "https://api.anthropic.com/v1/messages"


@pytest.fixture
async def anthropic() -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider("anthropic", AnthropicSettings(api_key=KEY, max_tokens=1024))
    await provider.start()
    yield provider
    await provider.close()


async def collect(provider: AnthropicProvider, **call: Any) -> list[Delta | ProviderResult]:
    return [item async for item in provider.stream(make_call(**call), deadline=in_seconds(5))]


async def test_generate_sends_a_messages_request(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("anthropic", "message.json"))
    await anthropic.generate(make_call(), deadline=in_seconds(5))
    body, headers = sent(upstream, "POST", URL)
    assert headers["x-api-key"] == KEY
    assert headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in headers
    assert body == {
        "model": "test-model",
        "max_tokens": 256,
        "system": "You write product copy.",
        "messages": [{"role": "user", "content": "Describe the Aurora kettle."}],
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["###"],
    }


async def test_max_tokens_falls_back_to_yaml(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("anthropic", "message.json"))
    await anthropic.generate(make_call(options=GenerateOptions()), deadline=in_seconds(5))
    body, _ = sent(upstream, "POST", URL)
    assert body["max_tokens"] == 1024


async def test_content_blocks_and_usage(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("anthropic", "message.json"))
    result = await anthropic.generate(make_call(), deadline=in_seconds(5))
    assert result == ProviderResult(
        text="Position the Aurora kettle as the quiet upgrade for people who brew three times a day.",
        finish_reason="stop",
        input_tokens=42,
        output_tokens=21,
    )


async def test_structured_output_is_a_forced_tool_call(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("anthropic", "message_tool_use.json"))
    result = await anthropic.generate(make_call(response_schema=SCHEMA), deadline=in_seconds(5))
    body, _ = sent(upstream, "POST", URL)
    assert body["tools"] == [
        {"name": "respond", "description": "Give the answer as this tool's input.", "input_schema": SCHEMA}
    ]
    assert body["tool_choice"] == {"type": "tool", "name": "respond"}
    assert msgspec.json.decode(result.text) == {
        "positioning": "The quiet upgrade for daily brewers",
        "pillars": ["speed", "warmth", "calm design"],
    }
    assert (result.finish_reason, result.output_tokens) == ("stop", 47)


async def test_instructions_mode_puts_the_schema_in_system(upstream: aioresponses) -> None:
    provider = AnthropicProvider("claude", AnthropicSettings(api_key=KEY, structured_output="instructions"))
    await provider.start()
    try:
        upstream.post(URL, body=fixture("anthropic", "message.json"))
        await provider.generate(make_call(response_schema=SCHEMA), deadline=in_seconds(5))
    finally:
        await provider.close()
    body, _ = sent(upstream, "POST", URL)
    assert "tools" not in body
    assert body["system"].startswith("You write product copy.\n\nAnswer with one JSON document")
    assert msgspec.json.encode(SCHEMA).decode() in body["system"]


async def test_refusal_is_a_rejection(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("anthropic", "message_refusal.json"))
    with pytest.raises(UpstreamRejected, match="refused"):
        await anthropic.generate(make_call(), deadline=in_seconds(5))


async def test_stream_events_become_deltas_and_usage(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("anthropic", "stream.txt"), content_type="text/event-stream")
    items = await collect(anthropic)
    assert items == [
        Delta("Position the Aurora"),
        Delta(" kettle as a quiet upgrade."),
        ProviderResult(
            text="Position the Aurora kettle as a quiet upgrade.",
            finish_reason="stop",
            input_tokens=42,
            output_tokens=12,
        ),
    ]
    body, _ = sent(upstream, "POST", URL)
    assert body["stream"] is True


async def test_stream_of_a_tool_call_yields_its_json(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("anthropic", "stream_tool_use.txt"), content_type="text/event-stream")
    items = await collect(anthropic, response_schema=SCHEMA)
    result = items[-1]
    assert isinstance(result, ProviderResult)
    assert msgspec.json.decode(result.text) == {"positioning": "The quiet upgrade", "pillars": ["speed"]}
    assert "".join(i.text for i in items[:-1] if isinstance(i, Delta)) == result.text
    assert (result.input_tokens, result.output_tokens) == (388, 31)


async def test_error_event_mid_stream(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("anthropic", "stream_overloaded.txt"), content_type="text/event-stream")
    with pytest.raises(UpstreamError) as caught:
        await collect(anthropic)
    assert caught.value.retryable
    assert caught.value.details["type"] == "overloaded_error"


async def test_stream_without_message_stop_is_an_error(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    cut = fixture("anthropic", "stream.txt").split(b"event: message_delta")[0]
    upstream.post(URL, body=cut, content_type="text/event-stream")
    with pytest.raises(UpstreamError, match="ended early"):
        await collect(anthropic)


async def test_health_lists_models(anthropic: AnthropicProvider, upstream: aioresponses) -> None:
    upstream.get("https://api.anthropic.com/v1/models?limit=1", body=b'{"data": [], "has_more": false}')
    await anthropic.health(deadline=in_seconds(5))
