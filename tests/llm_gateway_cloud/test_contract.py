"""One contract for every provider (cloud, Ollama, mock): the normalised ProviderResult, streamed or not,
from recorded payloads."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import msgspec
import pytest
from aioresponses import aioresponses

from llm_gateway.providers.anthropic import AnthropicProvider, AnthropicSettings
from llm_gateway.providers.base import Delta, Provider, ProviderResult
from llm_gateway.providers.gemini import GeminiProvider, GeminiSettings
from llm_gateway.providers.mock import MockProvider, MockSettings
from llm_gateway.providers.ollama import OllamaProvider, OllamaSettings
from llm_gateway.providers.openai import OpenAIProvider, OpenAISettings

from ._support import KEY, fixture, in_seconds, make_call

GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/test-model"


@dataclass(frozen=True)
class Case:
    build: Callable[[], Provider]
    url: str
    stream_url: str
    vendor: str
    body: str
    stream: str
    stream_type: str = "text/event-stream"


CASES = {
    "openai": Case(
        lambda: OpenAIProvider("openai", OpenAISettings(api_key=KEY)),
        "https://api.openai.com/v1/chat/completions",
        "https://api.openai.com/v1/chat/completions",
        "openai",
        "chat_completion.json",
        "chat_stream.txt",
    ),
    "anthropic": Case(
        lambda: AnthropicProvider("anthropic", AnthropicSettings(api_key=KEY)),
        "https://api.anthropic.com/v1/messages",
        "https://api.anthropic.com/v1/messages",
        "anthropic",
        "message.json",
        "stream.txt",
    ),
    "gemini": Case(
        lambda: GeminiProvider("gemini", GeminiSettings(api_key=KEY)),
        f"{GEMINI}:generateContent",
        f"{GEMINI}:streamGenerateContent?alt=sse",
        "gemini",
        "generate_content.json",
        "stream.txt",
    ),
    "ollama": Case(
        lambda: OllamaProvider("ollama", OllamaSettings(base_url="http://ollama.test:11434")),
        "http://ollama.test:11434/api/chat",
        "http://ollama.test:11434/api/chat",
        "ollama",
        "chat.json",
        "chat_stream.ndjson",
        "application/x-ndjson",
    ),
    # The mock calls no upstream: empty URLs register nothing.
    "mock": Case(lambda: MockProvider("mock", MockSettings(fixtures_dir="/nonexistent")), "", "", "", "", ""),
}


@pytest.fixture(params=sorted(CASES))
async def case(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Case, Provider]]:
    spec = CASES[request.param]
    provider = spec.build()
    await provider.start()
    yield spec, provider
    await provider.close()


def assert_normalised(result: object) -> None:
    assert type(result) is ProviderResult
    assert msgspec.structs.fields(result) == msgspec.structs.fields(ProviderResult)
    assert isinstance(result.text, str) and result.text
    assert result.finish_reason in {"stop", "length", "content_filter"}
    assert type(result.input_tokens) is int and result.input_tokens > 0
    assert type(result.output_tokens) is int and result.output_tokens > 0


async def test_generate_returns_a_normalised_result(case: tuple[Case, Provider], upstream: aioresponses) -> None:
    spec, provider = case
    if spec.url:
        upstream.post(spec.url, body=fixture(spec.vendor, spec.body))
    assert_normalised(await provider.generate(make_call(), deadline=in_seconds(5)))


async def test_stream_is_deltas_then_one_result_with_their_text(
    case: tuple[Case, Provider], upstream: aioresponses
) -> None:
    spec, provider = case
    if spec.stream_url:
        upstream.post(spec.stream_url, body=fixture(spec.vendor, spec.stream), content_type=spec.stream_type)
    items = [item async for item in provider.stream(make_call(), deadline=in_seconds(5))]
    *deltas, last = items
    assert deltas and all(type(d) is Delta for d in deltas)
    assert_normalised(last)
    assert isinstance(last, ProviderResult)
    assert "".join(d.text for d in deltas if isinstance(d, Delta)) == last.text


def test_every_provider_is_built_from_name_and_settings_only() -> None:
    for cls in (OpenAIProvider, AnthropicProvider, GeminiProvider, OllamaProvider, MockProvider):
        assert issubclass(cls, Provider)
        assert cls.kind == ("mock" if cls is MockProvider else "live")
        assert issubclass(cls.Settings, msgspec.Struct)
