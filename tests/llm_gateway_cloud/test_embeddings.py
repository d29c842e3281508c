"""Embeddings per provider (issue 15 item 5) from recorded payloads: the request each sends, one vector per
text in input order, and the token count (null where the provider reports none)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from aioresponses import aioresponses

from llm_gateway.providers.base import EmbedCall, Provider
from llm_gateway.providers.gemini import GeminiProvider, GeminiSettings
from llm_gateway.providers.ollama import OllamaProvider, OllamaSettings
from llm_gateway.providers.openai import OpenAIProvider, OpenAISettings

from ._support import KEY, fixture, in_seconds, sent_bodies

CALL = EmbedCall(model="embed-model", texts=["a lamp", "a kettle"], dimensions=3)
CASES: dict[str, tuple[Callable[[], Provider], str, str, Callable[[dict[str, Any]], Any], int | None]] = {
    "openai": (lambda: OpenAIProvider("openai", OpenAISettings(api_key=KEY)),
               "https://api.openai.com/v1/embeddings", "openai/embeddings.json",
               lambda b: (b["input"], b["dimensions"], b["encoding_format"]), 9),
    "gemini": (lambda: GeminiProvider("gemini", GeminiSettings(api_key=KEY)),
               "https://generativelanguage.googleapis.com/v1beta/models/embed-model:batchEmbedContents",
               "gemini/batch_embed_contents.json",
               lambda b: ([r["content"]["parts"][0]["text"] for r in b["requests"]],
                          b["requests"][0]["outputDimensionality"], b["requests"][0]["model"]), None),
    "ollama": (lambda: OllamaProvider("ollama", OllamaSettings(base_url="http://ollama.test:11434")),
               "http://ollama.test:11434/api/embed", "ollama/embed.json",
               lambda b: (b["input"], b["dimensions"], b["model"]), 9),
}
SENT = {
    "openai": (["a lamp", "a kettle"], 3, "float"),
    "gemini": (["a lamp", "a kettle"], 3, "models/embed-model"),
    "ollama": (["a lamp", "a kettle"], 3, "embed-model"),
}


@pytest.mark.parametrize("name", sorted(CASES))
async def test_embeddings_in_order_with_their_usage(name: str, upstream: aioresponses) -> None:
    build, url, recorded, sent, tokens = CASES[name]
    vendor, _, file = recorded.partition("/")
    upstream.post(url, body=fixture(vendor, file))
    provider = build()
    await provider.start()
    try:
        result = await provider.embed(CALL, deadline=in_seconds(5))
    finally:
        await provider.close()
    assert result.vectors == [[0.6, 0.8, 0.0], [0.0, 0.6, 0.8]]
    assert result.input_tokens == tokens
    [body] = sent_bodies(upstream, "POST", url)
    assert sent(body) == SENT[name]
