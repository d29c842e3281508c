"""OpenAIProvider against recorded Chat Completions payloads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import msgspec
import pytest
from aioresponses import aioresponses

from llm_gateway.providers.base import Delta, ProviderResult
from llm_gateway.providers.openai import OpenAIProvider, OpenAISettings
from shared_contracts.errors import (
    ProviderUnavailable,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnauthorized,
)

from ._support import KEY, SCHEMA, fixture, in_seconds, make_call, sent, sent_bodies

BASE = "https://api.openai.com"
URL = f"{BASE}/v1/chat/completions"


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIProvider]:
    provider = OpenAIProvider("openai", OpenAISettings(api_key=KEY))
    await provider.start()
    yield provider
    await provider.close()


async def collect(provider: OpenAIProvider, **call: Any) -> list[Delta | ProviderResult]:
    return [item async for item in provider.stream(make_call(**call), deadline=in_seconds(5))]


async def test_generate_sends_the_chat_completions_request(openai: OpenAIProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("openai", "chat_completion.json"))
    await openai.generate(make_call(extra={"user": "pdp-team"}), deadline=in_seconds(5))
    body, headers = sent(upstream, "POST", URL)
    assert headers["authorization"] == f"Bearer {KEY}"
    assert body == {
        "model": "test-model",
        "messages": [
            {"role": "system", "content": "You write product copy."},
            {"role": "user", "content": "Describe the Aurora kettle."},
        ],
        "max_tokens": 256,
        "temperature": 0.2,
        "top_p": 0.9,
        "seed": 7,
        "stop": ["###"],
        "user": "pdp-team",
    }


async def test_generate_normalises_text_and_usage(openai: OpenAIProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("openai", "chat_completion.json"))
    result = await openai.generate(make_call(), deadline=in_seconds(5))
    assert result == ProviderResult(
        text="The Aurora kettle boils a litre in under three minutes and keeps water warm for an hour.",
        finish_reason="stop",
        input_tokens=31,
        output_tokens=19,
    )


async def test_structured_output_uses_a_strict_json_schema(openai: OpenAIProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("openai", "chat_completion_structured.json"))
    result = await openai.generate(make_call(response_schema=SCHEMA), deadline=in_seconds(5))
    body, _ = sent(upstream, "POST", URL)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Copy", "schema": SCHEMA, "strict": True},
    }
    assert result.text.startswith('{"headline":"Boil faster')


class Section(msgspec.Struct):
    title: str
    bullets: list[str] = []


class Page(msgspec.Struct):
    """What an agent sends: msgspec's schema, optional fields and no `additionalProperties`."""

    headline: str
    sections: list[Section]
    note: str | None = None


def _agent_schema() -> dict[str, Any]:
    raw = msgspec.json.schema(Page)
    defs = dict(raw["$defs"])
    return {**defs.pop("Page"), "$defs": defs}


async def test_schema_outside_strict_mode_is_sent_non_strict(openai: OpenAIProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("openai", "chat_completion_structured.json"))
    schema = _agent_schema()
    await openai.generate(make_call(response_schema=schema), deadline=in_seconds(5))
    body, _ = sent(upstream, "POST", URL)
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "Page", "schema": schema, "strict": False},
    }


@pytest.mark.parametrize(("setting", "strict"), [(True, True), (False, False)])
async def test_strict_schema_setting_overrides_the_check(upstream: aioresponses, setting: bool, strict: bool) -> None:
    provider = OpenAIProvider("openai", OpenAISettings(api_key=KEY, strict_schema=setting))
    await provider.start()
    try:
        for schema in (SCHEMA, _agent_schema()):
            upstream.post(URL, body=fixture("openai", "chat_completion_structured.json"))
            await provider.generate(make_call(response_schema=schema), deadline=in_seconds(5))
    finally:
        await provider.close()
    bodies = sent_bodies(upstream, "POST", URL)
    assert [b["response_format"]["json_schema"]["strict"] for b in bodies] == [strict, strict]


