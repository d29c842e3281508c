"""Every vendor's recorded error bodies onto the shared error tree: class, retryability, retry_after."""

from __future__ import annotations

import pytest
from aioresponses import aioresponses

from llm_gateway.providers.anthropic import AnthropicProvider, AnthropicSettings
from llm_gateway.providers.base import Provider
from llm_gateway.providers.gemini import GeminiProvider, GeminiSettings
from llm_gateway.providers.openai import OpenAIProvider, OpenAISettings
from shared_contracts.errors import GatewayError, RateLimited, UpstreamError, UpstreamRejected, UpstreamUnauthorized

from ._support import KEY, fixture, in_seconds, make_call

URLS = {
    "openai": "https://api.openai.com/v1/chat/completions",
    "anthropic": "https://api.anthropic.com/v1/messages",
    "gemini": "https://generativelanguage.googleapis.com/v1beta/models/test-model:generateContent",
}


def build(vendor: str) -> Provider:
    if vendor == "openai":
        return OpenAIProvider(vendor, OpenAISettings(api_key=KEY))
    if vendor == "anthropic":
        return AnthropicProvider(vendor, AnthropicSettings(api_key=KEY))
    return GeminiProvider(vendor, GeminiSettings(api_key=KEY))


@pytest.mark.parametrize(
    ("vendor", "status", "name", "headers", "error", "retryable", "retry_after"),
    [
        ("openai", 401, "error_401_invalid_api_key.json", {}, UpstreamUnauthorized, False, None),
        ("openai", 429, "error_429_rate_limit_exceeded.json", {"retry-after-ms": "172"}, RateLimited, True, 0.172),
        ("openai", 429, "error_429_insufficient_quota.json", {}, UpstreamRejected, False, None),
        ("openai", 400, "error_400_invalid_schema.json", {}, UpstreamRejected, False, None),
        ("anthropic", 401, "error_401_authentication.json", {}, UpstreamUnauthorized, False, None),
        ("anthropic", 429, "error_429_rate_limit.json", {"retry-after": "12"}, RateLimited, True, 12.0),
        ("anthropic", 529, "error_529_overloaded.json", {}, UpstreamError, True, None),
        ("anthropic", 400, "error_400_invalid_request.json", {}, UpstreamRejected, False, None),
        ("gemini", 400, "error_400_api_key_invalid.json", {}, UpstreamUnauthorized, False, None),
        ("gemini", 429, "error_429_resource_exhausted.json", {}, RateLimited, True, 43.0),
        ("gemini", 503, "error_503_unavailable.json", {}, UpstreamError, True, None),
        ("gemini", 404, "error_404_model.json", {}, UpstreamRejected, False, None),
    ],
)
async def test_error_bodies_map_to_the_error_tree(
    upstream: aioresponses,
    vendor: str,
    status: int,
    name: str,
    headers: dict[str, str],
    error: type[GatewayError],
    retryable: bool,
    retry_after: float | None,
) -> None:
    provider = build(vendor)
    await provider.start()
    try:
        upstream.post(URLS[vendor], status=status, body=fixture(vendor, name), headers=headers)
        with pytest.raises(error) as caught:
            await provider.generate(make_call(), deadline=in_seconds(5))
    finally:
        await provider.close()
    assert type(caught.value) is error
    assert caught.value.retryable is retryable
    assert caught.value.retry_after == (pytest.approx(retry_after) if retry_after is not None else None)
    assert caught.value.details["status"] == status
    assert caught.value.details["provider"] == vendor
    if error is UpstreamUnauthorized:
        # The upstream text may quote part of the key, so it is not passed on.
        assert caught.value.message == f"{vendor}: the provider refused our credentials"
