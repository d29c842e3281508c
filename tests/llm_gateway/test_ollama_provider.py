"""The Ollama provider against recorded Ollama payloads (aioresponses) and a real refused connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest
from aioresponses import aioresponses

from llm_gateway.providers.base import Delta, ProviderResult
from llm_gateway.providers.ollama import OllamaProvider, OllamaSettings
from shared_contracts.errors import (
    ProviderUnavailable,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnauthorized,
)
from shared_contracts.llm import GenerateOptions

from ._support import call, fixture_bytes, in_seconds

URL = "http://ollama.test:11434"
CHAT = f"{URL}/api/chat"


@pytest.fixture
async def ollama() -> AsyncIterator[OllamaProvider]:
    provider = OllamaProvider("ollama", OllamaSettings(base_url=URL, keep_alive="10m"))
    await provider.start()
    yield provider
    await provider.close()


def sent_body(upstream: aioresponses) -> dict[str, Any]:
    (request,) = [r for key, rs in upstream.requests.items() for r in rs]
    body: dict[str, Any] = msgspec.json.decode(request.kwargs["data"])
    return body


async def collect(provider: OllamaProvider, **kw: Any) -> tuple[list[str], ProviderResult]:
    pieces: list[str] = []
    result = None
    async for item in provider.stream(call(**kw), deadline=in_seconds(5)):
        if isinstance(item, Delta):
            pieces.append(item.text)
        else:
            result = item
    assert result is not None
    return pieces, result


async def test_non_streaming_answer_text_usage_and_finish(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, body=fixture_bytes("chat.json"), content_type="application/json")
    result = await ollama.generate(call(), deadline=in_seconds(5))
    body = sent_body(upstream)
    assert result.text == "The Aurora Desk Lamp brings soft, even light to any workspace."
    assert (result.input_tokens, result.output_tokens, result.finish_reason) == (38, 14, "stop")
    assert body["stream"] is False
    assert body["model"] == "qwen2.5:7b"
    assert body["messages"] == [{"role": "user", "content": "Describe the lamp."}]
    assert body["keep_alive"] == "10m"
    assert "format" not in body and "options" not in body


async def test_options_map_to_ollama_names_and_route_extras_pass_through(
    ollama: OllamaProvider, upstream: aioresponses
) -> None:
    options = GenerateOptions(temperature=0.2, max_tokens=64, top_p=0.9, seed=7, stop=["\n\n"])
    upstream.post(CHAT, body=fixture_bytes("chat.json"))
    await ollama.generate(call(options=options, extra={"keep_alive": -1, "num_ctx": 8192}), deadline=in_seconds(5))
    body = sent_body(upstream)
    assert body["options"] == {"temperature": 0.2, "num_predict": 64, "top_p": 0.9, "seed": 7, "stop": ["\n\n"],
                               "num_ctx": 8192}
    assert body["keep_alive"] == -1
    assert "max_tokens" not in body["options"]


async def test_structured_output_sends_schema_as_format(ollama: OllamaProvider, upstream: aioresponses) -> None:
    schema = {"type": "object", "properties": {"headline": {"type": "string"}}, "required": ["headline"]}
    upstream.post(CHAT, body=fixture_bytes("chat_structured.json"))
    result = await ollama.generate(call(response_schema=schema), deadline=in_seconds(5))
    body = sent_body(upstream)
    assert body["format"] == schema
    assert msgspec.json.decode(result.text)["bullets"][1] == "USB-C charging"
    assert (result.input_tokens, result.output_tokens) == (112, 41)


async def test_streaming_yields_pieces_then_result_with_stats(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, body=fixture_bytes("chat_stream.ndjson"), content_type="application/x-ndjson")
    pieces, result = await collect(ollama)
    body = sent_body(upstream)
    assert body["stream"] is True
    assert pieces == ["The", " Aurora", " Desk Lamp", " glows."]
    assert result.text == "The Aurora Desk Lamp glows."
    assert (result.input_tokens, result.output_tokens, result.finish_reason) == (31, 5, "stop")


async def test_unknown_model_404_is_rejected_naming_the_model(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, status=404, body=fixture_bytes("model_not_found.json"))
    with pytest.raises(UpstreamRejected) as caught:
        await ollama.generate(call(model="qwen9:404b"), deadline=in_seconds(5))
    err = caught.value
    assert err.code == "upstream_rejected" and not err.retryable
    assert 'model "qwen9:404b" not found' in err.message
    assert err.details["status"] == 404 and err.details["model"] == "qwen9:404b"


async def test_unknown_model_404_while_streaming(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, status=404, body=fixture_bytes("model_not_found.json"))
    with pytest.raises(UpstreamRejected):
        await collect(ollama, model="qwen9:404b")


async def test_http_500_is_a_retryable_upstream_error(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, status=500, body=fixture_bytes("server_error.json"))
    with pytest.raises(UpstreamError) as caught:
        await ollama.generate(call(), deadline=in_seconds(5))
    err = caught.value
    assert type(err) is UpstreamError and err.retryable
    assert err.details["status"] == 500
    assert err.details["upstream_error"] == "llama runner process has terminated: signal: killed"


async def test_500_with_a_non_json_body_keeps_the_text(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, status=502, body=b"<html>bad gateway</html>")
    with pytest.raises(UpstreamError) as caught:
        await ollama.generate(call(), deadline=in_seconds(5))
    assert caught.value.details["upstream_error"] == "<html>bad gateway</html>"


@pytest.mark.parametrize(
    ("status", "error_type"),
    [(401, UpstreamUnauthorized), (403, UpstreamUnauthorized), (429, RateLimited), (400, UpstreamRejected)],
)
async def test_other_statuses_map_to_their_codes(
    ollama: OllamaProvider, status: int, error_type: type, upstream: aioresponses
) -> None:
    upstream.post(CHAT, status=status, body=b'{"error":"nope"}', headers={"Retry-After": "3"})
    with pytest.raises(error_type) as caught:
        await ollama.generate(call(), deadline=in_seconds(5))
    if status == 429:
        assert caught.value.retry_after == 3.0


async def test_error_line_mid_stream_after_200(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, body=fixture_bytes("stream_error_midway.ndjson"))
    pieces: list[str] = []
    with pytest.raises(UpstreamError) as caught:
        async for item in ollama.stream(call(), deadline=in_seconds(5)):
            assert isinstance(item, Delta)
            pieces.append(item.text)
    assert pieces == ["The", " Aurora"]
    assert "unexpected EOF" in caught.value.message
    assert caught.value.details["upstream_error"].startswith("an error was encountered")


async def test_malformed_line_is_an_upstream_error(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, body=fixture_bytes("stream_malformed.ndjson"))
    with pytest.raises(UpstreamError) as caught:
        await collect(ollama)
    assert "malformed" in caught.value.message


async def test_malformed_non_streaming_body(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, body=b'{"model": "qwen2.5:7b", "message": ')
    with pytest.raises(UpstreamError, match="malformed"):
        await ollama.generate(call(), deadline=in_seconds(5))


async def test_stream_without_final_line_is_an_upstream_error(ollama: OllamaProvider, upstream: aioresponses) -> None:
    lines = fixture_bytes("chat_stream.ndjson").splitlines(keepends=True)[:2]
    upstream.post(CHAT, body=b"".join(lines))
    with pytest.raises(UpstreamError, match="final line"):
        await collect(ollama)


async def test_timeout_becomes_upstream_timeout(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, exception=TimeoutError())
    with pytest.raises(UpstreamTimeout) as caught:
        await ollama.generate(call(), deadline=in_seconds(5))
    assert caught.value.status == 504


async def test_past_deadline_times_out_without_calling(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.post(CHAT, body=fixture_bytes("chat.json"))
    with pytest.raises(UpstreamTimeout):
        await ollama.generate(call(), deadline=in_seconds(-1))


async def test_connection_refused_is_provider_unavailable(refused_port: int) -> None:
    provider = OllamaProvider("ollama", OllamaSettings(base_url=f"http://127.0.0.1:{refused_port}"))
    await provider.start()
    try:
        with pytest.raises(ProviderUnavailable) as caught:
            await provider.generate(call(), deadline=in_seconds(5))
        with pytest.raises(ProviderUnavailable):
            await collect(provider)
        with pytest.raises(ProviderUnavailable):
            await provider.health(deadline=in_seconds(5))
    finally:
        await provider.close()
    assert caught.value.status == 503 and caught.value.retryable


async def test_health_reads_api_version(ollama: OllamaProvider, upstream: aioresponses) -> None:
    upstream.get(f"{URL}/api/version", payload={"version": "0.6.5"})
    await ollama.health(deadline=in_seconds(5))
    upstream.get(f"{URL}/api/version", status=500)
    with pytest.raises(UpstreamError):
        await ollama.health(deadline=in_seconds(5))


def test_bad_base_url_is_refused_at_construction() -> None:
    with pytest.raises(ValueError, match="base_url"):
        OllamaProvider("ollama", OllamaSettings(base_url="localhost:11434"))