async def test_forced_strict_on_an_unfit_schema_is_the_upstreams_rejection(upstream: aioresponses) -> None:
    provider = OpenAIProvider("openai", OpenAISettings(api_key=KEY, strict_schema=True))
    await provider.start()
    upstream.post(URL, status=400, body=fixture("openai", "error_400_invalid_schema.json"))
    try:
        with pytest.raises(UpstreamRejected) as caught:
            await provider.generate(make_call(response_schema=_agent_schema()), deadline=in_seconds(5))
    finally:
        await provider.close()
    assert caught.value.details["status"] == 400


async def test_compatible_server_without_key_or_json_schema(upstream: aioresponses) -> None:
    settings = OpenAISettings(
        base_url="http://127.0.0.1:8000/",
        key_required=False,
        structured_output="json_object",
        max_tokens_field="max_completion_tokens",
    )
    provider = OpenAIProvider("vllm", settings)
    await provider.start()
    try:
        upstream.post("http://127.0.0.1:8000/v1/chat/completions", body=fixture("openai", "chat_completion.json"))
        await provider.generate(make_call(response_schema=SCHEMA), deadline=in_seconds(5))
    finally:
        await provider.close()
    body, headers = sent(upstream, "POST", "http://127.0.0.1:8000/v1/chat/completions")
    assert "authorization" not in headers
    assert body["response_format"] == {"type": "json_object"}
    assert body["max_completion_tokens"] == 256 and "max_tokens" not in body


async def test_refusal_is_a_rejection(openai: OpenAIProvider, upstream: aioresponses) -> None:
    upstream.post(URL, body=fixture("openai", "chat_completion_refusal.json"))
    with pytest.raises(UpstreamRejected) as caught:
        await openai.generate(make_call(response_schema=SCHEMA), deadline=in_seconds(5))
    assert caught.value.details["reason"] == "refusal"
    assert caught.value.details["refusal"] == "I'm sorry, I can't assist with that request."


async def test_stream_yields_deltas_then_usage_from_the_final_chunk(
    openai: OpenAIProvider, upstream: aioresponses
) -> None:
    upstream.post(URL, body=fixture("openai", "chat_stream.txt"), content_type="text/event-stream")
    items = await collect(openai)
    assert items == [
        Delta("The Aurora"),
        Delta(" kettle boils"),
        Delta(" fast."),
        ProviderResult(text="The Aurora kettle boils fast.", finish_reason="stop", input_tokens=31, output_tokens=6),
    ]
    body, _ = sent(upstream, "POST", URL)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


async def test_stream_cut_before_done_is_an_error(openai: OpenAIProvider, upstream: aioresponses) -> None:
    frames = fixture("openai", "chat_stream.txt").split(b"\n\n")[:3]
    upstream.post(URL, body=b"\n\n".join(frames) + b"\n\n", content_type="text/event-stream")
    with pytest.raises(UpstreamError, match="ended early"):
        await collect(openai)


async def test_error_frame_inside_the_stream(openai: OpenAIProvider, upstream: aioresponses) -> None:
    frame = (
        b'data: {"error": {"message": "The server had an error", "type": "server_error", "param": null, '
        b'"code": null}}\n\n'
    )
    upstream.post(URL, body=frame, content_type="text/event-stream")
    with pytest.raises(UpstreamError) as caught:
        await collect(openai)
    assert caught.value.retryable
    assert caught.value.details["type"] == "server_error"


async def test_unauthorized_message_never_quotes_the_key(openai: OpenAIProvider, upstream: aioresponses) -> None:
    upstream.post(URL, status=401, body=fixture("openai", "error_401_invalid_api_key.json"))
    with pytest.raises(UpstreamUnauthorized) as caught:
        await openai.generate(make_call(), deadline=in_seconds(5))
    assert "sk-" not in caught.value.message
    assert caught.value.details["code"] == "invalid_api_key"


async def test_errors_in_streaming_mode_too(openai: OpenAIProvider, upstream: aioresponses) -> None:
    upstream.post(URL, status=429, body=fixture("openai", "error_429_rate_limit_exceeded.json"))
    with pytest.raises(RateLimited):
        await collect(openai)


async def test_no_answer_before_the_deadline(openai: OpenAIProvider, upstream: aioresponses) -> None:
    never = asyncio.Event()

    async def hang(url: Any, **kwargs: Any) -> None:
        await never.wait()

    upstream.post(URL, callback=hang)
    with pytest.raises(UpstreamTimeout):
        await openai.generate(make_call(), deadline=in_seconds(0.05))


async def test_connection_refused_is_provider_unavailable(openai: OpenAIProvider, upstream: aioresponses) -> None:
    upstream.post(URL, exception=aiohttp.ClientConnectionError("refused"))
    with pytest.raises(ProviderUnavailable):
        await openai.generate(make_call(), deadline=in_seconds(5))


async def test_health_lists_models(openai: OpenAIProvider, upstream: aioresponses) -> None:
    upstream.get(f"{BASE}/v1/models", body=fixture("openai", "models.json"))
    await openai.health(deadline=in_seconds(5))
    upstream.get(f"{BASE}/v1/models", status=401, body=fixture("openai", "error_401_invalid_api_key.json"))
    with pytest.raises(UpstreamUnauthorized):
        await openai.health(deadline=in_seconds(5))


@pytest.mark.parametrize("base_url", ["http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1",
                                      "http://127.0.0.1:8080/v1/"])
async def test_base_url_with_or_without_v1_reaches_the_same_paths(upstream: aioresponses, base_url: str) -> None:
    # Before: `.../v1` (as SDK users and every local server's docs write it) became /v1/v1/chat/completions.
    provider = OpenAIProvider("local", OpenAISettings(base_url=base_url, key_required=False))
    await provider.start()
    try:
        upstream.post("http://127.0.0.1:8080/v1/chat/completions", body=fixture("openai", "chat_completion.json"))
        upstream.get("http://127.0.0.1:8080/v1/models", body=fixture("openai", "models.json"))
        await provider.generate(make_call(), deadline=in_seconds(5))
        await provider.health(deadline=in_seconds(5))
    finally:
        await provider.close()
    assert provider.api_url == "http://127.0.0.1:8080/v1"


async def test_health_says_when_the_base_url_answers_404(upstream: aioresponses) -> None:
    provider = OpenAIProvider("local", OpenAISettings(base_url="http://127.0.0.1:8080/api", key_required=False))
    await provider.start()
    try:
        upstream.get("http://127.0.0.1:8080/api/v1/models", status=404, body=b'{"detail": "Not Found"}')
        with pytest.raises(UpstreamRejected) as caught:
            await provider.health(deadline=in_seconds(5))
    finally:
        await provider.close()
    assert "GET http://127.0.0.1:8080/api/v1/models answered 404" in caught.value.message
    assert "base_url should be the server's root or its /v1 URL" in caught.value.message
    assert caught.value.details["reason"] == "wrong_base_url"


async def test_json_object_schema_sends_the_schema_inside_json_object(upstream: aioresponses) -> None:
    settings = OpenAISettings(
        base_url="http://127.0.0.1:8000", key_required=False, structured_output="json_object_schema"
    )
    provider = OpenAIProvider("llama-cpp-python", settings)
    await provider.start()
    try:
        upstream.post("http://127.0.0.1:8000/v1/chat/completions", body=fixture("openai", "chat_completion.json"))
        await provider.generate(make_call(response_schema=SCHEMA), deadline=in_seconds(5))
    finally:
        await provider.close()
    body, _ = sent(upstream, "POST", "http://127.0.0.1:8000/v1/chat/completions")
    assert body["response_format"] == {"type": "json_object", "schema": SCHEMA}


async def test_usage_the_server_did_not_send_is_unknown_not_zero(
    openai: OpenAIProvider, upstream: aioresponses
) -> None:
    completion = msgspec.json.decode(fixture("openai", "chat_completion.json"))
    del completion["usage"]
    upstream.post(URL, body=msgspec.json.encode(completion))
    result = await openai.generate(make_call(), deadline=in_seconds(5))
    assert (result.input_tokens, result.output_tokens) == (None, None)
    frames = [f for f in fixture("openai", "chat_stream.txt").split(b"\n\n") if f and b'"usage"' not in f]
    upstream.post(URL, body=b"\n\n".join(frames) + b"\n\n", content_type="text/event-stream")
    final = (await collect(openai))[-1]
    assert isinstance(final, ProviderResult) and (final.input_tokens, final.output_tokens) == (None, None)
